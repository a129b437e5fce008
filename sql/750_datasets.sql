-- Datasets in the API: the versions a caller may read, a version's manifest and data card,
-- and nearest-neighbour search over verified events. See docs/datasets.md.
-- Tables and the immutability triggers are in migrations/0009_datasets.sql.

-- ======================================================================= lookup
-- The version_id of a dataset version the caller may read, named 'X.Y.Z' or 'name@X.Y.Z'.
-- Raises P0002 (HTTP 404) when none is visible and 22023 (HTTP 400) when the name matches
-- versions of several datasets or projects. The caller's projects are asked explicitly (as
-- well as RLS), so SECURITY DEFINER callers (api.dataset_download) get the same answer.
CREATE OR REPLACE FUNCTION datasets.visible_version(p_version text)
RETURNS bigint
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids bigint[];
BEGIN
  SELECT array_agg(v.version_id ORDER BY v.version_id) INTO v_ids
  FROM datasets.versions v
  WHERE (v.version = p_version OR v.name || '@' || v.version = p_version)
    AND (auth.is_admin() OR v.project_id = ANY (auth.project_ids()));
  IF v_ids IS NULL THEN
    RAISE EXCEPTION 'dataset version % not found in your projects', coalesce(p_version, 'NULL')
      USING ERRCODE = 'P0002', HINT = 'GET /datasets lists the versions you may read.';
  END IF;
  IF cardinality(v_ids) > 1 THEN
    RAISE EXCEPTION 'dataset version % is ambiguous: % datasets have it', p_version,
      cardinality(v_ids) USING ERRCODE = '22023',
      HINT = 'Name it as <dataset>@<version>, with a token scoped to one project.';
  END IF;
  RETURN v_ids[1];
END
$$;

-- ======================================================================= api
CREATE OR REPLACE VIEW api.datasets WITH (security_invoker = true) AS
  SELECT v.project_id, v.name, v.version, v.major, v.minor, v.patch, v.status,
         v.events, v.schema_version, v.ontology_name, v.ontology_version, v.model_version,
         v.split_seed,
         jsonb_build_object('train', v.train_ratio, 'val', v.val_ratio,
                            'test', v.test_ratio) AS ratios,
         v.manifest -> 'statistics' -> 'by_split' AS events_by_split,
         v.manifest_sha256,
         coalesce((SELECT array_agg(r.gate ORDER BY r.gate) FROM datasets.quality_reports r
                   WHERE r.version_id = v.version_id AND NOT r.passed), '{}') AS failed_gates,
         (SELECT count(*) FROM datasets.files f WHERE f.version_id = v.version_id) AS files,
         (SELECT coalesce(sum(f.bytes), 0) FROM datasets.files f
          WHERE f.version_id = v.version_id) AS bytes,
         v.created_by, v.created_at, v.published_at,
         -- An erasure since publishing (the version holds an erased actor) or retention
         -- (its files are gone): either way it is no longer downloadable.
         (SELECT s.superseded_at FROM records.superseded_versions s
          WHERE s.version_id = v.version_id) AS superseded_at,
         (SELECT e.expired_at FROM records.expired_versions e
          WHERE e.version_id = v.version_id) AS expired_at
  FROM datasets.versions v;
COMMENT ON VIEW api.datasets IS
  'Dataset versions of the caller''s projects (semver; status draft, published or blocked), '
  'with split ratios and seed, events per split, failed quality gates and file totals. '
  'Order newest first with order=major.desc,minor.desc,patch.desc.';

-- The manifest of a dataset version: files (path, rows, bytes, sha256), schema, ontology and
-- model versions, split seed and ratios, statistics and the quality gates' outcome.
CREATE OR REPLACE FUNCTION api.dataset_manifest(p_version text)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT v.manifest
  FROM (SELECT datasets.visible_version(p_version) AS version_id) wanted
  JOIN datasets.versions v USING (version_id)
$$;
COMMENT ON FUNCTION api.dataset_manifest(text) IS
  'The manifest (manifest.json) of a dataset version of the caller''s projects, named '
  'X.Y.Z or dataset@X.Y.Z: every file with rows, bytes and sha256, the schema, ontology and '
  'model versions, the split seed and ratios, statistics and the quality gates.';

-- The Markdown data card of a dataset version.
CREATE OR REPLACE FUNCTION api.dataset_card(p_version text)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT v.data_card
  FROM (SELECT datasets.visible_version(p_version) AS version_id) wanted
  JOIN datasets.versions v USING (version_id)
$$;
COMMENT ON FUNCTION api.dataset_card(text) IS
  'The data card (Markdown) of a dataset version of the caller''s projects, named X.Y.Z or '
  'dataset@X.Y.Z: intended use, class balance per split, verification, privacy, known '
  'biases, evaluation figures and quality gates.';

-- ======================================================================= similarity
-- The k verified events whose candidates' embeddings are nearest (cosine) to the given
-- event's, among the caller's projects. SECURITY DEFINER because API customers hold no
-- privilege on candidates: the probe and every neighbour are filtered on
-- auth.project_ids() here, exactly the rows RLS would let the caller see. The HNSW scan
-- iterates until k rows pass the filter. (pgvector's library must be loaded for the SET
-- clause below to name its parameter; any vector operation loads it.)
SELECT '[1]'::public.vector OPERATOR(public.<=>) '[1]'::public.vector AS load_pgvector;

CREATE OR REPLACE FUNCTION api.similar_events(p_event_id bigint, p_k integer DEFAULT 10)
RETURNS TABLE (event_id bigint, source_id bigint, type text, actors jsonb,
               start_ts timestamptz, end_ts timestamptz, confidence double precision,
               verified_source text, similarity double precision)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET hnsw.iterative_scan = 'relaxed_order'
AS $$
#variable_conflict use_column
DECLARE
  v_admin     boolean := auth.is_admin();
  v_projects  uuid[] := auth.project_ids();
  v_found     boolean := false;
  v_embedding public.vector;
BEGIN
  IF p_k IS NULL OR p_k < 1 OR p_k > 1000 THEN
    RAISE EXCEPTION 'p_k must be between 1 and 1000, not %', coalesce(p_k::text, 'NULL')
      USING ERRCODE = '22023';
  END IF;
  SELECT true, c.embedding INTO v_found, v_embedding
  FROM events.events e
  LEFT JOIN candidates.candidates c ON c.candidate_id = e.candidate_id
  WHERE e.event_id = p_event_id AND (v_admin OR e.project_id = ANY (v_projects));
  IF NOT coalesce(v_found, false) THEN
    RAISE EXCEPTION 'event % not found in your projects', coalesce(p_event_id::text, 'NULL')
      USING ERRCODE = 'P0002', HINT = 'GET /events lists the events you may read.';
  END IF;
  IF v_embedding IS NULL THEN
    RETURN;  -- its candidate was never scored: no embedding, no neighbours
  END IF;
  RETURN QUERY
  SELECT n.event_id, n.source_id, n.type, n.actors, n.start_ts, n.end_ts, n.confidence,
         n.source, 1.0 - n.distance
  FROM (
    SELECT e.event_id, e.source_id, e.type, e.actors, e.start_ts, e.end_ts, e.confidence,
           e.source, c.embedding OPERATOR(public.<=>) v_embedding AS distance
    FROM candidates.candidates c
    JOIN events.events e ON e.candidate_id = c.candidate_id
    WHERE c.embedding IS NOT NULL AND e.event_id <> p_event_id
      AND (v_admin OR (c.project_id = ANY (v_projects) AND e.project_id = ANY (v_projects)))
    ORDER BY c.embedding OPERATOR(public.<=>) v_embedding
    LIMIT p_k
  ) n
  ORDER BY n.distance, n.event_id;
END
$$;
COMMENT ON FUNCTION api.similar_events(bigint, integer) IS
  'The k (1 to 1000, default 10) verified events most similar to an event (cosine '
  'similarity of their candidates'' model embeddings), among the events of the caller''s '
  'projects. Empty when the event''s candidate has no embedding; 404 for an event you '
  'cannot read.';
