-- Roll back 0005 · rules and candidates (and the stage sql/55 registered).
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';
DELETE FROM pipeline.stages WHERE name = 'candidates';
DROP SCHEMA IF EXISTS candidates CASCADE;
DROP SCHEMA IF EXISTS rules CASCADE;
RESET ROLE;
