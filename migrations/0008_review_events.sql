-- 0008 · review and events: local reviewer accounts, reviewers' decisions on candidates
-- (append-only), second opinions, and the verified events that accepted candidates become.
-- Also the analytics schema, whose materialized views live in sql/ (re-created there).
-- depends: 0007_scoring
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA review;
CREATE SCHEMA events;
CREATE SCHEMA analytics;

-- ======================================================================= local accounts
-- People who sign in with a user name and password instead of an API key (the review
-- app). Projects and roles come from core.memberships (kind 'user', member = username).
-- Only a bcrypt hash (pgcrypto crypt/gen_salt('bf')) is stored; the owner's SECURITY
-- DEFINER login function is the only reader.
CREATE TABLE core.accounts (
  username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9._@+-]{2,128}$'),
  password_hash text NOT NULL CHECK (password_hash LIKE '$2%'),
  display_name  text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  disabled_at   timestamptz,
  last_login_at timestamptz
);

-- ======================================================================= review settings
-- Per project: which share of first decisions is routed to a second reviewer, and the
-- scores above which candidates become machine-verified events without a person.
-- NULL thresholds switch that path off.
CREATE TABLE review.settings (
  project_id           uuid PRIMARY KEY REFERENCES core.projects ON DELETE CASCADE,
  second_opinion_share double precision NOT NULL DEFAULT 0.2
                       CHECK (second_opinion_share BETWEEN 0 AND 1),
  auto_accept_model    double precision DEFAULT 0.95 CHECK (auto_accept_model BETWEEN 0 AND 1),
  auto_accept_rule     double precision CHECK (auto_accept_rule BETWEEN 0 AND 1),
  updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Reasons a reviewer may give for a rejection (one list for every project).
CREATE TABLE review.reasons (
  code     text PRIMARY KEY CHECK (code ~ '^[a-z][a-z_]{0,40}$'),
  label    text NOT NULL,
  position bigint NOT NULL UNIQUE
);
INSERT INTO review.reasons (code, label, position) VALUES
  ('wrong_type',    'Something happens, but not this event type', 1),
  ('wrong_actors',  'The event involves other actors',            2),
  ('no_event',      'Nothing of the kind happens',                3),
  ('tracking_error','Tracking error (id switch, false track, jitter)', 4),
  ('duplicate',     'Duplicate of another candidate',             5),
  ('unclear',       'Cannot tell from the data',                  6);

-- ======================================================================= decisions
-- Append-only: one row per decision a reviewer makes. An undo is a row of its own that
-- names the decision it undoes. `opinion` tells a first decision from a second opinion.
-- For an accept, start_ts/end_ts are the span accepted (adjusted or as proposed).
CREATE TABLE review.decisions (
  decision_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  candidate_id bigint NOT NULL REFERENCES candidates.candidates ON DELETE CASCADE,
  reviewer     text NOT NULL,
  opinion      text NOT NULL CHECK (opinion IN ('first', 'second')),
  kind         text NOT NULL CHECK (kind IN ('accept', 'reject', 'undo')),
  reason       text REFERENCES review.reasons,
  note         text CHECK (length(note) <= 2000),
  start_ts     timestamptz,
  end_ts       timestamptz,
  adjusted     boolean NOT NULL DEFAULT false,
  undoes       bigint UNIQUE REFERENCES review.decisions,
  decided_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT decisions_accept_has_span CHECK (
    kind <> 'accept' OR (start_ts IS NOT NULL AND end_ts IS NOT NULL AND end_ts >= start_ts)),
  CONSTRAINT decisions_reject_has_reason CHECK (kind <> 'reject' OR reason IS NOT NULL),
  CONSTRAINT decisions_undo_names_one CHECK ((kind = 'undo') = (undoes IS NOT NULL))
);
CREATE INDEX decisions_candidate_idx ON review.decisions (candidate_id, decided_at);
CREATE INDEX decisions_reviewer_idx ON review.decisions (project_id, reviewer, decided_at);

-- The live first decision of each candidate: the primary key is what makes one of two
-- concurrent reviewers win (the other's insert conflicts). Undo removes the row.
CREATE TABLE review.current (
  candidate_id bigint PRIMARY KEY REFERENCES candidates.candidates ON DELETE CASCADE,
  project_id   uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  decision_id  bigint NOT NULL UNIQUE REFERENCES review.decisions,
  reviewer     text NOT NULL,
  kind         text NOT NULL CHECK (kind IN ('accept', 'reject')),
  decided_at   timestamptz NOT NULL
);
CREATE INDEX current_decision_idx ON review.current (project_id, reviewer);

-- Second opinions: a first decision routed to another reviewer. One per candidate;
-- assigned_to NULL means any reviewer other than the first may answer.
CREATE TABLE review.second_opinions (
  candidate_id      bigint PRIMARY KEY REFERENCES candidates.candidates ON DELETE CASCADE,
  project_id        uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  first_decision_id bigint NOT NULL REFERENCES review.decisions,
  first_reviewer    text NOT NULL,
  assigned_to       text,
  requested_at      timestamptz NOT NULL DEFAULT now(),
  decision_id       bigint UNIQUE REFERENCES review.decisions,
  answered_at       timestamptz
);
CREATE INDEX second_opinions_open_idx ON review.second_opinions (project_id, assigned_to)
  WHERE decision_id IS NULL;

-- ======================================================================= events
-- Verified events. `source` says who verified: 'human' (a reviewer's accept, with
-- verified_by = the reviewer and decision_id), 'model' or 'rule' (auto-accepted above the
-- project's thresholds, verified_by = model version or rule name). One event per
-- candidate at most, by constraint.
CREATE TABLE events.events (
  event_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id       uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source_id        bigint NOT NULL REFERENCES ingest.sources ON DELETE CASCADE,
  candidate_id     bigint UNIQUE REFERENCES candidates.candidates ON DELETE SET NULL,
  type             text NOT NULL,
  actors           jsonb NOT NULL CHECK (jsonb_typeof(actors) = 'object'),
  zone             text,
  route            text,
  trigger          text,
  latency_s        double precision,
  start_ts         timestamptz NOT NULL,
  end_ts           timestamptz NOT NULL,
  confidence       double precision NOT NULL CHECK (confidence BETWEEN 0 AND 1),
  source           text NOT NULL CHECK (source IN ('rule', 'model', 'human')),
  verified_by      text NOT NULL,
  decision_id      bigint REFERENCES review.decisions,
  ontology_id      bigint REFERENCES rules.ontologies ON DELETE SET NULL,
  ontology_version bigint,
  model_version    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT events_span CHECK (end_ts >= start_ts),
  CONSTRAINT events_human_has_decision CHECK (source <> 'human' OR decision_id IS NOT NULL)
);
CREATE INDEX events_project_ts_idx ON events.events (project_id, start_ts, event_id);
CREATE INDEX events_project_type_ts_idx ON events.events (project_id, type, start_ts);
CREATE INDEX events_source_ts_idx ON events.events (source_id, start_ts);

-- ======================================================================= review queue
-- The queue pages (sql/50_review_queue.sql) sort by these keys, score = the model's score
-- where there is one, else the rule's. They are stored columns, not index expressions,
-- because the pages run under RLS: Postgres uses a qual as an index condition there only
-- if it is leakproof, and the keyset comparison (key, candidate_id) > cursor is leakproof
-- on plain columns but not on COALESCE or arithmetic.
-- candidates.candidates comes from 0005 of this same release and is still small when this
-- runs, so the rewrite and the plain CREATE INDEX below are quick (as in 0007).
ALTER TABLE candidates.candidates
  ADD COLUMN queue_score double precision
    -- squawk-ignore adding-field-with-default
    GENERATED ALWAYS AS (coalesce(model_score, rule_score)) STORED,
  ADD COLUMN queue_uncertainty double precision  -- |score − 0.5|: 0 is most uncertain
    -- squawk-ignore adding-field-with-default
    GENERATED ALWAYS AS (abs(coalesce(model_score, rule_score) - 0.5::double precision)) STORED;

-- One index per ordering, per project and status, ending in candidate_id (the tie-break),
-- so a keyset page is one ordered index range scan at any depth of the queue:
-- uncertain (ascending), newest (start_ts descending), score (descending).
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX candidates_queue_uncertain_idx ON candidates.candidates
  (project_id, status, queue_uncertainty, candidate_id);
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX candidates_queue_newest_idx ON candidates.candidates
  (project_id, status, start_ts, candidate_id);
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX candidates_queue_score_idx ON candidates.candidates
  (project_id, status, queue_score, candidate_id);
-- The queue's counts (api.review_counts): an index-only scan per project that groups by
-- type, status and source and filters on score and start time.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX candidates_review_counts_idx ON candidates.candidates
  (project_id, type, status, source_id) INCLUDE (queue_score, start_ts);

RESET ROLE;
