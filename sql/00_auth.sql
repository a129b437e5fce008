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

-- The role named in the claims, else the current database role.
CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(auth.claims() ->> 'role', current_user::text) $$;

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
CREATE OR REPLACE FUNCTION auth.project_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c jsonb := auth.claims();
BEGIN
  IF c ? 'project_id' THEN
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
