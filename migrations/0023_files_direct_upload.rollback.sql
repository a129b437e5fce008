-- 0023 rollback: uploads pass through the file service again with either backend. A 'sent'
-- upload that was never completed goes back to 'issued' (its client PUTs again).
SET lock_timeout = '10s';
SET statement_timeout = '5min';
UPDATE files.uploads SET status = 'issued' WHERE status = 'sent';
ALTER TABLE files.uploads DROP CONSTRAINT uploads_status_check;
ALTER TABLE files.uploads ADD CONSTRAINT uploads_status_check
  CHECK (status IN ('issued', 'received', 'queued', 'ingested', 'failed')) NOT VALID;
ALTER TABLE files.uploads VALIDATE CONSTRAINT uploads_status_check;
