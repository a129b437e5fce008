-- File delivery (issue 17): signed URLs to download the files of a dataset version and to
-- upload a track file for ingest, and the audit of both. Tables in 0022; the HTTP side is
-- the file service (workers/files, `secinf serve`), which verifies what is signed here with
-- the same canonical text (workers/files/signing.py). See docs/files.md.
--
-- A signed URL is  {base_url}/files/{key}?method=M&expires=E&kid=K[&bytes=B&sha256=H]&sig=S
-- where S = hex(HMAC-SHA256(secret of K, canonical)) and canonical is the lines
--   M, key, E (unix seconds), B or '', H or ''   joined by '\n'.
-- Keys are storage keys: org/{org_id}/project/{project_id}/… (workers/storage).

-- ======================================================================= keys
-- Make sure a URL signing secret exists (32 random bytes, hex).
CREATE OR REPLACE FUNCTION files.ensure_url_key() RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO auth.url_signing_keys (kid, secret)
  SELECT 'u' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISS'),
         encode(public.gen_random_bytes(32), 'hex')
  WHERE NOT EXISTS (SELECT FROM auth.url_signing_keys WHERE active)
$$;
SELECT files.ensure_url_key();

-- The secret of a key id, for the file service (role pipeline) to verify with; NULL for
-- an unknown kid.
CREATE OR REPLACE FUNCTION files.url_secret(p_kid text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT secret FROM auth.url_signing_keys WHERE kid = p_kid $$;

-- ======================================================================= keys of objects
-- Whether p_key is a storage key this service signs: posix segments of [A-Za-z0-9._-],
-- none empty, '.' or '..', under org/{uuid}/project/{uuid}/.
CREATE OR REPLACE FUNCTION files.valid_key(p_key text) RETURNS boolean
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  -- The ids are uuids in canonical 8-4-4-4-12 form, so files.key_project's cast never fails
  -- (workers/files/signing.check_key accepts exactly these keys).
  SELECT length(p_key) <= 1024
         AND p_key ~ ('^org/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
                      || '/project/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}'
                      || '/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$')
         AND NOT p_key ~ '(^|/)\.\.?(/|$)'
$$;

-- The project a key belongs to (NULL for a key outside the layout).
CREATE OR REPLACE FUNCTION files.key_project(p_key text) RETURNS uuid
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN files.valid_key(p_key)
              THEN (split_part(p_key, '/', 4))::uuid
         END
$$;

-- ======================================================================= signing
CREATE OR REPLACE FUNCTION files.canonical(p_method text, p_key text, p_expires bigint,
                                           p_bytes bigint, p_sha256 text) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT concat_ws(E'\n', p_method, p_key, p_expires::text, coalesce(p_bytes::text, ''),
                   coalesce(p_sha256, ''))
$$;

-- A signed URL for p_method on p_key, valid until p_expires; PUTs bind the size and hash.
CREATE OR REPLACE FUNCTION files.signed_url(p_method text, p_key text, p_expires timestamptz,
                                            p_bytes bigint DEFAULT NULL,
                                            p_sha256 text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  k auth.url_signing_keys;
  v_exp bigint := floor(extract(epoch FROM p_expires))::bigint;
  v_base text := (SELECT s.base_url FROM files.service s);
BEGIN
  IF p_method NOT IN ('GET', 'PUT') OR NOT files.valid_key(p_key) THEN
    RAISE EXCEPTION 'cannot sign % for key "%"', p_method, p_key USING ERRCODE = '22023';
  END IF;
  SELECT * INTO k FROM auth.url_signing_keys WHERE active;
  IF k.kid IS NULL THEN
    RAISE EXCEPTION 'no URL signing secret is configured' USING ERRCODE = '55000',
      HINT = 'Run `secinf db migrate`, which creates one.';
  END IF;
  RETURN v_base || '/files/' || p_key || '?method=' || p_method || '&expires=' || v_exp
         || '&kid=' || k.kid
         || CASE WHEN p_bytes IS NOT NULL THEN '&bytes=' || p_bytes ELSE '' END
         || CASE WHEN p_sha256 IS NOT NULL THEN '&sha256=' || p_sha256 ELSE '' END
         || '&sig=' || encode(public.hmac(
              convert_to(files.canonical(p_method, p_key, v_exp, p_bytes, p_sha256), 'UTF8'),
              convert_to(k.secret, 'UTF8'), 'sha256'), 'hex');
END
$$;

-- How long a signed URL lives (files.service.url_ttl).
CREATE OR REPLACE FUNCTION files.url_ttl() RETURNS interval
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT s.url_ttl FROM files.service s $$;

-- ======================================================================= audit
-- Record that URLs were issued to the caller for project p (which they must be in).
CREATE OR REPLACE FUNCTION files.record_issue(p_project uuid, p_target text, p_details jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT auth.can_access(p_project) THEN
    RAISE EXCEPTION 'not allowed' USING ERRCODE = '42501';
  END IF;
  INSERT INTO audit.log (project_id, actor, action, target, details)
  VALUES (p_project, auth.subject(), 'file.url', p_target,
          coalesce(p_details, '{}') || jsonb_build_object('address', files.caller_address()));
END
$$;

-- The caller's address as PostgREST passes it on (audit.caller_address, sql/050_audit.sql).
CREATE OR REPLACE FUNCTION files.caller_address() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT audit.caller_address() $$;

-- One access of the file service: a download served or refused, an upload received or
-- refused (p_result: served | refused | received | redirected, an upload sent on to S3).
-- Written by the service (role pipeline)
-- with the client address it saw; the project comes from the key, never from the caller.
-- A served download of a dataset file counts its bytes sent (p_details.sent, else .bytes)
-- against the project's dataset_bytes_downloaded (sql/240_billing_usage.sql), once per
-- access.
CREATE OR REPLACE FUNCTION files.record_access(p_key text, p_method text, p_result text,
                                               p_address text, p_details jsonb DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project uuid;
  v_audit bigint;
BEGIN
  INSERT INTO audit.log (project_id, actor, action, target, details)
  SELECT p.project_id, 'file-service',
         CASE p_method WHEN 'PUT' THEN 'file.upload' ELSE 'file.download' END,
         left(p_key, 500),
         coalesce(p_details, '{}') || jsonb_build_object('result', p_result,
                                                         'address', p_address)
  FROM (SELECT files.key_project(p_key) AS project_id) k
  LEFT JOIN core.projects p ON p.project_id = k.project_id
  RETURNING project_id, audit_id INTO v_project, v_audit;
  IF p_method = 'GET' AND p_result = 'served' AND p_key ~ '/datasets/' THEN
    PERFORM billing.count(v_project, 'dataset_bytes_downloaded',
                          coalesce(p_details ->> 'sent', p_details ->> 'bytes')::bigint,
                          'access:' || v_audit);
  END IF;
END
$$;

-- The service stored an upload: its bytes and sha256 are the signed ones (it checked).
-- Returns the upload's status afterwards; refuses a key that is not an issued upload.
CREATE OR REPLACE FUNCTION files.mark_received(p_key text, p_bytes bigint, p_sha256 text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  u files.uploads;
BEGIN
  SELECT * INTO u FROM files.uploads WHERE object_key = p_key FOR UPDATE;
  IF u.upload_id IS NULL THEN
    RAISE EXCEPTION 'no upload was issued for "%"', p_key USING ERRCODE = 'P0002';
  END IF;
  IF u.bytes <> p_bytes OR u.sha256 <> p_sha256 THEN
    RAISE EXCEPTION 'upload % is % bytes with sha256 %, not what was signed', u.upload_id,
      p_bytes, p_sha256 USING ERRCODE = '22023';
  END IF;
  IF u.status = 'issued' THEN
    UPDATE files.uploads SET status = 'received', received_at = now()
    WHERE upload_id = u.upload_id;
    RETURN 'received';
  END IF;
  RETURN u.status;  -- a repeated PUT of the same bytes changes nothing
END
$$;

-- The sha256 of a stored object the database knows (a published dataset version's file or
-- manifest, or a received upload), for the service's ETag; NULL otherwise. The pipeline
-- role reads no dataset tables, hence SECURITY DEFINER over one key.
CREATE OR REPLACE FUNCTION files.object_sha256(p_key text) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    (SELECT f.sha256 FROM datasets.versions v
     JOIN datasets.files f ON f.version_id = v.version_id
     WHERE v.status = 'published' AND v.storage_path || '/' || f.path = p_key
       AND v.project_id = files.key_project(p_key)),
    (SELECT v.manifest_sha256 FROM datasets.versions v
     WHERE v.status = 'published' AND v.storage_path || '/manifest.json' = p_key
       AND v.project_id = files.key_project(p_key)),
    (SELECT u.sha256 FROM files.uploads u
     WHERE u.object_key = p_key AND u.status NOT IN ('issued', 'sent')))
$$;

-- S3 backend: the service sends the client of a valid upload URL to S3's own presigned URL
-- (workers/files/app.py). The upload is 'sent'; the ingest_file job checks the receipt (the
-- object's size and sha256) before loading. Returns the status afterwards, as mark_received.
CREATE OR REPLACE FUNCTION files.mark_sent(p_key text, p_bytes bigint, p_sha256 text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  u files.uploads;
BEGIN
  SELECT * INTO u FROM files.uploads WHERE object_key = p_key FOR UPDATE;
  IF u.upload_id IS NULL THEN
    RAISE EXCEPTION 'no upload was issued for "%"', p_key USING ERRCODE = 'P0002';
  END IF;
  IF u.bytes <> p_bytes OR u.sha256 <> p_sha256 THEN
    RAISE EXCEPTION 'upload % is % bytes with sha256 %, not what was signed', u.upload_id,
      p_bytes, p_sha256 USING ERRCODE = '22023';
  END IF;
  IF u.status = 'issued' THEN
    UPDATE files.uploads SET status = 'sent' WHERE upload_id = u.upload_id;
    RETURN 'sent';
  END IF;
  RETURN u.status;
END
$$;

-- ======================================================================= datasets
DROP FUNCTION IF EXISTS api.dataset_download(text, text);
CREATE FUNCTION api.dataset_download(p_version text, p_split text DEFAULT NULL)
RETURNS TABLE (path text, kind text, split text, rows bigint, bytes bigint, sha256 text,
               url text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v datasets.versions;
  v_exp timestamptz := now() + files.url_ttl();
  v_n integer;
BEGIN
  -- Only the caller's projects (datasets.visible_version asks auth.project_ids()).
  SELECT * INTO v FROM datasets.versions x
  WHERE x.version_id = datasets.visible_version(p_version);
  IF v.status <> 'published' THEN
    RAISE EXCEPTION 'dataset version % is %: only published versions are downloadable',
      p_version, v.status USING ERRCODE = '22023',
      HINT = 'Publish it (secinf export) once its quality gates pass.';
  END IF;
  -- Gone (HTTP 410): its objects expired under the project's retention, or it holds an
  -- actor erased since (records, sql/790_records_erasure.sql).
  IF EXISTS (SELECT FROM records.expired_versions e WHERE e.version_id = v.version_id) THEN
    RAISE EXCEPTION 'dataset version % expired under the project''s retention of dataset '
      'files: its files were deleted', p_version USING ERRCODE = 'PT410',
      HINT = 'Export a new version (secinf export), or keep dataset files longer '
             '(api.set_retention).';
  END IF;
  IF EXISTS (SELECT FROM records.superseded_versions s WHERE s.version_id = v.version_id) THEN
    RAISE EXCEPTION 'dataset version % holds an actor erased since it was published and is '
      'superseded', p_version USING ERRCODE = 'PT410',
      HINT = 'Export a new version (secinf export): it leaves the erased actor out.';
  END IF;
  IF p_split IS NOT NULL AND p_split NOT IN ('train', 'val', 'test') THEN
    RAISE EXCEPTION 'unknown split "%"', p_split USING ERRCODE = '22023',
      HINT = 'Use train, val or test, or leave it out for every file.';
  END IF;
  IF NOT files.valid_key(v.storage_path || '/manifest.json') THEN
    RAISE EXCEPTION 'dataset version % was exported before downloads existed', p_version
      USING ERRCODE = '55000',
      HINT = 'Export it again as a new version (secinf export) to make it downloadable.';
  END IF;
  -- The month's quota of dataset bytes downloaded must hold the split (402 otherwise); the
  -- bytes are counted as the file service serves them (files.record_access).
  PERFORM billing.check_quota(v.project_id, 'dataset_bytes_downloaded',
                              (SELECT coalesce(sum(f.bytes), 0)::bigint FROM datasets.files f
                               WHERE f.version_id = v.version_id
                                 AND (p_split IS NULL OR f.split = p_split)));
  RETURN QUERY
    SELECT f.path, f.kind, f.split, f.rows, f.bytes, f.sha256,
           files.signed_url('GET', v.storage_path || '/' || f.path, v_exp), v_exp
    FROM datasets.files f
    WHERE f.version_id = v.version_id AND (p_split IS NULL OR f.split = p_split)
    UNION ALL  -- the manifest, with every split
    SELECT 'manifest.json', 'manifest', NULL::text, NULL::bigint, NULL::bigint,
           v.manifest_sha256, files.signed_url('GET', v.storage_path || '/manifest.json', v_exp),
           v_exp
    ORDER BY 1;
  GET DIAGNOSTICS v_n = ROW_COUNT;
  PERFORM files.record_issue(v.project_id, v.name || '@' || v.version,
                             jsonb_build_object('split', p_split, 'files', v_n, 'method', 'GET',
                                                'expires_at', v_exp));
END
$$;
COMMENT ON FUNCTION api.dataset_download(text, text) IS
  'Signed download URLs of a published dataset version of the caller''s projects (X.Y.Z or '
  'dataset@X.Y.Z): one per file of the split (train, val or test; every file when left '
  'out) plus manifest.json, with rows, bytes, sha256 and the URL''s expiry. The URLs work '
  'without a token until they expire; each issue is audited.';

-- ======================================================================= uploads
-- The options an upload may carry for its ingest (as `secinf ingest` takes them).
CREATE OR REPLACE FUNCTION files.upload_options() RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['format', 'fps', 'units', 'scale', 'homography', 'time_origin', 'strict'] $$;

-- The type of each option, as the ingest job reads it (workers/ingest/upload_job.py): a
-- homography only ever as a JSON matrix, never a path the worker would open.
CREATE OR REPLACE FUNCTION files.check_upload_options(p jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_bad text;
BEGIN
  SELECT k INTO v_bad FROM jsonb_each(p) AS e (k, v)
  WHERE NOT CASE k
    WHEN 'format' THEN jsonb_typeof(v) = 'string'
    WHEN 'fps' THEN jsonb_typeof(v) = 'number' AND (v #>> '{}')::float8 > 0
    WHEN 'scale' THEN jsonb_typeof(v) = 'number' AND (v #>> '{}')::float8 > 0
    WHEN 'units' THEN v #>> '{}' IN ('px', 'm', 'cm', 'mm') AND jsonb_typeof(v) = 'string'
    WHEN 'homography' THEN jsonb_typeof(v) = 'array' AND jsonb_array_length(v) = 3
    WHEN 'time_origin' THEN jsonb_typeof(v) = 'string'
    WHEN 'strict' THEN jsonb_typeof(v) = 'boolean'
    ELSE true END
  ORDER BY k LIMIT 1;
  IF v_bad IS NOT NULL THEN
    RAISE EXCEPTION 'upload option % has the wrong type: %', v_bad, p -> v_bad
      USING ERRCODE = '22023',
      HINT = 'fps and scale: positive numbers; units: px, m, cm or mm; homography: a 3x3 '
             'JSON matrix; time_origin: an ISO timestamp; strict: true or false.';
  END IF;
END
$$;

DROP FUNCTION IF EXISTS api.ingest_upload_url(text, text, bigint, text, jsonb);
CREATE FUNCTION api.ingest_upload_url(source text, filename text, bytes bigint, sha256 text,
                                      options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project uuid := auth.target_project(coalesce(options, '{}'), ARRAY['customer', 'project_admin']);
  v_org uuid := (SELECT p.org_id FROM core.projects p WHERE p.project_id = v_project);
  v_max bigint := (SELECT s.upload_max_bytes FROM files.service s);
  v_unknown text[];
  v_id uuid := gen_random_uuid();
  v_key text;
  v_exp timestamptz := now() + files.url_ttl();
BEGIN
  IF source IS NULL OR length(source) NOT BETWEEN 1 AND 200 THEN
    RAISE EXCEPTION 'source must be a name of 1 to 200 characters' USING ERRCODE = '22023';
  END IF;
  IF filename IS NULL OR filename !~ '^[A-Za-z0-9._-]{1,200}$' OR filename ~ '^\.' THEN
    RAISE EXCEPTION 'filename "%" is not a plain file name', filename USING ERRCODE = '22023',
      HINT = 'Use letters, digits, ".", "_" and "-" only (no directories), e.g. tracks.csv.';
  END IF;
  IF bytes IS NULL OR bytes < 1 OR bytes > v_max THEN
    RAISE EXCEPTION 'an upload is 1 to % bytes, not %', v_max, coalesce(bytes::text, 'NULL')
      USING ERRCODE = '22023', HINT = 'Split the file, or ask the operator (files.service).';
  END IF;
  IF sha256 IS NULL OR sha256 !~ '^[0-9a-f]{64}$' THEN
    RAISE EXCEPTION 'sha256 must be 64 lowercase hex digits' USING ERRCODE = '22023',
      HINT = 'sha256sum FILE prints it.';
  END IF;
  IF jsonb_typeof(coalesce(options, '{}')) <> 'object' THEN
    RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = '22023';
  END IF;
  v_unknown := ARRAY(SELECT k FROM jsonb_object_keys(coalesce(options, '{}')) k
                     WHERE k <> 'project_id' AND k <> ALL (files.upload_options()) ORDER BY k);
  IF cardinality(v_unknown) > 0 THEN
    RAISE EXCEPTION 'unknown upload option %', array_to_string(v_unknown, ', ')
      USING ERRCODE = '22023',
      HINT = 'Options: ' || array_to_string(files.upload_options(), ', ') || ' (docs/files.md).';
  END IF;
  PERFORM files.check_upload_options(coalesce(options, '{}'));
  -- The month's quotas (sql/240_billing_usage.sql): the file's bytes must fit, and points
  -- must be left (they are counted, and checked exactly, when the file is loaded): 402.
  PERFORM billing.check_quota(v_project, 'bytes_ingested', bytes);
  PERFORM billing.check_quota(v_project, 'points_ingested', 1);
  v_key := format('org/%s/project/%s/uploads/%s/%s', v_org, v_project, v_id, filename);
  INSERT INTO files.uploads (upload_id, project_id, source, filename, object_key, bytes, sha256,
                             options, issued_by, expires_at)
  VALUES (v_id, v_project, source, filename, v_key, bytes, sha256,
          coalesce(options, '{}') - 'project_id', auth.subject(), v_exp);
  PERFORM files.record_issue(v_project, 'upload:' || v_id,
                             jsonb_build_object('method', 'PUT', 'bytes', bytes,
                                                'sha256', sha256, 'expires_at', v_exp));
  RETURN jsonb_build_object('upload_id', v_id, 'method', 'PUT',
                            'url', files.signed_url('PUT', v_key, v_exp, bytes, sha256),
                            'expires_at', v_exp, 'bytes', bytes, 'sha256', sha256,
                            -- Send these with the PUT. The S3 backend requires the checksum
                            -- header (the service sends the client on to S3, which checks it).
                            'headers', jsonb_build_object(
                              'Content-Length', bytes::text,
                              'x-amz-checksum-sha256',
                              encode(decode(sha256, 'hex'), 'base64')));
END
$$;
COMMENT ON FUNCTION api.ingest_upload_url(text, text, bigint, text, jsonb) IS
  'A signed URL to PUT one track file (exactly `bytes` bytes with that sha256, with the '
  'returned headers) for ingest '
  'into a source of the caller''s project; options as secinf ingest takes them (format, '
  'fps, units, scale, homography, time_origin, strict; project_id when the caller has '
  'several). Then call ingest_upload_complete(upload_id).';

DROP FUNCTION IF EXISTS api.ingest_upload_complete(uuid);
CREATE FUNCTION api.ingest_upload_complete(upload_id uuid)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_variable
DECLARE
  u files.uploads;
  v_job bigint;
BEGIN
  SELECT * INTO u FROM files.uploads x WHERE x.upload_id = ingest_upload_complete.upload_id
  FOR UPDATE;
  IF u.upload_id IS NULL OR NOT auth.can_access(u.project_id) THEN
    RAISE EXCEPTION 'no upload %', upload_id USING ERRCODE = 'P0002',
      HINT = 'Use the upload_id that ingest_upload_url returned.';
  END IF;
  PERFORM auth.require(u.project_id, ARRAY['customer', 'project_admin']);
  IF u.status = 'issued' THEN
    RAISE EXCEPTION 'upload % has not been received', u.upload_id USING ERRCODE = 'PT409',
      HINT = CASE WHEN u.expires_at < now()
                  THEN 'Its URL has expired: ask for a new one (ingest_upload_url).'
                  ELSE 'PUT the file to the signed URL first.' END;
  END IF;
  -- 'sent' (S3 backend): the client was sent to S3; the job checks that the object arrived.
  IF u.status IN ('received', 'sent') THEN
    -- One job per upload, however often this is called (the dedupe key and the row lock);
    -- counted against the project's jobs in flight like every API job (230_api_caps.sql).
    PERFORM jobs.check_in_flight(u.project_id, jobs.api_job_kinds(), 'ingest_file',
                                 'ingest_file:' || u.upload_id);
    v_job := jobs.enqueue(u.project_id, 'ingest_file', jsonb_build_object('upload_id', u.upload_id),
                          p_dedupe_key => 'ingest_file:' || u.upload_id);
    UPDATE files.uploads SET status = 'queued', job_id = v_job WHERE upload_id = u.upload_id;
    PERFORM audit.record(u.project_id, 'file.upload_complete', 'upload:' || u.upload_id,
                         jsonb_build_object('job_id', v_job));
    u.status := 'queued';
    u.job_id := v_job;
  END IF;
  RETURN jsonb_build_object('upload_id', u.upload_id, 'status', u.status, 'job_id', u.job_id);
END
$$;
COMMENT ON FUNCTION api.ingest_upload_complete(uuid) IS
  'Queue the ingest of a received upload (an ingest_file job; poll it with job(job_id)). '
  'Calling it again returns the same job: one upload is ingested once.';
