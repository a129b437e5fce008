"""The configured storage backend (SECINF_STORAGE_BACKEND and the SECINF_S3_* settings)."""

from __future__ import annotations

from pathlib import Path

from workers.settings import Settings, load_settings
from workers.storage.base import Storage, StorageConfigError
from workers.storage.local import LocalStorage

BACKENDS = ("local", "s3")


def s3_client(endpoint_url: str | None = None) -> object:
    """A boto3 S3 client: credentials and region from boto3's chain; SigV4; path-style
    addressing and checksums only where required on an S3-compatible endpoint."""
    import boto3
    from botocore.config import Config

    if endpoint_url is None:
        return boto3.client("s3", config=Config(signature_version="s3v4"))
    return boto3.client("s3", endpoint_url=endpoint_url, config=Config(
        signature_version="s3v4", s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required"))


def storage_from_settings(settings: Settings | None = None, *,
                          local_root: Path | None = None) -> Storage:
    """The backend the settings choose; `local_root` (a command's --storage) forces the
    local backend at that root."""
    s = settings or load_settings()
    if local_root is not None:
        return LocalStorage(local_root)
    if s.storage_backend == "local":
        return LocalStorage(s.storage_root)
    if s.storage_backend != "s3":
        raise StorageConfigError(f"SECINF_STORAGE_BACKEND {s.storage_backend!r}: use "
                                 f"{' or '.join(BACKENDS)}")
    if not s.s3_bucket:
        raise StorageConfigError("SECINF_STORAGE_BACKEND is s3 but SECINF_S3_BUCKET is not "
                                 "set: name the bucket (credentials come from boto3's chain)")
    if s.s3_endpoint_url and not s.s3_endpoint_url.startswith(("http://", "https://")):
        raise StorageConfigError(f"SECINF_S3_ENDPOINT_URL {s.s3_endpoint_url!r}: give an "
                                 "http:// or https:// URL")
    from workers.storage.s3 import S3Storage, check_settings

    check_settings(s.s3_bucket, s.s3_prefix, s.s3_sse, s.s3_kms_key_id)
    return S3Storage(s.s3_bucket, s.s3_prefix, client=s3_client(s.s3_endpoint_url),
                     sse=s.s3_sse, kms_key_id=s.s3_kms_key_id)

