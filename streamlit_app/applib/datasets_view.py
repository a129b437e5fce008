"""Datasets page logic (no Streamlit calls): the project's dataset versions and, for a
published one, the signed download URLs of a split.

Every call runs as the signed-in caller through the PostgREST request model (the named
queries of workers/queries/app_datasets.sql): `api.datasets` lists the versions RLS lets
the caller read, `api.dataset_download` signs the URLs of a published version's files (and
audits each issue). Who may download is the database's grant, asked with
has_function_privilege, never a list kept here. The other functions shape rows and are pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from workers.appdb.session import AppDB, Identity, Row, SessionEnded
from workers.db.queries import query

GROUP = "app_datasets"
SPLITS: tuple[str, ...] = ("train", "val", "test", "every file")
"""The split choices; 'every file' asks api.dataset_download for all of them (split NULL)."""
VERSION_COLUMNS = ["version", "status", "events", "files", "size", "failed gates",
                   "published_at"]
NO_VERSIONS = ("This project has no dataset version yet. `secinf export -p ORG/PROJECT` "
               "exports one from the verified events and publishes it once its quality "
               "gates pass.")
NO_PUBLISHED = ("No version is published yet, and only published versions can be "
                "downloaded: a blocked version failed a quality gate (`secinf datasets show "
                "VERSION` says which); export again once it is fixed.")
LINKS_NOTE = ("Anyone holding a link can download that file, without signing in, until it "
              "expires; each issue of links is audited. Check a file with `sha256sum FILE`.")


def not_for_role(role: str) -> str:
    """The message for a role the database does not let call api.dataset_download."""
    return (f"Your role ({role}) may not download datasets: api.dataset_download is granted "
            "to customers, reviewers, analysts and project admins of a project. Ask a "
            "project admin for a key with one of those roles.")


# ---------------------------------------------------------------- reading
READS = frozenset({"may_download", "dataset_versions"})


def _call(db: AppDB, who: Identity, name: str, params: Mapping[str, Any] | None = None
          ) -> list[Row]:
    if who.expired():
        raise SessionEnded("signed out: your session expired, sign in again")
    # dataset_download signs links and records the grant: the primary's; the rest read.
    return db.request(who.role, who.claims, query(GROUP, name), params, path=f"/rpc/{name}",
                      read_only=name in READS)


def may_download(db: AppDB, who: Identity) -> bool:
    """Whether the caller's role may call api.dataset_download (the database's grant)."""
    rows = _call(db, who, "may_download")
    return bool(rows and rows[0]["allowed"])


def versions(db: AppDB, who: Identity) -> list[Row]:
    """The caller's dataset versions, newest first per dataset."""
    return _call(db, who, "dataset_versions")


def split_param(split: str) -> str | None:
    """api.dataset_download's p_split for a choice of SPLITS."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: use one of {', '.join(SPLITS)}")
    return None if split == "every file" else split


def download_links(db: AppDB, who: Identity, version: str, split: str) -> list[Row]:
    """Signed URLs of the split's files and manifest.json (each issue is audited)."""
    return _call(db, who, "dataset_download",
                 {"version": version, "split": split_param(split)})


# ---------------------------------------------------------------- shaping
def label(row: Mapping[str, Any]) -> str:
    """dataset@X.Y.Z: how api.dataset_download names a version unambiguously."""
    return f"{row['name']}@{row['version']}"


def size_text(size: Any) -> str:
    """Bytes in words (B, kB, MB, GB: powers of 1000); an em dash when unknown."""
    if size is None:
        return "—"
    n = float(size)
    for unit in ("B", "kB", "MB"):
        if n < 1000:
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _utc(ts: Any) -> datetime | None:
    """UTC wall time without tzinfo (tables label their times UTC)."""
    if not isinstance(ts, datetime):
        return None
    return (ts.astimezone(UTC) if ts.tzinfo else ts).replace(tzinfo=None)


def versions_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per version, newest first per dataset."""
    return pd.DataFrame.from_records(
        [{"version": label(r), "status": r["status"], "events": r["events"],
          "files": r["files"], "size": size_text(r["bytes"]),
          "failed gates": ", ".join(r["failed_gates"] or []) or "—",
          "published_at": _utc(r["published_at"])} for r in rows],
        columns=VERSION_COLUMNS)


def published(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The labels of the downloadable (published) versions, in the listing's order."""
    return [label(r) for r in rows if r["status"] == "published"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def links_markdown(links: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of the files, each with its signed URL as a download link."""
    head = ("| file | split | rows | size | sha256 | |\n"
            "|---|---|--:|--:|---|---|\n")
    body = "".join(
        f"| `{_cell(str(r['path']))}` | {r['split'] or '—'} | {_count(r['rows'])} | "
        f"{size_text(r['bytes'])} | `{r['sha256'] or '—'}` | [download]({r['url']}) |\n"
        for r in links)
    return head + body


def _count(n: Any) -> str:
    return "—" if n is None else f"{int(n):,}"


def expires(links: Sequence[Mapping[str, Any]]) -> datetime | None:
    """When the first of the links expires."""
    times = [r["expires_at"] for r in links if isinstance(r.get("expires_at"), datetime)]
    return min(times) if times else None


def expired(links: Sequence[Mapping[str, Any]], now: datetime | None = None,
            margin_s: float = 30.0) -> bool:
    """Whether the links expire within `margin_s` (then they are issued again)."""
    until = expires(links)
    now = now or datetime.now(UTC)
    return until is None or (until - now).total_seconds() < margin_s


def expiry_text(links: Sequence[Mapping[str, Any]], now: datetime | None = None) -> str:
    """When the links stop working, in UTC and in minutes from now."""
    until = expires(links)
    if until is None:
        return "These links carry no expiry."
    now = now or datetime.now(UTC)
    minutes = max(0, round((until - now).total_seconds() / 60))
    return f"The links expire at {_utc(until):%Y-%m-%d %H:%M:%S} UTC (in {minutes} min)."


def total_bytes(links: Sequence[Mapping[str, Any]]) -> int:
    return sum(int(r["bytes"]) for r in links if r["bytes"] is not None)
