"""Background crowd: straight lanes that never interact with anybody.

Lanes run along y inside the background region, 4 m apart (so lateral offsets
between lanes exceed every pairwise threshold). Agents of one lane share one
speed and keep >= 12 m headway, so they never follow, meet or overtake. A lane is
kept only if it crosses each zone cleanly (far from vertices, inside either
< 5.5 s or > 10.5 s) so incidental enter/exit/dwell events are unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import SceneConfig
from .geometry import F64, as_array, points_in_polygon
from .motion import I64

LANE_SPACING = 4.0
HEADWAY = 12.0


@dataclass
class Background:
    agent: I64  # per point: background agent index
    frames: I64
    xy: F64
    cls: list[str]  # per agent
    requested: int
    placed: int


def _lane_ok(x: float, y0: float, y1: float, speed: float, zones: list[F64]) -> bool:
    ys = np.arange(y0, y1, 0.05)
    pts = np.column_stack([np.full_like(ys, x), ys])
    for poly in zones:
        if np.hypot(poly[:, 0] - x, 0).min() < 1.5 and (
            poly[:, 1].min() < y1 and poly[:, 1].max() > y0
        ):
            return False
        inside = points_in_polygon(pts, poly)
        if not inside.any():
            continue
        edges = np.flatnonzero(np.diff(inside.astype(np.int8)))
        if len(edges) != 2 or inside[0] or inside[-1]:
            return False
        t_in = (edges[1] - edges[0]) * 0.05 / speed
        if 5.5 <= t_in <= 10.5 or t_in < 2.0:
            return False
    return True


def lane_capacity(height: float, duration: float, speed: float) -> int:
    window = duration - height / speed
    return 0 if window < 0 else int(window // (HEADWAY / speed)) + 1


def generate(config: SceneConfig, rng: np.random.Generator) -> Background:
    bg = config.background
    empty = Background(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)), [],
                       bg.agents, 0)
    if bg.agents == 0 or bg.region is None:
        return empty
    (x0, y0), (x1, y1) = bg.region
    height, fps, dur = y1 - y0, config.fps, config.duration
    zones = [as_array(z.polygon) for z in config.zones]
    lanes: list[tuple[float, float, str, int]] = []  # x, speed, class, direction
    for k, x in enumerate(np.arange(x0 + LANE_SPACING / 2, x1, LANE_SPACING)):
        cyc = rng.random() < bg.cyclist_share
        cls, speed = ("cyclist", rng.uniform(4.0, 5.0)) if cyc else ("pedestrian",
                                                                       rng.uniform(1.1, 1.5))
        if not _lane_ok(float(x), y0, y1, float(speed), zones):
            continue
        lanes.append((float(x), float(speed), cls, 1 if k % 2 == 0 else -1))
    caps = np.array([lane_capacity(height, dur, s) for _, s, _, _ in lanes], dtype=np.int64)
    if caps.sum() == 0:
        return empty
    share = np.floor(bg.agents * caps / caps.sum()).astype(np.int64)
    share = np.minimum(share, caps)
    rest = bg.agents - int(share.sum())
    for i in np.argsort(-(caps - share)):
        if rest <= 0:
            break
        add = min(rest, int(caps[i] - share[i]))
        share[i] += add
        rest -= add
    agent_parts, frame_parts, xy_parts, classes = [], [], [], []
    n = 0
    for (x, speed, cls, direction), count in zip(lanes, share, strict=True):
        if count == 0:
            continue
        window = dur - height / speed
        slot = window / count
        head = HEADWAY / speed
        starts = np.arange(count) * slot + rng.uniform(0, max(slot - head, 0.0), count)
        f0 = np.ceil(starts * fps - 1e-9).astype(np.int64)
        f1 = np.floor((starts + height / speed) * fps + 1e-9).astype(np.int64)
        lens = f1 - f0 + 1
        idx = np.repeat(np.arange(count), lens)
        frames = np.concatenate([np.arange(a, b + 1) for a, b in zip(f0, f1, strict=True)])
        travelled = (frames / fps - starts[idx]) * speed
        y = y0 + travelled if direction > 0 else y1 - travelled
        agent_parts.append(idx + n)
        frame_parts.append(frames)
        xy_parts.append(np.column_stack([np.full(len(y), x), y]))
        classes.extend([cls] * int(count))
        n += int(count)
    return Background(np.concatenate(agent_parts), np.concatenate(frame_parts).astype(np.int64),
                      np.vstack(xy_parts), classes, bg.agents, n)
