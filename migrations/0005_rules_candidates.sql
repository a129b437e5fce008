-- 0005 · rules and candidates: versioned ontologies per project, the rule SQL generated
-- from them, and the candidate events the rules emit (scored later by the model worker).
-- depends: 0004_features
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA rules;
CREATE SCHEMA candidates;

-- ======================================================================= ontologies
-- One row per loaded (project, name, version). The YAML text is kept verbatim (its sha256
-- identifies it); `parsed` is the validated mapping. Exactly one version is active per
-- project: the candidates stage runs the active version's compiled rules.
CREATE TABLE rules.ontologies (
  ontology_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id  uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_-]{0,62}$'),
  version     bigint NOT NULL CHECK (version >= 1),
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  yaml        text NOT NULL,
  parsed      jsonb NOT NULL,
  active      boolean NOT NULL DEFAULT false,
  loaded_by   text NOT NULL DEFAULT session_user,
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, name, version)
);
CREATE UNIQUE INDEX ontologies_one_active ON rules.ontologies (project_id) WHERE active;

-- ======================================================================= compiled rules
-- Generated SQL per event type of one ontology version (workers/rules/compile.py). Each
-- statement takes $1 project_id, $2 source_id, $3 from, $4 to and returns the candidates
-- it upserted.
CREATE TABLE rules.compiled (
  ontology_id bigint NOT NULL REFERENCES rules.ontologies ON DELETE CASCADE,
  project_id  uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  type        text NOT NULL CHECK (type ~ '^[a-z][a-z0-9_]{0,62}$'),
  kind        text NOT NULL,               -- rule kind (docs/rules.md)
  position    bigint NOT NULL,            -- order of the type in the ontology
  lookback_s  double precision NOT NULL CHECK (lookback_s >= 0),  -- recomputed overlap
  sql         text NOT NULL,
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  compiled_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (ontology_id, type)
);

-- ======================================================================= candidates
-- One candidate event. Re-running the rules over the same data upserts onto the unique
-- key, so a backfill or an overlapping tick never duplicates a candidate.
CREATE TABLE candidates.candidates (
  candidate_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id        bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  type             text NOT NULL,
  actors           jsonb NOT NULL CHECK (jsonb_typeof(actors) = 'object'),  -- {role: track_id}
  zone             text,                 -- enter, exit, dwell, choose_route (branch zone)
  route            text,                 -- choose_route: the route taken
  trigger          text,                 -- startle: the trigger's name
  latency_s        double precision,     -- startle: onset − trigger time
  start_ts         timestamptz NOT NULL,
  end_ts           timestamptz NOT NULL CHECK (end_ts >= start_ts),
  rule_name        text NOT NULL,        -- '<ontology name>.<type>'
  ontology_id      bigint NOT NULL REFERENCES rules.ontologies ON DELETE CASCADE,
  ontology_version bigint NOT NULL,
  rule_score       double precision NOT NULL CHECK (rule_score BETWEEN 0 AND 1),
  evidence         jsonb NOT NULL DEFAULT '{}',  -- feature summaries over the span
  model_score      double precision CHECK (model_score BETWEEN 0 AND 1),
  model_version    text,
  embedding        vector(64),
  status           text NOT NULL DEFAULT 'new'
                   CHECK (status IN ('new',        -- emitted by the rules
                                     'scored',     -- model_score written
                                     'in_review',  -- claimed by a reviewer
                                     'accepted', 'rejected')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT candidates_once UNIQUE (project_id, source_id, ontology_id, type, actors,
                                     start_ts, end_ts)
);
CREATE INDEX candidates_source_ts_idx ON candidates.candidates (source_id, start_ts);
CREATE INDEX candidates_project_status_idx ON candidates.candidates (project_id, status,
                                                                       created_at);
CREATE INDEX candidates_ontology_idx ON candidates.candidates (ontology_id);

RESET ROLE;
