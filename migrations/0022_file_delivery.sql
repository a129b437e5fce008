-- 0022 · file delivery (issue 17): signed URLs for dataset downloads and bulk uploads.
--   * auth.url_signing_keys: the HMAC secrets of signed URLs (one active), owner-only like
--     auth.signing_keys; the file service reads them through files.url_secret(kid).
--   * files.service: where the file service is reached (the base of every signed URL).
--   * files.uploads: one signed upload of a track file into a source of a project, from
--     the issued URL to the ingest_file job that loaded it.
-- Every URL issued and every download served or refused is an audit.log row. See
-- docs/files.md.
-- depends: 0018_security_identity
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '5min';

CREATE SCHEMA files;

-- ======================================================================= signing keys
CREATE TABLE auth.url_signing_keys (
  kid        text PRIMARY KEY CHECK (kid ~ '^[a-z0-9]{1,32}$'),
  secret     text NOT NULL CHECK (length(secret) >= 32),
  active     boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX url_signing_keys_one_active ON auth.url_signing_keys (active) WHERE active;
COMMENT ON TABLE auth.url_signing_keys IS
  'HMAC-SHA256 secrets of signed file URLs; the active one signs, any listed one verifies.';

-- ======================================================================= the service
CREATE TABLE files.service (
  singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  base_url   text NOT NULL DEFAULT 'http://127.0.0.1:8600'
             CHECK (base_url ~ '^https?://[^/?#\s]+(/[^?#\s]*)?$' AND base_url !~ '/$'),
  url_ttl    interval NOT NULL DEFAULT '15 minutes'
             CHECK (url_ttl > interval '0' AND url_ttl <= interval '7 days'),
  upload_max_bytes bigint NOT NULL DEFAULT 2147483648 CHECK (upload_max_bytes > 0),
  updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO files.service DEFAULT VALUES;
COMMENT ON TABLE files.service IS
  'The file service''s public base URL (secinf serve, or the docker service), how long a '
  'signed URL lives, and the largest upload it accepts.';

-- ======================================================================= uploads
CREATE TABLE files.uploads (
  upload_id    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id   uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  source       text NOT NULL CHECK (length(source) BETWEEN 1 AND 200),
  filename     text NOT NULL CHECK (filename ~ '^[A-Za-z0-9._-]{1,200}$' AND filename !~ '^\.'),
  object_key   text NOT NULL UNIQUE,
  bytes        bigint NOT NULL CHECK (bytes > 0),
  sha256       text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  status       text NOT NULL DEFAULT 'issued'
               CHECK (status IN ('issued',     -- URL handed out, nothing received
                                 'received',   -- the service stored exactly bytes/sha256
                                 'queued',     -- ingest_upload_complete queued the job
                                 'ingested',   -- the job loaded it
                                 'failed')),   -- the job gave up (job's last_error)
  job_id       bigint,
  options      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
  issued_by    text NOT NULL,
  issued_at    timestamptz NOT NULL DEFAULT now(),
  expires_at   timestamptz NOT NULL,
  received_at  timestamptz,
  completed_at timestamptz
);
CREATE INDEX uploads_project_idx ON files.uploads (project_id, issued_at DESC);
COMMENT ON TABLE files.uploads IS
  'Signed uploads of track files: issued by api.ingest_upload_url, received by the file '
  'service, queued once by api.ingest_upload_complete, loaded by an ingest_file job.';
