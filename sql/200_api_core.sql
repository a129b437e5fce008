-- The api schema, part 1: authentication, the caller, projects and keys.
-- Everything PostgREST serves lives in `api`; views are security_invoker so RLS applies
-- as the caller, and every object carries a COMMENT (PostgREST's OpenAPI text).

-- ---------------------------------------------------------------- pre-request
-- Runs before every PostgREST request: a JWT minted from an API key dies with the key;
-- then rate limits, the daily api_requests quota and the request's count
-- (billing.admit_request, sql/251_billing_rate_limits_api.sql: 429 with Retry-After, or
-- 402). VOLATILE: it sets response headers and takes tokens (in shared memory: GETs run
-- in READ ONLY transactions).
CREATE OR REPLACE FUNCTION api.pre_request() RETURNS void
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c jsonb := auth.claims();
BEGIN
  IF c ? 'key_id' AND NOT core.key_is_live((c ->> 'key_id')::uuid) THEN
    RAISE EXCEPTION 'API key revoked or expired' USING ERRCODE = 'PT401',
      HINT = 'Exchange a valid key for a new token (POST /rpc/exchange_key).';
  END IF;
  -- A token from api.login dies with its account (core.account_is_live, 50_review_accounts).
  IF c ? 'account' AND NOT core.account_is_live(c ->> 'sub') THEN
    RAISE EXCEPTION 'account disabled' USING ERRCODE = 'PT401',
      HINT = 'Ask an administrator to re-enable it (secinf accounts).';
  END IF;
  -- ... and with its membership: a removed member or a changed role signs in again
  -- (auth.project_ids() sees no project for such a token either).
  IF c ? 'project_id' AND cardinality(auth.project_ids()) = 0 THEN
    RAISE EXCEPTION 'your access to this project has changed since you signed in'
      USING ERRCODE = 'PT401',
            HINT = 'Sign in again (or exchange your API key again) for your current role.';
  END IF;
  PERFORM billing.admit_request();
END
$$;
COMMENT ON FUNCTION api.pre_request() IS
  'Checks, before every request, that the API key or account behind the token is still valid '
  'and still has the token''s project and role; then applies the rate limits (429) and the '
  'daily API request quota (402), and counts the request.';

-- ---------------------------------------------------------------- authentication
-- Exchanges of one key (by its lookup prefix) are rate-limited (billing.admit_key_exchange).
CREATE OR REPLACE FUNCTION api.exchange_key(api_key text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM billing.admit_key_exchange(api_key);
  RETURN core.exchange_api_key(api_key);
END
$$;
COMMENT ON FUNCTION api.exchange_key(text) IS
  'Exchange an API key (sik_…) for a signed JWT and its claims, valid for at most one hour. '
  'Exchanges of one key are rate-limited (429 with Retry-After).';

CREATE OR REPLACE FUNCTION api.me() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT jsonb_build_object('role', auth.role(), 'subject', auth.subject(),
                            'project_ids', to_jsonb(auth.project_ids()))
$$;
COMMENT ON FUNCTION api.me() IS 'The caller as the database sees it: role, subject and projects.';

-- ---------------------------------------------------------------- projects
CREATE OR REPLACE VIEW api.projects WITH (security_invoker = true) AS
  SELECT p.project_id, o.slug AS org, p.slug, p.name, o.plan_id AS plan, p.created_at
  FROM core.projects p
  JOIN core.organizations o USING (org_id);
COMMENT ON VIEW api.projects IS 'The projects the caller belongs to.';

-- ---------------------------------------------------------------- keys
CREATE OR REPLACE VIEW api.api_keys WITH (security_invoker = true) AS
  SELECT key_id, project_id, role, lookup_prefix, label, created_by, created_at, expires_at,
         revoked_at, last_used_at,
         (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS live, owner
  FROM core.api_keys;
COMMENT ON VIEW api.api_keys IS
  'API keys of the caller''s project (project admins only); never the key or its hash.';

DROP FUNCTION IF EXISTS api.create_api_key(text, timestamptz, text);  -- gained `owner`
CREATE OR REPLACE FUNCTION api.create_api_key(
  role text, expires_at timestamptz DEFAULT NULL, label text DEFAULT NULL,
  owner text DEFAULT NULL
) RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT to_jsonb(k)
  FROM core.create_api_key((auth.project_ids())[1], role, expires_at, label, owner) k
$$;
COMMENT ON FUNCTION api.create_api_key(text, timestamptz, text, text) IS
  'Create an API key in the caller''s project (project admins). The key is shown only in this '
  'answer. owner: the account (a member of the project) the key acts for in reviews; a key '
  'without one cannot decide candidates.';

CREATE OR REPLACE FUNCTION api.revoke_api_key(lookup_prefix text) RETURNS boolean
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT core.revoke_api_key(lookup_prefix) $$;
COMMENT ON FUNCTION api.revoke_api_key(text) IS
  'Revoke an API key of the caller''s project by its lookup prefix (project admins).';
