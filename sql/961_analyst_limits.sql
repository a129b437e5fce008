-- secinf: run-as superuser
-- Analyst limits that hold (issue 16): analysts are direct SQL logins (analyst_<name>,
-- members of `analyst`), so whatever is only a session default they can SET away. Here:
--   * caps a watchdog enforces whatever the session SETs (statement time, idle in
--     transaction, private memory), temp_file_limit (a superuser-only setting) for spills;
--   * read-only that holds: no TEMP, no large objects, no advisory locks, no XID burning,
--     no WAL messages, CONNECT to this database only for the project's roles;
--   * no cross-tenant metadata: row counts, sizes, tuple statistics and chunk ranges of the
--     shared tables are closed to PUBLIC and open to the owner and pipeline roles only.
-- See docs/operations.md ("Analyst limits"). Roles are cluster-wide, everything else here
-- is per database (pg_catalog grants are copied with the database; database ACLs are not:
-- auth.lock_down_database() is re-run by `secinf analysts add`).

-- ======================================================================= settings
-- The watchdog's caps for this database: pipeline.settings defaults (project_id NULL; a
-- project's row is not read). Change with UPDATE … WHERE project_id IS NULL AND key = ….
INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'analyst_statement_max_s', '60'),             -- one statement; cancelled past it
  (NULL, 'analyst_idle_in_transaction_max_s', '300'),  -- open transaction left idle
  (NULL, 'analyst_memory_max_mb', '1024')              -- private memory of a session
ON CONFLICT (project_id, key) DO NOTHING;

-- ======================================================================= role settings
-- temp_file_limit is superuser-only (SUSET): set on a login by a superuser, the login can
-- neither SET nor RESET it, so it holds for every spill to disk. A login reads only its own
-- role settings: the group's value is copied onto every analyst login (and by
-- workers/tenancy.add_analyst onto later ones). A setting already in place is not written
-- again: every database of the cluster applies this file (see migration 0010).
DO $$
DECLARE
  v_limit text := coalesce(
    (SELECT substr(c, length('temp_file_limit=') + 1)
     FROM pg_db_role_setting d, unnest(d.setconfig) c
     WHERE d.setrole = 'analyst'::regrole AND d.setdatabase = 0
       AND c LIKE 'temp\_file\_limit=%'), '2GB');
  r record;
BEGIN
  FOR r IN
    SELECT 'analyst'::text AS rolname
    UNION ALL
    SELECT m.rolname FROM pg_roles m
    JOIN pg_auth_members am ON am.member = m.oid AND am.roleid = 'analyst'::regrole
    WHERE m.rolcanlogin
  LOOP
    CONTINUE WHEN EXISTS (
      SELECT FROM pg_db_role_setting d JOIN pg_roles x ON x.oid = d.setrole
      WHERE x.rolname = r.rolname AND d.setdatabase = 0
        AND 'temp_file_limit=' || v_limit = ANY (d.setconfig));
    BEGIN
      EXECUTE format('ALTER ROLE %I SET temp_file_limit = %L', r.rolname, v_limit);
    EXCEPTION WHEN undefined_object THEN
      NULL;  -- a login dropped meanwhile (tests create and drop analyst logins)
    END;
  END LOOP;
END
$$;

-- ======================================================================= this database
-- CONNECT and TEMPORARY only for the project's roles, never PUBLIC. Database privileges are
-- not copied by CREATE DATABASE … TEMPLATE, so `secinf analysts add` runs this again on the
-- database it grants an analyst into. TEMP: the owner's functions (api.ingest_batch, the
-- candidates stage, scoring.sync_review_examples) and the workers (pipeline) stage rows in
-- temporary tables; analysts never need one.
CREATE OR REPLACE FUNCTION auth.lock_down_database() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_db text := quote_ident(current_database());
BEGIN
  -- Nothing to write when it holds (concurrent GRANTs on one database can collide).
  IF NOT has_database_privilege('public', current_database(), 'CONNECT')
     AND NOT has_database_privilege('public', current_database(), 'TEMPORARY')
     AND has_database_privilege('analyst', current_database(), 'CONNECT')
     AND has_database_privilege('authenticator', current_database(), 'CONNECT')
     AND has_database_privilege('pipeline', current_database(), 'CONNECT')
     AND has_database_privilege('pipeline', current_database(), 'TEMPORARY')
     AND has_database_privilege('secinf_owner', current_database(), 'CONNECT')
     AND has_database_privilege('secinf_owner', current_database(), 'TEMPORARY') THEN
    RETURN;
  END IF;
  EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC', v_db);
  EXECUTE format('GRANT CONNECT ON DATABASE %s TO secinf_owner, pipeline, authenticator, '
                 'analyst', v_db);
  EXECUTE format('GRANT TEMPORARY ON DATABASE %s TO secinf_owner, pipeline', v_db);
END
$$;
-- (EXECUTE for the owner: its 970_grants.sql revokes every auth function from PUBLIC, which
-- fails on one it holds no privilege on.)
REVOKE EXECUTE ON FUNCTION auth.lock_down_database() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.lock_down_database() TO secinf_owner;
SELECT auth.lock_down_database();

-- ======================================================================= side effects
-- Functions PUBLIC may call that write or hold something beyond the caller's own rows:
-- large objects (a tenant's blobs in pg_largeobject, owned by the analyst); advisory locks
-- (an idle session holding pipeline.tick's lock 388127 stalls every tenant's pipeline);
-- XID assignment (wraparound pressure for the cluster); WAL messages. Granted back to the
-- project's roles that use them, never to `analyst`.
DO $$
DECLARE
  f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND p.proname IN ('lo_creat', 'lo_create', 'lo_from_bytea', 'lo_import', 'lo_put',
                        'lowrite', 'lo_truncate', 'lo_truncate64', 'lo_unlink',
                        'pg_logical_emit_message')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
  END LOOP;
  FOR f IN
    SELECT p.oid FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname ~ '^pg_(try_)?advisory_'
           OR p.proname IN ('txid_current', 'pg_current_xact_id'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO secinf_owner, pipeline, authenticator, '
                   'anon, customer, reviewer, project_admin', f);
  END LOOP;
END
$$;

-- ======================================================================= metadata
-- Tables here are shared by every tenant, so their statistics are every tenant's: row
-- estimates and pages (pg_class.reltuples/relpages/relallvisible), tuple counters
-- (pg_stat_*), sizes, and TimescaleDB's chunk catalog (each chunk's time range, row counts).
-- PUBLIC keeps every other column of pg_class (psql's \d works); the owner and the pipeline
-- (pipeline.analyze_written reads reltuples and pg_stat_xact_user_tables) and PostgREST's
-- schema cache (authenticator) read everything. pg_stats already hides tables under RLS.
DO $$
DECLARE
  v_cols text;
  v_full constant text := 'secinf_owner, pipeline';
  r record;
BEGIN
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO v_cols
  FROM pg_attribute
  WHERE attrelid = 'pg_catalog.pg_class'::regclass AND attnum > 0 AND NOT attisdropped
    AND attname NOT IN ('reltuples', 'relpages', 'relallvisible');
  REVOKE SELECT ON pg_catalog.pg_class FROM PUBLIC;
  EXECUTE format('GRANT SELECT (%s) ON pg_catalog.pg_class TO PUBLIC', v_cols);
  EXECUTE format('GRANT SELECT ON pg_catalog.pg_class TO %s, authenticator', v_full);

  -- Statistics views and the functions under them (a view runs its functions with the
  -- reader's rights, so both are closed).
  FOR r IN
    SELECT c.oid::regclass AS rel FROM pg_class c
    WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'v'
      AND (c.relname ~ '^pg_stat(io)?_(xact_)?(all|user|sys)_(tables|indexes|sequences)$'
           OR c.relname IN ('pg_stat_database', 'pg_stat_database_conflicts'))
  LOOP
    EXECUTE format('REVOKE SELECT ON %s FROM PUBLIC', r.rel);
    EXECUTE format('GRANT SELECT ON %s TO %s', r.rel, v_full);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS fn FROM pg_proc p
    WHERE p.pronamespace = 'pg_catalog'::regnamespace
      AND (p.proname ~ ('^pg_stat_get_(xact_)?(numscans|tuples_|live_tuples|dead_tuples|'
                        'mod_since_analyze|ins_since_vacuum|blocks_|last_|vacuum_count|'
                        'autovacuum_count|analyze_count|autoanalyze_count)')
           OR p.proname ~ '^pg_stat_get_db_'
           OR p.proname IN ('pg_relation_size', 'pg_total_relation_size', 'pg_table_size',
                            'pg_indexes_size', 'pg_database_size', 'pg_tablespace_size'))
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', r.fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', r.fn, v_full);
  END LOOP;

  -- TimescaleDB: its information views and catalog (dimension_slice holds every chunk's
  -- range), and the functions that count, size or list chunks. Its C code reads the catalog
  -- without privilege checks: inserts, chunk creation and planning are unaffected.
  FOR r IN
    SELECT c.oid::regclass AS rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname IN ('timescaledb_information', 'timescaledb_experimental',
                        '_timescaledb_catalog', '_timescaledb_config')
      AND c.relkind IN ('r', 'v', 'm', 'p')
  LOOP
    EXECUTE format('REVOKE SELECT ON %s FROM PUBLIC', r.rel);
    EXECUTE format('GRANT SELECT ON %s TO %s', r.rel, v_full);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS fn FROM pg_proc p
    JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
    JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'timescaledb'
    WHERE p.proname IN ('approximate_row_count', 'get_approx_row_count', 'show_chunks',
                        'show_chunk', 'chunk_status', 'chunk_id_from_relid',
                        'hypertable_size', 'hypertable_detailed_size',
                        'hypertable_approximate_size', 'hypertable_approximate_detailed_size',
                        'hypertable_index_size', 'chunks_detailed_size', 'relation_size',
                        'relation_approximate_size', 'hypertable_local_size',
                        'chunks_local_size', 'indexes_local_size',
                        'compressed_chunk_local_stats', 'chunk_compression_stats',
                        'chunk_columnstore_stats', 'hypertable_compression_stats',
                        'hypertable_columnstore_stats')
  LOOP
    EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', r.fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %s', r.fn, v_full);
  END LOOP;
END
$$;

-- ======================================================================= watchdog
-- PostgreSQL 15 cannot forbid SET of statement_timeout, idle_in_transaction_session_timeout
-- or work_mem, so the caps are enforced from outside the session: every few seconds
-- (sql/830_cron_analyst_watchdog.sql) the watchdog looks at the analyst logins' backends in
-- this database and cancels a statement past analyst_statement_max_s (terminates it past
-- twice that: a statement that ignores the cancel), terminates a session idle in a
-- transaction past analyst_idle_in_transaction_max_s, and terminates a session whose
-- private memory (with its parallel workers') is past analyst_memory_max_mb. Each action is
-- an audit.log row (action 'analyst_limit.cancel' / 'analyst_limit.terminate').

-- RssAnon of a server process in kB (plpython/backend_memory.py); NULL where unreadable.
CREATE OR REPLACE FUNCTION auth.backend_private_kb(p_pid integer) RETURNS bigint
LANGUAGE plpython3u VOLATILE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
{{plpython:backend_memory}}
return private_kb(p_pid)
$$;
REVOKE EXECUTE ON FUNCTION auth.backend_private_kb(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.backend_private_kb(integer) TO secinf_owner;

-- One round of the watchdog; returns what it did, one object per backend acted on.
CREATE OR REPLACE FUNCTION auth.analyst_watchdog() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_stmt_s double precision := coalesce(pipeline.setting_float(NULL, 'analyst_statement_max_s'), 60);
  v_idle_s double precision :=
    coalesce(pipeline.setting_float(NULL, 'analyst_idle_in_transaction_max_s'), 300);
  v_mem_kb bigint :=
    round(coalesce(pipeline.setting_float(NULL, 'analyst_memory_max_mb'), 1024) * 1024);
  v_now    timestamptz := clock_timestamp();
  v_done   jsonb := '[]';
  v_act    jsonb;
  b        record;
BEGIN
  PERFORM pg_stat_clear_snapshot();  -- this round's backends, not the transaction's first look
  FOR b IN
    WITH s AS (
      SELECT a.pid, coalesce(a.leader_pid, a.pid) AS leader, a.usename::text AS usename,
             a.backend_type, a.state, a.query_start, a.state_change, a.query
      FROM pg_stat_activity a JOIN pg_roles r ON r.oid = a.usesysid
      WHERE a.datname = current_database() AND NOT r.rolsuper
        AND pg_has_role(a.usesysid, 'analyst', 'USAGE')  -- not authenticator (NOINHERIT)
        AND a.backend_type IN ('client backend', 'parallel worker')
    ), mem AS (
      SELECT s.leader, sum(auth.backend_private_kb(s.pid))::bigint AS kb FROM s GROUP BY s.leader
    )
    SELECT s.*, m.kb,
           extract(epoch FROM v_now - s.query_start) AS running_s,
           extract(epoch FROM v_now - s.state_change) AS idle_s
    FROM s JOIN mem m ON m.leader = s.pid
    WHERE s.backend_type = 'client backend'
  LOOP
    v_act := CASE
      WHEN b.kb > v_mem_kb THEN
        jsonb_build_object('reason', 'memory', 'action', 'terminate',
                           'observed_kb', b.kb, 'cap_kb', v_mem_kb)
      WHEN b.state IN ('active', 'fastpath function call') AND b.running_s > 2 * v_stmt_s THEN
        jsonb_build_object('reason', 'statement', 'action', 'terminate',
                           'observed_s', round(b.running_s::numeric, 1), 'cap_s', v_stmt_s)
      WHEN b.state IN ('active', 'fastpath function call') AND b.running_s > v_stmt_s THEN
        jsonb_build_object('reason', 'statement', 'action', 'cancel',
                           'observed_s', round(b.running_s::numeric, 1), 'cap_s', v_stmt_s)
      WHEN b.state LIKE 'idle in transaction%' AND b.idle_s > v_idle_s THEN
        jsonb_build_object('reason', 'idle_in_transaction', 'action', 'terminate',
                           'observed_s', round(b.idle_s::numeric, 1), 'cap_s', v_idle_s)
    END;
    CONTINUE WHEN v_act IS NULL;
    IF v_act ->> 'action' = 'cancel' THEN
      PERFORM pg_cancel_backend(b.pid);
    ELSE
      PERFORM pg_terminate_backend(b.pid);
    END IF;
    v_act := v_act || jsonb_build_object('pid', b.pid, 'role', b.usename,
                                         'query', left(b.query, 500));
    PERFORM audit.record(
      (SELECT m.project_id FROM core.memberships m
       WHERE m.kind = 'db_role' AND m.member = b.usename ORDER BY m.project_id LIMIT 1),
      'analyst_limit.' || (v_act ->> 'action'), b.usename, v_act);
    v_done := v_done || v_act;
  END LOOP;
  RETURN v_done;
END
$$;
REVOKE EXECUTE ON FUNCTION auth.analyst_watchdog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.analyst_watchdog() TO secinf_owner, pipeline;

-- The cron job's body: a round every p_every_s seconds for p_budget_s seconds, a commit
-- after each (pg_cron 1.4 schedules by the minute). (No SET clause: a procedure with one
-- cannot COMMIT; every name is schema-qualified.)
CREATE OR REPLACE PROCEDURE auth.analyst_watchdog_run(p_budget_s double precision DEFAULT 55,
                                                      p_every_s double precision DEFAULT 5)
LANGUAGE plpgsql
AS $$
DECLARE
  v_deadline timestamptz := pg_catalog.clock_timestamp()
                            + pg_catalog.make_interval(secs => p_budget_s);
BEGIN
  LOOP
    PERFORM auth.analyst_watchdog();
    COMMIT;
    EXIT WHEN pg_catalog.clock_timestamp() + pg_catalog.make_interval(secs => p_every_s)
              > v_deadline;
    PERFORM pg_catalog.pg_sleep(p_every_s);
    COMMIT;
  END LOOP;
END
$$;
REVOKE EXECUTE ON PROCEDURE auth.analyst_watchdog_run(double precision, double precision)
  FROM PUBLIC;
GRANT EXECUTE ON PROCEDURE auth.analyst_watchdog_run(double precision, double precision)
  TO secinf_owner, pipeline;

-- ======================================================================= report
-- What does not hold on this server, for `secinf db status`: CONNECT or TEMP left to
-- PUBLIC here; the watchdog not scheduled (only the cron database schedules it); backends'
-- memory unreadable (the watchdog then cannot cap it); other databases analysts can
-- connect to: CONNECT open to PUBLIC there (a locked-down secinf database grants `analyst`
-- explicitly) and pg_hba.conf not rejecting members of `analyst` for both local and host
-- connections (the first matching line, addresses not considered).
CREATE OR REPLACE FUNCTION auth.analyst_limits_report() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hba_readable boolean := true;
  v_open text[];
  v_cron boolean := EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_cron');
  v_scheduled boolean;
BEGIN
  BEGIN
    PERFORM count(*) FROM pg_hba_file_rules;
  EXCEPTION WHEN insufficient_privilege THEN
    v_hba_readable := false;
  END;
  SELECT coalesce(array_agg(d.datname::text ORDER BY d.datname), '{}') INTO v_open
  FROM pg_database d
  WHERE d.datallowconn AND d.datname <> current_database()
    AND has_database_privilege('public', d.oid, 'CONNECT')
    AND NOT (v_hba_readable AND (
      SELECT bool_and(coalesce(h.auth_method = 'reject', true))
      FROM (VALUES ('local'), ('host')) t (kind)
      LEFT JOIN LATERAL (
        SELECT x.auth_method FROM pg_hba_file_rules x
        WHERE x.error IS NULL
          AND CASE t.kind WHEN 'local' THEN x.type = 'local' ELSE x.type LIKE 'host%' END
          AND x.database && ARRAY['all', d.datname::text]
          AND x.user_name && ARRAY['all', '+analyst']
        ORDER BY x.line_number LIMIT 1) h ON true));
  IF v_cron THEN
    EXECUTE 'SELECT EXISTS (SELECT FROM cron.job WHERE jobname = $1 AND active)'
      INTO v_scheduled USING 'secinf-analyst-watchdog';
  END IF;
  RETURN jsonb_build_object(
    'public_connect', has_database_privilege('public', current_database(), 'CONNECT'),
    'public_temp', has_database_privilege('public', current_database(), 'TEMPORARY'),
    'watchdog_scheduled', v_scheduled,   -- NULL: pg_cron is in another database
    'memory_readable', auth.backend_private_kb(pg_backend_pid()) IS NOT NULL,
    'hba_readable', v_hba_readable,
    'open_databases', to_jsonb(v_open));
END
$$;
REVOKE EXECUTE ON FUNCTION auth.analyst_limits_report() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.analyst_limits_report() TO secinf_owner, pipeline;
