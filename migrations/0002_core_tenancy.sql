-- 0002 · tenancy: organizations, projects, memberships, API keys, plans; auth; audit.
-- depends: 0001_extensions_roles
SET ROLE secinf_owner;
SET lock_timeout = '10s';
SET statement_timeout = '15min';

CREATE SCHEMA core;
CREATE SCHEMA auth;
CREATE SCHEMA audit;
CREATE SCHEMA api;

-- ======================================================================= plans
CREATE TABLE core.plans (
  plan_id             text PRIMARY KEY,
  description         text NOT NULL,
  points_per_month    bigint,            -- NULL: unlimited
  api_requests_per_day bigint,           -- NULL: unlimited
  job_priority        bigint NOT NULL DEFAULT 0    -- higher runs first
);
INSERT INTO core.plans VALUES
  ('free',       'Evaluation: small volumes',  5000000,     10000,  0),
  ('team',       'Production for one site',    500000000,   1000000, 5),
  ('enterprise', 'Unlimited, highest priority', NULL,        NULL,   10);

-- ======================================================================= organizations
CREATE TABLE core.organizations (
  org_id     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  slug       text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name       text NOT NULL,
  plan_id    text NOT NULL DEFAULT 'free' REFERENCES core.plans,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE core.projects (
  project_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  org_id     uuid NOT NULL REFERENCES core.organizations ON DELETE CASCADE,
  slug       text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
  name       text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (org_id, slug)
);
CREATE INDEX projects_org_idx ON core.projects (org_id);

-- Who may act in a project: a person/service (kind 'user', member = JWT "sub") or a
-- database login role (kind 'db_role', member = role name) such as an analyst's.
CREATE TABLE core.memberships (
  membership_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id    uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  kind          text NOT NULL CHECK (kind IN ('user', 'db_role')),
  member        text NOT NULL,
  role          text NOT NULL CHECK (role IN ('customer', 'reviewer', 'analyst', 'project_admin')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, kind, member)
);
CREATE INDEX memberships_member_idx ON core.memberships (kind, member);

-- API keys: shown once; only a SHA-256 of the whole key and a non-secret lookup prefix stay.
CREATE TABLE core.api_keys (
  key_id        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  project_id    uuid NOT NULL REFERENCES core.projects ON DELETE CASCADE,
  role          text NOT NULL CHECK (role IN ('customer', 'reviewer', 'analyst', 'project_admin')),
  lookup_prefix text NOT NULL UNIQUE,
  key_hash      bytea NOT NULL CHECK (octet_length(key_hash) = 32),
  label         text,
  created_by    text NOT NULL DEFAULT session_user,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);
CREATE INDEX api_keys_project_idx ON core.api_keys (project_id);

-- ======================================================================= auth
-- Secrets for signing JWTs; readable by the owner only (the signing function is a
-- SECURITY DEFINER). PostgREST must be configured with the active secret.
CREATE TABLE auth.signing_keys (
  kid        text PRIMARY KEY,
  secret     text NOT NULL CHECK (length(secret) >= 32),
  active     boolean NOT NULL DEFAULT true,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX signing_keys_one_active ON auth.signing_keys (active) WHERE active;

-- ======================================================================= audit
-- Append-only: a trigger (sql/) refuses UPDATE and DELETE; no role but the owner inserts.
CREATE TABLE audit.log (
  audit_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at         timestamptz NOT NULL DEFAULT now(),
  project_id uuid,                       -- NULL for cluster-level actions
  actor      text NOT NULL,              -- JWT sub, or the session's database role
  action     text NOT NULL,              -- e.g. 'api_key.create', 'project.create'
  target     text,
  details    jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_project_at_idx ON audit.log (project_id, at);

RESET ROLE;
