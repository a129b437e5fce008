-- 0009 rollback: drop the datasets schema (tables, triggers, functions, and the api view
-- over them) and the api functions that read it (sql/75_datasets.sql re-creates them).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP FUNCTION IF EXISTS api.dataset_manifest(text);
DROP FUNCTION IF EXISTS api.dataset_card(text);
DROP VIEW IF EXISTS api.datasets;
DROP SCHEMA IF EXISTS datasets CASCADE;
