-- 0029 rollback: sources forget where their recordings ended (the rules treat every
-- source as live again; no candidate already emitted is removed).
SET ROLE secinf_owner;
SET lock_timeout = '10s';
ALTER TABLE ingest.sources DROP COLUMN IF EXISTS ended_at;
RESET ROLE;
