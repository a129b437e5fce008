-- Tenancy queries used by the CLI (admin connection).

-- name: create_project :one
-- (a separate statement reads the result: this one's snapshot predates the insert)
SELECT project_id FROM core.create_project(%(org)s, %(slug)s, %(name)s, %(plan)s);

-- name: project_info :one
-- The project's slug, name and organization.
SELECT p.project_id, p.slug, p.name, o.slug AS org, o.org_id
FROM core.projects p JOIN core.organizations o USING (org_id)
WHERE p.project_id = %(project_id)s;

-- name: resolve_project :one
-- The project id of an org/project label (or an id).
SELECT core.resolve_project(%(ref)s) AS project_id;

-- name: list_projects :many
-- Every project with its plan and live key count.
SELECT o.slug AS org, p.slug, p.name, p.project_id, o.plan_id AS plan, p.created_at,
       (SELECT count(*) FROM core.api_keys k
        WHERE k.project_id = p.project_id AND k.revoked_at IS NULL) AS live_keys
FROM core.projects p JOIN core.organizations o USING (org_id)
ORDER BY o.slug, p.slug;

-- name: create_api_key :one
-- A new API key of the project for the role; the key shown once.
SELECT key_id, api_key, lookup_prefix, expires_at
FROM core.create_api_key(%(project_id)s, %(role)s, %(expires_at)s, %(label)s, %(owner)s);

-- name: revoke_api_key :one
-- Revoke the key with this lookup prefix; whether it was found.
SELECT core.revoke_api_key(%(prefix)s) AS found;

-- name: list_api_keys :many
-- The project's API keys (never the keys themselves).
SELECT lookup_prefix, role, owner, label, created_at, expires_at, revoked_at, last_used_at
FROM core.api_keys WHERE project_id = %(project_id)s ORDER BY created_at;

-- name: lock_down_database :one
-- CONNECT and TEMP of this database for the project's roles only (sql/961_analyst_limits.sql):
-- database privileges are not copied by CREATE DATABASE … TEMPLATE.
SELECT auth.lock_down_database();

-- name: add_member :one
-- Make a user or database role a member of the project with the role.
SELECT core.add_member(%(project_id)s, %(kind)s, %(member)s, %(role)s);

-- name: apply_analyst_connection_limits :one
-- Every analyst login's CONNECTION LIMIT by its projects' plans (sql/960_analyst_connections.sql).
SELECT auth.apply_analyst_connection_limits();

-- name: list_analysts :many
-- The analyst database roles and their projects.
SELECT m.member AS role_name, o.slug || '/' || p.slug AS project, m.created_at
FROM core.memberships m
JOIN core.projects p USING (project_id)
JOIN core.organizations o USING (org_id)
WHERE m.kind = 'db_role' AND m.role = 'analyst'
ORDER BY m.member, project;

-- name: active_secret :one
-- The active JWT signing secret.
SELECT auth.active_secret() AS secret;

-- name: rotate_signing_key :one
-- Start signing with a new JWT key (the old one still verifies).
SELECT auth.rotate_signing_key() AS rotated;

-- name: analyst_group_settings :many
-- The `analyst` group's own settings in every database (migration 0010's caps), as key/value.
SELECT split_part(c, '=', 1) AS key, substr(c, strpos(c, '=') + 1) AS value
FROM pg_db_role_setting d, unnest(d.setconfig) AS c
WHERE d.setrole = 'analyst'::regrole AND d.setdatabase = 0
