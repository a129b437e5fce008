-- 0019 rollback: no failure records; the scheduled tick retries a failing source every
-- minute again (and raises), once sql/ of the older release is applied.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
-- pipeline.status (sql/45_pipeline.sql) reads the table; the older sql/ re-creates it.
-- squawk-ignore ban-drop-view
DROP VIEW IF EXISTS pipeline.status;
-- The table is this release's own (0019) and holds a row per failing source at most.
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS pipeline.source_failures;
