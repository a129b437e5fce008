"""Statistics of a dataset version (kept in its manifest) and the distances the drift gate
compares against the previous version: total-variation distance of the type mix and a
two-sample Kolmogorov-Smirnov statistic of duration distributions.

Durations are summarised by 101 quantiles per type, so a later version can compare
against an earlier one from its manifest alone (KS error ≤ 0.01 from the summary).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from workers.datasets.schema import SPLITS

QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)


def quantile_summary(values: Sequence[float]) -> dict[str, Any]:
    """{"n": count, "quantiles": 101 quantiles (min … max)} of finite values."""
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"n": 0, "quantiles": []}
    qs = np.quantile(arr, QUANTILE_LEVELS)
    return {"n": int(arr.size), "quantiles": [round(float(q), 6) for q in qs]}


def summarise(events: pa.Table, features_rows: int, reviewers: int) -> dict[str, Any]:
    """The statistics block of the manifest: counts by type, split and verification, and
    duration quantiles (all events and per type)."""
    types = events.column("type").to_pylist()
    splits = events.column("split").to_pylist()
    verification = events.column("verification").to_pylist()
    durations = events.column("duration_s").to_pylist()
    sources = events.column("source").to_pylist()
    by_split_type: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    by_split_verification: dict[str, dict[str, int]] = {s: {} for s in SPLITS}
    for t, s, v in zip(types, splits, verification, strict=True):
        by_split_type[s][t] = by_split_type[s].get(t, 0) + 1
        by_split_verification[s][v] = by_split_verification[s].get(v, 0) + 1
    per_type: dict[str, list[float]] = {}
    for t, d in zip(types, durations, strict=True):
        per_type.setdefault(t, []).append(d)
    sources_by_split: dict[str, list[str]] = {s: [] for s in SPLITS}
    for src, s in sorted(set(zip(sources, splits, strict=True))):
        sources_by_split[s].append(src)
    return {
        "events": len(types),
        "feature_rows": features_rows,
        "sources": len(set(sources)),
        "reviewers": reviewers,
        "by_type": dict(sorted(Counter(types).items())),
        "by_split": {s: sum(by_split_type[s].values()) for s in SPLITS},
        "by_split_type": {s: dict(sorted(by_split_type[s].items())) for s in SPLITS},
        "by_verification": dict(sorted(Counter(verification).items())),
        "by_split_verification": {s: dict(sorted(by_split_verification[s].items()))
                                  for s in SPLITS},
        "sources_by_split": sources_by_split,
        "durations": {"all": quantile_summary(durations),
                      **{t: quantile_summary(v) for t, v in sorted(per_type.items())}},
    }


def total_variation(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Total-variation distance of two count (or share) vectors over their union of keys:
    half the L1 distance of the normalised shares, in [0, 1]."""
    sp, sq = float(sum(p.values())), float(sum(q.values()))
    if sp <= 0 or sq <= 0:
        return 0.0 if sp == sq else 1.0
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0) / sp - q.get(k, 0) / sq) for k in keys)


def _step_cdf(points: np.ndarray[Any, Any], at: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.searchsorted(points, at, side="right") / points.size


def ks_statistic(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sample KS statistic: the largest gap between the empirical CDFs of a and b
    (samples, or the quantile summaries of `quantile_summary`)."""
    pa_, pb = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if pa_.size == 0 or pb.size == 0:
        return 0.0
    at = np.union1d(pa_, pb)
    return float(np.max(np.abs(_step_cdf(pa_, at) - _step_cdf(pb, at))))


def drift(current: Mapping[str, Any], previous: Mapping[str, Any], *,
          min_n: int) -> dict[str, Any]:
    """Type-mix TVD and duration KS (all events, and per type where both versions have at
    least min_n events of it) between two statistics blocks."""
    tvd = total_variation(current.get("by_type", {}), previous.get("by_type", {}))
    ks: dict[str, dict[str, Any]] = {}
    cur_d, prev_d = current.get("durations", {}), previous.get("durations", {})
    for key in sorted(set(cur_d) | set(prev_d)):
        c, p = cur_d.get(key, {"n": 0}), prev_d.get(key, {"n": 0})
        if c["n"] < min_n or p["n"] < min_n:
            ks[key] = {"n": c["n"], "previous_n": p["n"], "ks": None,
                       "skipped": f"fewer than {min_n} events in a version"}
            continue
        ks[key] = {"n": c["n"], "previous_n": p["n"],
                   "ks": round(ks_statistic(c["quantiles"], p["quantiles"]), 4)}
    return {"type_mix_tvd": round(tvd, 4), "duration_ks": ks}
