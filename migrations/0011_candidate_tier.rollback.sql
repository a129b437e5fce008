-- 0011 rollback: drop the candidate tier (its check constraint goes with the column).
-- Recall-tier candidates stay as rows and read as ordinary candidates afterwards.
SET lock_timeout = '10s';
SET statement_timeout = '5min';
-- The column is this release's own (0011); nothing outside secinf reads it yet.
-- squawk-ignore ban-drop-column
ALTER TABLE candidates.candidates DROP COLUMN IF EXISTS tier;
