-- Backup and restore queries (workers/db/backup.py, `secinf db backup|backups|restore`).

-- name: archive_settings :many
-- What the running server archives with; pending_restart: a changed archive_mode waits.
SELECT name, setting, pending_restart
FROM pg_settings
WHERE name IN ('archive_mode', 'archive_command', 'wal_level');

-- name: server_now :one
-- The server's clock.
SELECT now() AS now;

-- name: seal_wal :one
-- A commit record stamped now: recovery to a time target stops only at a commit or abort
-- after the target, so one must exist in the archive for any time up to now.
SELECT pg_current_xact_id() AS xid;

-- name: in_recovery :one
-- Whether the server is a standby (or restoring).
SELECT pg_is_in_recovery() AS in_recovery;

-- name: server_location :one
-- For the pgBackRest configuration printed for a SECINF_DSN server (superuser or
-- pg_read_all_settings).
SELECT current_setting('data_directory') AS data_directory,
       current_setting('port') AS port,
       current_setting('unix_socket_directories') AS socket_dirs;
