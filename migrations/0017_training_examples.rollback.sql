-- 0017 rollback: no training examples, no activation history, no model lineage. Project
-- models stay registered; more than one may then be active again (the newest wins).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP TABLE IF EXISTS scoring.activations;
DROP TABLE IF EXISTS scoring.examples;
DROP INDEX IF EXISTS scoring.models_one_active_per_project;
-- The columns are this release's own (0017); nothing outside secinf reads them yet.
-- squawk-ignore ban-drop-column
ALTER TABLE scoring.models DROP COLUMN IF EXISTS parent_version,
                           DROP COLUMN IF EXISTS activated_at;
