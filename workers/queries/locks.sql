-- Session advisory locks keyed by text (workers/db/locks.py): one bigint key per text,
-- hashtextextended(key, 0), as the SQL tier's own advisory locks are keyed.

-- name: try_lock :one
-- Take the session lock on `key` if no other session holds it; whether it was taken.
SELECT pg_try_advisory_lock(hashtextextended(%(key)s, 0)) AS locked;

-- name: unlock :one
-- Release the session lock on `key`; whether this session held it.
SELECT pg_advisory_unlock(hashtextextended(%(key)s, 0)) AS unlocked;
