-- Retention (migration 0028): how long each category of a project's data is kept (the
-- project's own setting, else its plan's), applied every night by pg_cron
-- (`CALL records.run_retention()`, sql/940_cron_records.sql) or by hand (`secinf retention
-- run`). Legal holds (sql/770_records_holds.sql) are never touched.
--
-- How a run works, cheapest first, each unit its own transaction:
--   1. Whole chunks of the hypertables (track points, poses, kinematics) that every source
--      in them has let expire, with no hold over them, go by drop_chunks: no row is read.
--   2. Everything else that expired is deleted in batches of p_batch rows (by ctid within
--      one chunk or table): the expired sources' rows of a chunk other sources still keep,
--      the plain feature tables, candidates, events.
--   3. Dataset versions past their time lose their stored objects (a queue job, which
--      reaches the object store); the version rows stay as the record.
--   4. Whole months of the audit log past every project's audit retention are dropped, the
--      chain's last link kept in audit.anchors.
--   5. Tombstones older than their 7 years go.
-- Every run is a row of records.retention_runs and every unit one of retention_steps.

-- ======================================================================= settings
-- The retention of each category for project p: the project's own setting, else its plan's
-- (keep NULL: kept until someone sets one). source: 'project' | 'plan' | 'none'.
CREATE OR REPLACE FUNCTION records.retention_of(p_project uuid)
RETURNS TABLE (category text, keep interval, source text, set_by text, set_at timestamptz,
               reason text, description text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT c.category,
         CASE WHEN r.project_id IS NOT NULL THEN r.keep ELSE pr.keep END,
         CASE WHEN r.project_id IS NOT NULL THEN 'project'
              WHEN pr.plan_id IS NOT NULL AND pr.keep IS NOT NULL THEN 'plan' ELSE 'none' END,
         r.set_by, r.set_at, r.reason, c.description
  FROM records.categories c
  JOIN core.projects p ON p.project_id = p_project
  JOIN core.organizations o ON o.org_id = p.org_id
  LEFT JOIN records.plan_retention pr ON pr.plan_id = o.plan_id AND pr.category = c.category
  LEFT JOIN records.project_retention r ON r.project_id = p.project_id
                                       AND r.category = c.category
  ORDER BY c.position
$$;

-- The cut-off of one category for project p at p_at: rows older than it expire (NULL:
-- nothing expires).
CREATE OR REPLACE FUNCTION records.cutoff(p_project uuid, p_category text,
                                         p_at timestamptz DEFAULT now())
RETURNS timestamptz
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT p_at - r.keep FROM records.retention_of(p_project) r WHERE r.category = p_category $$;

-- Set (or with p_clear, return to the plan's) a project's retention of a category;
-- p_keep NULL keeps forever. project_admin of p or an operator; audited with before/after.
CREATE OR REPLACE FUNCTION records.set_retention(p_project uuid, p_category text,
                                                p_keep interval, p_reason text,
                                                p_clear boolean DEFAULT false)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_before record;
  v_after record;
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  IF NOT EXISTS (SELECT FROM records.categories c WHERE c.category = p_category) THEN
    RAISE EXCEPTION 'unknown retention category "%"', p_category USING ERRCODE = '22023',
      HINT = 'Categories: ' || (SELECT string_agg(category, ', ' ORDER BY position)
                                FROM records.categories) || '.';
  END IF;
  IF p_keep IS NOT NULL AND p_keep < interval '1 day' THEN
    RAISE EXCEPTION 'keep data at least 1 day (got %)', p_keep USING ERRCODE = '22023',
      HINT = 'Give days (90d), months (6mo) or years (2y); "forever" keeps it.';
  END IF;
  IF p_reason IS NULL OR length(btrim(p_reason)) NOT BETWEEN 3 AND 500 THEN
    RAISE EXCEPTION 'say why the retention changes (reason, 3-500 characters)'
      USING ERRCODE = '22023';
  END IF;
  SELECT * INTO v_before FROM records.retention_of(p_project) r WHERE r.category = p_category;
  IF p_clear THEN
    DELETE FROM records.project_retention r
    WHERE r.project_id = p_project AND r.category = p_category;
  ELSE
    INSERT INTO records.project_retention AS r (project_id, category, keep, set_by, reason)
    VALUES (p_project, p_category, p_keep, auth.subject(), btrim(p_reason))
    ON CONFLICT (project_id, category) DO UPDATE
      SET keep = excluded.keep, set_by = excluded.set_by, reason = excluded.reason,
          set_at = now();
  END IF;
  SELECT * INTO v_after FROM records.retention_of(p_project) r WHERE r.category = p_category;
  PERFORM audit.record(p_project, CASE WHEN p_clear THEN 'retention.clear'
                                       ELSE 'retention.set' END, p_category,
                       jsonb_build_object('before', v_before.keep::text,
                                          'before_source', v_before.source,
                                          'keep', v_after.keep::text, 'source', v_after.source,
                                          'reason', btrim(p_reason)));
  RETURN jsonb_build_object('category', p_category, 'keep', v_after.keep::text,
                            'source', v_after.source, 'before', v_before.keep::text);
END
$$;

-- ======================================================================= runs
-- Start a run (records.run_retention holds the one-run-at-a-time lock). A run left
-- 'running' by a session that ended is marked interrupted.
CREATE OR REPLACE FUNCTION records.retention_begin(p_by text) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_run bigint;
BEGIN
  UPDATE records.retention_runs r
  SET status = 'error', finished_at = clock_timestamp(),
      error = 'interrupted: the run''s session ended before it finished (see the server log)'
  WHERE r.status = 'running';
  INSERT INTO records.retention_runs (started_by) VALUES (p_by) RETURNING run_id INTO v_run;
  RETURN v_run;
END
$$;

-- Record one unit of a run (and add its figures to the run).
CREATE OR REPLACE FUNCTION records.retention_record(
  p_run bigint, p_project uuid, p_category text, p_relation text, p_method text,
  p_cutoff timestamptz, p_rows bigint, p_chunks bigint, p_seconds double precision,
  p_details jsonb DEFAULT '{}'
) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH s AS (
    INSERT INTO records.retention_steps (run_id, step, project_id, category, relation, method,
                                         cutoff, rows, chunks, seconds, details)
    SELECT p_run, coalesce(max(x.step), 0) + 1, p_project, p_category, p_relation, p_method,
           p_cutoff, p_rows, p_chunks, p_seconds, coalesce(p_details, '{}')
    FROM records.retention_steps x WHERE x.run_id = p_run
    RETURNING 1)
  UPDATE records.retention_runs r
  SET rows = r.rows + p_rows, chunks = r.chunks + p_chunks,
      held = r.held + (p_method = 'held' OR coalesce((p_details ->> 'held')::boolean, false))::int
  FROM s
  WHERE r.run_id = p_run
$$;

CREATE OR REPLACE FUNCTION records.retention_finish(p_run bigint) RETURNS jsonb
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  UPDATE records.retention_runs r
  SET status = 'ok', finished_at = clock_timestamp()
  WHERE r.run_id = p_run
  RETURNING jsonb_build_object('run_id', r.run_id, 'rows', r.rows, 'chunks', r.chunks,
                               'held', r.held, 'seconds',
                               round(extract(epoch FROM r.finished_at - r.started_at)::numeric, 3),
                               'steps', (SELECT count(*) FROM records.retention_steps s
                                         WHERE s.run_id = r.run_id))
$$;

-- ======================================================================= 1. whole chunks
-- The hypertables retention works on, with their category and time column.
CREATE OR REPLACE FUNCTION records.retention_hypertables()
RETURNS TABLE (relation regclass, category text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  VALUES ('ingest.track_points'::regclass, 'track_points'),
         ('ingest.poses'::regclass, 'track_points'),
         ('features.kinematics'::regclass, 'features')
$$;

-- The sources with rows in one chunk: a loose index scan (each next source_id by the
-- chunk's index that starts with it), so a chunk of millions of rows costs a few probes.
CREATE OR REPLACE FUNCTION records.chunk_sources(p_chunk regclass) RETURNS bigint[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v bigint[];
BEGIN
  EXECUTE format(
    'WITH RECURSIVE s AS ((SELECT source_id FROM %1$s ORDER BY source_id LIMIT 1) '
    'UNION ALL SELECT (SELECT c.source_id FROM %1$s c WHERE c.source_id > s.source_id '
    'ORDER BY c.source_id LIMIT 1) FROM s WHERE s.source_id IS NOT NULL) '
    'SELECT coalesce(array_agg(source_id), ''{}'') FROM s WHERE source_id IS NOT NULL',
    p_chunk) INTO v;
  RETURN v;
END
$$;

-- The 'now' of a run: p_at, or now(). Only an administrator may run retention as of a later
-- time (tests and the benchmark): the pipeline's own calls apply the settings as of now, so
-- the rights these functions lend it never reach past what retention allows today.
CREATE OR REPLACE FUNCTION records.run_at(p_at timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_at > now() AND NOT auth.is_admin() THEN
    RAISE EXCEPTION 'only an administrator can run retention as of a later time (%)', p_at
      USING ERRCODE = '42501';
  END IF;
  RETURN coalesce(p_at, now());
END
$$;

-- A chunk of a retention hypertable: its hypertable, category and range (none: raises).
CREATE OR REPLACE FUNCTION records.retention_chunk_of(p_chunk regclass,
                                                     OUT relation regclass, OUT category text,
                                                     OUT range_start timestamptz,
                                                     OUT range_end timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  SELECT h.relation, h.category, c.range_start, c.range_end
    INTO relation, category, range_start, range_end
  FROM records.retention_hypertables() h
  JOIN timescaledb_information.chunks c
    ON format('%I.%I', c.hypertable_schema, c.hypertable_name)::regclass = h.relation
  WHERE format('%I.%I', c.chunk_schema, c.chunk_name)::regclass = p_chunk;
  IF relation IS NULL THEN
    RAISE EXCEPTION '% is not a chunk of a hypertable retention works on', p_chunk
      USING ERRCODE = '22023';
  END IF;
END
$$;

-- The cut-off of one source's rows inside one chunk (NULL: none expired), and the ranges
-- its holds spare.
CREATE OR REPLACE FUNCTION records.chunk_cutoff(p_chunk regclass, p_source bigint,
                                               p_at timestamptz,
                                               OUT cutoff timestamptz, OUT held tstzrange[])
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN x.c > k.range_start THEN least(x.c, k.range_end) END,
         records.held_ranges(s.project_id, s.source_id)
  FROM records.retention_chunk_of(p_chunk) k
  JOIN ingest.sources s ON s.source_id = p_source
  CROSS JOIN LATERAL (SELECT records.cutoff(s.project_id, k.category, records.run_at(p_at))
                        AS c) x
$$;

-- Chunks that have started to expire for some project (their start is before the oldest
-- cut-off of any project of the category): oldest first. p_at: the run's time.
CREATE OR REPLACE FUNCTION records.expiring_chunks(p_at timestamptz)
RETURNS TABLE (relation regclass, category text, chunk regclass, range_start timestamptz,
               range_end timestamptz)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH cut AS (
    SELECT r.category, max(records.run_at(p_at) - r.keep) AS latest
    FROM core.projects p CROSS JOIN LATERAL records.retention_of(p.project_id) r
    WHERE r.keep IS NOT NULL
    GROUP BY r.category)
  SELECT h.relation, h.category, format('%I.%I', c.chunk_schema, c.chunk_name)::regclass,
         c.range_start, c.range_end
  FROM records.retention_hypertables() h
  JOIN cut ON cut.category = h.category
  JOIN timescaledb_information.chunks c
    ON format('%I.%I', c.hypertable_schema, c.hypertable_name)::regclass = h.relation
  WHERE c.range_start < cut.latest
  ORDER BY c.range_start, h.relation::text
$$;

-- One expiring chunk: drop it whole if every source in it has let it expire and no hold
-- covers it; otherwise return what must be deleted row by row: per source that expired
-- part of it, the cut-off inside the chunk and whether holds spare some of it.
-- (The first form took the hypertable, category and range from its caller.)
DROP FUNCTION IF EXISTS records.retention_chunk(bigint, regclass, text, regclass, timestamptz,
                                               timestamptz, timestamptz);
CREATE OR REPLACE FUNCTION records.retention_chunk(p_run bigint, p_chunk regclass,
                                                  p_at timestamptz)
RETURNS TABLE (project_id uuid, source_id bigint, cutoff timestamptz, held boolean)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t0 timestamptz := clock_timestamp();
  k record := records.retention_chunk_of(p_chunk);
  v_whole boolean := true;
  v_dropped bigint;
  v_projects uuid[] := '{}';
  v_sources bigint[] := '{}';
  v_cutoffs timestamptz[] := '{}';
  v_held boolean[] := '{}';
  r record;
BEGIN
  FOR r IN
    SELECT s.source_id, s.project_id, c.cutoff, c.held
    FROM unnest(records.chunk_sources(p_chunk)) AS u (source_id)
    JOIN ingest.sources s ON s.source_id = u.source_id
    CROSS JOIN LATERAL records.chunk_cutoff(p_chunk, s.source_id, p_at) c
  LOOP
    IF r.cutoff IS DISTINCT FROM k.range_end
       OR EXISTS (SELECT FROM unnest(r.held) g
                  WHERE g && tstzrange(k.range_start, k.range_end, '[)')) THEN
      v_whole := false;
    END IF;
    IF r.cutoff IS NOT NULL THEN
      v_projects := v_projects || r.project_id;
      v_sources := v_sources || r.source_id;
      v_cutoffs := v_cutoffs || r.cutoff;
      v_held := v_held || (cardinality(r.held) > 0);
    END IF;
  END LOOP;
  IF v_whole THEN
    -- Every source let it expire (or none is left in it): the chunk goes whole.
    SELECT count(*) INTO v_dropped
    FROM public.drop_chunks(k.relation, older_than => k.range_end,
                            newer_than => k.range_start);
    PERFORM records.retention_record(p_run, NULL, k.category, k.relation::text, 'drop_chunks',
                                     k.range_end, 0, v_dropped,
                                     extract(epoch FROM clock_timestamp() - t0),
                                     jsonb_build_object('chunk', p_chunk::text,
                                                        'range_start', k.range_start,
                                                        'range_end', k.range_end,
                                                        'sources', to_jsonb(v_sources)));
    RETURN;  -- nothing left to delete row by row
  END IF;
  RETURN QUERY
  SELECT u.p, u.s, u.c, u.h FROM unnest(v_projects, v_sources, v_cutoffs, v_held) AS u (p, s, c, h);
END
$$;

-- ======================================================================= 2. batched deletes
-- Delete up to p_batch rows of one relation (a chunk or a plain table) matching p_where
-- (trusted SQL written below, never input), by ctid; returns the rows deleted.
CREATE OR REPLACE FUNCTION records.delete_batch(p_relation regclass, p_where text,
                                               p_batch integer, VARIADIC p_args text[]
                                               DEFAULT '{}')
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n bigint;
BEGIN
  EXECUTE format('DELETE FROM %1$s WHERE ctid = ANY (ARRAY(SELECT ctid FROM %1$s WHERE %2$s '
                 'LIMIT %3$s))', p_relation, p_where, p_batch)
    USING p_args[1], p_args[2], p_args[3], p_args[4];
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- One batch of a source's expired rows in one chunk (a unit of retention_chunk), the
-- cut-off and the holds worked out here, never taken from the caller.
DROP FUNCTION IF EXISTS records.retention_chunk_batch(regclass, bigint, timestamptz, tstzrange[],
                                                     integer);
CREATE OR REPLACE FUNCTION records.retention_chunk_batch(p_chunk regclass, p_source bigint,
                                                        p_at timestamptz, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c record := records.chunk_cutoff(p_chunk, p_source, p_at);
BEGIN
  IF c.cutoff IS NULL THEN
    RETURN 0;
  END IF;
  RETURN records.delete_batch(p_chunk,
           'source_id = $1::bigint AND ts < $2::timestamptz AND NOT (ts <@ ANY ($3::tstzrange[]))',
           p_batch, p_source::text, c.cutoff::text, c.held::text);
END
$$;

-- The plain tables: what expires in them for project p at cut-off c, as a condition on
-- their rows ($1 project, $2 cut-off). start_ts < cut-off is implied by end_ts < cut-off and
-- lets the (project_id, start_ts) indexes find them.
CREATE OR REPLACE FUNCTION records.retention_tables()
RETURNS TABLE (category text, relation regclass, condition text)
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  VALUES
    ('features', 'features.change_points'::regclass,
     'project_id = $1::uuid AND ts < $2::timestamptz AND NOT records.is_held($1::uuid, source_id, ts, ts)'),
    ('features', 'features.zone_presence'::regclass,
     'project_id = $1::uuid AND coalesce(left_at, entered_at) < $2::timestamptz '
     'AND NOT records.is_held($1::uuid, source_id, entered_at, coalesce(left_at, entered_at))'),
    ('events', 'events.events'::regclass,
     'project_id = $1::uuid AND start_ts < $2::timestamptz AND end_ts < $2::timestamptz '
     'AND NOT records.is_held($1::uuid, source_id, start_ts, end_ts)'),
    -- A candidate that became an event stays as long as its event (which references its
    -- decision); its review rows go with it (ON DELETE CASCADE).
    ('candidates', 'candidates.candidates'::regclass,
     'project_id = $1::uuid AND start_ts < $2::timestamptz AND end_ts < $2::timestamptz '
     'AND NOT EXISTS (SELECT FROM events.events e WHERE e.candidate_id = candidates.candidate_id) '
     'AND NOT records.is_held($1::uuid, source_id, start_ts, end_ts)')
$$;

-- The (project, plain table) units of a run: each project's cut-off per table.
DROP FUNCTION IF EXISTS records.retention_units(timestamptz);
CREATE OR REPLACE FUNCTION records.retention_units(p_at timestamptz)
RETURNS TABLE (project_id uuid, category text, relation regclass, cutoff timestamptz,
               held boolean)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT p.project_id, t.category, t.relation, records.run_at(p_at) - r.keep,
         EXISTS (SELECT FROM records.holds h WHERE h.project_id = p.project_id
                 AND h.lifted_at IS NULL)
  FROM core.projects p
  CROSS JOIN LATERAL records.retention_of(p.project_id) r
  JOIN records.retention_tables() t ON t.category = r.category
  JOIN records.categories c ON c.category = t.category
  WHERE r.keep IS NOT NULL
  ORDER BY c.position DESC, p.project_id, t.relation::text  -- events before candidates
$$;

-- One batch of a project's expired rows of one plain table, its condition and cut-off
-- worked out here, never taken from the caller.
DROP FUNCTION IF EXISTS records.retention_table_batch(regclass, text, uuid, timestamptz, integer);
CREATE OR REPLACE FUNCTION records.retention_table_batch(p_relation regclass, p_project uuid,
                                                        p_at timestamptz, p_batch integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t record;
  v_cutoff timestamptz;
BEGIN
  SELECT * INTO t FROM records.retention_tables() x WHERE x.relation = p_relation;
  IF t.relation IS NULL THEN
    RAISE EXCEPTION '% is not a table retention works on', p_relation USING ERRCODE = '22023';
  END IF;
  v_cutoff := records.cutoff(p_project, t.category, records.run_at(p_at));
  IF v_cutoff IS NULL THEN
    RETURN 0;
  END IF;
  RETURN records.delete_batch(p_relation, t.condition, p_batch, p_project::text,
                              v_cutoff::text);
END
$$;

-- ======================================================================= 3. dataset files
-- Versions of project p created before its dataset_files cut-off (as of p_at), published
-- or blocked, not yet expired and not held: marked expired, their objects deleted by one
-- `expire_dataset_files` job per project (the worker reaches the object store). Returns
-- the versions marked.
-- (Its first form took the cut-off from its caller, as p_cutoff.)
DROP FUNCTION IF EXISTS records.expire_datasets(bigint, uuid, timestamptz);
CREATE OR REPLACE FUNCTION records.expire_datasets(p_run bigint, p_project uuid,
                                                  p_at timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p_cutoff timestamptz := records.cutoff(p_project, 'dataset_files', records.run_at(p_at));
  v_ids bigint[];
  v_job bigint;
BEGIN
  IF p_cutoff IS NULL THEN
    RETURN 0;
  END IF;
  WITH x AS (
    INSERT INTO records.expired_versions (version_id, project_id, run_id, storage_path)
    SELECT v.version_id, v.project_id, p_run, v.storage_path
    FROM datasets.versions v
    WHERE v.project_id = p_project AND v.created_at < p_cutoff
      AND v.status IN ('published', 'blocked')
      AND NOT EXISTS (SELECT FROM records.expired_versions e WHERE e.version_id = v.version_id)
      AND NOT records.is_held(p_project, NULL, v.created_at, coalesce(v.published_at, v.created_at))
    RETURNING version_id)
  SELECT array_agg(version_id ORDER BY version_id) INTO v_ids FROM x;
  IF v_ids IS NULL THEN
    RETURN 0;
  END IF;
  v_job := jobs.enqueue(p_project, 'expire_dataset_files',
                        jsonb_build_object('version_ids', to_jsonb(v_ids)));
  UPDATE records.expired_versions e SET job_id = v_job WHERE e.version_id = ANY (v_ids);
  PERFORM audit.record(p_project, 'retention.expire_datasets', 'run ' || p_run,
                       jsonb_build_object('version_ids', to_jsonb(v_ids), 'job_id', v_job));
  RETURN cardinality(v_ids);
END
$$;

-- ======================================================================= 4. audit months
-- Drop whole months of audit.log that every project with rows in them (and the cluster's
-- own rows, kept as long as the longest audit retention of any plan) has let expire, that
-- no hold covers, that are wholly sealed, and whose chain runs on from the last anchor:
-- oldest first, each with its anchor. Returns the months dropped.
CREATE OR REPLACE FUNCTION records.drop_audit_months(p_run bigint, p_at timestamptz)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t0 timestamptz;
  m record;
  v_keep interval;
  v_projects uuid[];
  v_cluster_rows boolean;
  v_stats record;
  v_next bigint;
  v_dropped integer := 0;
  v_cluster interval := (SELECT max(keep) FROM records.plan_retention WHERE category = 'audit');
BEGIN
  p_at := records.run_at(p_at);
  IF EXISTS (SELECT FROM records.plan_retention WHERE category = 'audit' AND keep IS NULL) THEN
    v_cluster := NULL;  -- some plan keeps its audit log forever: so are the cluster's rows
  END IF;
  FOR m IN
    SELECT c.oid::regclass AS part, c.relname,
           (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)')) AS b
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'audit.log'::regclass AND c.relname ~ '^log_[0-9]{4}_[0-9]{2}$'
    ORDER BY c.relname
  LOOP
    t0 := clock_timestamp();
    EXIT WHEN m.b[2]::timestamptz > p_at;
    EXECUTE format('SELECT array_agg(DISTINCT project_id) FILTER (WHERE project_id IS NOT NULL),'
                   ' bool_or(project_id IS NULL) FROM %s', m.part) INTO v_projects, v_cluster_rows;
    -- The longest audit retention among its projects (any forever: keep the month), and
    -- the cluster's for its own rows.
    SELECT CASE WHEN bool_or(r.keep IS NULL) THEN NULL ELSE max(r.keep) END INTO v_keep
    FROM unnest(coalesce(v_projects, '{}')) p (project_id)
    CROSS JOIN LATERAL records.retention_of(p.project_id) r
    WHERE r.category = 'audit';
    IF (v_projects IS NOT NULL AND (v_keep IS NULL OR m.b[2]::timestamptz > p_at - v_keep))
       OR (coalesce(v_cluster_rows, false)
           AND (v_cluster IS NULL OR m.b[2]::timestamptz > p_at - v_cluster)) THEN
      EXIT;  -- months must go in order: the chain is anchored at the last one dropped
    END IF;
    IF EXISTS (SELECT FROM unnest(coalesce(v_projects, '{}')) p (project_id)
               WHERE records.is_held(p.project_id, NULL, m.b[1]::timestamptz,
                                     m.b[2]::timestamptz)) THEN
      PERFORM records.retention_record(p_run, NULL, 'audit', m.part::text, 'held', NULL, 0, 0,
                                       extract(epoch FROM clock_timestamp() - t0),
                                       jsonb_build_object('month', m.relname));
      EXIT;
    END IF;
    EXECUTE format('SELECT count(*) AS n, count(chain_seq) AS sealed, min(chain_seq) AS first, '
                   'max(chain_seq) AS last FROM %s', m.part) INTO v_stats;
    v_next := coalesce((SELECT max(a.last_seq) FROM audit.anchors a), 0) + 1;
    IF v_stats.n = 0 THEN
      EXECUTE format('DROP TABLE %s', m.part);  -- an empty month: nothing to anchor
      v_dropped := v_dropped + 1;
      CONTINUE;
    END IF;
    IF v_stats.sealed < v_stats.n OR v_stats.first <> v_next
       OR EXISTS (SELECT FROM audit.log l WHERE l.chain_seq <= v_stats.last
                  AND l.tableoid <> m.part) THEN
      RAISE WARNING 'audit month % is not wholly sealed or its chain interleaves the next '
                    'month''s: kept for now', m.relname;
      EXIT;
    END IF;
    INSERT INTO audit.anchors (partition, from_at, to_at, rows, first_seq, last_seq, last_hash,
                               run_id, dropped_by)
    SELECT m.relname, m.b[1]::timestamptz, m.b[2]::timestamptz, v_stats.n, v_stats.first,
           v_stats.last, l.row_hash, p_run, session_user::text
    FROM audit.log l WHERE l.chain_seq = v_stats.last;
    EXECUTE format('DROP TABLE %s', m.part);
    v_dropped := v_dropped + 1;
    PERFORM records.retention_record(p_run, NULL, 'audit', m.part::text, 'drop_partition',
                                     m.b[2]::timestamptz, v_stats.n, 0,
                                     extract(epoch FROM clock_timestamp() - t0),
                                     jsonb_build_object('first_seq', v_stats.first,
                                                        'last_seq', v_stats.last));
  END LOOP;
  RETURN v_dropped;
END
$$;

-- ======================================================================= 5. tombstones
CREATE OR REPLACE FUNCTION records.drop_old_tombstones() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  n bigint;
BEGIN
  PERFORM set_config('secinf.tombstone_expiry', 'on', true);
  DELETE FROM records.tombstones t WHERE t.keep_until < now() AND t.status = 'done';
  GET DIAGNOSTICS n = ROW_COUNT;
  PERFORM set_config('secinf.tombstone_expiry', 'off', true);
  RETURN n;
END
$$;

-- ======================================================================= the run
-- One whole run; each unit commits on its own (no SET clause: a procedure with one cannot
-- COMMIT; every name is schema-qualified). Another run going: a NOTICE and nothing.
-- p_at: the run's 'now' (tests and the benchmark move it).
CREATE OR REPLACE PROCEDURE records.run_retention(p_batch integer DEFAULT 50000,
                                                  INOUT p_result jsonb DEFAULT NULL,
                                                  p_at timestamptz DEFAULT NULL)
LANGUAGE plpgsql
AS $$
DECLARE
  v_at timestamptz := coalesce(p_at, pg_catalog.now());
  v_run bigint;
  c record;
  u record;
  w record;
  n bigint;
  v_total bigint;
  t0 timestamptz;
BEGIN
  IF NOT pg_catalog.pg_try_advisory_lock(pg_catalog.hashtextextended('records.retention.run', 0)) THEN
    RAISE NOTICE 'retention: another run is going; this one does nothing';
    p_result := pg_catalog.jsonb_build_object('skipped', 'another run is going');
    RETURN;
  END IF;
  v_run := records.retention_begin(session_user::text);
  COMMIT;
  -- 1. chunks: dropped whole, or their expired sources' rows deleted in batches
  FOR c IN SELECT * FROM records.expiring_chunks(v_at) LOOP
    FOR u IN SELECT * FROM records.retention_chunk(v_run, c.chunk, v_at) LOOP
      t0 := pg_catalog.clock_timestamp();
      v_total := 0;
      LOOP
        n := records.retention_chunk_batch(c.chunk, u.source_id, v_at, p_batch);
        v_total := v_total + n;
        COMMIT;
        EXIT WHEN n < p_batch;
      END LOOP;
      PERFORM records.retention_record(v_run, u.project_id, c.category, c.chunk::text,
                                       'delete', u.cutoff, v_total, 0,
                                       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - t0),
                                       pg_catalog.jsonb_build_object(
                                         'source_id', u.source_id,
                                         'held', u.held));
    END LOOP;
    COMMIT;
  END LOOP;
  -- 2. plain tables, per project
  FOR w IN SELECT * FROM records.retention_units(v_at) LOOP
    t0 := pg_catalog.clock_timestamp();
    v_total := 0;
    LOOP
      n := records.retention_table_batch(w.relation, w.project_id, v_at, p_batch);
      v_total := v_total + n;
      COMMIT;
      EXIT WHEN n < p_batch;
    END LOOP;
    IF v_total > 0 OR w.held THEN
      PERFORM records.retention_record(v_run, w.project_id, w.category, w.relation::text,
                                       'delete', w.cutoff, v_total, 0,
                                       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - t0),
                                       pg_catalog.jsonb_build_object('held', w.held));
    END IF;
    COMMIT;
  END LOOP;
  -- 3. dataset files
  FOR w IN SELECT p.project_id, records.cutoff(p.project_id, 'dataset_files', v_at) AS cutoff
           FROM core.projects p LOOP
    CONTINUE WHEN w.cutoff IS NULL;
    t0 := pg_catalog.clock_timestamp();
    n := records.expire_datasets(v_run, w.project_id, v_at);
    IF n > 0 THEN
      PERFORM records.retention_record(v_run, w.project_id, 'dataset_files', 'datasets.versions',
                                       'expire', w.cutoff, n, 0,
                                       pg_catalog.date_part('epoch', pg_catalog.clock_timestamp() - t0));
    END IF;
    COMMIT;
  END LOOP;
  -- 4. audit months, 5. tombstones
  PERFORM records.drop_audit_months(v_run, v_at);
  COMMIT;
  PERFORM records.drop_old_tombstones();
  p_result := records.retention_finish(v_run);
  COMMIT;
  PERFORM pg_catalog.pg_advisory_unlock(pg_catalog.hashtextextended('records.retention.run', 0));
END
$$;

-- ======================================================================= status
-- The last runs, newest first, for `secinf db status` and the app.
CREATE OR REPLACE VIEW records.retention_history AS
SELECT r.run_id, r.started_at, r.finished_at, r.started_by, r.status, r.error, r.rows,
       r.chunks, r.held,
       extract(epoch FROM coalesce(r.finished_at, clock_timestamp()) - r.started_at) AS seconds,
       (SELECT count(*) FROM records.retention_steps s WHERE s.run_id = r.run_id) AS steps
FROM records.retention_runs r;
