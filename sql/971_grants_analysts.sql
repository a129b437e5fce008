-- Analysts: read-only SQL over the data of their projects (RLS scopes the rows).
-- Every table of the data schemas is readable; hypertables only through column grants
-- (auth.grant_hypertable), so their chunks never carry the analyst's privileges.
-- Tenancy internals (keys, memberships, signing secrets) stay out of reach.

DO $$
DECLARE
  s text;
  t record;
BEGIN
  FOREACH s IN ARRAY ARRAY['ingest', 'features', 'candidates', 'events', 'review', 'datasets']
  LOOP
    IF to_regnamespace(s) IS NULL THEN
      CONTINUE;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO analyst', s);
    FOR t IN
      SELECT c.oid::regclass AS rel,
             EXISTS (SELECT FROM timescaledb_information.hypertables h
                     WHERE h.hypertable_schema = s AND h.hypertable_name = c.relname) AS hyper
      FROM pg_class c
      WHERE c.relnamespace = to_regnamespace(s) AND c.relkind IN ('r', 'p', 'v')
        AND EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid
                    AND a.attname = 'project_id' AND NOT a.attisdropped)
    LOOP
      IF t.hyper THEN
        PERFORM auth.grant_hypertable(t.rel, 'SELECT', ARRAY['analyst']);
      ELSE
        EXECUTE format('GRANT SELECT ON %s TO analyst', t.rel);
      END IF;
    END LOOP;
  END LOOP;
END
$$;
