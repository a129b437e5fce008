-- Project models (migrations/0017_training_examples.sql): which model a project scores
-- with, how it changes (activate, rollback: one step each, both recorded in
-- scoring.activations), and the rescoring of the project's open candidates that follows,
-- so the review queue's orderings rank by the model now in charge. See docs/scoring.md.

-- ======================================================================= rescoring
-- Queue score_candidates jobs (payload model NULL: the project's model at run time) for
-- the project's candidates that no person has decided (no live decision: new, scored, in
-- review, or accepted by a machine) whose score is not from p_version. Returns the number
-- queued.
CREATE OR REPLACE FUNCTION scoring.queue_rescore(p_project uuid, p_version text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_total bigint := 0;
  v_job   bigint;
  b       record;
BEGIN
  FOR b IN
    WITH open AS (
      SELECT c.candidate_id,
             (row_number() OVER (ORDER BY c.candidate_id) - 1)
               / greatest(coalesce(pipeline.setting_int(p_project, 'scoring_batch'), 256), 1)
               AS batch
      FROM candidates.candidates c
      WHERE c.project_id = p_project
        AND c.model_version IS DISTINCT FROM p_version
        AND NOT EXISTS (SELECT FROM review.current rc WHERE rc.candidate_id = c.candidate_id)
    )
    SELECT array_agg(o.candidate_id ORDER BY o.candidate_id) AS ids
    FROM open o GROUP BY o.batch ORDER BY min(o.candidate_id)
  LOOP
    v_job := jobs.enqueue(p_project, 'score_candidates',
                          jsonb_build_object('candidate_ids', to_jsonb(b.ids)));
    INSERT INTO scoring.queued (candidate_id, project_id, job_id)
    SELECT u.id, p_project, v_job FROM unnest(b.ids) AS u (id)
    ON CONFLICT (candidate_id) DO UPDATE SET job_id = excluded.job_id, queued_at = now();
    v_total := v_total + cardinality(b.ids);
  END LOOP;
  RETURN v_total;
END
$$;

-- The version a project's candidates are scored with now: its active model, else the
-- newest active global one (NULL: none).
CREATE OR REPLACE FUNCTION scoring.model_in_charge(p_project uuid) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT m.version FROM scoring.models m
  WHERE m.active AND (m.project_id IS NULL OR m.project_id = p_project)
  ORDER BY m.project_id NULLS LAST, m.created_at DESC, m.model_id DESC
  LIMIT 1
$$;

-- ======================================================================= activate
-- Make p_version (a project model) its project's active model, record why, and queue the
-- open candidates for rescoring with it. Returns {project_id, version, previous, rescoring}.
CREATE OR REPLACE FUNCTION scoring.activate_model(p_version text, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_project  uuid;
  v_previous text;
  v_queued   bigint;
BEGIN
  SELECT m.project_id INTO v_project FROM scoring.models m WHERE m.version = p_version;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no scoring model %', p_version USING ERRCODE = 'P0002',
      HINT = 'List the models with `secinf models list`.';
  END IF;
  IF v_project IS NULL THEN
    RAISE EXCEPTION 'model % is a global model; only a project model is activated per project',
      p_version USING ERRCODE = '22023',
      HINT = 'Train one with `secinf train --project ORG/PROJECT`.';
  END IF;
  -- One activation at a time per project (the unique index would refuse the second).
  PERFORM pg_advisory_xact_lock(388129, hashtext(v_project::text));
  SELECT m.version INTO v_previous FROM scoring.models m
  WHERE m.project_id = v_project AND m.active;
  IF v_previous = p_version THEN
    RETURN jsonb_build_object('project_id', v_project, 'version', p_version,
                              'previous', v_previous, 'rescoring', 0, 'changed', false);
  END IF;
  UPDATE scoring.models SET active = false WHERE project_id = v_project AND active;
  UPDATE scoring.models SET active = true, activated_at = now() WHERE version = p_version;
  INSERT INTO scoring.activations (project_id, version, previous_version, action, reason)
  VALUES (v_project, p_version, v_previous, 'activate', p_reason);
  v_queued := scoring.queue_rescore(v_project, p_version);
  RETURN jsonb_build_object('project_id', v_project, 'version', p_version,
                            'previous', v_previous, 'rescoring', v_queued, 'changed', true);
END
$$;

-- ======================================================================= rollback
-- Go back one step: the model that was active before the current one was activated (or
-- the global model when there was none), recorded as a rollback; a second rollback goes
-- one step further back. Returns {project_id, version (NULL: global), rolled_back,
-- in_charge, rescoring}.
CREATE OR REPLACE FUNCTION scoring.rollback_model(p_project uuid, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_current text;
  v_back    text;
  v_queued  bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(388129, hashtext(p_project::text));
  SELECT m.version INTO v_current FROM scoring.models m
  WHERE m.project_id = p_project AND m.active;
  IF v_current IS NULL THEN
    RAISE EXCEPTION 'project % has no model of its own to roll back: it scores with the global model',
      p_project USING ERRCODE = '22023',
      HINT = 'See `secinf models list --project ORG/PROJECT`.';
  END IF;
  SELECT a.previous_version INTO v_back FROM scoring.activations a
  WHERE a.project_id = p_project AND a.version = v_current AND a.action = 'activate'
  ORDER BY a.activated_at DESC, a.activation_id DESC LIMIT 1;
  UPDATE scoring.models SET active = false WHERE project_id = p_project AND active;
  IF v_back IS NOT NULL THEN
    UPDATE scoring.models SET active = true, activated_at = now() WHERE version = v_back;
  END IF;
  INSERT INTO scoring.activations (project_id, version, previous_version, action, reason)
  VALUES (p_project, v_back, v_current, 'rollback', p_reason);
  v_queued := scoring.queue_rescore(p_project, scoring.model_in_charge(p_project));
  RETURN jsonb_build_object('project_id', p_project, 'version', v_back,
                            'rolled_back', v_current,
                            'in_charge', scoring.model_in_charge(p_project),
                            'rescoring', v_queued);
END
$$;
