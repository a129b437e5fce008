-- 0023 · uploads straight to S3 (issue 17): with the S3 backend the file service answers a
-- signed PUT with a redirect to S3's own presigned URL and is not in the data path. Such an
-- upload is 'sent' (the client was sent to object storage); the ingest_file job checks the
-- receipt (the object's size and sha256) before it loads anything. See docs/files.md.
-- depends: 0022_file_delivery
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '5min';

-- files.uploads is 0022's own, small table (one row per upload URL issued): replacing its
-- status CHECK with a wider one, validated at once, blocks nothing for long.
-- squawk-ignore ban-drop-constraint
ALTER TABLE files.uploads DROP CONSTRAINT uploads_status_check;
-- squawk-ignore constraint-missing-not-valid
ALTER TABLE files.uploads ADD CONSTRAINT uploads_status_check
  CHECK (status IN ('issued',     -- URL handed out, nothing received
                    'sent',       -- S3 backend: redirected to S3; the job checks the receipt
                    'received',   -- the service stored exactly bytes/sha256
                    'queued',     -- ingest_upload_complete queued the job
                    'ingested',   -- the job loaded it
                    'failed'));   -- the job gave up (job's last_error)
