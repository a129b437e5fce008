"""Signed file URLs, verified exactly as sql/760_files.sql signs them (issue 17).

    {base_url}/files/{key}?method=M&expires=E&kid=K[&bytes=B&sha256=H]&sig=S

S is hex(HMAC-SHA256(secret of K as UTF-8 text, canonical)) and canonical is the lines
M, key, E (unix seconds), B or '', H or '' joined by '\\n' (files.canonical). The secret of
a key id comes from the database (files.url_secret); expiry is checked against a clock the
caller passes in, so tests move the clock instead of sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from workers.errors import UserError

METHODS = ("GET", "PUT")
_KID = re.compile(r"[a-z0-9]{1,32}")
_SIG = re.compile(r"[0-9a-f]{64}")
_SHA = re.compile(r"[0-9a-f]{64}")
_INT = re.compile(r"[0-9]{1,19}")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


# ---------------------------------------------------------------------- refusals
class FileRefused(UserError):
    """The file service refused the request."""

    status = 400
    code = "refused"
    hint = ""

    def __init__(self, message: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class BadKey(FileRefused):
    """The path is not a storage key this service serves."""

    code = "bad_key"
    hint = "Keys look like org/{org_id}/project/{project_id}/…: no '..', '.', empty, absolute "\
           "or backslash segments. Use the URL exactly as it was issued."


class MalformedUrl(FileRefused):
    """The signed URL is missing a parameter or has one of the wrong form."""

    code = "malformed_url"
    hint = "Use the URL exactly as api.dataset_download or api.ingest_upload_url issued it."


class UnknownKey(FileRefused):
    """The URL was signed with a key id this service does not know."""

    status = 403
    code = "unknown_kid"
    hint = "The signing secret was removed: ask for a new URL."


class WrongMethod(FileRefused):
    """The URL was signed for another HTTP method."""

    status = 403
    code = "wrong_method"
    hint = "Download URLs take GET, upload URLs take PUT."


class BadSignature(FileRefused):
    """The signature does not match the URL (tampered, or signed for another path)."""

    status = 403
    code = "bad_signature"
    hint = "Use the URL exactly as it was issued; it is valid for one object and method only."


class Expired(FileRefused):
    """The signed URL has expired."""

    status = 403
    code = "expired"
    hint = "Ask for a new URL (api.dataset_download or api.ingest_upload_url)."


# ---------------------------------------------------------------------- keys
def check_key(key: str) -> str:
    """The key itself if it is a storage key (files.valid_key); BadKey otherwise.

    Checked before anything touches storage: no absolute path, backslash, NUL, empty, '.'
    or '..' segment, only [A-Za-z0-9._-] in segments, under org/{uuid}/project/{uuid}/ with
    the ids in canonical 8-4-4-4-12 form, exactly as files.valid_key."""
    if not key or len(key) > 1024 or key.startswith("/") or "\\" in key or "\x00" in key:
        raise BadKey(f"{key[:200]!r} is not a storage key")
    parts = key.split("/")
    if (len(parts) < 5 or parts[0] != "org" or parts[2] != "project"
            or not _UUID.fullmatch(parts[1]) or not _UUID.fullmatch(parts[3])
            or any(p in ("", ".", "..") or not _SEGMENT.fullmatch(p) for p in parts)):
        raise BadKey(f"{key[:200]!r} is not a storage key")
    return key


def key_project(key: str) -> str:
    """The project id of a valid key (files.key_project)."""
    return check_key(key).split("/")[3]


def checksum_header(sha256: str) -> str:
    """The x-amz-checksum-sha256 header of a hex sha256 (base64 of the digest's bytes), as
    api.ingest_upload_url returns it."""
    return base64.b64encode(bytes.fromhex(sha256)).decode()


# ---------------------------------------------------------------------- signing
def canonical(method: str, key: str, expires: int, nbytes: int | None = None,
              sha256: str | None = None) -> str:
    """The signed text: files.canonical(method, key, expires, bytes, sha256)."""
    return "\n".join([method, key, str(expires), "" if nbytes is None else str(nbytes),
                      sha256 or ""])


def sign(secret: str, method: str, key: str, expires: int, nbytes: int | None = None,
         sha256: str | None = None) -> str:
    """hex(HMAC-SHA256(secret as UTF-8, canonical as UTF-8))."""
    text = canonical(method, key, expires, nbytes, sha256)
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def signed_url(base_url: str, kid: str, secret: str, method: str, key: str, expires: int,
               nbytes: int | None = None, sha256: str | None = None) -> str:
    """The URL files.signed_url would issue for the same arguments."""
    params: dict[str, str] = {"method": method, "expires": str(expires), "kid": kid}
    if nbytes is not None:
        params["bytes"] = str(nbytes)
    if sha256 is not None:
        params["sha256"] = sha256
    params["sig"] = sign(secret, method, key, expires, nbytes, sha256)
    return f"{base_url}/files/{key}?{urlencode(params)}"


# ---------------------------------------------------------------------- verifying
@dataclass(frozen=True)
class SignedRequest:
    """What a verified URL grants: one method on one key until `expires`."""

    method: str
    key: str
    expires: int
    kid: str
    bytes: int | None
    sha256: str | None


def parse(key: str, query: Mapping[str, str | None]) -> tuple[SignedRequest, str]:
    """The request the query claims, and its signature; MalformedUrl where one is off."""
    def want(name: str, pattern: re.Pattern[str]) -> str:
        value = query.get(name)
        if value is None or not pattern.fullmatch(value):
            raise MalformedUrl(f"the URL's {name} parameter is missing or malformed")
        return value

    method = query.get("method")
    if method not in METHODS:
        raise MalformedUrl("the URL's method parameter is missing or not GET or PUT")
    expires = int(want("expires", _INT))
    kid = want("kid", _KID)
    sig = want("sig", _SIG)
    nbytes = int(want("bytes", _INT)) if query.get("bytes") is not None else None
    sha = want("sha256", _SHA) if query.get("sha256") is not None else None
    if method == "PUT" and (nbytes is None or sha is None):
        raise MalformedUrl("an upload URL binds bytes and sha256, and this one does not")
    return SignedRequest(method, key, expires, kid, nbytes, sha), sig


def verify(http_method: str, key: str, query: Mapping[str, str | None],
           secret_of: Callable[[str], str | None], now: Callable[[], float]) -> SignedRequest:
    """The verified request for `http_method` on `key`, or the refusal that names why.

    Order: the key's form, the URL's parameters, the key id, the signature (constant-time),
    the method, then the expiry, so a forged URL never learns whether it would be late."""
    check_key(key)
    req, sig = parse(key, query)
    secret = secret_of(req.kid)
    if secret is None:
        raise UnknownKey(f"no URL signing key {req.kid!r}")
    want = sign(secret, req.method, key, req.expires, req.bytes, req.sha256)
    if not hmac.compare_digest(want, sig):
        raise BadSignature()
    if req.method != http_method:
        raise WrongMethod(f"this URL was signed for {req.method}, not {http_method}")
    if now() >= req.expires:
        raise Expired(f"the signed URL expired at {req.expires} (unix seconds)")
    return req
