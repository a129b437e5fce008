-- 0008 rollback: drop review, events and analytics (their sql/ objects go with them) and
-- the local accounts, and the queue's columns and indexes on candidates.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
DROP SCHEMA IF EXISTS analytics CASCADE;
DROP SCHEMA IF EXISTS events CASCADE;
DROP SCHEMA IF EXISTS review CASCADE;
DROP TABLE IF EXISTS core.accounts;
DROP INDEX IF EXISTS candidates.candidates_queue_newest_idx;
ALTER TABLE candidates.candidates DROP COLUMN IF EXISTS queue_score,
  DROP COLUMN IF EXISTS queue_uncertainty;
