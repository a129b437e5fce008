-- 0028 rollback: the records schema (retention, holds, subjects, tombstones and the marks on
-- dataset versions), the tracks of dataset versions and the audit chain's anchors go.
-- Tombstones are kept 7 years by design: dump records.tombstones first if any exist.
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP SCHEMA IF EXISTS records CASCADE;
DROP TABLE IF EXISTS datasets.version_tracks;
DROP TABLE IF EXISTS audit.anchors;
RESET ROLE;
