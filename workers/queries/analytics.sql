-- Analytics: refresh the materialized views and read the metrics (sql/85x_analytics*.sql).

-- name: refresh :many
-- Refresh every analytics materialized view; one row per view with the ms taken.
SELECT matview, concurrent, ms FROM analytics.refresh(%(concurrently)s);

-- name: project_sources :many
-- The project's sources, optionally only those named; ids in name order.
SELECT s.source_id, s.name
FROM ingest.sources s
WHERE s.project_id = %(project_id)s
  AND (%(names)s::text[] IS NULL OR s.name = ANY (%(names)s::text[]))
ORDER BY s.name;

-- name: project_metrics :one
-- The caller's project metrics over [from, to) as one jsonb document.
SELECT api.project_metrics(%(from)s, %(to)s, %(source_ids)s::bigint[]) AS doc;
