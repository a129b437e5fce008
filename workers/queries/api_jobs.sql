-- Queries of the jobs customers request through the API (workers/pipeline/jobs.py, workers/rules/jobs.py).
-- The worker runs them as `pipeline`; every query names the job's project.

-- name: project_source :one
-- The source, if it belongs to the project.
SELECT s.source_id, s.name FROM ingest.sources s
WHERE s.source_id = %(source_id)s AND s.project_id = %(project_id)s;

-- name: mark_dirty :one
-- A re-process request: the pipeline re-computes the range at its next tick (docs/pipeline.md).
INSERT INTO ingest.dirty_ranges (project_id, source_id, from_ts, to_ts, reason)
VALUES (%(project_id)s, %(source_id)s, %(from_ts)s, %(to_ts)s, %(reason)s)
RETURNING range_id;

-- name: source_status :one
-- The source's pipeline watermark, newest point and pending dirty ranges.
SELECT pipeline.watermark(s.source_id) AS watermark, s.high_water AS newest_ts,
       (SELECT count(*) FROM ingest.dirty_ranges d WHERE d.source_id = s.source_id)
         AS dirty_pending
FROM ingest.sources s WHERE s.source_id = %(source_id)s;
