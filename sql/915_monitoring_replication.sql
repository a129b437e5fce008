-- secinf: run-as superuser
-- The replication side of the monitoring views (docs/operations.md, "Read replica"): per
-- standby streaming from this server, its state and how far its replay is behind. The
-- LSN and lag columns of pg_stat_replication show only to superusers and pg_read_all_stats
-- (whose members see every session's query text), so only a superuser's function reads
-- them for secinf_monitor. It returns names, states, bytes and seconds: no address, no
-- query, nothing of a tenant. A server without standbys returns no rows.

-- ======================================================================= standbys
-- Per standby: its application_name (a secinf replica's cluster_name: secinf_replica),
-- state (streaming, catchup, …), bytes of WAL not yet replayed, and the server's replay
-- lag estimate in seconds (0 once it has replayed everything: the view's NULL when idle).
CREATE OR REPLACE FUNCTION monitoring.replication_stats()
RETURNS TABLE (application_name text, state text, lag_bytes double precision,
               replay_lag_seconds double precision)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT r.application_name::text, r.state::text,
         coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), r.replay_lsn), 0)::double precision,
         CASE WHEN r.replay_lsn = pg_current_wal_lsn() THEN 0
              ELSE coalesce(extract(epoch FROM r.replay_lag), 0) END::double precision
  FROM pg_stat_replication r
$$;
REVOKE EXECUTE ON FUNCTION monitoring.replication_stats() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION monitoring.replication_stats() TO secinf_owner;
