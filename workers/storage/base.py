"""The storage interface every backend implements, and its errors.

Keys are checked by `workers.storage.keys.check_key` before a backend touches anything.
Reads of a missing object raise `ObjectMissing`; writes are atomic (a reader sees the old
object, or none, or the whole new one).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from workers.errors import NotFound, SecinfError, UserError

CHUNK = 1 << 20


class StorageError(SecinfError):
    """The storage backend failed."""


class StorageConfigError(UserError):
    """The storage settings are not valid."""


class ObjectMissing(NotFound):
    """No object is stored under this key."""


class TooLarge(UserError):
    """The stream is larger than allowed."""


@runtime_checkable
class Storage(Protocol):
    """Objects under keys (org/{org_id}/project/{project_id}/…)."""

    def describe(self, key: str = "") -> str:
        """Where a key lives, for people: a directory path or an s3:// URL."""
        ...

    def put_file(self, key: str, src: Path) -> None:
        """Store a local file under key, replacing any object there, atomically."""
        ...

    def put_stream(self, key: str, fileobj: BinaryIO, max_bytes: int) -> tuple[int, str]:
        """Store what fileobj yields under key, atomically; (bytes, sha256 hex). Past
        max_bytes nothing is stored and TooLarge is raised."""
        ...

    def open_read(self, key: str) -> BinaryIO:
        """A binary stream of the object (close it, or use it in a `with`)."""
        ...

    def read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        """Bytes start..end_inclusive of the object (shorter at its end)."""
        ...

    def size(self, key: str) -> int:
        ...

    def exists(self, key: str) -> bool:
        ...

    def sha256(self, key: str) -> str:
        """Hex sha256 of the object's bytes."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Every key under prefix (as a directory: 'a/b' lists 'a/b/…'), sorted."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under prefix; how many there were."""
        ...

    def staging_dir(self, prefix: str) -> Path:
        """A fresh local directory to build a tree in before `publish_dir(…, prefix)`."""
        ...

    def publish_dir(self, staging: Path, prefix: str, last: Sequence[str] = ()) -> None:
        """Make the tree built in staging the objects under prefix, replacing what was
        there; the relative paths in `last` are published after every other file (a
        manifest). The staging directory is gone afterwards."""
        ...


def check_range(start: int, end_inclusive: int) -> None:
    if start < 0 or end_inclusive < start:
        raise UserError(f"byte range {start}-{end_inclusive} is not valid: give "
                        "0 <= start <= end")
