"""What a request is routed by, read from the request alone (no database, no secret)."""

from __future__ import annotations

import json
import re
from typing import Any

import jwt

from workers.errors import UserError

FILES_PREFIX = "/files/"
BILLING_PREFIX = "/billing/"
"""The file service's checkout sessions: by the caller's token, to the file service."""
STRIPE_PREFIX = "/stripe/"
"""Stripe's webhook (no token, no project key): not routed, each shard takes its own."""
SIGN_IN_PATHS = ("/rpc/exchange_key", "/rpc/login")
"""PostgREST calls that carry credentials instead of a JWT: tried shard by shard."""
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_FILE_KEY = re.compile(rf"/files/org/(?:{_UUID})/project/({_UUID})/")
_BEARER = re.compile(r"bearer\s+(\S+)\s*$", re.IGNORECASE)


class Refused(UserError):
    """The proxy cannot route this request."""

    status = 400
    code = "not_routable"
    hint = ""

    def __init__(self, message: str, hint: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.hint = hint
        if status is not None:
            self.status = status


class BadToken(Refused):
    """The Authorization header does not hold a JWT the proxy can read."""

    code = "bad_token"


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header; None without one."""
    if not authorization:
        return None
    m = _BEARER.match(authorization.strip())
    if m is None:
        raise BadToken("the Authorization header is not 'Bearer <JWT>'",
                       "Send the token api.exchange_key or api.login returned as "
                       "'Authorization: Bearer <token>'.", status=401)
    return m.group(1)


def unverified_claims(token: str) -> dict[str, Any]:
    """The JWT's claims, read without checking its signature: only to choose a shard, whose
    PostgREST then verifies the token (the proxy holds no secret)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise BadToken(f"the bearer token is not a JWT ({exc})",
                       "Send the token api.exchange_key or api.login returned, unchanged.",
                       status=401) from exc
    if not isinstance(claims, dict):
        raise BadToken("the bearer token's payload is not a JSON object",
                       "Send the token api.exchange_key or api.login returned.", status=401)
    return claims


def token_project(token: str) -> str:
    """The project id a JWT is for (its `project_id` claim)."""
    project = unverified_claims(token).get("project_id")
    if not isinstance(project, str) or not re.fullmatch(_UUID, project):
        raise BadToken("the bearer token has no project_id claim, so it names no shard",
                       "Tokens of api.exchange_key and api.login name their project; an "
                       "operator's token without one goes to its shard's PostgREST directly "
                       "(`secinf shards list` shows each shard's --api-url).", status=400)
    return project


def file_project(path: str) -> str:
    """The project id in a file URL's key: /files/org/{org}/project/{project}/…"""
    m = _FILE_KEY.match(path)
    if m is None:
        raise Refused(f"{path[:200]!r} is not a file URL of a project (keys look like "
                      "org/{org_id}/project/{project_id}/…)",
                      "Use the URL exactly as api.dataset_download or api.ingest_upload_url "
                      "issued it.", status=404)
    return m.group(1)


def login_project(body: bytes) -> str | None:
    """The `project` argument of a POST /rpc/login JSON body, if it names one."""
    try:
        args = json.loads(body or b"null")
    except ValueError:
        return None
    project = args.get("project") if isinstance(args, dict) else None
    return project.strip() if isinstance(project, str) and project.strip() else None
