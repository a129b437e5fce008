-- 0025 rollback: the worker's file ingest stages and merges every row again. The role is
-- cluster-wide and may serve other databases: only this database's grants go.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
REVOKE ALL ON ingest.track_points FROM ingest_loader;
REVOKE USAGE ON SCHEMA ingest FROM ingest_loader;
REVOKE ingest_loader FROM pipeline;
