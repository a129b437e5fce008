-- The api schema, events: the verified events of the caller's projects as a view, and
-- query_events, a filtered walk over them with keyset pagination (docs/api.md).
--
-- Order: (start_ts, event_id), unique and stable. Each row carries `cursor`, an opaque
-- token of its (start_ts, event_id); passing the last row's cursor as p_after returns the
-- rows after it. Rows inserted later with a start_ts after the cursor appear on later
-- pages; nothing is repeated or skipped. Page size: p_limit, default 100, at most 1000 —
-- a larger p_limit is an error (never silently clamped: a short page would look like the
-- last one).

-- ======================================================================= cursors
-- The opaque cursor of an event: base64url of 'e1:<start_ts in µs since epoch>:<event_id>'.
CREATE OR REPLACE FUNCTION events.encode_cursor(p_start timestamptz, p_event_id bigint)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT rtrim(translate(encode(convert_to(
           format('e1:%s:%s', (extract(epoch FROM p_start) * 1000000)::bigint, p_event_id),
           'UTF8'), 'base64'), '+/', '-_'), '=')
$$;

-- The (start_ts, event_id) a cursor names; a malformed cursor is a clear 400.
CREATE OR REPLACE FUNCTION events.decode_cursor(p_cursor text,
                                                OUT start_ts timestamptz, OUT event_id bigint)
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_b64 text := translate(p_cursor, '-_', '+/');
  v_text text;
  v_parts text[];
BEGIN
  IF p_cursor !~ '^[A-Za-z0-9_-]{4,80}$' THEN
    v_text := NULL;
  ELSE
    v_b64 := v_b64 || repeat('=', (4 - length(v_b64) % 4) % 4);
    BEGIN
      v_text := convert_from(decode(v_b64, 'base64'), 'UTF8');
    EXCEPTION WHEN invalid_parameter_value OR character_not_in_repertoire
                   OR untranslatable_character THEN
      v_text := NULL;
    END;
  END IF;
  v_parts := regexp_match(v_text, '^e1:(-?[0-9]{1,18}):([0-9]{1,18})$');
  IF v_parts IS NULL THEN
    RAISE EXCEPTION 'invalid cursor "%"', left(p_cursor, 80) USING ERRCODE = '22023',
      HINT = 'Pass the cursor of the last row of the previous page, unchanged, as p_after.';
  END IF;
  start_ts := timestamptz 'epoch' + v_parts[1]::bigint * interval '1 microsecond';
  event_id := v_parts[2]::bigint;
END
$$;

-- ======================================================================= events
DROP VIEW IF EXISTS api.events;
CREATE VIEW api.events WITH (security_invoker = true) AS
SELECT e.event_id, e.project_id, e.source_id, s.name AS source_name, e.type, e.actors,
       e.zone, e.route, e.trigger, e.latency_s, e.start_ts, e.end_ts,
       extract(epoch FROM e.end_ts - e.start_ts)::double precision AS duration_s,
       e.confidence,
       e.source AS verification,  -- rule | model | human
       e.verified_by, e.candidate_id, e.ontology_version, e.model_version, e.created_at,
       e.updated_at
FROM events.events e
JOIN ingest.sources s ON s.source_id = e.source_id
-- A reviewer owing a blind second opinion does not see the first decision's event.
WHERE (e.candidate_id = ANY ((SELECT review.blind_candidates())::bigint[])) IS NOT TRUE;
COMMENT ON VIEW api.events IS
  'Verified events of the caller''s projects (one per accepted candidate). For filtered, '
  'paginated reads use POST /rpc/query_events. Hidden from a reviewer while they owe a '
  'blind second opinion on the candidate.';
COMMENT ON COLUMN api.events.actors IS
  'The event''s actors as {role: track_id}, track ids as written in the ingested file.';
COMMENT ON COLUMN api.events.verification IS
  'Who verified the event: human (a reviewer accepted it), model or rule (auto-accepted '
  'above the project''s thresholds).';
COMMENT ON COLUMN api.events.verified_by IS
  'The reviewer (human), the model version (model) or the rule name (rule).';
COMMENT ON COLUMN api.events.confidence IS 'Confidence in [0, 1].';

-- The page-size cap of query_events (one place: the function and the docs say 1000).
CREATE OR REPLACE FUNCTION events.page_cap() RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 1000 $$;

DROP FUNCTION IF EXISTS api.query_events(text[], timestamptz, timestamptz, bigint[], text[],
                                         double precision, text[], text, integer);
-- Events of the caller's projects, filtered, in (start_ts, event_id) order, one page.
CREATE FUNCTION api.query_events(
  p_types text[] DEFAULT NULL,
  p_from timestamptz DEFAULT NULL,
  p_to timestamptz DEFAULT NULL,
  p_source_ids bigint[] DEFAULT NULL,
  p_actors text[] DEFAULT NULL,
  p_min_confidence double precision DEFAULT NULL,
  p_verification text[] DEFAULT NULL,
  p_after text DEFAULT NULL,
  p_limit integer DEFAULT 100
) RETURNS TABLE (
  event_id bigint, project_id uuid, source_id bigint, source_name text, type text,
  actors jsonb, zone text, route text, trigger text, latency_s double precision,
  start_ts timestamptz, end_ts timestamptz, duration_s double precision,
  confidence double precision, verification text, verified_by text, candidate_id bigint,
  ontology_version bigint, model_version text, created_at timestamptz, cursor text
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_after_ts timestamptz := '-infinity';
  v_after_id bigint := 0;
  v_bad text[];
  v_where text[];
  v_blind bigint[] := review.blind_candidates();
BEGIN
  IF p_limit IS NULL OR p_limit < 1 OR p_limit > events.page_cap() THEN
    RAISE EXCEPTION 'p_limit % is outside 1..%', coalesce(p_limit::text, 'NULL'),
      events.page_cap() USING ERRCODE = '22023',
      HINT = format('Ask for at most %s rows per page and follow the cursor of the last row.',
                    events.page_cap());
  END IF;
  IF p_from IS NOT NULL AND p_to IS NOT NULL AND p_to <= p_from THEN
    RAISE EXCEPTION 'p_to (%) is not after p_from (%)', p_to, p_from USING ERRCODE = '22023',
      HINT = 'The time range is start_ts in [p_from, p_to).';
  END IF;
  IF p_min_confidence IS NOT NULL AND NOT (p_min_confidence BETWEEN 0 AND 1) THEN
    RAISE EXCEPTION 'p_min_confidence % is outside [0, 1]', p_min_confidence
      USING ERRCODE = '22023';
  END IF;
  v_bad := ARRAY(SELECT v FROM unnest(p_verification) v
                 WHERE v IS NULL OR v NOT IN ('rule', 'model', 'human'));
  IF cardinality(v_bad) > 0 THEN
    RAISE EXCEPTION 'unknown verification %', array_to_string(v_bad, ', ', 'NULL')
      USING ERRCODE = '22023', HINT = 'Use rule, model and/or human.';
  END IF;
  IF p_after IS NOT NULL THEN
    SELECT c.start_ts, c.event_id INTO v_after_ts, v_after_id
    FROM events.decode_cursor(p_after) c;
  END IF;
  -- NULL or empty array filters match everything.
  p_types := nullif(p_types, '{}');
  p_source_ids := nullif(p_source_ids, '{}');
  p_actors := nullif(p_actors, '{}');
  p_verification := nullif(p_verification, '{}');

  -- Only the filters given, so each call is planned for them (a rare type can use
  -- events_project_type_ts_idx, an actor the GIN index); values are parameters ($n).
  v_where := array_remove(ARRAY[
    CASE WHEN p_from IS NOT NULL THEN 'ev.start_ts >= $3' END,
    CASE WHEN p_to IS NOT NULL THEN 'ev.start_ts < $4' END,
    CASE WHEN p_types IS NOT NULL THEN 'ev.type = ANY ($5)' END,
    CASE WHEN p_source_ids IS NOT NULL THEN 'ev.source_id = ANY ($6)' END,
    CASE WHEN p_actors IS NOT NULL THEN 'jsonb_path_query_array(ev.actors, ''$.*'') ?| $7' END,
    CASE WHEN p_min_confidence IS NOT NULL THEN 'ev.confidence >= $8' END,
    CASE WHEN p_verification IS NOT NULL THEN 'ev.source = ANY ($9)' END,
    -- events of candidates the caller judges blind (review.blind_candidates)
    CASE WHEN cardinality(v_blind) > 0 THEN '(ev.candidate_id = ANY ($11)) IS NOT TRUE' END],
    NULL);
  -- One ordered index walk per project (events_project_ts_idx), merged: the first rows of
  -- each project after the cursor, then the first p_limit of those.
  RETURN QUERY EXECUTE format($q$
    SELECT e.event_id, e.project_id, e.source_id, s.name, e.type, e.actors, e.zone, e.route,
           e.trigger, e.latency_s, e.start_ts, e.end_ts,
           extract(epoch FROM e.end_ts - e.start_ts)::double precision, e.confidence,
           e.source, e.verified_by, e.candidate_id, e.ontology_version, e.model_version,
           e.created_at, events.encode_cursor(e.start_ts, e.event_id)
    FROM unnest(auth.project_ids()) AS p(pid)
    CROSS JOIN LATERAL (
      SELECT ev.* FROM events.events ev
      WHERE ev.project_id = p.pid AND (ev.start_ts, ev.event_id) > ($1, $2) %s
      ORDER BY ev.start_ts, ev.event_id
      LIMIT $10
    ) e
    JOIN ingest.sources s ON s.source_id = e.source_id
    ORDER BY e.start_ts, e.event_id
    LIMIT $10$q$, (SELECT string_agg(' AND ' || w, '') FROM unnest(v_where) w))
  USING v_after_ts, v_after_id, p_from, p_to, p_types, p_source_ids, p_actors,
        p_min_confidence, p_verification, p_limit, v_blind;
END
$$;
COMMENT ON FUNCTION api.query_events(text[], timestamptz, timestamptz, bigint[], text[],
                                     double precision, text[], text, integer) IS
  'Events of the caller''s projects, filtered by types, start time in [p_from, p_to), '
  'sources, actors (any of these track ids), minimum confidence and verification '
  '(rule|model|human), ordered by (start_ts, event_id). Keyset pagination: pass the last '
  'row''s cursor as p_after. p_limit: 1..1000 (default 100); more is a 400 error.';
