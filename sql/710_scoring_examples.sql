-- Training examples (migrations/0017_training_examples.sql): made from reviewers' live
-- decisions here, from imported truth files by workers/scoring/examples.py; versioned with
-- the feature settings they were made under. See docs/scoring.md ("Project models").

-- ======================================================================= settings
INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'train_auto', 'true'),             -- pg_cron queues train_model jobs when due
  (NULL, 'train_min_new_examples', '200')   -- ... once this many examples are new
ON CONFLICT (project_id, key) DO NOTHING;

-- ======================================================================= versions
-- The settings that decide a source's features as the model's windows read them
-- (kinematics smoothing and gaps, zone hysteresis, the pair radius), with the version of
-- the feature definitions (the newest migration that changed what a feature means; bump it
-- in the same change). Two examples made under equal values see the same features.
CREATE OR REPLACE FUNCTION scoring.feature_settings(p_source bigint) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object(
    'definitions', '0016',
    'smoothing_s', pipeline.source_setting_float(p_source, 'smoothing_s'),
    'gap_limit_s', pipeline.source_setting_float(p_source, 'gap_limit_s'),
    'hysteresis_s', pipeline.source_setting_float(p_source, 'hysteresis_s'),
    'hysteresis_frames', pipeline.source_setting_float(p_source, 'hysteresis_frames'),
    'relation_radius_m', pipeline.source_setting_float(p_source, 'relation_radius_m'),
    'relation_radius_px', pipeline.source_setting_float(p_source, 'relation_radius_px'))
$$;

-- What differs between two feature settings, readably: `smoothing_s 1 → 2, …`.
CREATE OR REPLACE FUNCTION scoring.settings_diff(p_old jsonb, p_new jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT string_agg(k || ' ' || coalesce(p_old ->> k, 'unset') || ' → '
                    || coalesce(p_new ->> k, 'unset'), ', ' ORDER BY k)
  FROM (SELECT jsonb_object_keys(p_old) UNION SELECT jsonb_object_keys(p_new)) AS keys (k)
  WHERE (p_old -> k) IS DISTINCT FROM (p_new -> k)
$$;

-- ======================================================================= from reviews
-- Make the project's review examples agree with its live decisions: one example per
-- candidate with a live first decision (accept = true, reject = false), except where an
-- answered second opinion disagrees (people disagreed: no label). An undone decision's
-- example goes; a changed decision updates the label and span (the window stays: it
-- depends on the candidate, not on the decision). Returns {added, updated, removed}.
CREATE OR REPLACE FUNCTION scoring.sync_review_examples(p_project uuid) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_removed bigint;
  v_added   bigint;
  v_updated bigint;
BEGIN
  CREATE TEMPORARY TABLE IF NOT EXISTS review_labels (
    candidate_id bigint PRIMARY KEY, decision_id bigint, label boolean,
    start_ts timestamptz, end_ts timestamptz) ON COMMIT DROP;
  TRUNCATE review_labels;
  INSERT INTO review_labels
  SELECT rc.candidate_id, rc.decision_id, rc.kind = 'accept',
         coalesce(d.start_ts, c.start_ts), coalesce(d.end_ts, c.end_ts)
  FROM review.current rc
  JOIN review.decisions d ON d.decision_id = rc.decision_id
  JOIN candidates.candidates c ON c.candidate_id = rc.candidate_id
  WHERE rc.project_id = p_project
    AND NOT EXISTS (SELECT FROM review.second_opinions so
                    JOIN review.decisions s ON s.decision_id = so.decision_id
                    WHERE so.candidate_id = rc.candidate_id AND s.kind <> rc.kind);

  DELETE FROM scoring.examples e
  WHERE e.project_id = p_project AND e.origin = 'review'
    AND NOT EXISTS (SELECT FROM review_labels l WHERE l.candidate_id = e.candidate_id);
  GET DIAGNOSTICS v_removed = ROW_COUNT;

  UPDATE scoring.examples e
  SET decision_id = l.decision_id, label = l.label, start_ts = l.start_ts, end_ts = l.end_ts,
      span_iou = scoring.span_iou(c.start_ts, c.end_ts, l.start_ts, l.end_ts),
      updated_at = now()
  FROM review_labels l
  JOIN candidates.candidates c ON c.candidate_id = l.candidate_id
  WHERE e.project_id = p_project AND e.origin = 'review' AND e.candidate_id = l.candidate_id
    AND e.decision_id IS DISTINCT FROM l.decision_id;
  GET DIAGNOSTICS v_updated = ROW_COUNT;

  INSERT INTO scoring.examples (project_id, source_id, candidate_id, origin, label,
                                decision_id, type, start_ts, end_ts, span_iou, ontology_id,
                                ontology_version, features)
  SELECT c.project_id, c.source_id, c.candidate_id, 'review', l.label, l.decision_id, c.type,
         l.start_ts, l.end_ts, scoring.span_iou(c.start_ts, c.end_ts, l.start_ts, l.end_ts),
         c.ontology_id, c.ontology_version, scoring.feature_settings(c.source_id)
  FROM review_labels l
  JOIN candidates.candidates c ON c.candidate_id = l.candidate_id
  ON CONFLICT (candidate_id, origin) DO NOTHING;
  GET DIAGNOSTICS v_added = ROW_COUNT;
  RETURN jsonb_build_object('added', v_added, 'updated', v_updated, 'removed', v_removed);
END
$$;

-- Temporal IoU of two spans (1 for two equal instants).
CREATE OR REPLACE FUNCTION scoring.span_iou(a0 timestamptz, a1 timestamptz,
                                            b0 timestamptz, b1 timestamptz)
RETURNS double precision
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN greatest(a1, b1) = least(a0, b0) THEN 1.0
              ELSE greatest(0.0, extract(epoch FROM least(a1, b1) - greatest(a0, b0)))
                   / extract(epoch FROM greatest(a1, b1) - least(a0, b0)) END
$$;

-- ======================================================================= validity
-- Mark invalid, with the reason, every valid example of the project made under other
-- feature settings than its source has now, or whose stored window was built by another
-- window definition than p_window_version (NULL: not checked). Nothing is deleted: a
-- refresh (scoring.refresh_examples) re-admits them under today's settings. Returns the
-- number marked.
CREATE OR REPLACE FUNCTION scoring.invalidate_stale_examples(p_project uuid,
                                                             p_window_version text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rows bigint;
BEGIN
  WITH now_settings AS (
    SELECT s.source_id, scoring.feature_settings(s.source_id) AS features
    FROM ingest.sources s WHERE s.project_id = p_project
  )
  UPDATE scoring.examples e
  SET invalid_reason = CASE
        WHEN e.features IS DISTINCT FROM n.features
          THEN 'feature settings changed since the example was made: '
               || scoring.settings_diff(e.features, n.features)
        ELSE 'window definition changed: ' || e.window_version || ' → ' || p_window_version
      END,
      invalidated_at = now(), updated_at = now()
  FROM now_settings n
  WHERE e.project_id = p_project AND e.source_id = n.source_id AND e.invalid_reason IS NULL
    AND (e.features IS DISTINCT FROM n.features
         OR (p_window_version IS NOT NULL AND e.window_version IS DISTINCT FROM p_window_version
             AND e.window_data IS NOT NULL));
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;

-- Re-admit the project's invalid examples under today's feature settings: the label stands
-- (a reviewer judged the candidate, not its features), the stored window is dropped and
-- built again from the features as they are now. An explicit step, never automatic.
-- Returns the number re-admitted.
CREATE OR REPLACE FUNCTION scoring.refresh_examples(p_project uuid) RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rows bigint;
BEGIN
  UPDATE scoring.examples e
  SET features = scoring.feature_settings(e.source_id), window_data = NULL,
      window_version = NULL, invalid_reason = NULL, invalidated_at = NULL, updated_at = now()
  WHERE e.project_id = p_project AND e.invalid_reason IS NOT NULL;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  RETURN v_rows;
END
$$;

-- ======================================================================= status
-- The project's examples: per origin valid / invalid / windowed counts, positives, those
-- new since its active model was trained, and the auto-training threshold.
CREATE OR REPLACE FUNCTION scoring.examples_status(p_project uuid) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  WITH last_model AS (
    SELECT max(m.created_at) AS at FROM scoring.models m WHERE m.project_id = p_project
  ), e AS (
    SELECT x.* FROM scoring.examples x WHERE x.project_id = p_project
  )
  SELECT jsonb_build_object(
    'by_origin', coalesce((SELECT jsonb_object_agg(o.origin, o.counts) FROM (
        SELECT e.origin, jsonb_build_object(
                 'valid', count(*) FILTER (WHERE e.invalid_reason IS NULL),
                 'invalid', count(*) FILTER (WHERE e.invalid_reason IS NOT NULL),
                 'positives', count(*) FILTER (WHERE e.invalid_reason IS NULL AND e.label),
                 'windowed', count(*) FILTER (WHERE e.window_data IS NOT NULL)) AS counts
        FROM e GROUP BY e.origin) o), '{}'),
    'new_since_last_model', (SELECT count(*) FROM e, last_model l
                             WHERE e.invalid_reason IS NULL
                               AND e.updated_at > coalesce(l.at, '-infinity')),
    'last_model_at', (SELECT l.at FROM last_model l),
    'invalid_reasons', coalesce((SELECT jsonb_object_agg(r.invalid_reason, r.n) FROM (
        SELECT e.invalid_reason, count(*) AS n FROM e
        WHERE e.invalid_reason IS NOT NULL GROUP BY 1) r), '{}'),
    'train_auto', coalesce(pipeline.setting(p_project, 'train_auto'), 'true'),
    'train_min_new_examples', pipeline.setting_int(p_project, 'train_min_new_examples'))
$$;

-- ======================================================================= schedule
-- pg_cron's step (sql/820_cron_training.sql): for every project with live decisions, bring
-- its review examples up to date and mark stale ones; queue one train_model job (deduped:
-- never two queued or running) where train_auto is on and at least train_min_new_examples
-- valid examples are new since its last model. Returns the number of jobs queued.
CREATE OR REPLACE FUNCTION scoring.enqueue_due_training() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  p        record;
  v_status jsonb;
  v_queued bigint := 0;
BEGIN
  FOR p IN SELECT DISTINCT project_id FROM review.current
           UNION SELECT DISTINCT project_id FROM scoring.examples
  LOOP
    PERFORM scoring.sync_review_examples(p.project_id);
    PERFORM scoring.invalidate_stale_examples(p.project_id);
    v_status := scoring.examples_status(p.project_id);
    IF v_status ->> 'train_auto' <> 'false'
       AND (v_status ->> 'new_since_last_model')::bigint
           >= coalesce((v_status ->> 'train_min_new_examples')::bigint, 200)
       AND NOT EXISTS (SELECT FROM jobs.jobs j
                       WHERE j.project_id = p.project_id AND j.kind = 'train_model'
                         AND j.state IN ('queued', 'running')) THEN
      PERFORM jobs.enqueue(p.project_id, 'train_model',
                           jsonb_build_object('reason', format('%s new examples',
                                                               v_status ->> 'new_since_last_model')),
                           p_max_attempts => 2, p_dedupe_key => 'train');
      v_queued := v_queued + 1;
    END IF;
  END LOOP;
  RETURN v_queued;
END
$$;
