-- secinf: run-as superuser
-- PL/Python wrappers (an untrusted language: only a superuser may create them). They are
-- SECURITY INVOKER and compute only; the module body lives in plpython/jwt_tokens.py.

-- Sign claims as an HS256 JWT with PyJWT (Debian's python3-jwt on the server).
CREATE OR REPLACE FUNCTION auth.sign_jwt(claims jsonb, secret text) RETURNS text
LANGUAGE plpython3u IMMUTABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
{{plpython:jwt_tokens}}
return sign(claims, secret)
$$;


-- Superuser-owned, so the owner's default privileges do not cover it: revoke here.
REVOKE EXECUTE ON FUNCTION auth.sign_jwt(jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sign_jwt(jsonb, text) TO secinf_owner;
