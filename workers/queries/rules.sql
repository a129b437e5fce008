-- Queries of the rules concern (workers/rules): ontologies, compiled rule SQL, backfill.

-- name: find_ontology :one
-- The project's ontology of this name and version, if loaded.
SELECT ontology_id, sha256, active FROM rules.ontologies
WHERE project_id = %(project_id)s AND name = %(name)s AND version = %(version)s;

-- name: insert_ontology :one
-- Store a parsed ontology; its id.
INSERT INTO rules.ontologies (project_id, name, version, sha256, yaml, parsed)
VALUES (%(project_id)s, %(name)s, %(version)s, %(sha256)s, %(yaml)s, %(parsed)s)
RETURNING ontology_id;

-- name: delete_compiled :exec
-- Drop the ontology's compiled rules (before compiling again).
DELETE FROM rules.compiled WHERE ontology_id = %(ontology_id)s;

-- name: insert_compiled :exec
-- One compiled rule of the ontology.
INSERT INTO rules.compiled (ontology_id, project_id, type, kind, position, lookback_s, sql,
                            sha256)
VALUES (%(ontology_id)s, %(project_id)s, %(type)s, %(kind)s, %(position)s, %(lookback_s)s,
        %(sql)s, %(sha256)s);

-- name: set_pair_rows_sql :exec
-- The ontology's compiled pair-rows query.
UPDATE rules.ontologies SET pair_rows_sql = %(sql)s WHERE ontology_id = %(ontology_id)s;

-- name: deactivate :exec
-- Deactivate the project's other ontologies.
UPDATE rules.ontologies SET active = false
WHERE project_id = %(project_id)s AND active AND ontology_id <> %(ontology_id)s;

-- name: activate :exec
-- Make the ontology the project's active one.
UPDATE rules.ontologies SET active = true WHERE ontology_id = %(ontology_id)s;

-- name: put_setting :exec
-- Set one pipeline setting of the project.
INSERT INTO pipeline.settings (project_id, key, value, updated_at)
VALUES (%(project_id)s, %(key)s, %(value)s, now())
ON CONFLICT (project_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now();

-- name: list_ontologies :many
-- The project's ontologies with their rule and candidate counts.
SELECT o.ontology_id, o.name, o.version, o.sha256, o.active, o.loaded_at,
       (SELECT count(*) FROM rules.compiled c WHERE c.ontology_id = o.ontology_id) AS rules,
       (SELECT count(*) FROM candidates.candidates c
        WHERE c.ontology_id = o.ontology_id) AS candidates
FROM rules.ontologies o WHERE o.project_id = %(project_id)s
ORDER BY o.name, o.version;

-- name: active_ontology :one
-- The project's active ontology with its YAML.
SELECT ontology_id, name, version, yaml FROM rules.ontologies
WHERE project_id = %(project_id)s AND active;

-- name: compiled_sql :many
-- The ontology's compiled rules in evaluation order.
SELECT c.type, c.kind, c.lookback_s, c.sql FROM rules.compiled c
WHERE c.ontology_id = %(ontology_id)s ORDER BY c.position;

-- name: project_sources :many
-- The project's sources, or the one named (or numbered) so.
SELECT s.source_id, s.name FROM ingest.sources s
WHERE s.project_id = %(project_id)s
  AND (%(source)s::text IS NULL OR s.name = %(source)s OR s.source_id::text = %(source)s)
ORDER BY s.source_id;

-- name: run_rules :one
-- Run the active rules over the source's features in [from, to); rows inserted.
SELECT candidates.run_rules(%(source_id)s,
                            coalesce(%(from_ts)s::timestamptz, '-infinity'),
                            %(to_ts)s) AS inserted;

-- name: newest_feature :one
-- The newest kinematics time of the source.
SELECT max(k.ts) AS newest FROM features.kinematics k WHERE k.source_id = %(source_id)s;
