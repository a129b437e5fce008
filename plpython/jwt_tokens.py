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
