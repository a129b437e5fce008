-- Scoring: the fenced write-back of model scores, the pipeline stage that queues unscored
-- candidates for the scoring worker, and nearest-neighbour search over embeddings.
-- See docs/scoring.md.

-- ======================================================================= write-back
-- Write model scores and embeddings for candidates of job p_job's project, fenced: raises
-- JB001 (and writes nothing) unless attempt p_attempt still holds the job's lease. The
-- job row stays locked until the caller commits, so a reclaim cannot interleave. Returns
-- the number of candidates updated (a candidate deleted meanwhile is skipped).
CREATE OR REPLACE FUNCTION scoring.write_scores(p_job bigint, p_attempt bigint,
                                                p_candidates bigint[],
                                                p_scores double precision[],
                                                p_embeddings text[], p_version text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_rows bigint;
BEGIN
  PERFORM jobs.fence(p_job, p_attempt);
  IF cardinality(p_candidates) IS DISTINCT FROM cardinality(p_scores)
     OR cardinality(p_candidates) IS DISTINCT FROM cardinality(p_embeddings) THEN
    RAISE EXCEPTION 'write_scores: % candidates, % scores and % embeddings differ in length',
      cardinality(p_candidates), cardinality(p_scores), cardinality(p_embeddings)
      USING ERRCODE = '22023';
  END IF;
  UPDATE candidates.candidates c
  SET model_score   = s.score,
      model_version = p_version,
      embedding     = s.embedding::public.vector(64),
      status        = CASE WHEN c.status = 'new' THEN 'scored' ELSE c.status END,
      updated_at    = clock_timestamp()
  FROM unnest(p_candidates, p_scores, p_embeddings) AS s (candidate_id, score, embedding),
       jobs.jobs j
  WHERE j.job_id = p_job AND c.candidate_id = s.candidate_id AND c.project_id = j.project_id;
  GET DIAGNOSTICS v_rows = ROW_COUNT;
  -- Metering (sql/240_billing_usage.sql), in the fenced transaction: once per job and batch
  -- (a retried attempt whose write rolled back counts then; one that committed, never again).
  PERFORM billing.count(j.project_id, 'candidates_scored', v_rows,
                        'score:' || p_job || ':' || p_candidates[1] || ':'
                        || cardinality(p_candidates))
  FROM jobs.jobs j WHERE j.job_id = p_job;
  RETURN v_rows;
END
$$;

-- ======================================================================= queueing
-- Queue score_candidates jobs (batches of the project's `scoring_batch` setting, default
-- 256) for the candidates of one source (NULL: every source) that have no model score and
-- were never queued. Nothing is queued while no active model could score them, nor for a
-- project whose `scoring_auto` setting is false (`secinf train`'s own scenes). Returns the
-- number of candidates queued.
CREATE OR REPLACE FUNCTION scoring.queue_unscored(p_source bigint DEFAULT NULL,
                                                  p_project uuid DEFAULT NULL)
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
    WITH fresh AS (
      SELECT c.candidate_id, c.project_id,
             (row_number() OVER (PARTITION BY c.project_id ORDER BY c.candidate_id) - 1)
               / greatest(coalesce(pipeline.setting_int(c.project_id, 'scoring_batch'), 256), 1)
               AS batch
      FROM candidates.candidates c
      WHERE (p_source IS NULL OR c.source_id = p_source)
        AND (p_project IS NULL OR c.project_id = p_project)
        AND c.model_version IS NULL
        AND coalesce(pipeline.setting(c.project_id, 'scoring_auto'), 'true') <> 'false'
        AND NOT EXISTS (SELECT FROM scoring.queued q WHERE q.candidate_id = c.candidate_id)
        AND EXISTS (SELECT FROM scoring.models m
                    WHERE m.active AND (m.project_id IS NULL OR m.project_id = c.project_id))
    )
    SELECT f.project_id, array_agg(f.candidate_id ORDER BY f.candidate_id) AS ids
    FROM fresh f
    GROUP BY f.project_id, f.batch
    ORDER BY f.project_id, min(f.candidate_id)
  LOOP
    v_job := jobs.enqueue(b.project_id, 'score_candidates',
                          jsonb_build_object('candidate_ids', to_jsonb(b.ids)));
    INSERT INTO scoring.queued (candidate_id, project_id, job_id)
    SELECT u.id, b.project_id, v_job FROM unnest(b.ids) AS u (id)
    ON CONFLICT (candidate_id) DO NOTHING;
    v_total := v_total + cardinality(b.ids);
  END LOOP;
  RETURN v_total;
END
$$;

-- Stage function (pipeline.stages, after the candidates stage): queue the source's new
-- candidates for scoring. The range does not matter: every unqueued candidate is taken.
CREATE OR REPLACE FUNCTION scoring.queue_stage(p_source bigint, p_from timestamptz,
                                               p_to timestamptz)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT scoring.queue_unscored(p_source, NULL) $$;

SELECT pipeline.register_stage('score_queue',
         'scoring.queue_stage(bigint, timestamptz, timestamptz)', 60);

-- ======================================================================= similarity
-- The k candidates whose embeddings are nearest (cosine) to candidate_id's, among those
-- the caller may read: SECURITY INVOKER, so RLS on candidates.candidates applies to the
-- probe and to every neighbour. The HNSW scan iterates until k visible rows are found.
-- (pgvector's library must be loaded in this session for the SET clause below to name its
-- parameter; any vector operation loads it.)
SELECT '[1]'::public.vector OPERATOR(public.<=>) '[1]'::public.vector AS load_pgvector;

CREATE OR REPLACE FUNCTION api.similar_candidates(candidate_id bigint, k integer DEFAULT 10)
RETURNS TABLE (neighbour_id bigint, source_id bigint, type text, actors jsonb,
               start_ts timestamptz, end_ts timestamptz, rule_score double precision,
               model_score double precision, status text, similarity double precision)
LANGUAGE sql STABLE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
AS $$
  WITH probe AS (
    SELECT c.candidate_id, c.embedding FROM candidates.candidates c
    WHERE c.candidate_id = similar_candidates.candidate_id AND c.embedding IS NOT NULL
  ), near AS (
    SELECT c.candidate_id, c.source_id, c.type, c.actors, c.start_ts, c.end_ts, c.rule_score,
           c.model_score, c.status, c.embedding OPERATOR(public.<=>) p.embedding AS distance
    FROM probe p
    CROSS JOIN LATERAL (
      SELECT * FROM candidates.candidates c
      WHERE c.embedding IS NOT NULL AND c.candidate_id <> p.candidate_id
      ORDER BY c.embedding OPERATOR(public.<=>) p.embedding
      LIMIT least(greatest(k, 0), 1000)
    ) c
  )
  SELECT n.candidate_id, n.source_id, n.type, n.actors, n.start_ts, n.end_ts, n.rule_score,
         n.model_score, n.status, 1.0 - n.distance
  FROM near n
  ORDER BY n.distance, n.candidate_id
$$;
COMMENT ON FUNCTION api.similar_candidates(bigint, integer) IS
  'The k candidates most similar to a candidate (cosine similarity of model embeddings), '
  'among the candidates of the caller''s projects.';
