"""Observation noise applied to clean points after truth is computed.

Order: what a tracker sees (observe.py: tracks clipped to their events, stops not
tracked, breaks inside events), id switches (which rename the tail of a track), false
tracks, dropped points, scale, position jitter, confidences, frame-time jitter. An id switch
never falls inside an event: a switch frame is drawn only outside every event of that track
widened by SWITCH_MARGIN seconds. A break (`break_rate`) does, on purpose; truth then names
the id the track had when the event began.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .config import NoiseConfig
from .geometry import F64, as_array, distance_to_segments, points_in_polygon
from .motion import I64
from .observe import Rename, breaks, clip_mask, correlated_noise, rename_actor, untracked_stops

SWITCH_MARGIN = 3.0
CLASSES = ("pedestrian", "cyclist", "vehicle")


@dataclass
class Points:
    """Flat point arrays; `track` holds integer track ids (written as strings)."""

    track: I64
    frame: I64
    xy: F64
    cls: NDArray[np.int8]  # index into CLASSES
    confidence: NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, np.float32))
    t: F64 = field(default_factory=lambda: np.zeros(0))


@dataclass
class NoiseLog:
    switches: list[Rename] = field(default_factory=list)  # old, frame, new
    false_tracks: list[int] = field(default_factory=list)
    dropped: int = 0
    renames: list[Rename] = field(default_factory=list)  # every rename, in order applied
    breaks: int = 0
    untracked_stops: int = 0
    clipped: int = 0


def _switches(pts: Points, events: list[dict[str, Any]], cfg: NoiseConfig, fps: float,
              rng: np.random.Generator, next_id: int, log: NoiseLog) -> int:
    if cfg.id_switch_rate <= 0:
        return next_id
    busy: dict[int, list[tuple[float, float]]] = {}
    for ev in events:
        for actor in ev["actors"].values():
            busy.setdefault(int(actor), []).append((ev["start"] - SWITCH_MARGIN,
                                                    ev["end"] + SWITCH_MARGIN))
    order = np.argsort(pts.track, kind="stable")
    ids, starts = np.unique(pts.track[order], return_index=True)
    ends = np.append(starts[1:], len(order))
    for tid, s, e in zip(ids.tolist(), starts.tolist(), ends.tolist(), strict=True):
        if rng.random() >= cfg.id_switch_rate:
            continue
        frames = pts.frame[order[s:e]]
        t = frames / fps
        ok = (t >= t[0] + 2.0) & (t <= t[-1] - 2.0)
        for lo, hi in busy.get(tid, []):
            ok &= (t < lo) | (t > hi)
        if not ok.any():
            continue
        f_switch = int(rng.choice(frames[ok]))
        tail = order[s:e][frames >= f_switch]
        pts.track[tail] = next_id
        log.switches.append((tid, f_switch, next_id))
        log.renames.append((tid, f_switch, next_id))
        next_id += 1
    return next_id


def _false_tracks(pts: Points, cfg: NoiseConfig, fps: float, duration: float,
                  extent: tuple[tuple[float, float], tuple[float, float]],
                  zones: list[F64], triggers: list[tuple[float, F64, float]],
                  rng: np.random.Generator, next_id: int, log: NoiseLog) -> list[Points]:
    """Short (0.5-1.5 s) low-confidence tracks >= 10 m from anybody, clear of zones."""
    (x0, y0), (x1, y1) = extent
    made: list[Points] = []
    last_frame = int(np.floor(duration * fps))
    frame_order = np.argsort(pts.frame, kind="stable")
    sorted_frames = pts.frame[frame_order]
    for _ in range(cfg.false_tracks):
        for _attempt in range(50):
            n = max(2, round(rng.uniform(0.5, 1.5) * fps))
            f0 = int(rng.integers(0, max(1, last_frame - n)))
            frames = np.arange(f0, f0 + n, dtype=np.int64)
            start = np.array([rng.uniform(x0 + 2, x1 - 2), rng.uniform(y0 + 2, y1 - 2)])
            xy = start + np.cumsum(rng.normal(0, 0.08, (n, 2)), axis=0)
            lo, hi = np.searchsorted(sorted_frames, [f0, f0 + n])
            near = pts.xy[frame_order[lo:hi]]
            if len(near) and np.hypot(*(near[:, None, :] - xy[None, ::max(1, n // 4), :]).reshape(
                    -1, 2).T).min() < 10.0:
                continue
            if any(points_in_polygon(xy, z).any() or distance_to_segments(xy, z, True).min() < 3.0
                   for z in zones):
                continue
            if any(abs(t - f0 / fps) < 5.0 and np.hypot(*(xy - p).T).min() < r + 3.0
                   for t, p, r in triggers):
                continue
            made.append(Points(np.full(n, next_id, np.int64), frames, xy,
                               np.full(n, int(rng.integers(0, 3)), np.int8),
                               rng.uniform(0.15, 0.45, n).astype(np.float32)))
            log.false_tracks.append(next_id)
            next_id += 1
            break
    return made


def apply_noise(pts: Points, events: list[dict[str, Any]], cfg: NoiseConfig, fps: float,
                duration: float, extent: tuple[tuple[float, float], tuple[float, float]],
                zones: list[Any], triggers: list[tuple[float, F64, float]],
                rng: np.random.Generator) -> tuple[Points, NoiseLog]:
    """Return noisy points (a copy) and a log of what was done."""
    pts = Points(pts.track.copy(), pts.frame.copy(), pts.xy.copy(), pts.cls.copy())
    next_id = int(pts.track.max()) + 1 if len(pts.track) else 1
    log = NoiseLog()
    pts, next_id = _observe(pts, events, cfg, fps, rng, next_id, log)
    current = remap_events(events, log, fps)
    next_id = _switches(pts, current, cfg, fps, rng, next_id, log)
    pts.confidence = np.clip(rng.normal(0.85, 0.07, len(pts.track)), 0.3, 0.99).astype(np.float32)
    polys = [as_array(z.polygon) for z in zones]
    extra = _false_tracks(pts, cfg, fps, duration, extent, polys, triggers, rng, next_id, log)
    if extra:
        pts = Points(np.concatenate([pts.track, *[p.track for p in extra]]),
                     np.concatenate([pts.frame, *[p.frame for p in extra]]),
                     np.vstack([pts.xy, *[p.xy for p in extra]]),
                     np.concatenate([pts.cls, *[p.cls for p in extra]]),
                     np.concatenate([pts.confidence, *[p.confidence for p in extra]]))
    if cfg.drop_rate > 0:
        keep = rng.random(len(pts.track)) >= cfg.drop_rate
        log.dropped = int((~keep).sum())
        pts = Points(pts.track[keep], pts.frame[keep], pts.xy[keep], pts.cls[keep],
                     pts.confidence[keep])
    if cfg.scale != 1.0:
        pts.xy = pts.xy * cfg.scale
    if cfg.jitter > 0 and cfg.jitter_tau > 0:
        pts.xy = pts.xy + correlated_noise(pts.track, pts.frame, cfg.jitter, cfg.jitter_tau,
                                           cfg.jitter_hold, fps, rng)
    elif cfg.jitter > 0:
        pts.xy = pts.xy + rng.normal(0.0, cfg.jitter, pts.xy.shape)
    n_frames = int(pts.frame.max()) + 1 if len(pts.frame) else 0
    offsets = np.zeros(n_frames)
    if cfg.fps_jitter > 0:
        offsets = np.clip(rng.normal(0.0, cfg.fps_jitter, n_frames), -0.4, 0.4) / fps
    pts.t = pts.frame / fps + offsets[pts.frame]
    return pts, log


def _subset(pts: Points, keep: NDArray[np.bool_]) -> Points:
    return Points(pts.track[keep], pts.frame[keep], pts.xy[keep], pts.cls[keep])


def _observe(pts: Points, events: list[dict[str, Any]], cfg: NoiseConfig, fps: float,
             rng: np.random.Generator, next_id: int, log: NoiseLog) -> tuple[Points, int]:
    """Clip tracks to their events, leave stops untracked, break tracks (observe.py)."""
    if cfg.clip_to_events:
        keep = clip_mask(pts.track, pts.frame, pts.cls,
                         [CLASSES.index(c) for c in cfg.clip_to_events], events, fps)
        log.clipped = int((~keep).sum())
        pts = _subset(pts, keep)
    if cfg.untracked_stops:
        classes = [CLASSES.index(c) for c in cfg.untracked_stops]
        keep, next_id, log.untracked_stops = untracked_stops(
            pts.track, pts.frame, pts.cls, classes, events, fps, next_id, log.renames,
            new_id=not cfg.untracked_stops_keep_id)
        pts = _subset(pts, keep)
    if cfg.break_rate > 0:
        before = len(log.renames)
        next_id = breaks(pts.track, pts.frame, events, cfg.break_rate, fps, rng, next_id,
                         log.renames)
        log.breaks = len(log.renames) - before
    return pts, next_id


def remap_events(events: list[dict[str, Any]], log: NoiseLog, fps: float) -> list[dict[str, Any]]:
    """Name every actor by the id its track has when the event begins (after switches,
    breaks and resumed stops; an event that spans a break keeps the earlier id)."""
    if not log.renames:
        return events
    return [{**ev, "actors": {role: rename_actor(tid, ev["start"], log.renames, fps)
                              for role, tid in ev["actors"].items()}} for ev in events]
