"""Typed calls of the `api` functions the review app uses, one function per endpoint.

Each runs as the signed-in caller through `AppDB.call` (a PostgREST-style request), so the
database's grants and RLS decide what comes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from workers.appdb.session import AppDB, Identity, Row
from workers.errors import NotFound

Order = Literal["uncertain", "newest", "score"]
ORDERS: tuple[Order, ...] = ("uncertain", "newest", "score")
STATUSES = ("new", "scored", "in_review", "accepted", "rejected")
Decision = Literal["accept", "reject"]


@dataclass(frozen=True)
class QueueFilter:
    """The queue's filters; None means 'any'."""

    types: tuple[str, ...] | None = None
    source_ids: tuple[int, ...] | None = None
    min_score: float | None = None
    max_score: float | None = None
    statuses: tuple[str, ...] | None = None
    start: datetime | None = None
    end: datetime | None = None

    def params(self) -> dict[str, Any]:
        """Named parameters of api.review_queue / api.review_counts (empty lists → None)."""
        return {
            "types": list(self.types) if self.types else None,
            "source_ids": list(self.source_ids) if self.source_ids else None,
            "min_score": self.min_score,
            "max_score": self.max_score,
            "statuses": list(self.statuses) if self.statuses else None,
            "from": self.start,
            "to": self.end,
        }


def review_queue(db: AppDB, who: Identity, flt: QueueFilter, order: Order = "uncertain",
                 after: str | None = None, limit: int = 50) -> list[Row]:
    """One page of candidates; pass the last row's `cursor` as `after` for the next page."""
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: use one of {', '.join(ORDERS)}")
    return db.call(who, "review_queue",
                   {**flt.params(), "order": order, "after": after, "limit": limit})


def review_counts(db: AppDB, who: Identity, flt: QueueFilter) -> dict[str, Any]:
    """{total, by_type, by_status, by_source} for the filters."""
    counts = db.one(who, "review_counts", flt.params())
    return dict(counts) if isinstance(counts, dict) else {"total": 0}


def review_reasons(db: AppDB, who: Identity) -> list[tuple[str, str]]:
    """(code, label) of every rejection reason, in display order."""
    return [(str(r["code"]), str(r["label"])) for r in db.call(who, "review_reasons")]


def candidate_detail(db: AppDB, who: Identity, candidate_id: int,
                     context_s: float = 5.0) -> dict[str, Any]:
    """The candidate, its source, geometry, actors' points and feature curves."""
    detail = db.one(who, "candidate_detail",
                    {"candidate_id": candidate_id, "context_s": context_s})
    if not isinstance(detail, dict):
        raise NotFound(f"candidate {candidate_id} does not exist in your project")
    return detail


def decide(db: AppDB, who: Identity, candidate_id: int, decision: Decision,
           reason: str | None = None, start: datetime | None = None,
           end: datetime | None = None, note: str | None = None) -> dict[str, Any]:
    """Accept or reject; DecisionConflict when another reviewer decided first."""
    result = db.one(who, "decide", {"candidate_id": candidate_id, "decision": decision,
                                    "reason": reason, "start": start, "end": end,
                                    "note": note})
    return dict(result) if isinstance(result, dict) else {}


def undo_last_decision(db: AppDB, who: Identity) -> dict[str, Any]:
    """Undo the caller's last live decision."""
    result = db.one(who, "undo_last_decision")
    return dict(result) if isinstance(result, dict) else {}


def second_opinions_for_me(db: AppDB, who: Identity, limit: int = 50) -> list[Row]:
    return db.call(who, "second_opinions_for_me", {"limit": limit})


def give_second_opinion(db: AppDB, who: Identity, candidate_id: int, decision: Decision,
                        reason: str | None = None, start: datetime | None = None,
                        end: datetime | None = None) -> dict[str, Any]:
    result = db.one(who, "give_second_opinion",
                    {"candidate_id": candidate_id, "decision": decision, "reason": reason,
                     "start": start, "end": end})
    return dict(result) if isinstance(result, dict) else {}


def reviewer_stats(db: AppDB, who: Identity, start: datetime | None = None,
                   end: datetime | None = None) -> list[Row]:
    return db.call(who, "reviewer_stats", {"from": start, "to": end})


def agreement_by_type(db: AppDB, who: Identity) -> list[Row]:
    return db.call(who, "agreement_by_type")


def project_metrics(db: AppDB, who: Identity, start: datetime | None = None,
                    end: datetime | None = None,
                    source_ids: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Every analytics section in one document (api.project_metrics)."""
    doc = db.one(who, "project_metrics", {"from": start, "to": end,
                                          "source_ids": list(source_ids) if source_ids
                                          else None})
    return dict(doc) if isinstance(doc, dict) else {}


def projects(db: AppDB, who: Identity) -> list[Row]:
    return db.call(who, "projects")


def me(db: AppDB, who: Identity) -> dict[str, Any]:
    doc = db.one(who, "me")
    return dict(doc) if isinstance(doc, dict) else {}
