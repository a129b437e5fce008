"""`layout: mingled`: the extent is one camera's view (ETH/UCY: about 15 x 15 m) that a
crowd of walkers and the planted groups cross, in both directions and among each other.

Everybody walks irregularly (realistic.walking_group; a walker is a group of one) along a
chord of the view: a heading from the scene's `headings` (±20°; one walker in seven any
way), a random offset across the view, and the middle of the view reached at a random time.
Standing groups walk in, stand inside the view and walk on. Only what lies inside the view
and inside [0, duration] is kept (each agent's longest such run), so tracks begin and end at
the edges, as in recorded scenes. Strangers keep the distance real pedestrians keep: a
crossing that would bring anybody within 0.5 m of somebody already placed, or keep them
within 1.8 m of one person for 4 s or more, is drawn again (up to 20 times, else dropped).
Past passes, crossings and overtakes are left as they fall: truth is computed for every pair
that comes within 10 m (truth.close_pairs).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import realistic as rl
from .background import Background
from .behaviours import Instance, Rng
from .config import SceneConfig
from .geometry import F64
from .motion import I64, Script, sample
from .placement import PlacedAgent, Placement

SPREAD_DEG = 20.0
ANY_WAY = 1 / 7
STAND_MARGIN = 2.0  # metres between a standing group and the edge of the view
CONTACT = 0.5  # metres: strangers never come closer
PERSONAL = 1.8  # metres: strangers stay this close to each other for less than LINGER_S
LINGER_S = 4.0
TRIES = 20


class _Occupancy:
    """Positions of everybody placed so far, per frame (padded), to keep strangers apart."""

    def __init__(self, n_frames: int, fps: float) -> None:
        self.fps = fps
        self.pos = np.full((n_frames, 16, 2), np.inf)
        self.who = np.full((n_frames, 16), -1, dtype=np.int64)
        self.count = np.zeros(n_frames, dtype=np.int64)
        self.agents = 0

    def clear_of(self, frames: I64, xy: F64) -> bool:
        d = np.hypot(*(self.pos[frames] - xy[:, None, :]).transpose(2, 0, 1))
        if (d < CONTACT).any():
            return False
        near = self.who[frames][d < PERSONAL]
        return len(near) == 0 or int(np.bincount(near).max()) < LINGER_S * self.fps

    def add(self, frames: I64, xy: F64) -> None:
        if self.count[frames].max() >= self.pos.shape[1]:
            grow = self.pos.shape[1]
            self.pos = np.concatenate([self.pos, np.full_like(self.pos[:, :grow], np.inf)], 1)
            self.who = np.concatenate([self.who, np.full_like(self.who[:, :grow], -1)], 1)
        slot = self.count[frames]
        self.pos[frames, slot] = xy
        self.who[frames, slot] = self.agents
        self.count[frames] += 1
        self.agents += 1


def _heading(cfg: SceneConfig, rng: Rng) -> float:
    if not cfg.headings or rng.random() < ANY_WAY:
        return float(rng.uniform(0, 2 * math.pi))
    base = float(rng.choice(cfg.headings))
    return math.radians(base + float(rng.uniform(-SPREAD_DEG, SPREAD_DEG)))


def _visible(cfg: SceneConfig, frames: I64, xy: F64) -> slice | None:
    """The longest run of frames inside the view and the scene's time."""
    (x0, y0), (x1, y1) = cfg.extent
    last = math.floor(cfg.duration * cfg.fps + 1e-9)
    ok = ((xy[:, 0] > x0) & (xy[:, 0] < x1) & (xy[:, 1] > y0) & (xy[:, 1] < y1)
          & (frames >= 0) & (frames <= last))
    if ok.sum() < 2:
        return None
    edges = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    k = int(np.argmax(ends - starts))
    return slice(int(starts[k]), int(ends[k])) if ends[k] - starts[k] >= 2 else None


def _crossing(cfg: SceneConfig, rng: Rng, inst: Instance, t_mid: float) -> list[Script]:
    """Rotate and shift a local walk (along +x, middle at local x = 0 at time t_mid) so
    that it crosses the view at a random offset, its middle at a random time."""
    (x0, y0), (x1, y1) = cfg.extent
    theta = _heading(cfg, rng)
    across = 0.5 * (abs((x1 - x0) * math.sin(theta)) + abs((y1 - y0) * math.cos(theta)))
    off = float(rng.uniform(-across, across))
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    origin = centre + off * np.array([-math.sin(theta), math.cos(theta)])
    dt = round((float(rng.uniform(0.0, cfg.duration)) - t_mid) * cfg.fps) / cfg.fps
    return [s.transformed(theta, origin, dt) for s in inst.scripts]


def _standing(cfg: SceneConfig, rng: Rng, length: float) -> tuple[Instance, list[Script]]:
    (x0, y0), (x1, y1) = cfg.extent
    inst = rl.standing_group(rng, cfg.fps, approach=length / 2)
    stand = float(inst.meta["stand"])  # type: ignore[arg-type]
    where = np.array([rng.uniform(x0 + STAND_MARGIN, x1 - STAND_MARGIN),
                      rng.uniform(y0 + STAND_MARGIN, y1 - STAND_MARGIN)])
    arrive = float(inst.scripts[0].times[1])
    t0 = float(rng.uniform(0.0, max(cfg.duration - stand, 1.0)))
    dt = round((t0 - arrive) * cfg.fps) / cfg.fps
    return inst, [s.transformed(_heading(cfg, rng), where, dt) for s in inst.scripts]


def _try(cfg: SceneConfig, rng: Rng, occ: _Occupancy, draw: Any) -> tuple[
        Instance, list[PlacedAgent]] | None:
    """Draw a placement (`draw()` -> instance and world scripts) until its visible part keeps
    clear of everybody placed; register it in `occ`."""
    for _ in range(TRIES):
        inst, scripts = draw()
        kept = []
        for s in scripts:
            frames, xy = sample(s, cfg.fps)
            vis = _visible(cfg, frames, xy)
            if vis is not None:
                kept.append(PlacedAgent(s, frames[vis], xy[vis], -1))
        if kept and all(occ.clear_of(a.frames, a.xy) for a in kept):
            for a in kept:
                occ.add(a.frames, a.xy)
            return inst, kept
    return None


def populate(cfg: SceneConfig, rng: Rng) -> tuple[Placement, Background]:
    """Place the planted groups and the walkers of a mingled scene."""
    (x0, y0), (x1, y1) = cfg.extent
    length = math.hypot(x1 - x0, y1 - y0) + 6.0
    occ = _Occupancy(math.floor(cfg.duration * cfg.fps + 1e-9) + 1, cfg.fps)
    placed = Placement()

    def group(kind: str) -> tuple[Instance, list[Script]]:
        if kind == "standing_group":
            return _standing(cfg, rng, length)
        inst = rl.walking_group(rng, cfg.fps, length)
        return inst, _crossing(cfg, rng, inst, float(inst.meta["t_mid"]))  # type: ignore[arg-type]

    for kind in sorted(cfg.scenarios):
        for _ in range(cfg.scenarios[kind]):
            got = _try(cfg, rng, occ, lambda k=kind: group(k))
            if got is None:
                placed.dropped[kind] = placed.dropped.get(kind, 0) + 1
                continue
            inst, kept = got
            for a in kept:
                a.group = len(placed.instances)
            placed.agents += kept
            placed.instances.append(Instance(inst.kind, [a.script for a in kept], meta=inst.meta))
            placed.offsets.append(0.0)
    return placed, _walkers(cfg, rng, length, occ)


def _walkers(cfg: SceneConfig, rng: Rng, length: float, occ: _Occupancy) -> Background:
    agent, frames, xy = [], [], []
    n = 0

    def walker() -> tuple[Instance, list[Script]]:
        inst = rl.walking_group(rng, cfg.fps, length, size=1, speed=cfg.background.walker_speed)
        return inst, _crossing(cfg, rng, inst, float(inst.meta["t_mid"]))  # type: ignore[arg-type]

    for _ in range(cfg.background.agents):
        got = _try(cfg, rng, occ, walker)
        if got is None:
            continue
        (a,) = got[1]
        agent.append(np.full(len(a.frames), n, dtype=np.int64))
        frames.append(a.frames)
        xy.append(a.xy)
        n += 1
    if n == 0:
        return Background(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)), [],
                          cfg.background.agents, 0)
    return Background(np.concatenate(agent), np.concatenate(frames), np.vstack(xy),
                      ["pedestrian"] * n, cfg.background.agents, n)
