"""Signed URLs and Range headers of the file service (workers/files), without a database:
the SQL side is checked against the same functions in tests/db/test_file_service.py."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

import pytest

from workers.files import signing
from workers.files.ranges import RangeNotSatisfiable, parse_range

ORG = "0" * 8 + "-0000-0000-0000-" + "0" * 12
PID = "1" * 8 + "-1111-1111-1111-" + "1" * 12
KEY = f"org/{ORG}/project/{PID}/datasets/events/1.0.0/train/events.parquet"
SECRETS = {"u1": "s" * 64}
NOW = 1_900_000_000.0


def grant(method: str = "GET", key: str = KEY, expires: int = int(NOW) + 60,
          nbytes: int | None = None, sha: str | None = None) -> tuple[str, dict[str, str]]:
    url = signing.signed_url("http://files", "u1", SECRETS["u1"], method, key, expires,
                             nbytes, sha)
    parts = urlsplit(url)
    return parts.path[len("/files/"):], dict(parse_qsl(parts.query))


def check(method: str, key: str, query: dict[str, str], now: float = NOW
          ) -> signing.SignedRequest:
    return signing.verify(method, key, query, SECRETS.get, lambda: now)


def test_the_signature_is_hmac_sha256_of_the_canonical_lines() -> None:
    text = signing.canonical("PUT", KEY, 5, 28, "a" * 64)
    assert text == f"PUT\n{KEY}\n5\n28\n{'a' * 64}"
    assert signing.canonical("GET", KEY, 5) == f"GET\n{KEY}\n5\n\n"
    assert signing.sign("k", "GET", KEY, 5) == hmac.new(
        b"k", f"GET\n{KEY}\n5\n\n".encode(), hashlib.sha256).hexdigest()


def test_a_valid_url_verifies_until_it_expires() -> None:
    key, q = grant(expires=int(NOW) + 60)
    assert check("GET", key, q).expires == int(NOW) + 60
    assert check("GET", key, q, NOW + 59.9).key == KEY
    with pytest.raises(signing.Expired):
        check("GET", key, q, NOW + 60)


@pytest.mark.parametrize(("change", "error"), [
    ({"sig": "0" * 64}, signing.BadSignature),
    ({"expires": str(int(NOW) + 3600)}, signing.BadSignature),
    ({"method": "PUT", "bytes": "1", "sha256": "a" * 64}, signing.BadSignature),
    ({"kid": "u2"}, signing.UnknownKey),
    ({"kid": "U1"}, signing.MalformedUrl),
    ({"sig": "zz"}, signing.MalformedUrl),
    ({"expires": "-1"}, signing.MalformedUrl),
    ({"expires": "12\n"}, signing.MalformedUrl),
    ({"method": "DELETE"}, signing.MalformedUrl),
])
def test_tampered_urls_are_refused_naming_why(change: dict[str, str],
                                              error: type[Exception]) -> None:
    key, q = grant()
    with pytest.raises(error):
        check("GET", key, {**q, **change})


def test_a_url_opens_only_its_own_key_and_method() -> None:
    key, q = grant()
    other = KEY.replace("train", "test")
    with pytest.raises(signing.BadSignature):
        check("GET", other, q)
    with pytest.raises(signing.WrongMethod):
        check("PUT", key, q)
    # A forged URL learns nothing of expiry: the signature is checked first.
    with pytest.raises(signing.BadSignature):
        check("GET", other, q, NOW + 10_000)


def test_upload_urls_bind_size_and_hash() -> None:
    key, q = grant("PUT", nbytes=28, sha="b" * 64)
    got = check("PUT", key, q)
    assert (got.bytes, got.sha256) == (28, "b" * 64)
    for change in ({"bytes": "29"}, {"sha256": "c" * 64}):
        with pytest.raises(signing.BadSignature):
            check("PUT", key, {**q, **change})
    without = {k: v for k, v in q.items() if k != "sha256"}
    with pytest.raises(signing.MalformedUrl, match="binds bytes and sha256"):
        check("PUT", key, without)


@pytest.mark.parametrize("key", [
    "", "/" + KEY, KEY + "/", KEY.replace("/train/", "/../"), KEY.replace("/train/", "/./"),
    KEY.replace("/train/", "//"), KEY.replace("train", "tr\\ain"), KEY + "\x00",
    KEY + "\n", f"org/{ORG}/project/{PID}", f"org/{ORG}/project/x/a", "org/x/project/y/z",
    KEY.replace("events.parquet", "évents"), "C:/" + KEY,
    KEY.replace(ORG, "0" * 36), KEY.replace(PID, PID.replace("1", "A")),
])
def test_keys_are_checked_before_anything_else(key: str) -> None:
    with pytest.raises(signing.BadKey):
        signing.check_key(key)
    with pytest.raises(signing.BadKey):  # even with an otherwise valid query
        check("GET", key, grant()[1])


@pytest.mark.parametrize(("header", "want"), [
    (None, None), ("bytes=0-0", (0, 0)), ("bytes=0-99", (0, 99)), ("bytes=10-", (10, 99)),
    ("bytes=-10", (90, 99)), ("bytes=-1000", (0, 99)), ("bytes=50-5000", (50, 99)),
    (" bytes=1-2 ", (1, 2)),
])
def test_single_ranges(header: str | None, want: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == want


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=100-", 100), ("bytes=100-200", 100), ("bytes=-0", 100), ("bytes=5-4", 100),
    ("bytes=0-1,3-4", 100), ("bytes=-", 100), ("lines=0-1", 100), ("bytes=0-", 0),
    ("bytes=-5", 0), ("bytes=a-b", 100),
])
def test_unsatisfiable_ranges_are_416_with_the_size(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable) as err:
        parse_range(header, size)
    assert err.value.status == 416 and err.value.size == size
