"""Storage keys: posix paths relative to the storage root (a directory, or a bucket and
prefix), validated here and nowhere else.

    org/{org_id}/project/{project_id}/datasets/{name}/{version}/…   dataset versions
    org/{org_id}/project/{project_id}/…                             anything else of a project

Segments beginning with `.secinf-` are reserved for the local backend's temporary files and
staging directories, so no key can name one and listings never show one.
"""

from __future__ import annotations

import re

from workers.errors import UserError

MAX_KEY = 1024
RESERVED = ".secinf-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadKey(UserError):
    """Not a storage key: keys are relative posix paths like org/{org_id}/project/{id}/…"""


def _why_bad(key: str) -> str | None:
    if not isinstance(key, str) or not key:
        return "it is empty"
    if len(key) > MAX_KEY:
        return f"it is longer than {MAX_KEY} characters"
    if "\x00" in key:
        return "it contains a NUL byte"
    if _CONTROL.search(key):
        return "it contains a control character"
    if "\\" in key:
        return "it contains a backslash (use '/')"
    if key.startswith("/") or re.match(r"[A-Za-z]:", key):
        return "it is absolute (keys are relative to the storage root)"
    for segment in key.split("/"):
        if segment == "":
            return "it has an empty segment ('//' or a trailing '/')"
        if segment in (".", ".."):
            return f"it has a {segment!r} segment"
        if segment.startswith(RESERVED):
            return f"segment {segment!r} starts with {RESERVED!r}, reserved for temporary files"
    return None


def check_key(key: str) -> str:
    """The key itself if it is a valid storage key; BadKey naming it and the reason otherwise."""
    why = _why_bad(key)
    if why is not None:
        raise BadKey(f"storage key {str(key)[:200]!r} is refused: {why}")
    return key


def check_prefix(prefix: str) -> str:
    """A prefix to list under: a valid key, or '' for everything."""
    return "" if prefix == "" else check_key(prefix.removesuffix("/"))


def join(prefix: str, *parts: str) -> str:
    """Keys joined with '/', the result checked ('' prefix allowed)."""
    return check_key("/".join(p for p in (prefix, *parts) if p != ""))


def project_prefix(org_id: str, project_id: str) -> str:
    """org/{org_id}/project/{project_id}: every object of a project lies under it."""
    return check_key(f"org/{org_id}/project/{project_id}")


def dataset_version_key(org_id: str, project_id: str, name: str, version: str) -> str:
    """org/{org_id}/project/{project_id}/datasets/{name}/{version}"""
    return join(project_prefix(org_id, project_id), "datasets", name, version)
