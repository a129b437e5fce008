"""Sign JWT claims for PostgREST (HS256) with PyJWT.

Runs inside PL/Python (Debian's python3 with python3-jwt) and in plain pytest.
"""

from __future__ import annotations

import json

import jwt


def sign(claims: str, secret: str) -> str:
    """Encode `claims` (a JSON object as text) into a compact HS256 token."""
    payload = json.loads(claims)
    if not isinstance(payload, dict):
        raise ValueError("claims must be a JSON object")
    return jwt.encode(payload, secret, algorithm="HS256")


def verify(token: str, secret: str) -> dict[str, object]:
    """Decode and check a token's signature and expiry (used by tests and tools)."""
    decoded: dict[str, object] = jwt.decode(
        token, secret, algorithms=["HS256"], options={"verify_aud": False}
    )
    return decoded


def check(token: str, secret: str) -> str:
    """`verify` for SQL callers, which cannot catch Python's exceptions: a JSON object,
    {"claims": {...}} for a good token, else {"error": malformed | algorithm | signature |
    expired | immature}, with the token's exp or nbf where that is what failed."""
    try:
        return json.dumps({"claims": verify(token, secret)})
    except jwt.InvalidSignatureError:
        return json.dumps({"error": "signature"})
    except jwt.ExpiredSignatureError:
        claims = jwt.decode(token, options={"verify_signature": False})
        return json.dumps({"error": "expired", "exp": claims.get("exp")})
    except jwt.ImmatureSignatureError:
        claims = jwt.decode(token, options={"verify_signature": False})
        return json.dumps({"error": "immature", "nbf": claims.get("nbf")})
    except jwt.InvalidAlgorithmError:
        return json.dumps({"error": "algorithm"})
    except jwt.InvalidTokenError:
        return json.dumps({"error": "malformed"})
