-- Queries of `secinf db …` (workers/db/checks.py).

-- name: has_analyst_limits :one
-- Whether the analyst limits report exists (a migrated database).
SELECT to_regprocedure('auth.analyst_limits_report()') IS NOT NULL AS ok;

-- name: analyst_limits_report :one
-- What of the analyst limits does not hold on this server (sql/961_analyst_limits.sql).
SELECT auth.analyst_limits_report() AS report;
