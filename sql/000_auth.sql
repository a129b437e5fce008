-- Identity of the caller, in one place. Every policy asks these functions, never the
-- settings directly.
--
-- Claims are trusted only when the session is PostgREST's (`authenticator`) or a superuser
-- (admin tools, the API-contract tests): an analyst on a direct SQL session can set
-- request.jwt.claims to anything, so on such sessions claims are ignored and the projects
-- come from the memberships of the connected login role.

-- ---------------------------------------------------------------- claims
-- The caller's JWT claims, or '{}' where claims cannot be trusted.
CREATE OR REPLACE FUNCTION auth.claims() RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE
           WHEN session_user::text = 'authenticator'
             OR (SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user)
           THEN coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb
           ELSE '{}'::jsonb
         END
$$;

-- The role named in the claims; on a direct SQL session, the API group role the login is a
-- member of (an analyst login: 'analyst'), so the answer is the same inside SECURITY
-- DEFINER code, where current_user is the owner; for superusers, the current role.
CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce(
    auth.claims() ->> 'role',
    CASE WHEN NOT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user),
                           false)
         THEN (SELECT g FROM unnest(ARRAY['project_admin', 'analyst', 'reviewer', 'customer',
                                          'pipeline']) WITH ORDINALITY AS x (g, n)
               WHERE pg_has_role(session_user, g, 'MEMBER')
               ORDER BY n LIMIT 1)
    END,
    current_user::text)
$$;

-- Who acts: the JWT subject, else the login role of the session.
CREATE OR REPLACE FUNCTION auth.subject() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(auth.claims() ->> 'sub', session_user::text) $$;

-- True for superusers and the owner role: administrative tools, never API callers.
CREATE OR REPLACE FUNCTION auth.is_admin() RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT coalesce((SELECT r.rolsuper FROM pg_roles r WHERE r.rolname = session_user), false)
         AND NOT (auth.claims() ? 'role')
$$;

-- ---------------------------------------------------------------- projects
-- The projects the caller may see: the claim's project_id; or the memberships of the
-- claim's subject; or (direct SQL) the memberships of the login role.
--
-- A token is checked against the state of now, not of its sign-in: a token from an API key
-- counts only while the key is live and still has the token's project and role; a token
-- from a sign-in (claim `account`) only while the account is enabled and its membership in
-- the token's project still has the token's role. Otherwise the caller sees no project (and
-- api.pre_request answers 401 before PostgREST runs anything). Tokens without either
-- claim are an operator's, minted with the signing secret (tests, tools).
CREATE OR REPLACE FUNCTION auth.project_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c jsonb := auth.claims();
BEGIN
  IF c ? 'project_id' THEN
    IF c ? 'key_id' AND NOT EXISTS (
         SELECT FROM core.api_keys k
         WHERE k.key_id = (c ->> 'key_id')::uuid
           AND k.project_id = (c ->> 'project_id')::uuid AND k.role = c ->> 'role'
           AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())) THEN
      RETURN '{}';
    END IF;
    IF c ? 'account' AND NOT EXISTS (
         SELECT FROM core.memberships m
         JOIN core.accounts a ON a.username = m.member AND a.disabled_at IS NULL
         WHERE m.kind = 'user' AND m.member = c ->> 'sub'
           AND m.project_id = (c ->> 'project_id')::uuid AND m.role = c ->> 'role') THEN
      RETURN '{}';
    END IF;
    RETURN ARRAY[(c ->> 'project_id')::uuid];
  ELSIF c ? 'sub' THEN
    RETURN ARRAY(SELECT m.project_id FROM core.memberships m
                 WHERE m.kind = 'user' AND m.member = c ->> 'sub'
                   AND m.role = coalesce(c ->> 'role', m.role));
  ELSE
    RETURN ARRAY(SELECT m.project_id FROM core.memberships m
                 WHERE m.kind = 'db_role' AND m.member = session_user::text);
  END IF;
END
$$;

-- Whether the caller may act in project p (for functions; policies use project_ids()).
CREATE OR REPLACE FUNCTION auth.can_access(p uuid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT auth.is_admin() OR p = ANY (auth.project_ids()) $$;

-- Raise unless the caller is an admin or holds one of `roles` in project p.
CREATE OR REPLACE FUNCTION auth.require(p uuid, roles text[]) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF auth.is_admin() THEN
    RETURN;
  END IF;
  IF p IS NULL OR NOT (p = ANY (auth.project_ids())) OR NOT (auth.role() = ANY (roles)) THEN
    RAISE EXCEPTION 'not allowed: this needs role % in project %', array_to_string(roles, ' or '), p
      USING ERRCODE = '42501',
            HINT = 'Use an API key of that project with a sufficient role.';
  END IF;
END
$$;

-- Raise unless the caller is an administrator; p_action completes "only an administrator
-- can …" (e.g. 'create accounts').
CREATE OR REPLACE FUNCTION auth.require_admin(p_action text) RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT auth.is_admin() THEN
    RAISE EXCEPTION 'only an administrator can %', p_action USING ERRCODE = '42501';
  END IF;
END
$$;

-- The active signing secret (PostgREST's jwt-secret must be the same).
CREATE OR REPLACE FUNCTION auth.active_secret() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT secret FROM auth.signing_keys WHERE active $$;

-- ---------------------------------------------------------------- token lifetimes
-- How long a token for `p_role` lives: kind 'key' (api.exchange_key) or 'login'
-- (api.login), from auth.token_lifetimes (0018). The server's decision, never the caller's.
CREATE OR REPLACE FUNCTION auth.token_ttl(p_role text, p_kind text) RETURNS interval
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v interval;
BEGIN
  SELECT CASE p_kind WHEN 'key' THEN t.key_ttl WHEN 'login' THEN t.login_ttl END
  INTO v FROM auth.token_lifetimes t WHERE t.role = p_role;
  RETURN coalesce(v, interval '1 hour');
END
$$;

-- ---------------------------------------------------------------- notify channels
-- The secret channel name of a purpose ('jobs', 'candidates'), created on first use.
-- PostgreSQL lets every role LISTEN and NOTIFY on any name; only the owner and the
-- pipeline role can read these names, so only they can hear or fake a wake-up.
CREATE OR REPLACE FUNCTION auth.channel(p_purpose text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v text;
BEGIN
  SELECT channel INTO v FROM auth.notify_channels WHERE purpose = p_purpose;
  IF v IS NULL THEN
    INSERT INTO auth.notify_channels (purpose, channel)
    VALUES (p_purpose, 'secinf_' || p_purpose || '_' || encode(public.gen_random_bytes(12), 'hex'))
    ON CONFLICT (purpose) DO NOTHING;
    SELECT channel INTO v FROM auth.notify_channels WHERE purpose = p_purpose;
  END IF;
  RETURN v;
END
$$;
SELECT auth.channel('jobs'), auth.channel('candidates');
