-- 0019 · one tenant's failing source no longer stops the scheduled pipeline (issue 16):
-- pipeline.source_failures holds, per source, the failure of its latest range and when the
-- scheduled tick tries it again (exponential backoff). pipeline.tick() and the lanes skip a
-- source until then; a success deletes the row. See docs/pipeline.md ("Failing sources").
-- depends: 0018_security_identity
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

-- One row per source whose latest range failed (none: healthy). Written only by the
-- pipeline's SECURITY DEFINER functions (pipeline.tick_failed, pipeline.tick_finish,
-- pipeline.retry_source).
CREATE TABLE pipeline.source_failures (
  source_id       bigint PRIMARY KEY REFERENCES ingest.sources ON DELETE CASCADE,
  project_id      uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  stage           text,                       -- plan | a stage's name | finish; NULL: unknown
  sqlstate        text NOT NULL CHECK (sqlstate ~ '^[0-9A-Z]{5}$'),
  error           text NOT NULL,
  failures        bigint NOT NULL DEFAULT 1 CHECK (failures >= 1),  -- in a row
  first_failed_at timestamptz NOT NULL,       -- the first of this run of failures
  last_failed_at  timestamptz NOT NULL,
  retry_at        timestamptz NOT NULL,       -- a scheduled tick leaves it alone until then
  CONSTRAINT source_failures_dated CHECK (last_failed_at >= first_failed_at)
);
CREATE INDEX source_failures_project_idx ON pipeline.source_failures (project_id);

RESET ROLE;
