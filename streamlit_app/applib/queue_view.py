"""Review queue logic (no Streamlit calls): filters, keyset pages, rows and counts to show."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from workers.appdb.api import QueueFilter

STATUS_LABELS = {"new": "New", "scored": "Scored", "in_review": "In review",
                 "accepted": "Accepted", "rejected": "Rejected"}
UNDECIDED = ("new", "scored")
ORDER_LABELS = {"uncertain": "Most uncertain first", "newest": "Newest first",
                "score": "Highest score first"}


def utc_naive(ts: datetime) -> datetime:
    """UTC wall time without tzinfo: tables label their times UTC (Arrow and pandas drop
    the zone of tz-aware columns with a warning)."""
    return ts.astimezone(UTC).replace(tzinfo=None)


def build_filter(types: Sequence[str], source_ids: Sequence[int],
                 score_range: tuple[float, float], statuses: Sequence[str],
                 start: datetime | None, end: datetime | None) -> QueueFilter:
    """The widgets' values as a QueueFilter; the full score range and empty lists mean 'any'."""
    lo, hi = score_range
    if start is not None and end is not None and end < start:
        start, end = end, start
    return QueueFilter(
        types=tuple(types) or None,
        source_ids=tuple(int(s) for s in source_ids) or None,
        min_score=lo if lo > 0.0 else None,
        max_score=hi if hi < 1.0 else None,
        statuses=tuple(statuses) or None,
        start=start,
        end=end,
    )


@dataclass
class Pager:
    """Keyset pages: `starts[i]` is the cursor page i starts after (None for the first).

    Going back pops a start; going on pushes the last row's cursor. The cursors are opaque
    (api.review_queue makes them) and the pages stay stable as rows arrive or are decided.
    """

    key: str = ""
    """What the pages were built for (filters and order); a new key starts over."""
    starts: list[str | None] = field(default_factory=lambda: [None])

    @property
    def after(self) -> str | None:
        return self.starts[-1]

    @property
    def number(self) -> int:
        return len(self.starts)

    @property
    def has_previous(self) -> bool:
        return len(self.starts) > 1

    def reset_for(self, key: str) -> None:
        if key != self.key:
            self.key, self.starts = key, [None]

    def forward(self, last_cursor: str | None) -> None:
        if last_cursor:
            self.starts.append(last_cursor)

    def back(self) -> None:
        if self.has_previous:
            self.starts.pop()


def filter_key(flt: QueueFilter, order: str, limit: int) -> str:
    return repr((flt, order, limit))


def actors_text(actors: Any) -> str:
    """'leader 12 · follower 15' from {"leader": "12", "follower": "15"}."""
    if isinstance(actors, Mapping):
        return " · ".join(f"{role} {track}" for role, track in actors.items())
    return str(actors or "")


def where_text(row: Mapping[str, Any]) -> str:
    parts = [f"{label} {row[col]}" for col, label in
             (("zone", "zone"), ("route", "route"), ("trigger", "trigger")) if row.get(col)]
    return ", ".join(parts)


def queue_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The page's rows as the table the reviewer reads."""
    records = []
    for r in rows:
        start, end = r["start_ts"], r["end_ts"]
        records.append({
            "id": int(r["candidate_id"]),
            "type": r["type"],
            "source": r.get("source_name") or r.get("source_id"),
            "actors": actors_text(r.get("actors")),
            "where": where_text(r),
            "start": utc_naive(start),
            "duration s": round((end - start).total_seconds(), 2),
            "score": r.get("score"),
            "model": r.get("model_score"),
            "rule": r.get("rule_score"),
            "status": r.get("status"),
        })
    columns = ["id", "type", "source", "actors", "where", "start", "duration s", "score",
               "model", "rule", "status"]
    return pd.DataFrame.from_records(records, columns=columns)


def opinions_frame(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """api.second_opinions_for_me rows: the queue's columns (no status: the reviewer judges
    blind), plus when it was asked and of whom."""
    frame = queue_frame(rows).drop(columns=["status"])
    frame["requested"] = [utc_naive(r["requested_at"]) if r.get("requested_at") else None
                          for r in rows]
    frame["assigned to"] = [r.get("assigned_to") or "anyone" for r in rows]
    return frame


def count_of(counts: Mapping[str, Any], group: str, value: object) -> int:
    section = counts.get(group) or {}
    if not isinstance(section, Mapping):
        return 0
    found = section.get(str(value), 0)
    return int(found) if isinstance(found, int | float) else 0


def counts_frame(counts: Mapping[str, Any], group: str) -> pd.DataFrame:
    """One `by_*` section of api.review_counts as (value, candidates), largest first."""
    section = counts.get(group) or {}
    items = section.items() if isinstance(section, Mapping) else []
    frame = pd.DataFrame([(str(k), int(v)) for k, v in items], columns=["value", "candidates"])
    return frame.sort_values(["candidates", "value"], ascending=[False, True],
                             ignore_index=True)


def source_options(counts: Mapping[str, Any]) -> dict[int, str]:
    """source_id → 'name (n)' from review_counts (by_source is keyed by source id as text,
    source_names maps the same ids to names)."""
    section = counts.get("by_source") or {}
    names = counts.get("source_names") or {}
    options: dict[int, str] = {}
    if isinstance(section, Mapping) and isinstance(names, Mapping):
        for key, value in section.items():
            options[int(key)] = f"{names.get(key, 'source ' + str(key))} ({int(value)})"
    return options


def next_candidate(rows: Sequence[Mapping[str, Any]], current: int | None,
                   skip: Sequence[int] = ()) -> int | None:
    """The first candidate of the page after `current` that was not just decided."""
    ids = [int(r["candidate_id"]) for r in rows]
    if current in ids:
        ids = ids[ids.index(current) + 1:] + ids[: ids.index(current)]
    for cid in ids:
        if cid != current and cid not in skip:
            return cid
    return None
