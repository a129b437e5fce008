-- The scheduled pipeline as a scheduler: how pg_cron's every-minute call works the sources.
--
--   transaction (the default): `CALL pipeline.run_scheduled()` ticks every source itself,
--                 one backend (pipeline.tick), as it always has;
--   queue:        the same call hands each source with work to the workers as a
--                 `pipeline_tick_source` job (pipeline.schedule_sources), which a worker
--                 runs with pipeline.run_source: as many sources at once as there are
--                 worker slots, on as many machines as run `secinf worker`.
--
-- Set with `secinf pipeline mode queue|transaction` (the cluster default row of
-- pipeline.settings, key scheduled_ticks). Sources never cross in their work (features,
-- pairs and rules stay inside a source), so the units need no coordination beyond the
-- source's advisory lock, which run_source takes; the watermarks make a repeated unit a
-- no-op. docs/pipeline.md, "Per-source jobs".

-- ======================================================================= mode
-- How pg_cron's call works the sources: 'transaction' or 'queue'.
CREATE OR REPLACE FUNCTION pipeline.scheduled_mode() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT s.value #>> '{}' FROM pipeline.settings s
                   WHERE s.project_id IS NULL AND s.key = 'scheduled_ticks'), 'transaction')
$$;

-- ======================================================================= scheduler
-- Queue one pipeline_tick_source job for every source with work: new points past its
-- settle margin, or dirty ranges (pipeline.tick_plan, which writes nothing), that is not
-- waiting for its retry time after a failure. A source keeps at most one live job (the
-- dedupe key), so a source still being worked, or still waiting, gets no second one.
--
-- Fairness: jobs are claimed by priority (the project's plan) and then by run_after. The
-- k-th source of a project gets run_after now + (k - 1) ms, so within a plan the claims go
-- round the projects (every project's first source, then every second one) instead of
-- draining one tenant's hundred sources before another tenant's one.
-- Returns the jobs queued or found live, one row per source.
CREATE OR REPLACE FUNCTION pipeline.schedule_sources()
RETURNS TABLE (source_id bigint, project_id uuid, job_id bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  r record;
BEGIN
  FOR r IN
    SELECT s.source_id, s.project_id,
           row_number() OVER (PARTITION BY s.project_id ORDER BY s.source_id) AS k
    FROM ingest.sources s
    WHERE NOT EXISTS (SELECT FROM pipeline.source_failures f
                      WHERE f.source_id = s.source_id AND f.retry_at > now())
      AND pipeline.tick_plan(s.source_id, false) IS NOT NULL
    ORDER BY s.source_id
  LOOP
    source_id := r.source_id;
    project_id := r.project_id;
    job_id := jobs.enqueue(r.project_id, 'pipeline_tick_source',
                           jsonb_build_object('source_id', r.source_id), NULL,
                           now() + make_interval(secs => (r.k - 1) / 1000.0), 3,
                           interval '10 seconds', 'source:' || r.source_id);
    RETURN NEXT;
  END LOOP;
END
$$;
