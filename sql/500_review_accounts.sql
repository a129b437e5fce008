-- Local reviewer accounts (core.accounts, 0008): create, change password, disable, and the
-- sign-in that turns a user name and password into the same claims and signed JWT an API
-- key gets (core.exchange_api_key). Only a bcrypt hash is stored (pgcrypto,
-- core.password_hash). Projects and roles come from core.memberships
-- (kind 'user', member = username); the JWT `sub` is the username. See docs/review.md.

-- ---------------------------------------------------------------- administration
-- The stored form of a new password: its bcrypt hash (cost 10). Refuses passwords too short
-- to be worth hashing, or longer than bcrypt reads.
DROP FUNCTION IF EXISTS core.check_password(text);  -- replaced by this one
CREATE OR REPLACE FUNCTION core.password_hash(p_password text) RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF p_password IS NULL OR length(p_password) < 8 OR length(p_password) > 72 THEN
    RAISE EXCEPTION 'a password needs 8 to 72 characters' USING ERRCODE = '22023';
  END IF;
  RETURN public.crypt(p_password, public.gen_salt('bf', 10));
END
$$;

-- Create an account (administrators only: accounts are not scoped to one project).
CREATE OR REPLACE FUNCTION core.create_account(p_username text, p_password text,
                                               p_display_name text DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM auth.require_admin('create accounts');
  IF p_username IS NULL OR p_username !~ '^[A-Za-z0-9._@+-]{2,128}$' THEN
    RAISE EXCEPTION 'user name "%" is not valid', p_username USING ERRCODE = '22023',
      HINT = 'Use 2-128 letters, digits or . _ @ + -';
  END IF;
  INSERT INTO core.accounts (username, password_hash, display_name)
  VALUES (p_username, core.password_hash(p_password), p_display_name);
  PERFORM audit.record(NULL, 'account.create', p_username, '{}');
EXCEPTION WHEN unique_violation THEN
  RAISE EXCEPTION 'account "%" exists already', p_username USING ERRCODE = '23505',
    HINT = 'Change its password with `secinf accounts passwd`.';
END
$$;

-- Set a new password (administrators only). Returns whether the account exists.
CREATE OR REPLACE FUNCTION core.set_account_password(p_username text, p_password text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_hash text;
BEGIN
  PERFORM auth.require_admin('change passwords');
  v_hash := core.password_hash(p_password);  -- a bad password fails even for no account
  UPDATE core.accounts SET password_hash = v_hash WHERE username = p_username;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM audit.record(NULL, 'account.password', p_username, '{}');
  RETURN true;
END
$$;

-- Disable (p_disabled) or re-enable an account (administrators only). A disabled account
-- cannot sign in, and tokens it already holds stop working (api.pre_request).
CREATE OR REPLACE FUNCTION core.disable_account(p_username text, p_disabled boolean DEFAULT true)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM auth.require_admin('disable accounts');
  UPDATE core.accounts
  SET disabled_at = CASE WHEN p_disabled THEN coalesce(disabled_at, now()) END
  WHERE username = p_username;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  PERFORM audit.record(NULL, CASE WHEN p_disabled THEN 'account.disable' ELSE 'account.enable' END,
                       p_username, '{}');
  RETURN true;
END
$$;

-- Is the account behind these claims still allowed in? (false once disabled or deleted)
CREATE OR REPLACE FUNCTION core.account_is_live(p_username text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT EXISTS (SELECT FROM core.accounts a
                 WHERE a.username = p_username AND a.disabled_at IS NULL)
$$;

-- ---------------------------------------------------------------- sign-in
-- Check a user name and password and mint claims for one of the account's projects:
-- p_project as 'org/project', a project slug or uuid; NULL when the account belongs to
-- exactly one project. One message for every credential failure (unknown user, wrong
-- password, disabled account, no membership), so the answer never tells which accounts
-- exist; an unknown user still pays for one bcrypt comparison.
-- The token lives auth.token_ttl(role, 'login'): the server decides, not the caller.
DROP FUNCTION IF EXISTS core.login_account(text, text, text, interval);  -- caller-chosen ttl
CREATE OR REPLACE FUNCTION core.login_account(p_username text, p_password text,
                                              p_project text DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_account core.accounts;
  v_hash text;
  v_ok boolean;
  v_choices jsonb;
  v_member record;
  v_exp timestamptz;
  v_claims jsonb;
  v_secret text := auth.active_secret();
BEGIN
  SELECT * INTO v_account FROM core.accounts a WHERE a.username = p_username;
  -- A fixed, valid bcrypt hash of a random string keeps the timing of unknown users equal.
  v_hash := coalesce(v_account.password_hash,
                     '$2a$10$YkoOKNzt0XzWSIyhbPdPMeLDg1oHTexRbp8TYQqfabjYVURbqk3rW');
  v_ok := public.crypt(coalesce(p_password, ''), v_hash) = v_hash
          AND v_account.username IS NOT NULL AND v_account.disabled_at IS NULL;
  IF v_ok THEN
    SELECT jsonb_agg(jsonb_build_object('project', o.slug || '/' || p.slug, 'role', m.role)
                     ORDER BY o.slug, p.slug)
    INTO v_choices
    FROM core.memberships m
    JOIN core.projects p USING (project_id)
    JOIN core.organizations o USING (org_id)
    WHERE m.kind = 'user' AND m.member = v_account.username;
  END IF;
  IF NOT v_ok OR v_choices IS NULL THEN
    RAISE EXCEPTION 'invalid user name or password, or the account is disabled'
      USING ERRCODE = 'PT401',
            HINT = 'Check your user name and password, or ask an administrator (secinf accounts).';
  END IF;

  WITH matches AS (
    SELECT m.project_id, m.role, p.org_id, o.slug || '/' || p.slug AS ref
    FROM core.memberships m
    JOIN core.projects p USING (project_id)
    JOIN core.organizations o USING (org_id)
    WHERE m.kind = 'user' AND m.member = v_account.username
      AND (p_project IS NULL
           OR p.project_id::text = lower(p_project)
           OR o.slug || '/' || p.slug = p_project
           OR (p.slug = p_project AND position('/' IN p_project) = 0))
  )
  SELECT (SELECT count(*) FROM matches) AS n, x.* INTO v_member FROM matches x LIMIT 1;
  IF v_member.n IS DISTINCT FROM 1 THEN
    RAISE EXCEPTION '%', CASE WHEN p_project IS NULL
                              THEN 'choose a project: this account belongs to several'
                              ELSE format('this account has no single project "%s"', p_project) END
      USING ERRCODE = '22023',
            HINT = 'Sign in naming one of: '
                   || (SELECT string_agg(e ->> 'project', ', ') FROM jsonb_array_elements(v_choices) e);
  END IF;
  IF v_secret IS NULL THEN
    RAISE EXCEPTION 'no JWT signing secret is configured' USING ERRCODE = '55000',
      HINT = 'Run `secinf db migrate`, which creates one.';
  END IF;

  v_exp := now() + auth.token_ttl(v_member.role, 'login');
  v_claims := jsonb_build_object(
    'role', v_member.role, 'project_id', v_member.project_id, 'org_id', v_member.org_id,
    'sub', v_account.username, 'account', true,
    'iat', floor(extract(epoch FROM now()))::bigint,
    'exp', floor(extract(epoch FROM v_exp))::bigint);
  UPDATE core.accounts SET last_login_at = now() WHERE username = v_account.username;
  INSERT INTO audit.log (project_id, actor, action, target)
  VALUES (v_member.project_id, v_account.username, 'account.login', v_member.ref);
  RETURN jsonb_build_object('token', auth.sign_jwt(v_claims, v_secret), 'claims', v_claims,
                            'expires_at', v_exp, 'projects', v_choices,
                            'person', v_account.username);
END
$$;

CREATE OR REPLACE FUNCTION api.login(username text, password text, project text DEFAULT NULL)
RETURNS jsonb
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT core.login_account(username, password, project) $$;
COMMENT ON FUNCTION api.login(text, text, text) IS
  'Sign in with a local account (user name and password) for one of its projects: a signed '
  'JWT, its claims (role and project from the membership; sub = the user name) and expiry. '
  'project: org/project, its slug or uuid; may be left out when the account has one project.';
