-- 0007 · scoring: the model registry, which candidates were queued for scoring, and the
-- HNSW index that serves nearest-neighbour search over candidate embeddings.
-- depends: 0005_rules_candidates 0006_jobs
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA scoring;

-- ======================================================================= models
-- One trained model. project_id NULL: a global model (trained on simulated scenes by
-- `secinf train`), used by every project that has no active model of its own. The weights
-- live in the row (a few hundred kB); sha256 is over exactly those bytes.
CREATE TABLE scoring.models (
  model_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id    uuid REFERENCES core.projects ON DELETE CASCADE,  -- NULL: global
  version       text NOT NULL UNIQUE CHECK (version ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
  sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  weights       bytea NOT NULL,
  config        jsonb NOT NULL,                 -- architecture (workers/scoring/model.py)
  normalisation jsonb NOT NULL,                 -- per-feature mean and std of the windows
  training      jsonb NOT NULL DEFAULT '{}',    -- training data: scenes, seeds, noise, counts
  metrics       jsonb NOT NULL DEFAULT '{}',    -- held-out AUC / AP, model vs rule_score
  active        boolean NOT NULL DEFAULT true,  -- eligible as the default model
  created_by    text NOT NULL DEFAULT session_user,
  created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX models_default_idx ON scoring.models (project_id, created_at DESC) WHERE active;

-- ======================================================================= queued
-- Candidates already put in a score_candidates job, so a tick never queues one twice.
CREATE TABLE scoring.queued (
  candidate_id bigint PRIMARY KEY REFERENCES candidates.candidates ON DELETE CASCADE,
  project_id   uuid NOT NULL,
  job_id       bigint NOT NULL REFERENCES jobs.jobs ON DELETE CASCADE,
  queued_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX queued_job_idx ON scoring.queued (job_id);

-- ======================================================================= embeddings
-- Cosine nearest neighbours of candidates (api.similar_candidates). The table was created
-- by 0005 in this same release and is still small when this runs.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX candidates_embedding_hnsw ON candidates.candidates
  USING hnsw (embedding vector_cosine_ops);

RESET ROLE;
