-- 0022 rollback: no signed URLs, no uploads (the rows of uploads go; objects stay in storage).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
-- The schema and tables are this release's own (0022).
-- squawk-ignore ban-drop-table
DROP SCHEMA IF EXISTS files CASCADE;
-- squawk-ignore ban-drop-table
DROP TABLE IF EXISTS auth.url_signing_keys;
