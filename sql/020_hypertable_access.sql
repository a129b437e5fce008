-- Hypertables and RLS: closing the chunk side door.
--
-- TimescaleDB stores a hypertable's rows in chunk tables (_timescaledb_internal._hyper_*).
-- Chunks carry no RLS policies, and a chunk gets its hypertable's table-level ACL when it
-- is created; a GRANT on the hypertable is also copied onto the chunks that exist. A role
-- with SELECT on a hypertable could therefore read every project's rows from a chunk.
--
-- The rule here: RLS-bound roles (anon, customer, reviewer, analyst, project_admin) get
-- only COLUMN privileges on hypertables, through auth.grant_hypertable(); new chunks copy
-- only the table-level ACL, so they never carry them; and auth.lock_down_chunks() strips
-- whatever the GRANT copied onto existing chunks. Queries on the hypertable itself work
-- (Postgres checks privileges on the parent only) and RLS applies there.

-- The roles RLS binds: the only ones whose privileges must never reach a chunk.
CREATE OR REPLACE FUNCTION auth.rls_bound_roles() RETURNS text[]
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT ARRAY['anon', 'customer', 'reviewer', 'analyst', 'project_admin'] $$;

-- Grant privileges on every column of a hypertable to roles, then lock the chunks down.
CREATE OR REPLACE FUNCTION auth.grant_hypertable(p_rel regclass, p_privilege text, p_roles text[])
RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cols text;
BEGIN
  IF p_privilege NOT IN ('SELECT', 'INSERT', 'UPDATE') THEN
    RAISE EXCEPTION 'auth.grant_hypertable: unsupported privilege %', p_privilege;
  END IF;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
  FROM pg_attribute WHERE attrelid = p_rel AND attnum > 0 AND NOT attisdropped;
  EXECUTE format('GRANT %s (%s) ON %s TO %s', p_privilege, v_cols, p_rel,
                 (SELECT string_agg(quote_ident(r), ', ') FROM unnest(p_roles) r));
  PERFORM auth.strip_chunks();
END
$$;

-- Make the rule hold whatever a grants file did: a table-level privilege of an RLS-bound
-- role on a hypertable becomes the same privilege on its columns; then every chunk loses
-- every privilege of those roles. Returns the number of chunks visited.
CREATE OR REPLACE FUNCTION auth.lock_down_chunks() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  h record;
BEGIN
  FOR h IN
    SELECT ht.rel, a.grantee::regrole::text AS rolname, a.privilege_type AS priv
    FROM (SELECT format('%I.%I', hypertable_schema, hypertable_name)::regclass AS rel
          FROM timescaledb_information.hypertables) ht
    JOIN pg_class c ON c.oid = ht.rel
    CROSS JOIN LATERAL aclexplode(c.relacl) a
    WHERE a.grantee::regrole::text = ANY (auth.rls_bound_roles())
      AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE')
  LOOP
    EXECUTE format('REVOKE %s ON %s FROM %I', h.priv, h.rel, h.rolname);
    IF h.priv <> 'DELETE' THEN  -- DELETE has no column form: it is simply withdrawn
      PERFORM auth.grant_hypertable(h.rel, h.priv, ARRAY[h.rolname]);
    END IF;
  END LOOP;
  RETURN auth.strip_chunks();
END
$$;

-- Remove every privilege of the RLS-bound roles from every chunk of every hypertable.
CREATE OR REPLACE FUNCTION auth.strip_chunks() RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c record;
  v_cols text;
  v_roles text := (SELECT string_agg(quote_ident(r), ', ') FROM unnest(auth.rls_bound_roles()) r);
  n integer := 0;
BEGIN
  FOR c IN
    SELECT format('%I.%I', ch.chunk_schema, ch.chunk_name)::regclass AS rel
    FROM timescaledb_information.chunks ch
  LOOP
    SELECT string_agg(quote_ident(attname), ', ') INTO v_cols
    FROM pg_attribute WHERE attrelid = c.rel AND attnum > 0 AND NOT attisdropped;
    EXECUTE format('REVOKE ALL ON %s FROM %s', c.rel, v_roles);
    EXECUTE format('REVOKE ALL (%s) ON %s FROM %s', v_cols, c.rel, v_roles);
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;
