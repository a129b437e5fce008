"""The local backend: objects are files under a root directory (SECINF_DATASETS_DIR).

Every write goes to a temporary name in the object's own directory and is renamed into
place, so a reader sees the old file, none, or the whole new one. Temporary files and
staging directories are named `.secinf-…` (no key can name them; listings skip them).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from workers.storage.base import CHUNK, ObjectMissing, StorageError, TooLarge, check_range
from workers.storage.keys import RESERVED, BadKey, check_key, check_prefix


def _temp_name(final: Path, kind: str) -> Path:
    return final.parent / f"{RESERVED}{kind}-{uuid.uuid4().hex[:12]}-{final.name}"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LocalStorage:
    """Objects as files under `root`; `local_path(key)` is what the file service streams."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # ------------------------------------------------------------------ paths
    def _path(self, key: str) -> Path:
        """The file of a checked key, refused when a symlink leads it out of the root."""
        path = self.root / check_key(key)
        real_root = os.path.realpath(self.root)
        real = os.path.realpath(path)
        if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
            raise BadKey(f"storage key {key[:200]!r} is refused: it resolves outside the "
                         "storage root")
        return path

    def _file(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise ObjectMissing(f"no object is stored under {key!r} in {self.root}")
        return path

    def describe(self, key: str = "") -> str:
        return str(self._path(key)) if key else str(self.root)

    def local_path(self, key: str) -> Path:
        """The file of an existing object (ObjectMissing when there is none)."""
        return self._file(key)

    # ------------------------------------------------------------------ writes
    def _target(self, key: str) -> Path:
        final = self._path(key)
        if final.is_dir():
            raise BadKey(f"storage key {key[:200]!r} is refused: it is a prefix of other "
                         "objects")
        final.parent.mkdir(parents=True, exist_ok=True)
        return final

    @staticmethod
    def _commit(tmp: Path, final: Path) -> None:
        os.replace(tmp, final)
        _fsync_dir(final.parent)

    def put_file(self, key: str, src: Path) -> None:
        final = self._target(key)
        tmp = _temp_name(final, "tmp")
        try:
            with open(src, "rb") as inp, open(tmp, "xb") as out:
                shutil.copyfileobj(inp, out, CHUNK)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def put_stream(self, key: str, fileobj: BinaryIO, max_bytes: int) -> tuple[int, str]:
        final = self._target(key)
        tmp = _temp_name(final, "tmp")
        digest = hashlib.sha256()
        total = 0
        try:
            with open(tmp, "xb") as out:
                while block := fileobj.read(CHUNK):
                    total += len(block)
                    if total > max_bytes:
                        raise TooLarge(f"{key!r}: the upload is larger than {max_bytes} bytes; "
                                       "nothing was stored")
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
            self._commit(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return total, digest.hexdigest()

    # ------------------------------------------------------------------ reads
    def open_read(self, key: str) -> BinaryIO:
        path = self._file(key)
        try:
            return open(path, "rb")
        except FileNotFoundError as exc:
            raise ObjectMissing(f"no object is stored under {key!r} in {self.root}") from exc

    def read_range(self, key: str, start: int, end_inclusive: int) -> bytes:
        check_range(start, end_inclusive)
        with self.open_read(key) as fh:
            fh.seek(start)
            return fh.read(end_inclusive - start + 1)

    def size(self, key: str) -> int:
        return self._file(key).stat().st_size

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        with self.open_read(key) as fh:
            while block := fh.read(CHUNK):
                digest.update(block)
        return digest.hexdigest()

    def list(self, prefix: str = "") -> list[str]:
        prefix = check_prefix(prefix)
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not d.startswith(RESERVED)]
            rel = Path(folder).relative_to(self.root).as_posix()
            keys += [f if rel == "." else f"{rel}/{f}" for f in files
                     if not f.startswith(RESERVED)]
        return sorted(keys)

    def delete_prefix(self, prefix: str) -> int:
        if prefix == "":
            raise BadKey("refusing to delete every object: name a prefix")
        base = self._path(check_prefix(prefix))
        if not base.is_dir():
            return 0
        n = len(self.list(prefix))
        shutil.rmtree(base)
        return n

    # ------------------------------------------------------------------ trees
    def staging_dir(self, prefix: str) -> Path:
        """A hidden directory beside the prefix's own, so publishing is one rename."""
        final = self._path(check_key(prefix))
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = _temp_name(final, "staging")
        staging.mkdir()
        return staging

    def publish_dir(self, staging: Path, prefix: str, last: Sequence[str] = ()) -> None:
        """Rename the staging directory into place (one step: `last` needs no ordering);
        a leftover tree under the prefix is moved aside first and removed after."""
        final = self._path(check_key(prefix))
        staging = Path(staging)
        if not staging.is_dir():
            raise StorageError(f"staging directory {staging} is missing")
        if staging.parent != final.parent:  # built elsewhere: copy beside the target first
            near = self.staging_dir(prefix)
            shutil.copytree(staging, near, dirs_exist_ok=True)
            shutil.rmtree(staging, ignore_errors=True)
            staging = near
        old = _temp_name(final, "old") if final.exists() else None
        if old is not None:
            final.rename(old)
        staging.rename(final)
        _fsync_dir(final.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
