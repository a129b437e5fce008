"""Object storage behind one interface (issue 17): the local tree (the default) and
S3-compatible object storage. `storage_from_settings()` picks the configured one."""

from workers.storage.base import (
    ObjectMissing,
    Storage,
    StorageConfigError,
    StorageError,
    TooLarge,
)
from workers.storage.keys import BadKey, check_key, dataset_version_key, join, project_prefix
from workers.storage.local import LocalStorage

__all__ = ["BadKey", "LocalStorage", "ObjectMissing", "Storage", "StorageConfigError",
           "StorageError", "TooLarge", "check_key", "dataset_version_key", "join",
           "project_prefix"]
