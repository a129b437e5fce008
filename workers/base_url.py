"""The one check of an http(s) base URL that the product stores (the file service's
`files.service.base_url`, a shard's `api_url` and `files_url`): scheme, host, an optional
path, no query or fragment, without the trailing '/'. It mirrors the CHECK of
files.service.base_url (migration 0022)."""

from __future__ import annotations

import re

from workers.errors import UserError

BASE_URL = re.compile(r"https?://[^/?#\s]+(/[^?#\s]*)?")


def base_url(url: str, option: str, example: str) -> str:
    """`url` stripped of spaces and its trailing '/'; UserError naming `option` and an
    `example` of a good value."""
    base = url.strip().rstrip("/")
    if not BASE_URL.fullmatch(base):
        raise UserError(f"{option} {url!r} is not an http(s) base URL without a query, e.g. "
                        f"{example}")
    return base
