-- Queries of `secinf evaluate` (workers/evaluate).

-- name: find_source :many
-- The source named (or numbered) so, in the project when one is given.
SELECT s.project_id::text AS project_id, s.source_id, s.name, s.time_origin
FROM ingest.sources s
WHERE (s.name = %(source)s OR s.source_id::text = %(source)s)
  AND (%(project)s::text IS NULL OR s.project_id = core.resolve_project(%(project)s));

-- name: candidates :many
-- Strict-tier candidates only: the rules' own decisions (recall-tier ones are left to the
-- scoring model and reviewers).
SELECT c.type, c.actors, c.zone, c.route, c.trigger, c.latency_s, c.start_ts, c.end_ts
FROM candidates.candidates c
WHERE c.source_id = %(source_id)s
  AND c.tier = 'strict'
  AND c.ontology_id = coalesce(%(ontology_id)s::bigint,
                               (SELECT o.ontology_id FROM rules.ontologies o
                                WHERE o.project_id = c.project_id AND o.active))
ORDER BY c.start_ts, c.type;
