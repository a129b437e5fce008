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

-- Check an HS256 JWT's signature (in constant time), exp and nbf with PyJWT, as PostgREST
-- checks a token: {"claims": {...}}, or {"error": malformed | algorithm | signature |
-- expired | immature, "exp" | "nbf"} (plpython/jwt_tokens.py check).
CREATE OR REPLACE FUNCTION auth.verify_jwt(token text, secret text) RETURNS jsonb
LANGUAGE plpython3u STABLE STRICT
SET search_path = pg_catalog, pg_temp
AS $$
{{plpython:jwt_tokens}}
return check(token, secret)
$$;

-- Superuser-owned, so the owner's default privileges do not cover them: revoke here.
REVOKE EXECUTE ON FUNCTION auth.sign_jwt(jsonb, text), auth.verify_jwt(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sign_jwt(jsonb, text), auth.verify_jwt(text, text)
  TO secinf_owner;
