"""Downloading files by signed URL and checking them against what was published.

`download_verified(rows)` takes api.dataset_download's answer (path, bytes, sha256, url per
file, manifest.json among them), fetches every file over HTTP (an S3 backend's 302 is
followed), counts and hashes the bytes as they arrive, and checks each file against its row
and against the downloaded manifest.json's entry for it. A difference is ChecksumMismatch;
a refusal of the file service or an unreachable one is DownloadFailed, with the service's
own error and what to do. With `dest`, the verified files are kept under it (by path).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import ipaddress
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from workers.errors import SecinfError

CHUNK = 1 << 20
TIMEOUT_S = 60.0
MANIFEST = "manifest.json"
_HINTS = {
    403: "Signed URLs verify only with the secret of the database that signed them and "
         "until they expire: is the service at this address another database's?",
    404: "The service reads the storage the version was exported to only if both use the "
         "same settings (SECINF_STORAGE_BACKEND, SECINF_DATASETS_DIR / SECINF_S3_*).",
}


class DownloadFailed(SecinfError):
    """A download by signed URL failed."""


class ChecksumMismatch(DownloadFailed):
    """A downloaded file is not the one that was published."""


@dataclass(frozen=True)
class Fetched:
    """One file as it arrived."""

    path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Download:
    """Every file of one api.dataset_download answer, verified."""

    files: list[Fetched]

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def data_files(self) -> list[Fetched]:
        """The files other than manifest.json."""
        return [f for f in self.files if f.path != MANIFEST]


def opener_for(url: str) -> urllib.request.OpenerDirector:
    """urllib's opener for `url`: without proxies for a loopback address (a proxy cannot
    reach the caller's own 127.0.0.1), the environment's otherwise."""
    host = urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return urllib.request.build_opener(urllib.request.ProxyHandler({}))
    return urllib.request.build_opener()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _refusal(label: str, url: str, exc: urllib.error.HTTPError) -> str:
    """The service's JSON error ({error, message, hint}) of a refused download, in words."""
    try:
        doc = json.loads(exc.read(8192) or b"null")
    except (ValueError, OSError):
        doc = None
    body = doc if isinstance(doc, dict) else {}
    what = f"{body.get('error', 'error')}: {body.get('message', exc.reason)}"
    hints = [str(h) for h in (body.get("hint"), _HINTS.get(exc.code)) if h]
    return (f"{label}: the file service at {_origin(url)} refused the download (HTTP "
            f"{exc.code} {what})." + "".join(f" {h}" for h in hints))


def fetch(url: str, label: str, out: Callable[[bytes], object] | None = None, *,
          timeout: float = TIMEOUT_S) -> tuple[int, str]:
    """GET one signed URL; (bytes, sha256) of the body, each block of which is also given
    to `out` as it arrives."""
    digest = hashlib.sha256()
    size = 0
    try:
        with opener_for(url).open(urllib.request.Request(url, method="GET"),
                                  timeout=timeout) as resp:
            while block := resp.read(CHUNK):
                digest.update(block)
                size += len(block)
                if out is not None:
                    _write(out, block, label)
    except urllib.error.HTTPError as exc:
        raise DownloadFailed(_refusal(label, url, exc)) from exc
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadFailed(
            f"{label}: cannot download from the file service at {_origin(url)} ({reason}). "
            "Start it with `secinf serve`, or point files.service.base_url at where it runs "
            "(`secinf serve --public-url URL`).") from exc
    return size, digest.hexdigest()


def _write(out: Callable[[bytes], object], block: bytes, label: str) -> None:
    try:
        out(block)
    except OSError as exc:  # not the network's fault: say so, not "cannot download"
        raise DownloadFailed(f"{label}: cannot write the download: {exc}") from exc


def _expect(row: Mapping[str, Any], path: str) -> tuple[int | None, str]:
    sha = row.get("sha256")
    if not isinstance(sha, str) or not sha:
        raise DownloadFailed(f"{path}: api.dataset_download gave no sha256 to check it by")
    size = row.get("bytes")
    return (int(size) if size is not None else None), sha


def _check(path: str, got: Fetched, size: int | None, sha: str, source: str) -> None:
    if got.sha256 == sha and (size is None or got.bytes == size):
        return
    said = f"{size:,} bytes with sha256 {sha}" if size is not None else f"sha256 {sha}"
    raise ChecksumMismatch(
        f"{path}: downloaded {got.bytes:,} bytes with sha256 {got.sha256}, but {source} "
        f"says {said}: the stored file is not the one that was published")


def _target(dest: Path, path: str) -> Path:
    rel = PurePosixPath(path)
    if rel.is_absolute() or not rel.parts or any(p in ("", ".", "..") for p in rel.parts):
        raise DownloadFailed(f"{path!r} is not a relative file path: not written under {dest}")
    return dest.joinpath(*rel.parts)


def _fetch_row(row: Mapping[str, Any], dest: Path | None) -> tuple[Fetched, bytes | None]:
    """One row's file, checked against the row; its content too when it is the manifest."""
    path = str(row["path"])
    size, sha = _expect(row, path)
    keep = io.BytesIO() if path == MANIFEST else None
    final = _target(dest, path) if dest is not None else None
    part = final.with_name(final.name + ".part") if final is not None else None
    fh: BinaryIO | None = None
    try:
        if part is not None:
            part.parent.mkdir(parents=True, exist_ok=True)
            fh = part.open("wb")
        sinks = [f.write for f in (keep, fh) if f is not None]
        got = Fetched(path, *fetch(str(row["url"]), path,
                                   lambda block: [w(block) for w in sinks]))
        if fh is not None:
            fh.close()
        _check(path, got, size, sha, "api.dataset_download")
        if part is not None and final is not None:
            os.replace(part, final)
    except BaseException:
        if fh is not None:
            fh.close()
        if part is not None:
            part.unlink(missing_ok=True)
        raise
    return got, keep.getvalue() if keep is not None else None


def download_verified(rows: Sequence[Mapping[str, Any]], dest: Path | None = None) -> Download:
    """Fetch and verify every file of an api.dataset_download answer (see the module)."""
    if not rows:
        raise DownloadFailed("api.dataset_download answered no files")
    fetched: list[Fetched] = []
    manifest: bytes | None = None
    for row in rows:
        got, content = _fetch_row(row, dest)
        fetched.append(got)
        if content is not None:
            manifest = content
    if manifest is None:
        raise DownloadFailed("api.dataset_download answered no manifest.json")
    listed = _manifest_files(manifest)
    for got in fetched:
        if got.path == MANIFEST:
            continue
        entry = listed.get(got.path)
        if entry is None:
            raise ChecksumMismatch(f"{got.path}: not listed in the downloaded manifest.json")
        _check(got.path, got, *_expect(entry, got.path), "manifest.json")
    return Download(fetched)


def _manifest_files(content: bytes) -> dict[str, Mapping[str, Any]]:
    try:
        doc = json.loads(content)
    except ValueError as exc:
        raise ChecksumMismatch(f"{MANIFEST}: not JSON ({exc})") from exc
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, list):
        raise ChecksumMismatch(f"{MANIFEST}: has no list of files")
    return {str(f["path"]): f for f in files if isinstance(f, dict) and "path" in f}
