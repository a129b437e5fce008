-- 0017 rollback: no training examples, no activation history, no model lineage. Project
-- models stay registered; more than one may then be active again (the newest wins).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
-- The tables, the index and the columns are this release's own (0017); nothing outside
-- secinf reads them yet, and scoring.models holds a handful of rows.
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS scoring.activations;
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS scoring.examples;
-- squawk-ignore require-concurrent-index-deletion
DROP INDEX IF EXISTS scoring.models_one_active_per_project;
-- squawk-ignore ban-drop-column
ALTER TABLE scoring.models DROP COLUMN IF EXISTS parent_version,
                           DROP COLUMN IF EXISTS activated_at;
