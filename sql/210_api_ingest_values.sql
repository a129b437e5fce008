-- The api schema, ingest: small batches of track points as JSON (POST /rpc/ingest_batch),
-- with the CLI's validation codes, per-item errors, idempotency key and duplicate
-- semantics, merged by the CLI's own ingest.merge_staged (sql/300_ingest.sql). See
-- docs/api.md ("Ingest") and docs/ingest.md. Helpers live in `ingest` (nothing there is
-- exposed by PostgREST). The files, in the order they run:
--   210_api_ingest_values.sql  JSON values as the CLI reads a cell (this file)
--   211_api_ingest_ground.sql  the source's transform, and the batch it maps off the ground
--   212_api_ingest_source.sql  the source a batch names, created or checked
--   213_api_ingest_checks.sql  the table of checks (generated from workers/ingest/checks.py)
--   214_api_ingest_stage.sql   validation and staging of a batch's points
--   215_api_ingest_batch.sql   the endpoint, api.ingest_batch

-- ======================================================================= values
-- Per-point helpers run 9 times per point: the SQL ones carry no SET clause so that the
-- planner inlines them into the calling statement (a SET clause forbids inlining and costs
-- a settings save/restore per call); they name nothing outside pg_catalog, and their
-- callers (below) pin search_path.

-- A numeric string as a number, as `secinf ingest` casts a CSV cell: NULL when it is none;
-- out-of-range values become ±Infinity (or 0 when tiny).
CREATE OR REPLACE FUNCTION ingest.api_number_text(p_text text) RETURNS double precision
LANGUAGE plpgsql IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_text text := regexp_replace(p_text, '^\s+|\s+$', '', 'g');
  v_num numeric;
BEGIN
  IF v_text ~* '^[+-]?(nan|inf|infinity)$' THEN
    RETURN v_text::double precision;
  ELSIF v_text !~ '^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$' THEN
    RETURN NULL;
  END IF;
  BEGIN
    v_num := v_text::numeric;
  EXCEPTION WHEN numeric_value_out_of_range THEN
    RETURN CASE WHEN v_text ~ '[eE]-' THEN 0
                WHEN v_text ~ '^-' THEN '-Infinity' ELSE 'Infinity' END::double precision;
  END;
  RETURN CASE WHEN abs(v_num) > 1.7976931348623157e308 THEN sign(v_num) * 'Infinity'::float8
              WHEN abs(v_num) < 2.2250738585072014e-308 THEN 0
              ELSE v_num::double precision END;
END
$$;

-- A JSON value as a number: JSON numbers, and strings holding one; NULL for anything else.
CREATE OR REPLACE FUNCTION ingest.api_number(p_value jsonb) RETURNS double precision
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE pg_catalog.jsonb_typeof(p_value)
           WHEN 'number' THEN
             CASE WHEN pg_catalog.abs(p_value::numeric) > 1.7976931348623157e308
                  THEN pg_catalog.sign(p_value::numeric)::float8 * 'Infinity'::float8
                  WHEN pg_catalog.abs(p_value::numeric) < 2.2250738585072014e-308 THEN 0::float8
                  ELSE p_value::numeric::float8 END
           WHEN 'string' THEN ingest.api_number_text(p_value #>> '{}')
         END
$$;

-- A JSON value as text (track_id, class), as a JSONL line gives it to the CLI: strings as
-- they are, anything else as its JSON text; NULL when absent or JSON null.
CREATE OR REPLACE FUNCTION ingest.api_text(p_value jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
  SELECT CASE pg_catalog.jsonb_typeof(p_value)
           WHEN 'string' THEN p_value #>> '{}'
           WHEN 'null' THEN NULL
           ELSE p_value::text
         END
$$;

-- A message template of the table of checks (sql/213_api_ingest_checks.sql) with its
-- {placeholders} filled from p_values, in one pass (workers/ingest/checks.py render); a
-- placeholder p_values lacks stays as it is.
CREATE OR REPLACE FUNCTION ingest.api_message(p_template text, p_values jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(string_agg(CASE WHEN p.m[1] IS NULL THEN p.m[2]
                                  ELSE coalesce(p_values ->> p.m[1], '{' || p.m[1] || '}') END,
                             '' ORDER BY p.n), '')
  FROM regexp_matches(p_template, '\{([a-z_]+)\}|([^{]+|\{)', 'g') WITH ORDINALITY AS p(m, n)
$$;
