-- secinf: run-as superuser
-- The audit chain's horizon (sql/050_audit.sql): which audit rows are final. A superuser's
-- function because only it sees every session's transaction id (pg_stat_activity hides
-- them from other roles since issue 16); it reads ids and ages only, and takes no input.

-- The age() of the oldest transaction of this database that may still insert audit rows:
-- running with a transaction id, or prepared (two-phase) and not yet committed. A row whose
-- age(xmin) is greater came from a transaction that ended before every one of those began,
-- and no row older than it can appear later. -1: none such (every committed row is final).
-- Transactions of other databases of the cluster never write this log and do not count.
CREATE OR REPLACE FUNCTION audit.write_horizon() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(max(x.age), -1)
  FROM (SELECT age(a.backend_xid)::bigint AS age FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
          AND a.pid <> pg_backend_pid()
        UNION ALL
        SELECT age(p.transaction)::bigint FROM pg_prepared_xacts p
        WHERE p.database = current_database()) x
$$;
REVOKE EXECUTE ON FUNCTION audit.write_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.write_horizon() TO secinf_owner;
