"""Train/val/test splits grouped by source: every event of a source lands in one split.

Sources are shuffled by a hash of the seed and their name, laid end to end by their event
counts on [0, 1), and each goes to the split whose share of that line holds the middle of
its stretch (cuts at the cumulative ratios). So the realised shares follow the ratios by
events, and the assignment depends only on the seed, the source names and their counts:
the same data and seed give the same splits. Where a split with a positive ratio came out
empty but there are enough sources, the smallest source of the most crowded split moves
into it. The manifest and the data card report the realised shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from workers.datasets.schema import SPLITS
from workers.errors import UserError

Ratios = tuple[float, float, float]
DEFAULT_RATIOS: Ratios = (0.7, 0.15, 0.15)


def parse_ratios(text: str) -> Ratios:
    """'0.7,0.15,0.15' → (0.7, 0.15, 0.15): three shares in [0, 1] summing to 1."""
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError as exc:
        raise UserError(f"--ratios {text!r}: give three numbers, e.g. 0.7,0.15,0.15") from exc
    if len(parts) != 3 or any(not 0 <= p <= 1 for p in parts):
        raise UserError(f"--ratios {text!r}: give three shares between 0 and 1 for "
                        "train, val and test, e.g. 0.7,0.15,0.15")
    total = sum(parts)
    if abs(total - 1.0) > 1e-6:
        raise UserError(f"--ratios {text!r} sum to {total:g}, not 1")
    return (parts[0] / total, parts[1] / total, parts[2] / total)


def unit_hash(seed: int, name: str) -> float:
    """A number in [0, 1) determined by the seed and the source name."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _split_at(position: float, ratios: Ratios) -> str:
    edge = 0.0
    for split, share in zip(SPLITS, ratios, strict=True):
        edge += share
        if position < edge and share > 0:
            return split
    return next(s for s, r in zip(reversed(SPLITS), reversed(ratios), strict=True) if r > 0)


def assign(counts: Mapping[str, int], seed: int, ratios: Ratios) -> dict[str, str]:
    """Source name → split, for every source (counts: events per source)."""
    order = sorted(counts, key=lambda name: (unit_hash(seed, name), name))
    total = sum(max(counts[n], 0) for n in order) or 1
    out: dict[str, str] = {}
    done = 0
    for name in order:
        size = max(counts[name], 0)
        out[name] = _split_at((done + size / 2) / total, ratios)
        done += size
    wanted = [s for s, r in zip(SPLITS, ratios, strict=True) if r > 0]
    if len(order) >= len(wanted):
        for split in reversed(wanted):
            if split in out.values():
                continue
            members: dict[str, list[str]] = {s: [n for n in order if out[n] == s]
                                             for s in wanted}
            donor = max((s for s in wanted if len(members[s]) > 1),
                        key=lambda s: (len(members[s]), -SPLITS.index(s)))
            smallest = min(members[donor], key=lambda n: (counts[n], unit_hash(seed, n), n))
            out[smallest] = split
    return dict(sorted(out.items()))
