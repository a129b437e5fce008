"""The local storage backend (workers/storage/local.py) and key validation: refusals that
name the key, byte ranges, atomic writes with a size cap, listing and deleting under a
prefix, symlinks out of the root, and the settings that choose a backend."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from workers.errors import UserError
from workers.settings import load_settings
from workers.storage import (
    BadKey,
    LocalStorage,
    ObjectMissing,
    S3Storage,
    Storage,
    StorageConfigError,
    TooLarge,
    check_key,
    dataset_version_key,
    storage_from_settings,
)

ORG = "0d5c8a3e-3b7e-4f0e-9a51-6a2d1f0c4e11"
PROJECT = "7c1e2f4a-9b3d-4c5e-8f6a-1b2c3d4e5f60"
KEY = f"org/{ORG}/project/{PROJECT}/datasets/events/1.0.0/train/events.parquet"


@pytest.fixture
def store(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "root")


def _temp_files(root: Path) -> list[str]:
    return [n for _, _, files in os.walk(root) for n in files if n.startswith(".secinf-")]


# ---------------------------------------------------------------------- keys

@pytest.mark.parametrize(("key", "why"), [
    ("", "it is empty"),
    ("../etc/passwd", "it has a '..' segment"),
    ("org/a/../../b", "it has a '..' segment"),
    ("org/./a", "it has a '.' segment"),
    ("/etc/passwd", "it is absolute"),
    ("C:/x", "it is absolute"),
    ("org\\a", "it contains a backslash"),
    ("org/a\x00b", "it contains a NUL byte"),
    ("org/a\nb", "it contains a control character"),
    ("org//a", "it has an empty segment"),
    ("org/a/", "it has an empty segment"),
    ("org/.secinf-tmp-1-x", "reserved for temporary files"),
    ("a" * 1025, "longer than 1024"),
])
def test_bad_keys_are_refused_naming_the_key(store: LocalStorage, key: str, why: str) -> None:
    with pytest.raises(BadKey, match="refused") as err:
        check_key(key)
    assert why in str(err.value)
    assert repr(key[:200]) in str(err.value)
    for op in (store.exists, store.size, store.open_read, store.local_path):
        with pytest.raises(BadKey):
            op(key)
    with pytest.raises(BadKey):
        store.put_stream(key, io.BytesIO(b"x"), 10)
    assert not (store.root.parent / "etc").exists()


def test_dataset_version_key_layout() -> None:
    assert dataset_version_key(ORG, PROJECT, "events", "1.2.3") == (
        f"org/{ORG}/project/{PROJECT}/datasets/events/1.2.3")
    with pytest.raises(BadKey):
        dataset_version_key(ORG, PROJECT, "..", "1.2.3")


def test_a_symlink_out_of_the_root_is_refused(store: LocalStorage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    store.root.mkdir(parents=True)
    (store.root / "org").symlink_to(outside)
    with pytest.raises(BadKey, match="resolves outside the storage root"):
        store.open_read("org/secret")


# ---------------------------------------------------------------------- writes and reads

def test_put_file_then_read_it_back(store: LocalStorage, tmp_path: Path) -> None:
    assert isinstance(store, Storage)
    src = tmp_path / "src.bin"
    data = bytes(range(256)) * 40
    src.write_bytes(data)
    store.put_file(KEY, src)
    assert store.exists(KEY) and store.size(KEY) == len(data)
    assert store.sha256(KEY) == hashlib.sha256(data).hexdigest()
    assert store.local_path(KEY) == store.root / KEY
    with store.open_read(KEY) as fh:
        assert fh.read() == data
    assert store.describe(KEY) == str(store.root / KEY)
    # Replaced atomically: a reader holding the old file keeps reading the old bytes.
    with store.open_read(KEY) as old:
        src.write_bytes(b"new")
        store.put_file(KEY, src)
        assert old.read() == data
    assert store.local_path(KEY).read_bytes() == b"new"
    assert _temp_files(store.root) == []


def test_read_ranges(store: LocalStorage) -> None:
    data = b"0123456789"
    store.put_stream(KEY, io.BytesIO(data), 100)
    assert store.read_range(KEY, 0, 0) == b"0"
    assert store.read_range(KEY, 2, 5) == b"2345"
    assert store.read_range(KEY, 8, 100) == b"89"       # cut at the end
    assert store.read_range(KEY, 10, 20) == b""
    for start, end in ((-1, 3), (5, 4)):
        with pytest.raises(UserError, match=r"byte range .* is not valid"):
            store.read_range(KEY, start, end)


def test_missing_objects(store: LocalStorage) -> None:
    assert not store.exists(KEY)
    for op in (store.size, store.open_read, store.local_path, store.sha256):
        with pytest.raises(ObjectMissing, match="no object is stored under"):
            op(KEY)
    store.put_stream(KEY, io.BytesIO(b"x"), 1)
    parent = KEY.rsplit("/", 1)[0]
    assert not store.exists(parent)            # a prefix is not an object
    with pytest.raises(BadKey, match="is a prefix of other objects"):
        store.put_stream(parent, io.BytesIO(b"x"), 1)


def test_put_stream_counts_hashes_and_refuses_past_the_cap(store: LocalStorage) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # several chunks
    n, digest = store.put_stream(KEY, io.BytesIO(data), len(data))
    assert (n, digest) == (len(data), hashlib.sha256(data).hexdigest())
    other = KEY.replace("train", "val")
    with pytest.raises(TooLarge, match=r"larger than 1000 bytes; nothing was stored"):
        store.put_stream(other, io.BytesIO(data), 1000)
    assert not store.exists(other)
    # The refused stream left no temporary file, and did not touch the object beside it.
    assert _temp_files(store.root) == []
    assert store.sha256(KEY) == digest


def test_an_interrupted_put_leaves_the_old_object(store: LocalStorage) -> None:
    store.put_stream(KEY, io.BytesIO(b"old"), 10)

    class Broken(io.RawIOBase):
        def __init__(self) -> None:
            self.sent = False

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.sent:
                raise ConnectionResetError("client went away")
            self.sent = True
            return b"partial new bytes"

    with pytest.raises(ConnectionResetError):
        store.put_stream(KEY, Broken(), 1000)  # type: ignore[arg-type]
    assert store.local_path(KEY).read_bytes() == b"old"
    assert _temp_files(store.root) == []


def test_list_and_delete_under_a_prefix(store: LocalStorage) -> None:
    base = f"org/{ORG}/project/{PROJECT}"
    keys = [f"{base}/datasets/events/1.0.0/manifest.json",
            f"{base}/datasets/events/1.0.0/train/events.parquet",
            f"{base}/datasets/events/1.1.0/manifest.json",
            f"{base}/uploads/u1/tracks.csv"]
    for k in keys:
        store.put_stream(k, io.BytesIO(k.encode()), 1000)
    staging = store.staging_dir(f"{base}/datasets/events/2.0.0")  # hidden: never listed
    (staging / "manifest.json").write_text("{}")
    assert store.list() == sorted(keys)
    assert store.list(f"{base}/datasets") == keys[:3]
    assert store.list(f"{base}/datasets/events/1.0.0/") == keys[:2]
    assert store.list(f"{base}/datasets/events/1.0") == []     # directories, not strings
    assert store.list(f"{base}/nothing") == []
    with pytest.raises(BadKey):
        store.list("../")
    assert store.delete_prefix(f"{base}/datasets/events/1.0.0") == 2
    assert store.list(f"{base}/datasets") == [keys[2]]
    assert store.delete_prefix(f"{base}/datasets/events/9.9.9") == 0
    with pytest.raises(BadKey, match="name a prefix"):
        store.delete_prefix("")


def test_publish_a_tree_replaces_a_leftover_in_one_rename(store: LocalStorage,
                                                          tmp_path: Path) -> None:
    prefix = f"org/{ORG}/project/{PROJECT}/datasets/events/1.0.0"
    store.put_stream(f"{prefix}/stale.txt", io.BytesIO(b"left over"), 100)
    staging = store.staging_dir(prefix)
    assert staging.parent == (store.root / prefix).parent
    (staging / "train").mkdir()
    (staging / "train" / "events.parquet").write_bytes(b"p")
    (staging / "manifest.json").write_bytes(b"{}")
    store.publish_dir(staging, prefix, last=("manifest.json",))
    assert store.list(prefix) == [f"{prefix}/manifest.json", f"{prefix}/train/events.parquet"]
    assert not staging.exists() and _temp_files(store.root) == []
    # A tree built elsewhere (another filesystem, say) is copied beside the target first.
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "card").mkdir(parents=True)
    (elsewhere / "card" / "README.md").write_text("# card")
    store.publish_dir(elsewhere, prefix)
    assert store.list(prefix) == [f"{prefix}/card/README.md"]
    assert not elsewhere.exists()
    assert [p.name for p in (store.root / prefix).parent.iterdir()] == ["1.0.0"]


# ---------------------------------------------------------------------- settings

def test_settings_choose_the_backend(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECINF_DATASETS_DIR", str(tmp_path / "ds"))
    got = storage_from_settings()
    assert isinstance(got, LocalStorage) and got.root == tmp_path / "ds"
    assert isinstance(storage_from_settings(local_root=tmp_path / "x"), LocalStorage)
    monkeypatch.setenv("SECINF_STORAGE_BACKEND", "S3")
    with pytest.raises(StorageConfigError, match="SECINF_S3_BUCKET is not set"):
        storage_from_settings()
    monkeypatch.setenv("SECINF_S3_BUCKET", "secinf-data")
    monkeypatch.setenv("SECINF_S3_SSE", "none")
    with pytest.raises(StorageConfigError, match="SECINF_S3_SSE 'none': use AES256 or aws:kms"):
        storage_from_settings()
    monkeypatch.setenv("SECINF_S3_SSE", "AES256")
    monkeypatch.setenv("SECINF_S3_KMS_KEY_ID", "alias/secinf")
    with pytest.raises(StorageConfigError, match="set SECINF_S3_SSE=aws:kms"):
        storage_from_settings()
    monkeypatch.setenv("SECINF_S3_SSE", "aws:kms")
    monkeypatch.setenv("SECINF_S3_PREFIX", "a/../b")
    with pytest.raises(StorageConfigError, match="SECINF_S3_PREFIX"):
        storage_from_settings()
    monkeypatch.setenv("SECINF_S3_PREFIX", "/secinf/prod/")
    monkeypatch.setenv("SECINF_S3_ENDPOINT_URL", "minio:9000")
    with pytest.raises(StorageConfigError, match="give an http:// or https:// URL"):
        storage_from_settings()
    monkeypatch.setenv("SECINF_S3_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    s3 = storage_from_settings()
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.sse, s3.kms_key_id) == (
        "secinf-data", "secinf/prod", "aws:kms", "alias/secinf")
    assert s3.describe("org/x") == "s3://secinf-data/secinf/prod/org/x"
    monkeypatch.setenv("SECINF_STORAGE_BACKEND", "ftp")
    with pytest.raises(StorageConfigError, match="SECINF_STORAGE_BACKEND 'ftp': use local or s3"):
        storage_from_settings()
    assert load_settings().storage_backend == "ftp"
