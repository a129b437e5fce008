-- Streaming replication of the project's cluster (workers/db/replica.py, `secinf db
-- replica …` and `secinf db status`). Run as the admin (superuser) connection.

-- ---------------------------------------------------------------- on the primary
-- name: primary_replication :many
-- Every standby streaming from this server: how far its replay is behind the primary's
-- WAL (bytes) and the server's own lag estimate (NULL once the standby has been idle).
SELECT application_name, client_addr::text AS client_addr, state, sync_state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds,
       replay_lsn::text AS replay_lsn, pg_current_wal_lsn()::text AS primary_lsn
FROM pg_catalog.pg_stat_replication
ORDER BY application_name, pid;

-- name: slot :one
-- The replica's physical slot: the WAL the primary keeps for it.
SELECT slot_name, active,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes
FROM pg_catalog.pg_replication_slots
WHERE slot_name = %(slot)s;

-- name: drop_slot :one
-- Drop the replica's slot on the primary (secinf db replica down).
SELECT pg_drop_replication_slot(%(slot)s);

-- ---------------------------------------------------------------- on the replica
-- name: replica_state :one
-- Whether it is a standby, what it received and replayed, and how old the last replayed
-- commit is (the seconds of lag while the replay is behind what was received).
SELECT pg_is_in_recovery() AS in_recovery,
       current_setting('cluster_name') AS cluster_name,
       pg_last_wal_receive_lsn()::text AS receive_lsn,
       pg_last_wal_replay_lsn()::text AS replay_lsn,
       pg_last_xact_replay_timestamp() AS last_replay_at,
       extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
         AS last_replay_age_seconds,
       (pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn())
         AS replay_caught_up,
       (SELECT r.status FROM pg_catalog.pg_stat_wal_receiver r) AS receiver_status;
