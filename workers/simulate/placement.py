"""Place scenario instances in space and time so that groups never interact.

Every agent of a placed instance stays at least SEPARATION metres from every
agent of every other instance at every common frame (checked conservatively on
a space-time grid), clear of zones it does not target, of other instances'
trigger discs and of the background region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .behaviours import Instance
from .config import SceneConfig
from .geometry import F64, as_array, bbox_distance, distance_to_segments, points_in_polygon
from .motion import I64, Script, sample

SEPARATION = 10.0
CELL = 5.0  # metres; |d| < 10 implies cell indices differ by <= 2
ZONE_CLEARANCE = 2.0
TRIGGER_MARGIN = 3.0  # metres beyond the radius, seconds either side of T


@dataclass
class PlacedAgent:
    script: Script
    frames: I64
    xy: F64
    group: int


@dataclass
class PlacedTrigger:
    name: str
    t: float
    position: F64
    radius: float


@dataclass
class Placement:
    agents: list[PlacedAgent] = field(default_factory=list)
    triggers: list[PlacedTrigger] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)  # per instance: its time shift, s
    dropped: dict[str, int] = field(default_factory=dict)


def _keys(frames: I64, xy: F64, fps: float) -> NDArray[np.int64]:
    tb = np.floor(frames / fps).astype(np.int64)
    cx = np.floor(xy[:, 0] / CELL).astype(np.int64) + 100_000
    cy = np.floor(xy[:, 1] / CELL).astype(np.int64) + 100_000
    return np.unique((tb * 400_000 + cx) * 400_000 + cy)


def _dilate(keys: NDArray[np.int64]) -> NDArray[np.int64]:
    off = np.array([(dt * 400_000 + dx) * 400_000 + dy
                    for dt in (-1, 0, 1) for dx in range(-2, 3) for dy in range(-2, 3)],
                   dtype=np.int64)
    return np.unique((keys[:, None] + off[None, :]).ravel())


def _disc_keys(t: float, pos: F64, radius: float, fps: float) -> NDArray[np.int64]:
    r = radius + TRIGGER_MARGIN
    g = np.arange(-r, r + CELL, CELL / 2)
    xx, yy = np.meshgrid(g, g)
    pts = np.column_stack([xx.ravel(), yy.ravel()]) + pos
    times = np.arange(t - TRIGGER_MARGIN, t + TRIGGER_MARGIN + 1.0, 1.0)
    frames = np.repeat(np.round(times * fps).astype(np.int64), len(pts))
    return _keys(frames, np.tile(pts, (len(times), 1)), fps)


class Placer:
    """Greedy rejection placement against a space-time occupancy set."""

    def __init__(self, config: SceneConfig, rng: np.random.Generator) -> None:
        self.cfg = config
        self.rng = rng
        self.fps = config.fps
        self.occupied: set[int] = set()
        self.result = Placement()
        self.zones = {z.name: as_array(z.polygon) for z in config.zones}
        bg = config.background
        self.bg_region = bg.region if bg.agents > 0 else None

    def _space_ok(self, inst: Instance, xy: F64) -> bool:
        (x0, y0), (x1, y1) = self.cfg.extent
        if (xy[:, 0].min() < x0 + 1 or xy[:, 0].max() > x1 - 1
                or xy[:, 1].min() < y0 + 1 or xy[:, 1].max() > y1 - 1):
            return False
        for name, poly in self.zones.items():
            if name in inst.touches:
                continue
            lo, hi = poly.min(axis=0) - ZONE_CLEARANCE, poly.max(axis=0) + ZONE_CLEARANCE
            near = np.all((xy >= lo) & (xy <= hi), axis=1)
            if near.any():
                sub = xy[near]
                if points_in_polygon(sub, poly).any():
                    return False
                if distance_to_segments(sub, poly, closed=True).min() < ZONE_CLEARANCE:
                    return False
        if self.bg_region is not None and bbox_distance(xy, self.bg_region).min() < SEPARATION:
            return False
        return True

    def try_place(self, inst: Instance, fixed_time: float | None = None,
                  fixed_pos: F64 | None = None, tries: int = 300, record: bool = True) -> bool:
        """Place one instance; fixed_time/fixed_pos pin its local origin (triggers)."""
        lo = min(s.start for s in inst.scripts)
        hi = max(s.end for s in inst.scripts)
        dur = self.cfg.duration
        if hi - lo > dur:
            return False
        (x0, y0), (x1, y1) = self.cfg.extent
        for _ in range(tries):
            if fixed_time is not None:
                dt = fixed_time
                if lo + dt < 0 or hi + dt > dur:
                    return False
            else:
                dt = round(self.rng.uniform(-lo, dur - hi) * self.fps) / self.fps
                dt = min(max(dt, -lo), dur - hi)
            if inst.anchored:
                theta, offset = 0.0, np.zeros(2)
            else:
                heads = self.cfg.headings
                theta = (math.radians(float(self.rng.choice(heads))) if heads
                         else float(self.rng.uniform(0, 2 * math.pi)))
                offset = (fixed_pos if fixed_pos is not None else
                          np.array([self.rng.uniform(x0, x1), self.rng.uniform(y0, y1)]))
            scripts = [s.transformed(theta, offset, dt) for s in inst.scripts]
            samples = [sample(s, self.fps) for s in scripts]
            if any(len(f) < 2 for f, _ in samples):
                continue
            allxy = np.vstack([p for _, p in samples])
            if not self._space_ok(inst, allxy):
                continue
            keys = np.unique(np.concatenate([_keys(f, p, self.fps) for f, p in samples]))
            trig = None
            if inst.trigger is not None:
                tr = inst.trigger
                pos = tr.position @ np.array([[math.cos(theta), math.sin(theta)],
                                              [-math.sin(theta), math.cos(theta)]]) + offset
                trig = (tr.t + dt, pos, tr.radius)
                keys = np.unique(np.concatenate([keys, _disc_keys(*trig, self.fps)]))
            dil = _dilate(keys)
            if self.occupied and not self.occupied.isdisjoint(dil.tolist()):
                continue
            self.occupied.update(keys.tolist())
            group = len(self.result.instances)
            self.result.instances.append(inst)
            self.result.offsets.append(dt)
            for s, (f, p) in zip(scripts, samples, strict=True):
                self.result.agents.append(PlacedAgent(s, f, p, group))
            if trig is not None:
                default = f"trigger-{len(self.result.triggers) + 1}"
                name = str(inst.meta.get("trigger_name", default))
                self.result.triggers.append(PlacedTrigger(name, trig[0], trig[1], trig[2]))
            return True
        if record:
            self.record_drop(inst.kind)
        return False

    def record_drop(self, kind: str) -> None:
        self.result.dropped[kind] = self.result.dropped.get(kind, 0) + 1

    def reserve_trigger(self, name: str, t: float, pos: F64, radius: float) -> None:
        """Block a configured trigger's disc for everybody placed later."""
        self.occupied.update(_disc_keys(t, pos, radius, self.fps).tolist())
        self.result.triggers.append(PlacedTrigger(name, t, pos, radius))
