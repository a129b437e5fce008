"""Match candidate events to ground truth: type, actors (by role) and temporal IoU.

Symmetric types (meet, accompany, handover) name their actors `a` and `b` and match in
either order. Where the truth names a zone, route or trigger, the candidate must name the
same one. Matching is one-to-one, greedy by descending IoU (ties: earlier truth first).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

SYMMETRIC_TYPES = frozenset({"meet", "accompany", "handover"})
MATCHED_ATTRIBUTES = ("zone", "route", "trigger")
DEFAULT_MIN_IOU = 0.5


@dataclass(frozen=True)
class Event:
    """One event (truth or candidate); times in seconds since the source's time origin."""

    type: str
    actors: dict[str, str]
    start: float
    end: float
    attributes: dict[str, Any] = field(default_factory=dict)


def temporal_iou(a0: float, a1: float, b0: float, b1: float) -> float:
    """Intersection over union of [a0, a1] and [b0, b1] (1.0 for equal points)."""
    inter = min(a1, b1) - max(a0, b0)
    union = max(a1, b1) - min(a0, b0)
    if union <= 0.0:
        return 1.0 if inter >= 0.0 else 0.0
    return max(0.0, inter) / union


def actor_key(event: Event, symmetric: frozenset[str] = SYMMETRIC_TYPES) -> tuple[Any, ...]:
    """Actors as a comparable key: by role, or as an unordered set for symmetric types."""
    if event.type in symmetric:
        return (frozenset(str(v) for v in event.actors.values()),)
    return tuple(sorted((k, str(v)) for k, v in event.actors.items()))


def _attributes_agree(truth: Event, cand: Event) -> bool:
    for key in MATCHED_ATTRIBUTES:
        want = truth.attributes.get(key)
        if want is not None and str(cand.attributes.get(key)) != str(want):
            return False
    return True


@dataclass
class TypeScore:
    """Counts and rates for one event type (or all types together)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: TypeScore) -> None:
        self.tp += other.tp
        self.fp += other.fp
        self.fn += other.fn

    def as_dict(self) -> dict[str, Any]:
        return {"tp": self.tp, "fp": self.fp, "fn": self.fn,
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4)}


@dataclass
class MatchResult:
    """Matched pairs (truth index, candidate index, IoU) and the per-type scores."""

    pairs: list[tuple[int, int, float]]
    per_type: dict[str, TypeScore]
    unmatched_truth: list[int]
    unmatched_candidates: list[int]

    @property
    def overall(self) -> TypeScore:
        total = TypeScore()
        for score in self.per_type.values():
            total.add(score)
        return total

    def as_dict(self) -> dict[str, Any]:
        return {"per_type": {t: s.as_dict() for t, s in sorted(self.per_type.items())},
                "overall": self.overall.as_dict()}


def match_events(truth: Sequence[Event], candidates: Sequence[Event],
                 min_iou: float = DEFAULT_MIN_IOU,
                 symmetric: frozenset[str] = SYMMETRIC_TYPES,
                 types: Iterable[str] = ()) -> MatchResult:
    """One-to-one matching; every type in `types`, truth or candidates gets a score."""
    by_key: dict[tuple[Any, ...], list[int]] = {}
    for j, cand in enumerate(candidates):
        by_key.setdefault((cand.type, *actor_key(cand, symmetric)), []).append(j)
    options: list[tuple[float, int, int]] = []
    for i, ev in enumerate(truth):
        for j in by_key.get((ev.type, *actor_key(ev, symmetric)), []):
            cand = candidates[j]
            iou = temporal_iou(ev.start, ev.end, cand.start, cand.end)
            if iou >= min_iou and _attributes_agree(ev, cand):
                options.append((-iou, i, j))
    options.sort()
    used_t: set[int] = set()
    used_c: set[int] = set()
    pairs: list[tuple[int, int, float]] = []
    for neg_iou, i, j in options:
        if i in used_t or j in used_c:
            continue
        used_t.add(i)
        used_c.add(j)
        pairs.append((i, j, -neg_iou))
    per_type: dict[str, TypeScore] = {t: TypeScore() for t in types}
    for ev in (*truth, *candidates):
        per_type.setdefault(ev.type, TypeScore())
    for i, _, _ in pairs:
        per_type[truth[i].type].tp += 1
    miss_t = [i for i in range(len(truth)) if i not in used_t]
    miss_c = [j for j in range(len(candidates)) if j not in used_c]
    for i in miss_t:
        per_type[truth[i].type].fn += 1
    for j in miss_c:
        per_type[candidates[j].type].fp += 1
    return MatchResult(pairs=sorted(pairs), per_type=per_type, unmatched_truth=miss_t,
                       unmatched_candidates=miss_c)
