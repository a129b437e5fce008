-- 0006 rollback: drop the work queue (sql/60_jobs.sql's functions go with the schema).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP SCHEMA IF EXISTS jobs CASCADE;
