-- Grants for the ingest schema. Capability only; which project's rows a role sees is RLS
-- (900_policies.sql covers every ingest table with a project_id).

-- ---------------------------------------------------------------- functions: none by default
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA ingest FROM PUBLIC;

-- ---------------------------------------------------------------- schema and tables
GRANT USAGE ON SCHEMA ingest TO customer, reviewer, analyst, project_admin, pipeline;
-- Readers see their project's tracks and scene (RLS-scoped).
GRANT SELECT ON ingest.sources, ingest.batches, ingest.zones, ingest.routes, ingest.triggers
  TO customer, reviewer, analyst, project_admin;
-- Hypertables: column grants only, so their chunks never carry these roles' privileges.
SELECT auth.grant_hypertable('ingest.track_points', 'SELECT',
                             ARRAY['customer', 'reviewer', 'analyst', 'project_admin']);
SELECT auth.grant_hypertable('ingest.poses', 'SELECT',
                             ARRAY['customer', 'reviewer', 'analyst', 'project_admin']);
-- The pipeline ingests (through the merge) and consumes dirty ranges.
GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA ingest TO pipeline;
GRANT UPDATE ON ingest.sources, ingest.batches, ingest.zones, ingest.routes, ingest.triggers
  TO pipeline;
GRANT DELETE ON ingest.dirty_ranges TO pipeline;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA ingest TO pipeline;
-- A worker's file ingest COPYs appended points as ingest_loader (migration 0025): INSERT on
-- the points, nothing else (COPY FROM needs no more).
DO $$
BEGIN
  IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'ingest_loader') THEN
    GRANT USAGE ON SCHEMA ingest TO ingest_loader;
    GRANT INSERT ON ingest.track_points TO ingest_loader;
  END IF;
END
$$;

-- ---------------------------------------------------------------- functions
GRANT EXECUTE ON FUNCTION
  ingest.merge_staged(uuid, bigint, text, text, text, regclass, bigint, bigint, bigint, jsonb,
                      regclass),
  ingest.open_batch(uuid, bigint, text, text, text),
  ingest.close_batch(bigint, regclass, regclass, bigint, bigint, bigint, jsonb, bigint,
                     timestamptz, timestamptz, bigint),
  ingest.ensure_source(uuid, text, text, jsonb, double precision, timestamptz),
  ingest.points_text(jsonb),
  ingest.upsert_scene(uuid, bigint, jsonb)
  TO pipeline;
