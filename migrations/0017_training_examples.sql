-- 0017 · the scoring model learns from people: training examples made from reviewers'
-- decisions and imported human labels, per-project model lineage, and a history of which
-- model was active for a project when (so a rollback is one step). See docs/scoring.md
-- ("Project models").
-- depends: 0016_pair_key 0008_review_events
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- ======================================================================= examples
-- One labelled candidate of a project. origin 'review': the live first decision of a
-- reviewer (accept = 1, reject = 0; start_ts/end_ts the span accepted, adjusted or not);
-- origin 'truth': a candidate of a source judged against an imported truth.json (matched by
-- type, actors and temporal IoU >= 0.5 = 1, unmatched candidates of a judged type = 0).
--
-- An example records what it was made under: the ontology version of its candidate and
-- the feature settings of its source (scoring.feature_settings). The window the model
-- learns from is built once, under those settings, and stored with it. When the feature
-- settings change, scoring.invalidate_stale_examples marks the examples made under other
-- settings invalid with the reason; training skips them and says how many.
CREATE TABLE scoring.examples (
  example_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id      uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id       bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  candidate_id    bigint NOT NULL REFERENCES candidates.candidates ON DELETE CASCADE,
  origin          text NOT NULL CHECK (origin IN ('review', 'truth')),
  label           boolean NOT NULL,
  decision_id     bigint REFERENCES review.decisions ON DELETE CASCADE,
  truth_sha256    text CHECK (truth_sha256 ~ '^[0-9a-f]{64}$'),
  type            text NOT NULL,
  start_ts        timestamptz NOT NULL,     -- the decided (or labelled) span
  end_ts          timestamptz NOT NULL,
  span_iou        double precision,         -- of the candidate's span with that span
  ontology_id     bigint NOT NULL,
  ontology_version bigint NOT NULL,
  features        jsonb NOT NULL,           -- scoring.feature_settings at creation
  window_version  text,                     -- the window definition (workers/scoring/windows.py)
  window_data     bytea,                    -- float32 (steps × features), little-endian
  invalid_reason  text,                     -- NULL: valid
  invalidated_at  timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT examples_one_per_origin UNIQUE (candidate_id, origin),
  CONSTRAINT examples_review_names_decision CHECK ((origin = 'review') = (decision_id IS NOT NULL)),
  CONSTRAINT examples_truth_names_file CHECK ((origin = 'truth') = (truth_sha256 IS NOT NULL)),
  CONSTRAINT examples_span_ordered CHECK (end_ts >= start_ts),
  CONSTRAINT examples_window_versioned CHECK ((window_data IS NULL) = (window_version IS NULL)),
  CONSTRAINT examples_invalid_dated CHECK ((invalid_reason IS NULL) = (invalidated_at IS NULL))
);
CREATE INDEX examples_project_idx ON scoring.examples (project_id, origin, created_at);
CREATE INDEX examples_source_idx ON scoring.examples (source_id);

-- ======================================================================= lineage
-- A project model fine-tuned from another names it; the examples it saw are counted in
-- `training`. At most one active model per project (globals: the newest active one wins).
ALTER TABLE scoring.models
  ADD COLUMN parent_version text,
  ADD COLUMN activated_at timestamptz;
-- Before: the newest active model of a project won; keep that one active.
UPDATE scoring.models m SET active = false
WHERE m.active AND m.project_id IS NOT NULL
  AND EXISTS (SELECT FROM scoring.models n
              WHERE n.project_id = m.project_id AND n.active
                AND (n.created_at, n.model_id) > (m.created_at, m.model_id));
-- scoring.models holds a handful of rows per project.
-- squawk-ignore require-concurrent-index-creation
CREATE UNIQUE INDEX models_one_active_per_project ON scoring.models (project_id)
  WHERE active AND project_id IS NOT NULL;

-- Every change of a project's active model: activate (after training or by hand) and
-- rollback. version NULL: the project went back to the global model.
CREATE TABLE scoring.activations (
  activation_id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  version          text REFERENCES scoring.models (version) ON DELETE CASCADE,
  previous_version text REFERENCES scoring.models (version) ON DELETE SET NULL,
  action           text NOT NULL CHECK (action IN ('activate', 'rollback')),
  reason           text NOT NULL,
  actor            text NOT NULL DEFAULT session_user,
  activated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activations_project_idx ON scoring.activations (project_id, activated_at DESC);

RESET ROLE;
