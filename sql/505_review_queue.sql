-- The review queue: candidates to verify, filtered and ordered three ways, one page at a
-- time with an opaque keyset cursor; counts per filter; the list of rejection reasons.
--
-- The page query is generated per call with only the filters in use and every value as a
-- literal, so the planner sees the real query. It runs as the caller (RLS scopes it). Per
-- project and status it is one ordered index range scan on a queue index (0008:
-- candidates_queue_*_idx, led by project_id, status) that stops after one page; the
-- branches' pages are then merged (a sort of at most page × branches rows), so a page
-- costs the same at any depth of the queue. (A flat UNION ALL would not do: Postgres 15
-- plans its expression sort keys as placeholders that no index matches.)

-- ---------------------------------------------------------------- ordering
-- The sort key of each ordering as SQL over candidates alias c, and its direction.
CREATE OR REPLACE FUNCTION review.queue_key(p_order text, OUT key_sql text, OUT key_type text,
                                            OUT descending boolean)
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  CASE p_order
    WHEN 'uncertain' THEN  -- nearest to 0.5 first
      key_sql := 'c.queue_uncertainty';
      key_type := 'double precision';
      descending := false;
    WHEN 'newest' THEN     -- latest start first
      key_sql := 'c.start_ts';
      key_type := 'timestamptz';
      descending := true;
    WHEN 'score' THEN      -- highest score first
      key_sql := 'c.queue_score';
      key_type := 'double precision';
      descending := true;
    ELSE
      RAISE EXCEPTION 'unknown queue order "%"', p_order USING ERRCODE = '22023',
        HINT = 'Use uncertain, newest or score.';
  END CASE;
END
$$;

-- ---------------------------------------------------------------- filters
-- The WHERE conditions over alias c for the filters given (NULL filters add nothing),
-- statuses excluded: the callers handle those.
CREATE OR REPLACE FUNCTION review.queue_filters(
  p_types text[], p_source_ids bigint[], p_min_score double precision,
  p_max_score double precision, p_from timestamptz, p_to timestamptz
) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT concat_ws(' AND ', 'true',
    CASE WHEN p_types IS NOT NULL THEN format('c.type = ANY (%L::text[])', p_types) END,
    CASE WHEN p_source_ids IS NOT NULL
         THEN format('c.source_id = ANY (%L::bigint[])', p_source_ids) END,
    CASE WHEN p_min_score IS NOT NULL
         THEN format('c.queue_score >= %L::double precision',
                     p_min_score) END,
    CASE WHEN p_max_score IS NOT NULL
         THEN format('c.queue_score <= %L::double precision',
                     p_max_score) END,
    CASE WHEN p_from IS NOT NULL THEN format('c.start_ts >= %L::timestamptz', p_from) END,
    CASE WHEN p_to IS NOT NULL THEN format('c.start_ts < %L::timestamptz', p_to) END)
$$;

-- ' AND …' leaving out the candidates the caller judges blind (review.blind_candidates:
-- their first decision shows in the status), or '' when there are none.
CREATE OR REPLACE FUNCTION review.blind_filter() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN cardinality(b) > 0
              THEN format(' AND NOT (c.candidate_id = ANY (%L::bigint[]))', b) ELSE '' END
  FROM (SELECT review.blind_candidates() AS b) x
$$;

-- The statuses a queue shows: those asked for, else the undecided ones.
CREATE OR REPLACE FUNCTION review.queue_statuses(p_statuses text[]) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_bad text;
BEGIN
  IF p_statuses IS NULL THEN
    RETURN ARRAY['new', 'scored'];
  END IF;
  SELECT s INTO v_bad FROM unnest(p_statuses) s
  WHERE s IS NULL OR s NOT IN ('new', 'scored', 'in_review', 'accepted', 'rejected') LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'unknown candidate status "%"', v_bad USING ERRCODE = '22023',
      HINT = 'Use new, scored, in_review, accepted or rejected.';
  END IF;
  RETURN ARRAY(SELECT DISTINCT s FROM unnest(p_statuses) s ORDER BY 1);
END
$$;

-- ---------------------------------------------------------------- page query
-- The SQL of one queue page for the caller's projects (api.review_queue runs exactly this;
-- tests EXPLAIN it). One branch per (project, status), each an ordered, limited index scan.
CREATE OR REPLACE FUNCTION review.queue_sql(
  p_types text[] DEFAULT NULL, p_source_ids bigint[] DEFAULT NULL,
  p_min_score double precision DEFAULT NULL, p_max_score double precision DEFAULT NULL,
  p_statuses text[] DEFAULT NULL, p_from timestamptz DEFAULT NULL,
  p_to timestamptz DEFAULT NULL, p_order text DEFAULT 'uncertain',
  p_after text DEFAULT NULL, p_limit integer DEFAULT 50
) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- Literals and cursors print the same whatever the caller's session settings.
SET extra_float_digits = 1
SET "DateStyle" = 'ISO, YMD'
SET "TimeZone" = 'UTC'
AS $$
DECLARE
  v_order text := coalesce(p_order, 'uncertain');
  k record := review.queue_key(v_order);
  v_dir text := CASE WHEN k.descending THEN 'DESC' ELSE 'ASC' END;
  v_filters text := review.queue_filters(p_types, p_source_ids, p_min_score, p_max_score,
                                         p_from, p_to) || review.blind_filter();
  v_limit integer := least(greatest(coalesce(p_limit, 50), 1), 200);
  -- A page row, as every branch (and the empty page) selects it.
  v_select text := format(
    'SELECT c.candidate_id, c.source_id, c.type, c.actors, c.zone, c.route, c.trigger,'
    ' c.start_ts, c.end_ts, c.rule_score, c.model_score, c.status, %s AS sort_key'
    ' FROM candidates.candidates c', k.key_sql);
  v_after record;
  v_keyset text := 'true';
  v_branches text[];
BEGIN
  IF p_after IS NOT NULL THEN
    v_after := review.cursor_decode(p_after, v_order);
    BEGIN
      v_keyset := format('(%s, c.candidate_id) %s (%L::%s, %s::bigint)', k.key_sql,
                         CASE WHEN k.descending THEN '<' ELSE '>' END,
                         CASE k.key_type WHEN 'timestamptz' THEN v_after.key::timestamptz::text
                                         ELSE v_after.key::double precision::text END,
                         k.key_type, v_after.candidate_id);
    EXCEPTION WHEN data_exception THEN
      RAISE EXCEPTION 'invalid queue cursor "%"', p_after USING ERRCODE = '22023',
        HINT = 'Pass a cursor exactly as a previous page returned it, or none for the first page.';
    END;
  END IF;
  -- One branch per project and status, so each is an equality prefix of a queue index.
  SELECT array_agg(format(
           '(%s WHERE c.project_id = %L::uuid AND c.status = %L AND %s AND %s'
           ' ORDER BY %s %s, c.candidate_id %s LIMIT %s)',
           v_select, p.id, s.status, v_filters, v_keyset, k.key_sql, v_dir, v_dir, v_limit)
           ORDER BY p.id, s.status)
  INTO v_branches
  FROM unnest(auth.project_ids()) p (id)
  CROSS JOIN unnest(review.queue_statuses(p_statuses)) s (status);
  IF v_branches IS NULL THEN  -- no project: an empty page of the right shape
    v_branches := ARRAY[v_select || ' WHERE false'];
  END IF;
  RETURN format(
    'SELECT q.candidate_id, q.source_id, s.name AS source_name, q.type, q.actors, q.zone,'
    ' q.route, q.trigger, q.start_ts, q.end_ts, q.rule_score, q.model_score,'
    ' coalesce(q.model_score, q.rule_score) AS score, q.status,'
    ' review.cursor_encode(%L, q.sort_key::text, q.candidate_id) AS cursor'
    ' FROM (SELECT u.* FROM (%s) u ORDER BY u.sort_key %s, u.candidate_id %s LIMIT %s) q'
    ' JOIN ingest.sources s ON s.source_id = q.source_id'
    ' ORDER BY q.sort_key %s, q.candidate_id %s',
    v_order, array_to_string(v_branches, ' UNION ALL '), v_dir, v_dir, v_limit, v_dir, v_dir);
END
$$;

-- ---------------------------------------------------------------- api: queue
CREATE OR REPLACE FUNCTION api.review_queue(
  p_types text[] DEFAULT NULL, p_source_ids bigint[] DEFAULT NULL,
  p_min_score double precision DEFAULT NULL, p_max_score double precision DEFAULT NULL,
  p_statuses text[] DEFAULT NULL, p_from timestamptz DEFAULT NULL,
  p_to timestamptz DEFAULT NULL, p_order text DEFAULT 'uncertain',
  p_after text DEFAULT NULL, p_limit integer DEFAULT 50
) RETURNS TABLE (candidate_id bigint, source_id bigint, source_name text, type text,
                 actors jsonb, zone text, route text, trigger text, start_ts timestamptz,
                 end_ts timestamptz, rule_score double precision,
                 model_score double precision, score double precision, status text,
                 cursor text)
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1  -- the cursors print their keys exactly
SET "DateStyle" = 'ISO, YMD'
SET "TimeZone" = 'UTC'
AS $$
BEGIN
  RETURN QUERY EXECUTE review.queue_sql(p_types, p_source_ids, p_min_score, p_max_score,
                                        p_statuses, p_from, p_to, p_order, p_after, p_limit);
END
$$;
COMMENT ON FUNCTION api.review_queue(text[], bigint[], double precision, double precision,
                                     text[], timestamptz, timestamptz, text, text, integer) IS
  'One page of candidates to review in the caller''s project. Filters: types, source ids, '
  'score range (score = model score, else rule score), statuses (default: undecided, i.e. '
  'new and scored), start time in [p_from, p_to). p_order: uncertain (score nearest 0.5 '
  'first), newest (latest start first) or score (highest first); ties by candidate id. '
  'Pass the last row''s cursor as p_after for the next page; p_limit is capped at 200.';

-- ---------------------------------------------------------------- api: counts
CREATE OR REPLACE FUNCTION api.review_counts(
  p_types text[] DEFAULT NULL, p_source_ids bigint[] DEFAULT NULL,
  p_min_score double precision DEFAULT NULL, p_max_score double precision DEFAULT NULL,
  p_statuses text[] DEFAULT NULL, p_from timestamptz DEFAULT NULL,
  p_to timestamptz DEFAULT NULL
) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET extra_float_digits = 1
SET "DateStyle" = 'ISO, YMD'
SET "TimeZone" = 'UTC'
AS $$
DECLARE
  v_statuses text[] := review.queue_statuses(p_statuses);
  v_result jsonb;
BEGIN
  -- One pass over the rows that match the score and time filters (an index-only scan of
  -- candidates_review_counts_idx), grouped by type, status and source; each facet is then
  -- summed from those few groups with every other filter applied and its own left out (so
  -- the UI can show what a click adds).
  EXECUTE format($q$
    WITH g AS (
      SELECT c.type, c.status, c.source_id, count(*) AS n
      FROM candidates.candidates c
      WHERE c.project_id = ANY (auth.project_ids()) AND %s%s
      GROUP BY c.type, c.status, c.source_id
    ), m AS (
      SELECT g.type, g.status, g.source_id, g.n,
             %s AS type_ok, g.status = ANY (%L::text[]) AS status_ok, %s AS source_ok
      FROM g
    )
    SELECT jsonb_build_object(
      'total', (SELECT coalesce(sum(m.n), 0) FROM m
                WHERE m.type_ok AND m.status_ok AND m.source_ok),
      'by_type', (SELECT coalesce(jsonb_object_agg(x.type, x.n ORDER BY x.type), '{}')
                  FROM (SELECT m.type, sum(m.n) AS n FROM m WHERE m.status_ok AND m.source_ok
                        GROUP BY m.type) x),
      'by_status', (SELECT coalesce(jsonb_object_agg(x.status, x.n ORDER BY x.status), '{}')
                    FROM (SELECT m.status, sum(m.n) AS n FROM m WHERE m.type_ok AND m.source_ok
                          GROUP BY m.status) x),
      'by_source', (SELECT coalesce(jsonb_object_agg(x.source_id, x.n ORDER BY x.source_id), '{}')
                    FROM (SELECT m.source_id, sum(m.n) AS n FROM m
                          WHERE m.type_ok AND m.status_ok GROUP BY m.source_id) x),
      'source_names', (SELECT coalesce(jsonb_object_agg(s.source_id, s.name ORDER BY s.source_id),
                                       '{}')
                       FROM ingest.sources s
                       WHERE s.source_id IN (SELECT m.source_id FROM m
                                             WHERE m.type_ok AND m.status_ok)))
    $q$,
    review.queue_filters(NULL, NULL, p_min_score, p_max_score, p_from, p_to),
    review.blind_filter(),
    CASE WHEN p_types IS NULL THEN 'true' ELSE format('g.type = ANY (%L::text[])', p_types) END,
    v_statuses,
    CASE WHEN p_source_ids IS NULL THEN 'true'
         ELSE format('g.source_id = ANY (%L::bigint[])', p_source_ids) END)
  INTO v_result;
  RETURN v_result;
END
$$;
COMMENT ON FUNCTION api.review_counts(text[], bigint[], double precision, double precision,
                                      text[], timestamptz, timestamptz) IS
  'Counts for the review queue''s filters (same arguments as review_queue): total matching '
  'candidates, and facets by_type, by_status and by_source (keyed by source id; '
  'source_names maps ids to names), each counted with all other filters applied.';

-- ---------------------------------------------------------------- api: reasons
CREATE OR REPLACE VIEW api.review_reasons WITH (security_invoker = true) AS
  SELECT r.code, r.label, r.position FROM review.reasons r;
COMMENT ON VIEW api.review_reasons IS
  'The reasons a reviewer may give when rejecting a candidate (code, label, display order).';
