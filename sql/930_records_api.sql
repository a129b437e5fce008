-- Retention, legal holds and erasure through the API (issue 19; the records schema,
-- sql/770-790_records_*.sql). Reading a project's retention is for the people who run it
-- (customers, analysts, project admins); changing it, holds, subject links, erasure and the
-- tombstones are the project_admin's. Every change is audited by the records function it
-- calls. Grants in 986_grants_records.sql; see docs/api.md ("Records").

DROP FUNCTION IF EXISTS records.caller_project(uuid, text[]);  -- now auth.caller_project

-- ======================================================================= retention
DROP FUNCTION IF EXISTS api.retention(uuid);
CREATE FUNCTION api.retention(p_project_id uuid DEFAULT NULL)
RETURNS TABLE (category text, keep text, keep_days integer, forever boolean, source text,
               set_by text, set_at timestamptz, reason text, description text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT r.category, r.keep::text, floor(extract(epoch FROM r.keep) / 86400)::integer,
         r.keep IS NULL, r.source,
         r.set_by, r.set_at, r.reason, r.description
  FROM records.retention_of(auth.caller_project(
         p_project_id, ARRAY['customer', 'analyst', 'project_admin'])) r
$$;
COMMENT ON FUNCTION api.retention(uuid) IS
  'How long each category of the project''s data is kept: keep (e.g. 2 years) and keep_days '
  '(NULL with forever), '
  'source project (its own setting) | plan (its plan''s default) | none.';

DROP FUNCTION IF EXISTS api.set_retention(text, integer, text, boolean, uuid);
CREATE FUNCTION api.set_retention(category text, keep_days integer, reason text,
                                  clear boolean DEFAULT false, p_project_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT records.set_retention(auth.caller_project(p_project_id, ARRAY['project_admin']),
                               category, make_interval(days => keep_days), reason, clear)
$$;
COMMENT ON FUNCTION api.set_retention(text, integer, text, boolean, uuid) IS
  'project_admin: keep a category of the project''s data keep_days days (NULL: forever), '
  'or with clear=true return to the plan''s default. reason is kept in the audit log.';

DROP FUNCTION IF EXISTS api.retention_runs(integer, uuid);
CREATE FUNCTION api.retention_runs(p_limit integer DEFAULT 50, p_project_id uuid DEFAULT NULL)
RETURNS TABLE (run_id bigint, started_at timestamptz, status text, category text,
               relation text, method text, cutoff timestamptz, rows bigint,
               seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT r.run_id, r.started_at, r.status, s.category, s.relation, s.method, s.cutoff, s.rows,
         s.seconds
  FROM records.retention_steps s
  JOIN records.retention_runs r ON r.run_id = s.run_id
  WHERE s.project_id = auth.caller_project(p_project_id, ARRAY['project_admin'])
  ORDER BY s.run_id DESC, s.step
  LIMIT least(greatest(p_limit, 1), 1000)
$$;
COMMENT ON FUNCTION api.retention_runs(integer, uuid) IS
  'project_admin: what retention deleted from the project, per run and table (rows, '
  'cut-off, seconds), newest first.';

-- ======================================================================= legal holds
DROP FUNCTION IF EXISTS api.legal_holds(boolean, uuid);
CREATE FUNCTION api.legal_holds(p_all boolean DEFAULT false, p_project_id uuid DEFAULT NULL)
RETURNS TABLE (hold_id bigint, source text, from_ts timestamptz, to_ts timestamptz,
               reason text, set_by text, set_at timestamptz, active boolean,
               lifted_by text, lifted_at timestamptz, lift_reason text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT * FROM records.list_holds(auth.caller_project(p_project_id, ARRAY['project_admin']),
                                   p_all)
$$;
COMMENT ON FUNCTION api.legal_holds(boolean, uuid) IS
  'project_admin: the project''s active legal holds (p_all: lifted ones too).';

DROP FUNCTION IF EXISTS api.set_legal_hold(text, text, timestamptz, timestamptz, uuid);
CREATE FUNCTION api.set_legal_hold(reason text, source text DEFAULT NULL,
                                   from_ts timestamptz DEFAULT NULL,
                                   to_ts timestamptz DEFAULT NULL,
                                   p_project_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT records.set_hold(auth.caller_project(p_project_id, ARRAY['project_admin']),
                          source, from_ts, to_ts, reason)
$$;
COMMENT ON FUNCTION api.set_legal_hold(text, text, timestamptz, timestamptz, uuid) IS
  'project_admin: hold the project''s data (or one source''s, or [from_ts, to_ts)): '
  'retention keeps it and erasure refuses it (HTTP 423) until the hold is lifted.';

DROP FUNCTION IF EXISTS api.lift_legal_hold(bigint, text, uuid);
CREATE FUNCTION api.lift_legal_hold(hold_id bigint, reason text, p_project_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT records.lift_hold(hold_id, reason,
                           auth.caller_project(p_project_id, ARRAY['project_admin']))
$$;
COMMENT ON FUNCTION api.lift_legal_hold(bigint, text, uuid) IS
  'project_admin: lift one of the project''s legal holds, saying why.';

-- ======================================================================= erasure
DROP FUNCTION IF EXISTS api.link_subjects(jsonb, uuid);
CREATE FUNCTION api.link_subjects(links jsonb, p_project_id uuid DEFAULT NULL) RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT records.link_subjects(auth.caller_project(p_project_id, ARRAY['project_admin']),
                               links)
$$;
COMMENT ON FUNCTION api.link_subjects(jsonb, uuid) IS
  'project_admin: link subject hashes to tracks, [{"source", "track_id", "subject"}]: '
  'api.erase_subject(subject => …) then erases every track linked to one. All or nothing.';

DROP FUNCTION IF EXISTS api.erase_subject(text, text, text, text, uuid);
CREATE FUNCTION api.erase_subject(reason text, source text DEFAULT NULL,
                                  track_id text DEFAULT NULL, subject text DEFAULT NULL,
                                  p_project_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project uuid := auth.caller_project(p_project_id, ARRAY['project_admin']);
  v_stone records.tombstones;
  v_job bigint;
BEGIN
  v_stone := records.request_erasure(v_project, source, track_id, subject, reason);
  v_job := jobs.enqueue(v_project, 'erase_subject',
                        jsonb_build_object('tombstone_id', v_stone.tombstone_id));
  PERFORM set_config('secinf.erasing', 'on', true);
  UPDATE records.tombstones t SET job_id = v_job WHERE t.tombstone_id = v_stone.tombstone_id;
  PERFORM set_config('secinf.erasing', 'off', true);
  RETURN jsonb_build_object('tombstone_id', v_stone.tombstone_id, 'job_id', v_job,
                            'status', v_stone.status, 'tracks', v_stone.tracks);
END
$$;
COMMENT ON FUNCTION api.erase_subject(text, text, text, text, uuid) IS
  'project_admin: erase one actor (source + track_id, or every track linked to subject) '
  'from points, features, candidates, events and unpublished datasets; published versions '
  'holding it are marked superseded. Runs as job job_id (GET /jobs?job_id=eq.…); the '
  'tombstone (api.tombstones) records what went. HTTP 423 under a legal hold.';

DROP FUNCTION IF EXISTS api.tombstones(integer, uuid);
CREATE FUNCTION api.tombstones(p_limit integer DEFAULT 100, p_project_id uuid DEFAULT NULL)
RETURNS TABLE (tombstone_id bigint, subject_kind text, subject text, tracks jsonb,
               reason text, requested_by text, requested_at timestamptz, status text,
               job_id bigint, counts jsonb, versions_superseded jsonb,
               versions_deleted integer, finished_at timestamptz, keep_until timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT t.tombstone_id, t.subject_kind, t.subject, t.tracks, t.reason, t.requested_by,
         t.requested_at, t.status, t.job_id, t.counts, t.versions_superseded,
         jsonb_array_length(t.versions_deleted), t.finished_at, t.keep_until
  FROM records.list_tombstones(auth.caller_project(p_project_id, ARRAY['project_admin']),
                               least(greatest(p_limit, 1), 1000)) t
$$;
COMMENT ON FUNCTION api.tombstones(integer, uuid) IS
  'project_admin: the project''s erasures, newest first: what was asked, by whom and why, '
  'what it deleted per table and which dataset versions it superseded. Never the data.';
