"""The S3 backend (workers/storage/s3.py) as an API-contract test against moto's server
mode on a loopback port. moto is a stand-in for S3: it speaks S3's REST API but does not
check presigned signatures, checksums or KMS keys as S3 does, so these tests prove our
calls and URLs are well-formed S3, not S3's own behaviour. moto is a declared dev
dependency: without it these tests fail (they are never skipped)."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support.moto_s3 import MotoS3, moto_s3
from workers.errors import UserError
from workers.storage import (
    BadKey,
    ObjectMissing,
    S3Storage,
    Storage,
    TooLarge,
    storage_from_settings,
)

KEY = "org/o1/project/p1/datasets/events/1.0.0/train/events.parquet"


@pytest.fixture(scope="module")
def s3() -> Iterator[MotoS3]:
    with moto_s3() as server:
        yield server


@pytest.fixture
def store(s3: MotoS3) -> S3Storage:
    return S3Storage(s3.bucket(), "secinf/test", s3.client())


def test_put_encrypts_every_object(store: S3Storage, s3: MotoS3, tmp_path: Path) -> None:
    assert isinstance(store, Storage)
    src = tmp_path / "f.bin"
    src.write_bytes(b"parquet bytes")
    store.put_file(KEY, src)
    n, digest = store.put_stream(KEY + ".2", io.BytesIO(b"streamed"), 100)
    assert (n, digest) == (8, hashlib.sha256(b"streamed").hexdigest())
    raw = s3.client()
    for key in (KEY, KEY + ".2"):
        head = raw.head_object(Bucket=store.bucket, Key=f"secinf/test/{key}")
        assert head["ServerSideEncryption"] == "AES256"
    assert store.head(KEY)["ServerSideEncryption"] == "AES256"
    kms = S3Storage(store.bucket, "kms", raw, sse="aws:kms", kms_key_id="alias/secinf")
    kms.put_stream(KEY, io.BytesIO(b"k"), 10)
    head = raw.head_object(Bucket=store.bucket, Key=f"kms/{KEY}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/secinf")


def test_reads_ranges_and_missing_objects(store: S3Storage) -> None:
    data = b"0123456789"
    store.put_stream(KEY, io.BytesIO(data), 100)
    assert store.exists(KEY) and store.size(KEY) == 10
    assert store.sha256(KEY) == hashlib.sha256(data).hexdigest()
    with store.open_read(KEY) as fh:
        assert fh.read() == data
    assert store.read_range(KEY, 2, 5) == b"2345"
    assert store.read_range(KEY, 8, 100) == b"89"
    assert store.read_range(KEY, 10, 20) == b""
    missing = KEY + ".none"
    assert not store.exists(missing)
    for op in (store.size, store.open_read, store.sha256):
        with pytest.raises(ObjectMissing, match="no object is stored under"):
            op(missing)
    with pytest.raises(ObjectMissing):
        store.read_range(missing, 0, 1)
    with pytest.raises(BadKey, match=r"'\.\.' segment"):
        store.exists("org/../x")


def test_put_stream_past_the_cap_stores_nothing(store: S3Storage) -> None:
    with pytest.raises(TooLarge, match="larger than 4 bytes"):
        store.put_stream(KEY, io.BytesIO(b"too long"), 4)
    assert store.list() == []


def test_list_and_delete_prefix(store: S3Storage, s3: MotoS3) -> None:
    keys = [f"org/o1/project/p1/datasets/events/1.0.0/{n}" for n in ("a", "b/c")]
    keys.append("org/o1/project/p1/datasets/events/1.0.01/x")
    for k in keys:
        store.put_stream(k, io.BytesIO(b"."), 1)
    S3Storage(store.bucket, "", s3.client()).put_stream("outside/prefix", io.BytesIO(b"."), 1)
    assert store.list() == sorted(keys)
    assert store.list("org/o1/project/p1/datasets/events/1.0.0") == keys[:2]
    assert store.delete_prefix("org/o1/project/p1/datasets/events/1.0.0") == 2
    assert store.list() == keys[2:]
    with pytest.raises(BadKey, match="name a prefix"):
        store.delete_prefix("")


def test_publish_dir_uploads_the_manifest_last(store: S3Storage, tmp_path: Path) -> None:
    prefix = "org/o1/project/p1/datasets/events/1.0.0"
    store.put_stream(f"{prefix}/stale", io.BytesIO(b"."), 1)
    order: list[str] = []
    real = store.put_file

    def recording(key: str, src: Path) -> None:
        order.append(key.removeprefix(prefix + "/"))
        real(key, src)

    store.put_file = recording  # type: ignore[method-assign]
    staging = store.staging_dir(prefix)
    for rel in ("manifest.json", "a.txt", "train/events.parquet", "z.txt"):
        (staging / rel).parent.mkdir(parents=True, exist_ok=True)
        (staging / rel).write_text(rel)
    store.publish_dir(staging, prefix, last=("manifest.json",))
    assert order == ["a.txt", "train/events.parquet", "z.txt", "manifest.json"]
    assert store.list(prefix) == [f"{prefix}/{r}" for r in sorted(order)]
    assert not staging.exists()


def test_presigned_get_is_fetched_with_plain_http(store: S3Storage) -> None:
    store.put_stream(KEY, io.BytesIO(b"split bytes"), 100)
    url = store.presigned_get(KEY, 60, filename="train events.parquet")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url
    got = requests.get(url, timeout=10)
    assert got.status_code == 200 and got.content == b"split bytes"
    assert got.headers["Content-Disposition"].startswith(
        'attachment; filename="train_events.parquet"')
    part = requests.get(url, headers={"Range": "bytes=6-10"}, timeout=10)
    assert (part.status_code, part.content) == (206, b"bytes")
    for bad in (0, 8 * 24 * 3600):
        with pytest.raises(UserError, match="presigned URLs live 1 s to"):
            store.presigned_get(KEY, bad)


def test_presigned_put_is_accepted_and_signs_size_encryption_and_hash(
        store: S3Storage) -> None:
    data = b"track_id,t,x,y\n1,0,0,0\n"
    sha = hashlib.sha256(data).hexdigest()
    key = "org/o1/project/p1/uploads/u1/tracks.csv"
    up = store.presigned_put(key, 300, len(data), sha)
    signed = parse_qs(urlsplit(up.url).query)["X-Amz-SignedHeaders"][0].split(";")
    # What S3 enforces on a presigned PUT (moto does not): the headers are part of the
    # signature, so the uploader must send exactly this size, encryption and checksum.
    assert {"content-length", "x-amz-server-side-encryption",
            "x-amz-checksum-sha256"} <= set(signed)
    assert up.headers["x-amz-server-side-encryption"] == "AES256"
    put = requests.put(up.url, data=data, headers=up.headers, timeout=10)
    assert put.status_code == 200, put.text
    assert store.head(key)["ServerSideEncryption"] == "AES256"
    assert store.sha256(key) == sha
    with pytest.raises(UserError, match="64 lower-case hex"):
        store.presigned_put(key, 300, 1, "ABC")


def test_the_settings_build_an_s3_backend(s3: MotoS3, monkeypatch: pytest.MonkeyPatch
                                          ) -> None:
    """SECINF_* choose it; credentials come from boto3's chain (here the environment)."""
    bucket = s3.bucket()
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
                        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                        "SECINF_STORAGE_BACKEND": "s3", "SECINF_S3_BUCKET": bucket,
                        "SECINF_S3_PREFIX": "env", "SECINF_S3_ENDPOINT_URL": s3.endpoint_url
                        }.items():
        monkeypatch.setenv(name, value)
    store = storage_from_settings()
    assert isinstance(store, S3Storage)
    store.put_stream(KEY, io.BytesIO(b"via settings"), 100)
    head = s3.client().head_object(Bucket=bucket, Key=f"env/{KEY}")
    assert head["ServerSideEncryption"] == "AES256" and head["ContentLength"] == 12
