"""Piecewise-linear scripted motion, frame sampling and kinematics."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from .geometry import F64, rotation

I64 = NDArray[np.int64]

SPEED = {"pedestrian": 1.3, "cyclist": 4.5, "vehicle": 8.0}


@dataclass
class Script:
    """One agent's keyframes: positions at times, linear in between."""

    cls: str
    times: F64
    xy: F64
    role: str = ""

    def transformed(self, theta: float, offset: F64, dt: float) -> Script:
        xy = self.xy @ rotation(theta).T + offset
        return Script(self.cls, self.times + dt, xy, self.role)

    @property
    def start(self) -> float:
        return float(self.times[0])

    @property
    def end(self) -> float:
        return float(self.times[-1])


@dataclass
class PathBuilder:
    """Builds a Script leg by leg: walk to a point at a speed, or wait."""

    cls: str
    x: float
    y: float
    t: float = 0.0
    role: str = ""
    _t: list[float] = field(default_factory=list)
    _p: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._t = [self.t]
        self._p = [(self.x, self.y)]

    @property
    def now(self) -> float:
        return self._t[-1]

    @property
    def pos(self) -> tuple[float, float]:
        return self._p[-1]

    def to(self, x: float, y: float, speed: float) -> PathBuilder:
        px, py = self._p[-1]
        d = math.hypot(x - px, y - py)
        self._t.append(self._t[-1] + d / speed)
        self._p.append((x, y))
        return self

    def move(self, dx: float, dy: float, speed: float) -> PathBuilder:
        px, py = self._p[-1]
        return self.to(px + dx, py + dy, speed)

    def wait(self, duration: float) -> PathBuilder:
        self._t.append(self._t[-1] + duration)
        self._p.append(self._p[-1])
        return self

    def prepend(self, x: float, y: float, speed: float) -> PathBuilder:
        """Add a leg before the first keyframe (time runs backwards from it)."""
        px, py = self._p[0]
        d = math.hypot(x - px, y - py)
        self._t.insert(0, self._t[0] - d / speed)
        self._p.insert(0, (x, y))
        return self

    def build(self) -> Script:
        return Script(self.cls, np.array(self._t), np.array(self._p, dtype=np.float64), self.role)


def frame_range(start: float, end: float, fps: float) -> tuple[int, int]:
    """First and last frame whose nominal time lies in [start, end]."""
    return math.ceil(start * fps - 1e-9), math.floor(end * fps + 1e-9)


def sample(script: Script, fps: float) -> tuple[I64, F64]:
    """Frames and positions of a script at nominal frame times."""
    f0, f1 = frame_range(script.start, script.end, fps)
    frames = np.arange(f0, f1 + 1, dtype=np.int64)
    t = frames / fps
    x = np.interp(t, script.times, script.xy[:, 0])
    y = np.interp(t, script.times, script.xy[:, 1])
    return frames, np.column_stack([x, y])


def velocity(xy: F64, t: F64) -> F64:
    """Central-difference velocity; one-sided at the ends of the track."""
    v = np.zeros_like(xy)
    if len(xy) < 2:
        return v
    v[1:-1] = (xy[2:] - xy[:-2]) / (t[2:] - t[:-2])[:, None]
    v[0] = (xy[1] - xy[0]) / (t[1] - t[0])
    v[-1] = (xy[-1] - xy[-2]) / (t[-1] - t[-2])
    return v


def heading_diff_deg(va: F64, vb: F64) -> F64:
    """Absolute angle between two velocity arrays, degrees in [0, 180]."""
    ha = np.arctan2(va[:, 1], va[:, 0])
    hb = np.arctan2(vb[:, 1], vb[:, 0])
    d = np.abs((ha - hb + np.pi) % (2 * np.pi) - np.pi)
    return np.degrees(d)
