-- Roles are cluster-wide and may serve other databases: they are kept.
DROP EXTENSION IF EXISTS pg_cron;
DROP EXTENSION IF EXISTS pgcrypto;
DROP EXTENSION IF EXISTS plpython3u;
DROP EXTENSION IF EXISTS vector;
DROP EXTENSION IF EXISTS timescaledb;
