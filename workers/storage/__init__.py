"""Object storage behind one interface (issue 17): the local tree (the default) and
S3-compatible object storage. `storage_from_settings()` picks the configured one."""

from workers.storage.base import (
    CHUNK,
    ObjectMissing,
    Storage,
    StorageConfigError,
    StorageError,
    TooLarge,
)
from workers.storage.factory import storage_from_settings
from workers.storage.keys import BadKey, check_key, dataset_version_key, join, project_prefix
from workers.storage.local import LocalStorage
from workers.storage.s3 import PresignedUpload, S3Storage

__all__ = ["CHUNK", "BadKey", "LocalStorage", "ObjectMissing", "PresignedUpload", "S3Storage",
           "Storage", "StorageConfigError", "StorageError", "TooLarge", "check_key",
           "dataset_version_key", "join", "project_prefix", "storage_from_settings"]
