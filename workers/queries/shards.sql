-- The shard map (workers/shards.py): which Postgres cluster holds which project. It lives in
-- a control database of its own (SECINF_SHARDS), never in a tenant database.

-- name: control_outdated :one
-- Whether the control database lacks the shard map's tables, or columns added since it was
-- made (a map made before read replicas and HTTP upstreams is upgraded by ensure_control).
SELECT to_regclass('control.placements') IS NULL
    OR (SELECT count(*) FROM pg_attribute a
        WHERE a.attrelid = to_regclass('control.shards') AND NOT a.attisdropped
          AND a.attname IN ('read_conninfo', 'api_url', 'files_url', 'read_api_url')) < 4 AS outdated;

-- name: ensure_control :exec
-- Idempotent: run on first use of the map, so a fresh control database needs no step
-- (under a lock: two first uses at once must not race on CREATE … IF NOT EXISTS).
SELECT pg_advisory_xact_lock(hashtext('secinf.control'));
CREATE SCHEMA IF NOT EXISTS control;
CREATE TABLE IF NOT EXISTS control.shards (
    name      text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    conninfo  text NOT NULL,          -- libpq conninfo of the shard's application database
    added_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS control.placements (
    org         text NOT NULL,        -- organization slug
    project     text NOT NULL,        -- project slug
    shard       text NOT NULL REFERENCES control.shards (name),
    project_id  uuid UNIQUE,          -- filled in once the project exists on its shard
    placed_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org, project)
);
-- Added after the first maps were made: ADD COLUMN IF NOT EXISTS upgrades those in place.
ALTER TABLE control.shards
    -- libpq conninfo of the shard's read replica (NULL: its reads go to conninfo)
    ADD COLUMN IF NOT EXISTS read_conninfo text,
    -- base URL of the shard's PostgREST, where `secinf route` sends its API requests
    ADD COLUMN IF NOT EXISTS api_url text CHECK (api_url ~ '^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$'),
    -- base URL of the shard's file service, where `secinf route` sends /files/…
    ADD COLUMN IF NOT EXISTS files_url text CHECK (files_url ~ '^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$'),
    -- base URL of a read-only PostgREST on the shard's replica: `secinf route` sends the
    -- shard's API GET and HEAD requests there (NULL: to api_url)
    ADD COLUMN IF NOT EXISTS read_api_url text CHECK (read_api_url ~ '^https?://[^/?#[:space:]]+(/[^?#[:space:]]*)?$');

-- name: add_shard :one
-- Add a shard, or change its conninfo; a replica or URL not given keeps its value. The row.
INSERT INTO control.shards (name, conninfo, read_conninfo, api_url, files_url, read_api_url)
VALUES (%(name)s, %(conninfo)s, %(read_conninfo)s, %(api_url)s, %(files_url)s, %(read_api_url)s)
ON CONFLICT (name) DO UPDATE SET
    conninfo = excluded.conninfo,
    read_conninfo = coalesce(excluded.read_conninfo, control.shards.read_conninfo),
    api_url = coalesce(excluded.api_url, control.shards.api_url),
    files_url = coalesce(excluded.files_url, control.shards.files_url),
    read_api_url = coalesce(excluded.read_api_url, control.shards.read_api_url)
RETURNING name, conninfo, read_conninfo, api_url, files_url, read_api_url, added_at;

-- name: set_replica :one
-- Give a shard its read replica and the replica's read-only PostgREST, or take them away
-- (NULL); the row, none for an unknown name.
UPDATE control.shards SET read_conninfo = %(read_conninfo)s, read_api_url = %(read_api_url)s
WHERE name = %(name)s
RETURNING name, conninfo, read_conninfo, api_url, files_url, read_api_url, added_at;

-- name: list_shards :many
-- In the order they were added: the first is the default of commands without --project.
SELECT s.name, s.conninfo, s.read_conninfo, s.api_url, s.files_url, s.read_api_url, s.added_at,
       (SELECT count(*) FROM control.placements p WHERE p.shard = s.name) AS projects
FROM control.shards s ORDER BY s.added_at, s.name;

-- name: least_loaded :one
-- The shard with the fewest projects (ties: the oldest), where a new project goes.
SELECT s.name FROM control.shards s
ORDER BY (SELECT count(*) FROM control.placements p WHERE p.shard = s.name), s.added_at, s.name
LIMIT 1;

-- name: place :one
-- A placement is changed only while the project has no id yet (it is not created anywhere);
-- moving an existing project is a shard move (docs/scale.md), not an update of this row.
INSERT INTO control.placements (org, project, shard) VALUES (%(org)s, %(project)s, %(shard)s)
ON CONFLICT (org, project) DO UPDATE SET shard = excluded.shard, placed_at = now()
    WHERE control.placements.project_id IS NULL
RETURNING org, project, shard, project_id;

-- name: placement :one
-- One project's placement (org and slug), if placed.
SELECT org, project, shard, project_id FROM control.placements
WHERE org = %(org)s AND project = %(project)s;

-- name: set_project_id :exec
-- Record the project's id once it exists on its shard.
UPDATE control.placements SET project_id = %(project_id)s
WHERE org = %(org)s AND project = %(project)s;

-- name: find_placements :many
-- A project reference as `secinf` takes it: its uuid, org/slug, or a slug alone.
SELECT p.org, p.project, p.shard, p.project_id, s.conninfo, s.read_conninfo, s.api_url,
       s.files_url
FROM control.placements p JOIN control.shards s ON s.name = p.shard
WHERE p.project_id::text = %(ref)s
   OR p.org || '/' || p.project = %(ref)s
   OR (strpos(%(ref)s, '/') = 0 AND p.project = %(ref)s);

-- name: list_placements :many
-- Every placement, by organization and project.
SELECT p.org, p.project, p.shard, p.project_id, p.placed_at
FROM control.placements p ORDER BY p.org, p.project;

-- name: route_table :many
-- What `secinf route` routes by: every created project's id with its shard's upstreams.
SELECT p.project_id, p.org, p.project, p.shard, s.api_url, s.files_url
FROM control.placements p JOIN control.shards s ON s.name = p.shard
WHERE p.project_id IS NOT NULL ORDER BY p.org, p.project;
