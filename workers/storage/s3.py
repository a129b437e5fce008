"""The S3 backend: objects in one bucket under a prefix (SECINF_S3_BUCKET, SECINF_S3_PREFIX),
written with server-side encryption always on (AES256, or aws:kms with a key id).

Downloads and uploads by customers go straight to S3 with its own presigned URLs; the file
service is not in the data path. Credentials come from boto3's usual chain (environment,
shared config, instance or task role) and are never stored by secinf.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

from workers.errors import UserError
from workers.storage.base import (
    CHUNK,
    ObjectMissing,
    StorageConfigError,
    StorageError,
    TooLarge,
    check_range,
)
from workers.storage.keys import BadKey, check_key, check_prefix

SSE_MODES = ("AES256", "aws:kms")
MAX_EXPIRES_S = 7 * 24 * 3600          # SigV4 presigned URLs live at most a week
_MISSING = {"NoSuchKey", "404", "NotFound"}
_SHA = re.compile(r"[0-9a-f]{64}")
_SPOOL = 8 << 20


@dataclass(frozen=True)
class PresignedUpload:
    """A presigned PUT: send the body to `url` with exactly these headers (they are signed:
    the size, the encryption and, when given, the sha256 S3 checks)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "PUT"


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def check_settings(bucket: str | None, prefix: str, sse: str, kms_key_id: str | None) -> str:
    """The prefix without slashes, once the S3 settings are known to be usable."""
    if not bucket:
        raise StorageConfigError("the S3 backend needs a bucket: set SECINF_S3_BUCKET")
    if sse not in SSE_MODES:
        raise StorageConfigError(f"SECINF_S3_SSE {sse!r}: use AES256 or aws:kms "
                                 "(server-side encryption is always on)")
    if kms_key_id and sse != "aws:kms":
        raise StorageConfigError("SECINF_S3_KMS_KEY_ID is set but SECINF_S3_SSE is "
                                 f"{sse}: set SECINF_S3_SSE=aws:kms to use the key")
    prefix = prefix.strip("/")
    try:
        check_prefix(prefix)
    except BadKey as exc:
        raise StorageConfigError(f"SECINF_S3_PREFIX {prefix!r}: {exc}") from exc
    return prefix


class S3Storage:
    """Objects under s3://{bucket}/{prefix}/{key} through a boto3 S3 client."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None, *,
                 sse: str = "AES256", kms_key_id: str | None = None) -> None:
        prefix = check_settings(bucket, prefix, sse, kms_key_id)
        if client is None:
            import boto3

            client = boto3.client("s3")
        self.bucket = bucket
        self.prefix = prefix
        self.client = client
        self.sse = sse
        self.kms_key_id = kms_key_id or None

    def __repr__(self) -> str:
        return f"S3Storage({self.bucket!r}, {self.prefix!r})"

    # ------------------------------------------------------------------ keys
    def _full(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _list_prefix(self, prefix: str) -> str:
        prefix = check_prefix(prefix)
        return "/".join(p for p in (self.prefix, prefix) if p) + ("/" if prefix or
                                                                   self.prefix else "")

    def describe(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._full(key) if key else self.prefix}"

    def _encryption(self) -> dict[str, str]:
        extra = {"ServerSideEncryption": self.sse}
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        return extra

    def _fail(self, exc: Exception, what: str, key: str) -> Exception:
        """The error to raise for a failed call: ObjectMissing for a missing key, else a
        StorageError naming the bucket, key and S3's error code."""
        code = _code(exc)
        if code in _MISSING:
            return ObjectMissing(f"no object is stored under {key!r} in {self.describe()}")
        return StorageError(f"S3 {what} of {self.describe(key)} failed: {code or exc}")

    # ------------------------------------------------------------------ writes
    def put_file(self, key: str, src: Path) -> None:
        full = self._full(key)
        try:
            self.client.upload_file(str(src), self.bucket, full, ExtraArgs=self._encryption())
        except Exception as exc:
            if isinstance(exc, OSError):
                raise
            raise self._fail(exc, "upload", key) from exc

    def put_stream(self, key: str, fileobj: BinaryIO, max_bytes: int) -> tuple[int, str]:
        """Spooled locally (memory, then a temporary file) while counting and hashing, then
        uploaded: an over-size stream never reaches the bucket."""
        full = self._full(key)
        digest = hashlib.sha256()
        total = 0
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
            while block := fileobj.read(CHUNK):
                total += len(block)
                if total > max_bytes:
                    raise TooLarge(f"{key!r}: the upload is larger than {max_bytes} bytes; "
                                   "nothing was stored")
                digest.update(block)
                spool.write(block)
            spool.seek(0)
            try:
                self.client.upload_fileobj(spool, self.bucket, full,
                                           ExtraArgs=self._encryption())
            except Exception as exc:
                raise self._fail(exc, "upload", key) from exc
        return total, digest.hexdigest()

    # ------------------------------------------------------------------ reads
    def _get(self, key: str, **kw: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key), **kw)
        except BadKey:
            raise
        except Exception as exc:
            if _code(exc) == "InvalidRange":
                return None
            raise self._fail(exc, "read", key) from exc

    def open_read(self, key: str) -> BinaryIO:
        return cast(BinaryIO, self._get(key)["Body"])

    def read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        check_range(start, end_inclusive)
        got = self._get(key, Range=f"bytes={start}-{end_inclusive}")
        if got is None:  # the range starts past the end
            self.size(key)
            return b""
        return bytes(got["Body"].read())

    def _head(self, key: str) -> dict[str, Any]:
        try:
            return cast(dict[str, Any], self.client.head_object(Bucket=self.bucket,
                                                                Key=self._full(key)))
        except BadKey:
            raise
        except Exception as exc:
            raise self._fail(exc, "head", key) from exc

    def head(self, key: str) -> dict[str, Any]:
        """S3's metadata of the object (ContentLength, ServerSideEncryption, ETag, …)."""
        return self._head(key)

    def size(self, key: str) -> int:
        return int(self._head(key)["ContentLength"])

    def exists(self, key: str) -> bool:
        try:
            self._head(key)
        except ObjectMissing:
            return False
        return True

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        body = self.open_read(key)
        try:
            while block := body.read(CHUNK):
                digest.update(block)
        finally:
            body.close()
        return digest.hexdigest()

    def _objects(self, prefix: str) -> Iterator[str]:
        full = self._list_prefix(prefix)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=full)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield str(obj["Key"])
        except Exception as exc:
            raise self._fail(exc, "listing", prefix or ".") from exc

    def list(self, prefix: str = "") -> list[str]:
        strip = len(self.prefix) + 1 if self.prefix else 0
        return sorted(k[strip:] for k in self._objects(prefix))

    def delete_prefix(self, prefix: str) -> int:
        if prefix == "":
            raise BadKey("refusing to delete every object: name a prefix")
        keys = list(self._objects(prefix))
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i:i + 1000]]
            try:
                got = self.client.delete_objects(Bucket=self.bucket,
                                                 Delete={"Objects": batch, "Quiet": True})
            except Exception as exc:
                raise self._fail(exc, "delete", prefix) from exc
            if got.get("Errors"):
                first = got["Errors"][0]
                raise StorageError(f"S3 delete under {self.describe(prefix)} failed for "
                                   f"{first.get('Key')}: {first.get('Code')}")
        return len(keys)

    # ------------------------------------------------------------------ trees
    def staging_dir(self, prefix: str) -> Path:
        check_key(prefix)
        return Path(tempfile.mkdtemp(prefix="secinf-staging-"))

    def publish_dir(self, staging: Path, prefix: str, last: Sequence[str] = ()) -> None:
        """Upload every file of the tree, the `last` ones after all others; a leftover tree
        under the prefix (an unpublished version) is deleted first."""
        staging = Path(staging)
        try:
            files = sorted(p.relative_to(staging).as_posix()
                           for p in staging.rglob("*") if p.is_file())
            if self.list(prefix):
                self.delete_prefix(prefix)
            tail = [f for f in files if f in last]
            for rel in [f for f in files if f not in last] + tail:
                self.put_file(f"{prefix}/{rel}", staging / rel)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # ------------------------------------------------------------------ presigned URLs
    @staticmethod
    def _check_expiry(expires_s: int) -> int:
        if not 1 <= expires_s <= MAX_EXPIRES_S:
            raise UserError(f"expiry {expires_s} s: S3 presigned URLs live 1 s to "
                            f"{MAX_EXPIRES_S} s (7 days)")
        return int(expires_s)

    def presigned_get(self, key: str, expires_s: int, filename: str | None = None) -> str:
        """S3's own presigned GET URL of the object (range requests work on it); with a
        filename, the download is offered under that name."""
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key)}
        if filename:
            ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename)
            params["ResponseContentDisposition"] = (
                f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{quote(filename)}')
        return str(self.client.generate_presigned_url(
            "get_object", Params=params, ExpiresIn=self._check_expiry(expires_s)))

    def presigned_put(self, key: str, expires_s: int, bytes: int,
                      sha256: str | None = None, *,
                      encryption_header: bool = True) -> PresignedUpload:
        """S3's own presigned PUT URL for exactly `bytes` bytes (and, given a hex sha256,
        only that content: S3 refuses a body whose checksum differs), encrypted. Without
        the encryption header (a redirected client cannot be told to add one) the object
        is encrypted by the bucket's default encryption, which the receipt check requires."""
        if bytes < 0:
            raise UserError(f"upload size {bytes}: give a non-negative number of bytes")
        params: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key),
                                  "ContentLength": bytes}
        headers = {"Content-Length": str(bytes)}
        if encryption_header:
            params.update(self._encryption())
            headers["x-amz-server-side-encryption"] = self.sse
            if self.kms_key_id:
                headers["x-amz-server-side-encryption-aws-kms-key-id"] = self.kms_key_id
        if sha256 is not None:
            if not _SHA.fullmatch(sha256):
                raise UserError(f"sha256 {sha256[:80]!r}: give 64 lower-case hex digits")
            b64 = base64.b64encode(binascii.unhexlify(sha256)).decode()
            params["ChecksumSHA256"] = b64
            headers["x-amz-checksum-sha256"] = b64
        url = self.client.generate_presigned_url("put_object", Params=params,
                                                 ExpiresIn=self._check_expiry(expires_s))
        return PresignedUpload(str(url), headers)

