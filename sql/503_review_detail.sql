-- The candidate page in one document: the candidate, its source (video reference, units),
-- the scene's zones and routes, each actor's trajectory over the span plus context, the
-- pair curves (distance, heading difference), decisions so far and any open second
-- opinion. Times `t` are seconds since the source's time_origin (the video clock).

-- Points of a polygon or path as [[x, y], …] (Postgres geometric types print as text).
CREATE OR REPLACE FUNCTION review.geometry_points(p_text text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_array(m[1]::float8, m[2]::float8) ORDER BY n), '[]')
  FROM regexp_matches(p_text, '\(([^(),]+),([^(),]+)\)', 'g') WITH ORDINALITY AS r (m, n)
$$;

-- Absolute difference of two headings in degrees, wrapped to [0, 180].
CREATE OR REPLACE FUNCTION review.heading_diff(a double precision, b double precision)
RETURNS double precision
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT 180.0 - abs(180.0 - (abs(a - b) - 360.0 * floor(abs(a - b) / 360.0))) $$;

-- One track's points over [p_from, p_to]: kinematics (smoothed, with speed and heading),
-- or the raw points where the pipeline has not computed any.
CREATE OR REPLACE FUNCTION review.track_points(p_source bigint, p_track text,
                                               p_origin timestamptz, p_from timestamptz,
                                               p_to timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    (SELECT jsonb_agg(jsonb_build_object(
              't', extract(epoch FROM k.ts - p_origin)::float8, 'frame', k.frame,
              'x', k.x, 'y', k.y, 'speed', k.speed, 'heading', k.heading) ORDER BY k.ts)
     FROM features.kinematics k
     WHERE k.source_id = p_source AND k.track_id = p_track AND k.ts BETWEEN p_from AND p_to),
    (SELECT jsonb_agg(jsonb_build_object(
              't', extract(epoch FROM t.ts - p_origin)::float8, 'frame', t.frame,
              'x', t.x, 'y', t.y, 'speed', NULL, 'heading', NULL) ORDER BY t.ts)
     FROM ingest.track_points t
     WHERE t.source_id = p_source AND t.track_id = p_track AND t.ts BETWEEN p_from AND p_to),
    '[]')
$$;

-- Distance and heading difference of two tracks at the frames both have in [p_from, p_to].
CREATE OR REPLACE FUNCTION review.pair_curve(p_source bigint, p_a text, p_b text,
                                             p_origin timestamptz, p_from timestamptz,
                                             p_to timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(jsonb_agg(jsonb_build_object(
           't', extract(epoch FROM a.ts - p_origin)::float8,
           'distance', sqrt((a.x - b.x) ^ 2 + (a.y - b.y) ^ 2),
           'heading_diff', review.heading_diff(a.heading, b.heading)) ORDER BY a.ts), '[]')
  FROM features.kinematics a
  JOIN features.kinematics b
    ON b.source_id = p_source AND b.track_id = p_b AND b.ts = a.ts
       AND b.ts BETWEEN p_from AND p_to
  WHERE a.source_id = p_source AND a.track_id = p_a AND a.ts BETWEEN p_from AND p_to
$$;

CREATE OR REPLACE FUNCTION api.candidate_detail(p_candidate_id bigint,
                                                p_context_s double precision DEFAULT 5)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_me text := review.person();
  c candidates.candidates := review.candidate_for(p_candidate_id,
                                                  ARRAY['reviewer', 'project_admin', 'analyst']);
  s ingest.sources;
  so review.second_opinions;
  v_ctx interval := make_interval(secs => least(greatest(coalesce(p_context_s, 5), 0), 300));
  v_from timestamptz := c.start_ts - v_ctx;
  v_to timestamptz := c.end_ts + v_ctx;
  v_blind boolean;
  v_life record := review.actors_lifetime(c.source_id, c.actors);
BEGIN
  SELECT * INTO s FROM ingest.sources x WHERE x.source_id = c.source_id;
  SELECT * INTO so FROM review.second_opinions x WHERE x.candidate_id = c.candidate_id;
  -- Someone asked for a second opinion judges blind: no first decision, status or event.
  v_blind := so.candidate_id IS NOT NULL AND so.decision_id IS NULL
             AND so.first_reviewer IS DISTINCT FROM v_me;
  RETURN jsonb_build_object(
    'candidate', jsonb_build_object(
      'candidate_id', c.candidate_id, 'project_id', c.project_id, 'source_id', c.source_id,
      'type', c.type, 'actors', c.actors, 'zone', c.zone, 'route', c.route,
      'trigger', c.trigger, 'latency_s', c.latency_s, 'start_ts', c.start_ts,
      'end_ts', c.end_ts, 'start_s', extract(epoch FROM c.start_ts - s.time_origin)::float8,
      'end_s', extract(epoch FROM c.end_ts - s.time_origin)::float8,
      'rule_name', c.rule_name, 'ontology_version', c.ontology_version,
      'rule_score', c.rule_score, 'model_score', c.model_score,
      'model_version', c.model_version, 'score', coalesce(c.model_score, c.rule_score),
      'status', CASE WHEN v_blind THEN NULL ELSE c.status END, 'evidence', c.evidence,
      'created_at', c.created_at),
    'source', jsonb_build_object(
      'source_id', s.source_id, 'name', s.name, 'fps', s.fps, 'units', s.units,
      'video_uri', s.video_uri, 'time_origin', s.time_origin),
    'window', jsonb_build_object(
      'from_ts', v_from, 'to_ts', v_to, 'context_s', extract(epoch FROM v_ctx)::float8,
      'from_s', extract(epoch FROM v_from - s.time_origin)::float8,
      'to_s', extract(epoch FROM v_to - s.time_origin)::float8),
    'span_limits', jsonb_build_object(
      'from_ts', v_life.from_ts, 'to_ts', v_life.to_ts,
      'from_s', extract(epoch FROM v_life.from_ts - s.time_origin)::float8,
      'to_s', extract(epoch FROM v_life.to_ts - s.time_origin)::float8),
    'zones', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'name', z.name, 'kind', z.kind,
                'polygon', review.geometry_points(z.polygon::text)) ORDER BY z.name), '[]')
              FROM ingest.zones z WHERE z.source_id = c.source_id),
    'routes', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                 'name', r.name, 'from_zone', r.from_zone,
                 'path', review.geometry_points(r.path::text)) ORDER BY r.name), '[]')
               FROM ingest.routes r WHERE r.source_id = c.source_id),
    'actors', (SELECT coalesce(jsonb_object_agg(a.key, jsonb_build_object(
                 'track_id', a.value,
                 'points', review.track_points(c.source_id, a.value, s.time_origin,
                                               v_from, v_to))), '{}')
               FROM jsonb_each_text(c.actors) a),
    'pairs', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'a', a.key, 'b', b.key, 'track_a', a.value, 'track_b', b.value,
                'points', review.pair_curve(c.source_id, a.value, b.value, s.time_origin,
                                            v_from, v_to)) ORDER BY a.key, b.key), '[]')
              FROM jsonb_each_text(c.actors) a
              JOIN jsonb_each_text(c.actors) b ON a.key < b.key AND a.value <> b.value),
    'blind', v_blind,
    'decisions', CASE WHEN v_blind THEN '[]'::jsonb ELSE
      (SELECT coalesce(jsonb_agg(jsonb_build_object(
                'decision_id', d.decision_id, 'reviewer', d.reviewer, 'opinion', d.opinion,
                'kind', d.kind, 'reason', d.reason, 'note', d.note, 'start_ts', d.start_ts,
                'end_ts', d.end_ts, 'adjusted', d.adjusted, 'undoes', d.undoes,
                'decided_at', d.decided_at,
                'live', EXISTS (SELECT FROM review.current r WHERE r.decision_id = d.decision_id)
                        OR EXISTS (SELECT FROM review.second_opinions x
                                   WHERE x.decision_id = d.decision_id))
              ORDER BY d.decided_at, d.decision_id), '[]')
       FROM review.decisions d WHERE d.candidate_id = c.candidate_id) END,
    'event', CASE WHEN v_blind THEN NULL ELSE
      (SELECT jsonb_build_object('event_id', e.event_id, 'source', e.source,
                                 'verified_by', e.verified_by, 'start_ts', e.start_ts,
                                 'end_ts', e.end_ts, 'confidence', e.confidence)
       FROM events.events e WHERE e.candidate_id = c.candidate_id) END,
    'second_opinion', CASE WHEN so.candidate_id IS NULL THEN NULL ELSE jsonb_build_object(
      'requested_at', so.requested_at, 'assigned_to', so.assigned_to,
      'answered', so.decision_id IS NOT NULL, 'answered_at', so.answered_at,
      'for_me', so.decision_id IS NULL AND so.first_reviewer <> v_me
                AND (so.assigned_to IS NULL OR so.assigned_to = v_me)) END);
END
$$;
COMMENT ON FUNCTION api.candidate_detail(bigint, double precision) IS
  'Everything the candidate page shows: candidate (start_s/end_s in seconds of the source''s '
  'clock), source (fps, units, video_uri), window (span ± p_context_s), span_limits (when all '
  'actors are tracked: bounds for an adjusted span), zones and routes ([[x, y], …]), actors '
  '({role: {track_id, points: [{t, frame, x, y, speed, heading}]}}), pairs (distance and '
  'heading difference per shared frame), decisions, event, second_opinion. blind is true '
  'while the caller owes a second opinion on it: decisions, status and event are withheld.';
