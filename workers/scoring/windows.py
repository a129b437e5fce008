"""Candidate windows: the actors' features resampled to T steps over the candidate span plus
context, as a (T, F) array, and the normalisation statistics stored with the model.

Pure numpy: `CandidateInput` is filled from the database by `workers.scoring.inputs` (or by
tests from synthetic series). Missing values (an actor not seen at a step, no second actor,
no pair relation) are NaN in the raw window and 0 after normalisation; presence flags say
which is which.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]

DEFAULT_STEPS = 64
PRESENCE_GAP_S = 0.6
"""An actor counts as present at a step when it has a sample within this many seconds."""
TRIGGER_HALF_WIDTH_S = 0.5

EVENT_TYPES: tuple[str, ...] = (
    "enter", "exit", "dwell", "stop", "follow", "accompany", "overtake",
    "meet", "handover", "choose_route", "startle",
)
"""Type vocabulary of the model; any other type maps to index len(EVENT_TYPES) (unknown)."""

_ACTOR = ("present", "speed", "accel", "abs_turn_rate", "along", "across", "in_zone")
_PAIR = ("pair_present", "distance", "approach_speed", "rel_speed", "heading_diff",
         "lon_offset", "lat_offset")
_GLOBAL = ("in_span", "trigger", "rule_score", "log_duration")
FEATURE_NAMES: tuple[str, ...] = (
    *(f"a0_{n}" for n in _ACTOR), *(f"a1_{n}" for n in _ACTOR), *_PAIR, *_GLOBAL)
N_FEATURES = len(FEATURE_NAMES)
WINDOW_VERSION = "w1-" + hashlib.sha256(
    repr((FEATURE_NAMES, PRESENCE_GAP_S, TRIGGER_HALF_WIDTH_S)).encode()).hexdigest()[:10]
"""The window definition: stored with every training example's window (scoring.examples),
so that a window built by another definition is refused rather than mixed in. Change it by
changing what it hashes; a change of how a feature is computed must bump the "w1" prefix."""
_FLAGS = frozenset(i for i, n in enumerate(FEATURE_NAMES)
                   if n.endswith(("present", "in_zone")) or n in ("in_span", "trigger"))
"""0/1 features: left as they are by normalisation."""


@dataclass(frozen=True)
class ActorSeries:
    """One actor's kinematics, sorted by time t (seconds on any common clock)."""

    t: Array
    x: Array
    y: Array
    speed: Array
    accel: Array
    turn_rate: Array
    heading: Array
    zones: Sequence[tuple[str, float, float]] = ()
    """Zone presence intervals (zone name, entered, left; left may be +inf)."""


@dataclass(frozen=True)
class PairSeries:
    """Relations of actor 1 seen from actor 0, sorted by t."""

    t: Array
    distance: Array
    approach_speed: Array
    rel_speed: Array
    heading_diff: Array
    lon_offset: Array
    lat_offset: Array


@dataclass(frozen=True)
class CandidateInput:
    """Everything the window of one candidate is built from."""

    candidate_id: int
    type: str
    start: float
    end: float
    rule_score: float
    actors: Sequence[ActorSeries]
    """In role-name order; only the first two are used."""
    pair: PairSeries | None = None
    zone: str | None = None
    trigger_t: float | None = None


def window_span(start: float, end: float) -> tuple[float, float]:
    """The window [lo, hi]: the span plus a quarter of its length and 2 s on each side."""
    pad = 0.25 * max(end - start, 0.0) + 2.0
    return start - pad, end + pad


def type_index(event_type: str) -> int:
    try:
        return EVENT_TYPES.index(event_type)
    except ValueError:
        return len(EVENT_TYPES)


def _interp(t: Array, src_t: Array, values: Array, present: npt.NDArray[np.bool_]) -> Array:
    """Linear interpolation of the finite samples at t; NaN where the actor is absent."""
    ok = np.isfinite(values)
    if ok.sum() == 0:
        return np.full(t.shape, np.nan)
    out = np.interp(t, src_t[ok], values[ok])
    out[~present] = np.nan
    return out


def _presence(t: Array, src_t: Array) -> npt.NDArray[np.bool_]:
    if src_t.size == 0:
        return np.zeros(t.shape, dtype=bool)
    idx = np.clip(np.searchsorted(src_t, t), 1, max(src_t.size - 1, 1))
    left = src_t[np.clip(idx - 1, 0, src_t.size - 1)]
    right = src_t[np.clip(idx, 0, src_t.size - 1)]
    nearest = np.minimum(np.abs(t - left), np.abs(t - right))
    return np.asarray(nearest <= PRESENCE_GAP_S)


def _frame(cand: CandidateInput) -> tuple[float, float, float, float]:
    """Origin and unit heading of the window frame: actor 0 at (or near) the span start."""
    if not cand.actors or cand.actors[0].t.size == 0:
        return 0.0, 0.0, 1.0, 0.0
    a = cand.actors[0]
    i = int(np.clip(np.searchsorted(a.t, cand.start), 0, a.t.size - 1))
    near = slice(max(i - 2, 0), min(i + 3, a.t.size))
    h = a.heading[near]
    h = h[np.isfinite(h)]
    if h.size == 0:
        return float(a.x[i]), float(a.y[i]), 1.0, 0.0
    rad = np.radians(h)
    c, s = float(np.mean(np.cos(rad))), float(np.mean(np.sin(rad)))
    norm = math.hypot(c, s) or 1.0
    return float(a.x[i]), float(a.y[i]), c / norm, s / norm


def _actor_block(t: Array, a: ActorSeries | None, frame: tuple[float, float, float, float],
                 zone: str | None) -> Array:
    block = np.full((t.size, len(_ACTOR)), np.nan)
    if a is None or a.t.size == 0:
        block[:, 0] = 0.0
        block[:, 6] = 0.0
        return block
    present = _presence(t, a.t)
    block[:, 0] = present.astype(np.float64)
    block[:, 1] = _interp(t, a.t, a.speed, present)
    block[:, 2] = _interp(t, a.t, a.accel, present)
    block[:, 3] = np.abs(_interp(t, a.t, a.turn_rate, present))
    x, y = _interp(t, a.t, a.x, present), _interp(t, a.t, a.y, present)
    ox, oy, c, s = frame
    block[:, 4] = (x - ox) * c + (y - oy) * s
    block[:, 5] = (y - oy) * c - (x - ox) * s
    inside = np.zeros(t.size)
    for name, t0, t1 in a.zones:
        if zone is None or name == zone:
            inside[(t >= t0) & (t <= t1)] = 1.0
    block[:, 6] = inside
    return block


def _pair_block(t: Array, p: PairSeries | None) -> Array:
    block = np.full((t.size, len(_PAIR)), np.nan)
    if p is None or p.t.size == 0:
        block[:, 0] = 0.0
        return block
    present = _presence(t, p.t)
    block[:, 0] = present.astype(np.float64)
    for k, values in enumerate((p.distance, p.approach_speed, p.rel_speed, p.heading_diff,
                                p.lon_offset, p.lat_offset), start=1):
        block[:, k] = _interp(t, p.t, values, present)
    return block


def build_window(cand: CandidateInput, steps: int = DEFAULT_STEPS) -> Array:
    """The raw (steps, N_FEATURES) window of one candidate (NaN where missing)."""
    if steps < 2:
        raise ValueError(f"a window needs at least 2 steps, got {steps}")
    lo, hi = window_span(cand.start, cand.end)
    t = np.linspace(lo, hi, steps)
    frame = _frame(cand)
    a0 = cand.actors[0] if len(cand.actors) > 0 else None
    a1 = cand.actors[1] if len(cand.actors) > 1 else None
    glob = np.zeros((steps, len(_GLOBAL)))
    glob[:, 0] = ((t >= cand.start) & (t <= cand.end)).astype(np.float64)
    if cand.trigger_t is not None:
        glob[:, 1] = (np.abs(t - cand.trigger_t) <= TRIGGER_HALF_WIDTH_S).astype(np.float64)
    glob[:, 2] = cand.rule_score
    glob[:, 3] = math.log1p(max(cand.end - cand.start, 0.0))
    return np.concatenate([_actor_block(t, a0, frame, cand.zone),
                           _actor_block(t, a1, frame, cand.zone),
                           _pair_block(t, cand.pair), glob], axis=1)


def build_windows(cands: Sequence[CandidateInput], steps: int = DEFAULT_STEPS) -> Array:
    """Raw windows of many candidates: (N, steps, N_FEATURES)."""
    if not cands:
        return np.zeros((0, steps, N_FEATURES))
    return np.stack([build_window(c, steps) for c in cands])


@dataclass(frozen=True)
class NormStats:
    """Per-feature mean and standard deviation over present values; flags stay 0/1."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    names: tuple[str, ...] = field(default=FEATURE_NAMES)

    @classmethod
    def fit(cls, windows: Array) -> NormStats:
        if windows.ndim != 3 or windows.shape[2] != N_FEATURES:
            raise ValueError(f"expected windows of shape (N, T, {N_FEATURES}), "
                             f"got {windows.shape}")
        flat = windows.reshape(-1, N_FEATURES)
        mean = np.zeros(N_FEATURES)
        std = np.ones(N_FEATURES)
        for j in range(N_FEATURES):
            col = flat[:, j]
            col = col[np.isfinite(col)]
            if j in _FLAGS or col.size == 0:
                continue
            mean[j] = float(col.mean())
            sd = float(col.std())
            std[j] = sd if sd > 1e-6 else 1.0
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std))

    def apply(self, windows: Array) -> npt.NDArray[np.float32]:
        """Normalised windows as float32, missing values 0."""
        if tuple(self.names) != FEATURE_NAMES:
            raise ValueError("normalisation statistics were fitted on other features: "
                             f"{list(self.names)}")
        out = (windows - np.asarray(self.mean)) / np.asarray(self.std)
        out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
        clipped: npt.NDArray[np.float32] = np.clip(out, -10.0, 10.0).astype(np.float32)
        return clipped

    def to_json(self) -> dict[str, Any]:
        return {"names": list(self.names), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NormStats:
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]),
                   tuple(str(n) for n in data["names"]))
