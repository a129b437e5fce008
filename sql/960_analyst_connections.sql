-- secinf: run-as superuser
-- Connection limits of analysts' direct logins (issue 18): API callers get token buckets in
-- api.pre_request; an analyst connects with SQL instead, so each login gets a
-- CONNECTION LIMIT by the plan of its projects' organizations (and the statement, idle and
-- memory caps of sql/961_analyst_limits.sql). ALTER ROLE needs CREATEROLE: this file runs as
-- a superuser, and `secinf analysts add` and the pg_cron job of
-- sql/840_cron_analyst_connections.sql re-apply it (a plan changes with a subscription).

-- ======================================================================= settings
-- Concurrent connections per analyst login by plan ('default': a plan not named here); a
-- login in projects of several plans gets the largest.
INSERT INTO pipeline.settings (project_id, key, value) VALUES
  (NULL, 'analyst_connection_limit', '{"free": 2, "team": 10, "enterprise": 25, "default": 5}')
ON CONFLICT (project_id, key) DO NOTHING;

-- ======================================================================= limits
-- The connection limit of each analyst login with a membership in this database (roles are
-- cluster-wide, memberships per database: a login of another database is not touched).
CREATE OR REPLACE FUNCTION auth.analyst_connection_limits()
RETURNS TABLE (role_name text, connection_limit integer, current_limit integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH setting AS (
    SELECT coalesce((SELECT s.value FROM pipeline.settings s
                     WHERE s.project_id IS NULL AND s.key = 'analyst_connection_limit'),
                    '{"default": 5}') AS v
  )
  SELECT r.rolname::text,
         max(greatest(coalesce((st.v ->> o.plan_id)::integer, (st.v ->> 'default')::integer, 5),
                      1))::integer,
         r.rolconnlimit
  FROM core.memberships m
  JOIN pg_roles r ON r.rolname = m.member AND r.rolcanlogin AND NOT r.rolsuper
  JOIN core.projects p ON p.project_id = m.project_id
  JOIN core.organizations o ON o.org_id = p.org_id
  CROSS JOIN setting st
  WHERE m.kind = 'db_role' AND pg_has_role(r.oid, 'analyst', 'MEMBER')
  GROUP BY r.rolname, r.rolconnlimit
$$;

-- Set every analyst login's CONNECTION LIMIT to its plan's; returns the logins changed.
CREATE OR REPLACE FUNCTION auth.apply_analyst_connection_limits() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r record;
  v_done jsonb := '[]';
BEGIN
  FOR r IN SELECT * FROM auth.analyst_connection_limits() l
           WHERE l.connection_limit IS DISTINCT FROM l.current_limit
  LOOP
    BEGIN
      EXECUTE format('ALTER ROLE %I CONNECTION LIMIT %s', r.role_name, r.connection_limit);
      v_done := v_done || jsonb_build_object('role', r.role_name, 'from', r.current_limit,
                                             'to', r.connection_limit);
    EXCEPTION WHEN undefined_object THEN
      NULL;  -- a login dropped meanwhile
    END;
  END LOOP;
  RETURN v_done;
END
$$;
REVOKE EXECUTE ON FUNCTION auth.analyst_connection_limits(),
  auth.apply_analyst_connection_limits() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.analyst_connection_limits(),
  auth.apply_analyst_connection_limits() TO secinf_owner, pipeline;

SELECT auth.apply_analyst_connection_limits();
