-- Tenancy operations: organizations, projects, API keys, memberships.
-- Called by the CLI (as an admin) and, through api wrappers, by project admins.

-- ---------------------------------------------------------------- organizations, projects
-- Create (or return) an organization and a project in it. Admins only.
CREATE OR REPLACE FUNCTION core.create_project(
  p_org_slug text, p_project_slug text, p_name text DEFAULT NULL, p_plan text DEFAULT 'free'
) RETURNS core.projects
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_org uuid;
  v_project core.projects;
BEGIN
  PERFORM auth.require_admin('create projects');
  INSERT INTO core.organizations (slug, name, plan_id)
  VALUES (p_org_slug, p_org_slug, p_plan)
  ON CONFLICT (slug) DO NOTHING;
  SELECT org_id INTO v_org FROM core.organizations WHERE slug = p_org_slug;

  INSERT INTO core.projects (org_id, slug, name)
  VALUES (v_org, p_project_slug, coalesce(p_name, p_project_slug))
  ON CONFLICT (org_id, slug) DO NOTHING
  RETURNING * INTO v_project;
  IF v_project.project_id IS NULL THEN
    SELECT * INTO v_project FROM core.projects WHERE org_id = v_org AND slug = p_project_slug;
  ELSE
    PERFORM audit.record(v_project.project_id, 'project.create',
                         p_org_slug || '/' || p_project_slug, '{}');
  END IF;
  RETURN v_project;
END
$$;

-- Resolve 'org/project', a project slug that is unique, or a project uuid.
CREATE OR REPLACE FUNCTION core.resolve_project(p_ref text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_ids uuid[];
BEGIN
  IF p_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    v_ids := ARRAY(SELECT project_id FROM core.projects WHERE project_id = p_ref::uuid);
  ELSIF position('/' IN p_ref) > 0 THEN
    v_ids := ARRAY(SELECT p.project_id FROM core.projects p JOIN core.organizations o USING (org_id)
                   WHERE o.slug = split_part(p_ref, '/', 1) AND p.slug = split_part(p_ref, '/', 2));
  ELSE
    v_ids := ARRAY(SELECT project_id FROM core.projects WHERE slug = p_ref);
  END IF;
  -- The pipeline role (workers: an uploaded file's ingest) works on every project.
  v_ids := ARRAY(SELECT x FROM unnest(v_ids) x
                 WHERE auth.can_access(x) OR session_user::text = 'pipeline'
                    OR current_setting('role', true) = 'pipeline');
  IF cardinality(v_ids) = 0 THEN
    RAISE EXCEPTION 'unknown project "%"', p_ref USING ERRCODE = 'P0002',
      HINT = 'Name it as org/project (see `secinf project list`) or create it with `secinf project create`.';
  ELSIF cardinality(v_ids) > 1 THEN
    RAISE EXCEPTION 'project "%" is ambiguous: % organizations have it', p_ref, cardinality(v_ids)
      USING ERRCODE = 'P0003', HINT = 'Name it as org/project.';
  END IF;
  RETURN v_ids[1];
END
$$;

-- ---------------------------------------------------------------- API keys
-- Create a key: 'sik_' + 12 hex (lookup prefix, stored) + '_' + 32 random bytes base64url.
-- The whole key is returned once; only its SHA-256 is kept.
-- p_owner: the account the key acts for in reviews (a member of the project), or NULL.
DROP FUNCTION IF EXISTS core.create_api_key(uuid, text, timestamptz, text);  -- gained p_owner
CREATE OR REPLACE FUNCTION core.create_api_key(
  p_project uuid, p_role text, p_expires_at timestamptz DEFAULT NULL, p_label text DEFAULT NULL,
  p_owner text DEFAULT NULL
) RETURNS TABLE (key_id uuid, api_key text, lookup_prefix text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_prefix text := 'sik_' || encode(public.gen_random_bytes(6), 'hex');
  v_secret text := translate(rtrim(encode(public.gen_random_bytes(32), 'base64'), '='), '+/', '-_');
  v_key text := v_prefix || '_' || v_secret;
  v_id uuid;
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  IF p_role NOT IN ('customer', 'reviewer', 'analyst', 'project_admin') THEN
    RAISE EXCEPTION 'unknown key role "%"', p_role USING ERRCODE = '22023',
      HINT = 'Use customer, reviewer, analyst or project_admin.';
  END IF;
  IF p_expires_at IS NOT NULL AND p_expires_at <= now() THEN
    RAISE EXCEPTION 'expiry % is in the past', p_expires_at USING ERRCODE = '22023';
  END IF;
  IF p_owner IS NOT NULL AND NOT EXISTS (
       SELECT FROM core.memberships m JOIN core.accounts a ON a.username = m.member
       WHERE m.project_id = p_project AND m.kind = 'user' AND m.member = p_owner) THEN
    RAISE EXCEPTION 'key owner "%" is not an account of this project', p_owner
      USING ERRCODE = '22023',
            HINT = 'Name the user name of a member (secinf accounts add-member), or no owner.';
  END IF;
  INSERT INTO core.api_keys (project_id, role, lookup_prefix, key_hash, label, created_by,
                             expires_at, owner)
  VALUES (p_project, p_role, v_prefix, public.digest(v_key, 'sha256'), p_label, auth.subject(),
          p_expires_at, p_owner)
  RETURNING core.api_keys.key_id INTO v_id;
  PERFORM audit.record(p_project, 'api_key.create', v_prefix,
                       jsonb_build_object('role', p_role, 'expires_at', p_expires_at,
                                          'owner', p_owner));
  RETURN QUERY SELECT v_id, v_key, v_prefix, p_expires_at;
END
$$;

-- Revoke by lookup prefix (or the whole key). Idempotent; returns whether a key was found.
-- Another project's key is "not found": the answer never names a project the caller is
-- not in.
CREATE OR REPLACE FUNCTION core.revoke_api_key(p_prefix text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key core.api_keys;
BEGIN
  SELECT * INTO v_key FROM core.api_keys k
  WHERE k.lookup_prefix = substring(p_prefix FROM '^(sik_[0-9a-f]{12})');
  IF v_key.key_id IS NULL OR NOT auth.can_access(v_key.project_id) THEN
    RETURN false;
  END IF;
  PERFORM auth.require(v_key.project_id, ARRAY['project_admin']);
  UPDATE core.api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = v_key.key_id;
  PERFORM audit.record(v_key.project_id, 'api_key.revoke', v_key.lookup_prefix, '{}');
  RETURN true;
END
$$;

-- Exchange a key for claims and a signed JWT. One message for every failure, so the
-- answer never tells which keys exist. The token lives auth.token_ttl(role, 'key'), never
-- past the key's own expiry: the caller has no say.
DROP FUNCTION IF EXISTS core.exchange_api_key(text, interval);  -- callers chose the lifetime
CREATE OR REPLACE FUNCTION core.exchange_api_key(p_key text)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_key core.api_keys;
  v_org uuid;
  v_exp timestamptz;
  v_claims jsonb;
  v_secret text := auth.active_secret();
BEGIN
  SELECT * INTO v_key FROM core.api_keys k
  WHERE k.lookup_prefix = substring(p_key FROM '^(sik_[0-9a-f]{12})_[A-Za-z0-9_-]{43}$');
  IF v_key.key_id IS NULL
     OR v_key.key_hash <> public.digest(p_key, 'sha256')
     OR v_key.revoked_at IS NOT NULL
     OR (v_key.expires_at IS NOT NULL AND v_key.expires_at <= now()) THEN
    RAISE EXCEPTION 'invalid, revoked or expired API key' USING ERRCODE = 'PT401',
      HINT = 'Check the key you were given, or ask a project admin for a new one (secinf keys create).';
  END IF;
  IF v_secret IS NULL THEN
    RAISE EXCEPTION 'no JWT signing secret is configured' USING ERRCODE = '55000',
      HINT = 'Run `secinf db migrate`, which creates one.';
  END IF;
  SELECT org_id INTO v_org FROM core.projects WHERE project_id = v_key.project_id;
  v_exp := least(now() + auth.token_ttl(v_key.role, 'key'), coalesce(v_key.expires_at, 'infinity'));
  v_claims := jsonb_build_object(
    'role', v_key.role, 'project_id', v_key.project_id, 'org_id', v_org,
    'key_id', v_key.key_id, 'sub', 'key:' || v_key.lookup_prefix,
    'iat', floor(extract(epoch FROM now()))::bigint,
    'exp', floor(extract(epoch FROM v_exp))::bigint);
  UPDATE core.api_keys SET last_used_at = now() WHERE key_id = v_key.key_id;
  -- A key's sign-in is an audit row like an account's (account.login); a refused one
  -- rolls back with the request (PostgREST's log and the file service's have it).
  INSERT INTO audit.log (project_id, actor, action, target, details)
  VALUES (v_key.project_id, 'key:' || v_key.lookup_prefix, 'api_key.sign_in',
          v_key.lookup_prefix, jsonb_build_object('role', v_key.role, 'expires_at', v_exp));
  RETURN jsonb_build_object('token', auth.sign_jwt(v_claims, v_secret), 'claims', v_claims,
                            'expires_at', v_exp, 'person', v_key.owner);
END
$$;

-- Is the key behind these claims still valid? (false for revoked or expired keys)
CREATE OR REPLACE FUNCTION core.key_is_live(p_key_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT FROM core.api_keys k
                 WHERE k.key_id = p_key_id AND k.revoked_at IS NULL
                   AND (k.expires_at IS NULL OR k.expires_at > now()))
$$;

-- ---------------------------------------------------------------- memberships
-- Grant a member a role in a project (admins and project admins of that project).
CREATE OR REPLACE FUNCTION core.add_member(p_project uuid, p_kind text, p_member text, p_role text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM auth.require(p_project, ARRAY['project_admin']);
  INSERT INTO core.memberships (project_id, kind, member, role)
  VALUES (p_project, p_kind, p_member, p_role)
  ON CONFLICT (project_id, kind, member) DO UPDATE SET role = excluded.role;
  PERFORM audit.record(p_project, 'membership.add', p_member,
                       jsonb_build_object('kind', p_kind, 'role', p_role));
END
$$;

-- Make sure a JWT signing secret exists (32 random bytes, hex).
CREATE OR REPLACE FUNCTION auth.ensure_signing_key() RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  INSERT INTO auth.signing_keys (kid, secret)
  SELECT 'k' || to_char(now(), 'YYYYMMDDHH24MISS'), encode(public.gen_random_bytes(32), 'hex')
  WHERE NOT EXISTS (SELECT FROM auth.signing_keys WHERE active)
$$;
SELECT auth.ensure_signing_key();

-- Replace the active JWT signing secret with a new one (`secinf keys rotate-secret`): the
-- old row stays, inactive, for the record. api.exchange_key and api.login sign with the new
-- secret at once; PostgREST verifies with PGRST_JWT_SECRET, so tokens signed with the old
-- secret stop verifying when PostgREST restarts with the new one (docs/operations.md).
-- The owner's only: no API role may call it (EXECUTE revoked from PUBLIC, never granted).
CREATE OR REPLACE FUNCTION auth.rotate_signing_key() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_old text[];
  v_kid text := 'k' || to_char(clock_timestamp(), 'YYYYMMDDHH24MISSUS');
BEGIN
  -- Two rotations at once queue here instead of one failing on the one-active index.
  LOCK TABLE auth.signing_keys IN SHARE ROW EXCLUSIVE MODE;
  WITH off AS (UPDATE auth.signing_keys SET active = false WHERE active RETURNING kid)
  SELECT coalesce(array_agg(kid ORDER BY kid), '{}') INTO v_old FROM off;
  INSERT INTO auth.signing_keys (kid, secret)
  VALUES (v_kid, encode(public.gen_random_bytes(32), 'hex'));
  PERFORM audit.record(NULL, 'signing_key.rotate', v_kid,
                       jsonb_build_object('deactivated', to_jsonb(v_old)));
  RETURN jsonb_build_object('kid', v_kid, 'deactivated', to_jsonb(v_old));
END
$$;
