-- Grants for file delivery (0022, sql/760_files.sql). Nothing in `files` is for API roles
-- directly: signing a URL is the api functions' decision (SECURITY DEFINER, they check the
-- caller's project), and the file service (role pipeline) verifies and records.

REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA files FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION api.dataset_download(text, text),
  api.ingest_upload_url(text, text, bigint, text, jsonb),
  api.ingest_upload_complete(uuid) FROM PUBLIC;

-- ---------------------------------------------------------------- people
GRANT EXECUTE ON FUNCTION api.dataset_download(text, text)
  TO customer, reviewer, analyst, project_admin;
GRANT EXECUTE ON FUNCTION api.ingest_upload_url(text, text, bigint, text, jsonb),
  api.ingest_upload_complete(uuid)
  TO customer, project_admin;

-- ---------------------------------------------------------------- the file service, workers
GRANT USAGE ON SCHEMA files TO pipeline;
GRANT SELECT ON files.service TO pipeline;
GRANT SELECT, UPDATE (status, received_at, completed_at) ON files.uploads TO pipeline;
GRANT EXECUTE ON FUNCTION files.url_secret(text), files.valid_key(text), files.key_project(text),
  files.canonical(text, text, bigint, bigint, text),
  files.record_access(text, text, text, text, jsonb),
  files.mark_received(text, bigint, text), files.mark_sent(text, bigint, text),
  files.object_sha256(text)
  TO pipeline;
