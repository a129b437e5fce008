"""What a real tracker or annotator sees of a clean track (config `noise`, after truth).

* clip_to_events: a track of these classes with events exists only from its first event's
  start to its last event's end (MEVA tracks a person while an activity lasts, so the
  approach is not seen).
* untracked_stops: a stop of one of these classes is a gap: the standing points are not in
  the data and the track resumes under a new id (MEVA vehicles).
* break_rate: a track breaks inside one of its events and goes on under a new id.
* correlated jitter: AR(1) noise with correlation time `jitter_tau`, or held noise that
  jumps at random moments (`jitter_hold`: a box that sticks, then jumps).

Renames are logged as (old id, first frame of the new id, new id), in the order applied;
`rename_actor` replays them on an event's actor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .geometry import F64
from .motion import I64

Rename = tuple[int, int, int]
BREAK_INSIDE = (0.3, 0.7)  # a break falls in this share of its event's span


def rename_actor(tid: str, start: float, log: Sequence[Rename], fps: float) -> str:
    """The id an actor has at an event starting at `start`, after every rename in `log`."""
    cur = int(tid)
    for old, frame, new in log:
        if cur == old and start >= frame / fps - 1e-9:
            cur = new
    return str(cur)


def _spans(events: Sequence[dict[str, Any]]) -> dict[int, list[tuple[float, float]]]:
    out: dict[int, list[tuple[float, float]]] = {}
    for ev in events:
        for actor in ev["actors"].values():
            out.setdefault(int(actor), []).append((float(ev["start"]), float(ev["end"])))
    return out


def clip_mask(track: I64, frame: I64, cls: NDArray[np.int8], classes: Sequence[int],
              events: Sequence[dict[str, Any]], fps: float) -> NDArray[np.bool_]:
    """Points kept when each track of `classes` with events is seen only over its events'
    hull."""
    keep = np.ones(len(track), dtype=bool)
    cls_of = _class_of(track, cls)
    for tid, spans in _spans(events).items():
        if cls_of.get(tid) not in classes:
            continue
        lo = min(s for s, _ in spans)
        hi = max(e for _, e in spans)
        mine = track == tid
        t = frame[mine] / fps
        keep[mine] = (t >= lo - 1e-9) & (t <= hi + 1e-9)
    return keep


def _class_of(track: I64, cls: NDArray[np.int8]) -> dict[int, int]:
    ids, first = np.unique(track, return_index=True)
    return dict(zip(ids.tolist(), cls[first].tolist(), strict=True))


def _rename_tail(track: I64, frame: I64, cur: int, f: int, new: int) -> None:
    track[(track == cur) & (frame >= f)] = new


def untracked_stops(track: I64, frame: I64, cls: NDArray[np.int8], classes: Sequence[int],
                    events: Sequence[dict[str, Any]], fps: float, next_id: int,
                    log: list[Rename], new_id: bool = True) -> tuple[NDArray[np.bool_], int, int]:
    """Drop the standing points of every stop of an actor of `classes`; with `new_id` the
    points after it get a new id (else the track goes on under its own, as when a label
    import has linked the two tracks). Returns the points kept, the next free id and the
    number of stops left untracked."""
    keep = np.ones(len(track), dtype=bool)
    cls_of = _class_of(track, cls)
    stops = sorted((float(e["start"]), float(e["end"]), int(e["actors"]["actor"]))
                   for e in events if e["type"] == "stop")
    gaps = 0
    for start, end, tid in stops:
        if cls_of.get(tid) not in classes:
            continue
        cur = int(rename_actor(str(tid), start, log, fps))
        t = frame / fps
        gap = (track == cur) & (t >= start - 1e-9) & (t <= end + 1e-9)
        keep &= ~gap
        gaps += int(gap.any())
        after = (track == cur) & (t > end + 1e-9) & keep
        if new_id and after.any():
            f = int(frame[after].min())
            _rename_tail(track, frame, cur, f, next_id)
            log.append((cur, f, next_id))
            next_id += 1
    return keep, next_id, gaps


def breaks(track: I64, frame: I64, events: Sequence[dict[str, Any]], rate: float, fps: float,
           rng: np.random.Generator, next_id: int, log: list[Rename]) -> int:
    """With chance `rate` per actor, break its track inside one of its events (drawn at
    random, longer than 1 s) at a frame in the middle of the event; returns the next id."""
    for tid, spans in sorted(_spans(events).items()):
        if rng.random() >= rate:
            continue
        long = [(s, e) for s, e in spans if e - s > 1.0]
        if not long:
            continue
        s, e = long[int(rng.integers(len(long)))]
        at = s + (e - s) * float(rng.uniform(*BREAK_INSIDE))
        f = int(np.ceil(at * fps - 1e-9))
        cur = int(rename_actor(str(tid), s, log, fps))
        if not ((track == cur) & (frame >= f)).any() or not ((track == cur) & (frame < f)).any():
            continue
        _rename_tail(track, frame, cur, f, next_id)
        log.append((cur, f, next_id))
        next_id += 1
    return next_id


def correlated_noise(track: I64, frame: I64, sigma: float, tau: float, hold: bool, fps: float,
                     rng: np.random.Generator) -> F64:
    """Per-point noise, stationary with std `sigma` and autocorrelation exp(-lag / tau)
    along each track (AR(1), or held values redrawn at Poisson moments if `hold`)."""
    n = len(track)
    order = np.lexsort((frame, track))
    tr, fr = track[order], frame[order]
    first = np.ones(n, dtype=bool)
    first[1:] = tr[1:] != tr[:-1]
    dt = np.zeros(n)
    dt[1:] = (fr[1:] - fr[:-1]) / fps
    rho = np.where(first, 0.0, np.exp(-dt / tau))
    sorted_noise = np.zeros((n, 2))
    if hold:
        redraw = first | (rng.random(n) >= rho)
        draws = rng.normal(0.0, sigma, (int(redraw.sum()), 2))
        sorted_noise = draws[np.cumsum(redraw) - 1]
    else:
        z = rng.normal(0.0, sigma, (n, 2)) * np.sqrt(1.0 - rho**2)[:, None]
        zx, zy, r = z[:, 0].tolist(), z[:, 1].tolist(), rho.tolist()
        px = py = 0.0
        for k in range(n):
            px = r[k] * px + zx[k]
            py = r[k] * py + zy[k]
            zx[k], zy[k] = px, py
        sorted_noise = np.column_stack([zx, zy])
    out = np.empty((n, 2))
    out[order] = sorted_noise
    return out
