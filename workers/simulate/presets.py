"""Built-in scenes: plaza, corridor, intersection, crowd, and four modelled on recorded
data: groups-2p5hz (ETH/UCY-like: 2.5 Hz, a dense crowd, walking groups, smooth annotated
positions) and meva-30fps (MEVA-like: 30 fps, box jitter of tens of centimetres, a camera
whose scale is 0.75 of the truth, conversations standing and walking, id breaks), and their
measured successors groups-real and meva-real (presets_real.py)."""

from __future__ import annotations

import math
from typing import Any

from .background import HEADWAY, LANE_SPACING
from .config import SceneConfig, SimulationConfigError, validate_config
from .presets_real import REAL_PRESETS

PRESETS = ("plaza", "corridor", "intersection", "crowd", "groups-2p5hz", "meva-30fps",
           *REAL_PRESETS)
DEFAULT_DURATION = 300.0


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def _hexagon(cx: float, cy: float, r: float) -> list[list[float]]:
    return [[round(cx + r * math.cos(k * math.pi / 3), 3),
             round(cy + r * math.sin(k * math.pi / 3), 3)] for k in range(6)]


def _plaza_geometry() -> dict[str, Any]:
    return {
        "zones": [
            {"name": "fountain", "kind": "zone", "polygon": _rect(30, 95, 40, 103)},
            {"name": "kiosk", "kind": "zone", "polygon": _hexagon(95, 110, 4.5)},
            {"name": "gate", "kind": "zone", "polygon": _rect(140, 100, 148, 106)},
            {"name": "fork", "kind": "branch", "polygon": _rect(47, 27, 55, 35)},
        ],
        "routes": [
            {"name": "fork-east", "from_zone": "fork", "polyline": [[54, 31], [70, 31], [88, 36]]},
            {"name": "fork-north", "from_zone": "fork", "polyline": [[51, 34], [51, 62]]},
            {"name": "fork-south", "from_zone": "fork", "polyline": [[51, 28], [51, 5]]},
        ],
    }


_PLAZA_SCENARIOS = {
    "pass_through": 6, "dwell": 6, "stop": 4, "follow": 6, "accompany": 6, "overtake": 6,
    "meet": 6, "handover": 6, "choose_route": 6, "startle": 6,
}
_ALL_NEAR = {
    "wide_side_by_side": 3, "far_follow": 3, "zone_graze": 3, "slow_down": 3, "wide_pass": 3,
    "crossing": 3, "trigger_ignored": 3, "spontaneous_change": 3, "short_stay": 3,
}


def _plaza() -> dict[str, Any]:
    return {
        "extent": [[0, 0], [220, 140]], **_plaza_geometry(),
        "scenarios": dict(_PLAZA_SCENARIOS), "near_misses": dict(_ALL_NEAR),
        "background": {"agents": 12, "region": [[185, 0], [220, 140]]},
    }


def _corridor() -> dict[str, Any]:
    return {
        "extent": [[0, 0], [260, 24]], "headings": [0.0, 180.0],
        "zones": [{"name": "hall", "kind": "zone", "polygon": _rect(236, 9, 244, 15)}],
        "scenarios": {"follow": 10, "accompany": 10, "overtake": 10, "stop": 3,
                      "pass_through": 4},
        "near_misses": {"far_follow": 4, "wide_side_by_side": 4, "wide_pass": 4,
                        "slow_down": 2},
        "background": {"agents": 0, "region": [[0, 0], [24, 24]]},
    }


def _intersection() -> dict[str, Any]:
    arm = 48.0
    return {
        "extent": [[-50, -50], [50, 50]],
        "zones": [
            {"name": "center", "kind": "branch", "polygon": _rect(-8, -8, 8, 8)},
            {"name": "kerb", "kind": "zone", "polygon": _rect(22, 22, 32, 30)},
        ],
        "routes": [
            {"name": "to-north", "from_zone": "center", "polyline": [[1.5, 7], [1.5, arm]]},
            {"name": "to-east", "from_zone": "center", "polyline": [[7, -1.5], [arm, -1.5]]},
            {"name": "to-south", "from_zone": "center", "polyline": [[-1.5, -7], [-1.5, -arm]]},
            {"name": "to-west", "from_zone": "center", "polyline": [[-7, 1.5], [-arm, 1.5]]},
        ],
        "scenarios": {"choose_route": 12, "startle": 4, "pass_through": 4, "stop": 2},
        "near_misses": {"trigger_ignored": 2, "spontaneous_change": 2, "zone_graze": 2},
    }


def _crowd_extent(agents: int, duration: float) -> dict[str, Any]:
    height = 140.0
    per_lane = max(1, int(0.75 * ((duration - height / 1.3) // (HEADWAY / 1.3) + 1)))
    lanes = max(4, math.ceil(agents / per_lane))
    width = lanes * LANE_SPACING
    x0 = 185.0
    return {
        "extent": [[0, 0], [x0 + width, height]],
        "background": {"agents": agents, "region": [[x0, 0], [x0 + width, height]]},
        "extra_zones": [
            {"name": "concourse", "kind": "zone", "polygon": _rect(x0 + 8, 60, x0 + 24, 80)},
        ],
    }


def _crowd(agents: int, duration: float) -> dict[str, Any]:
    geo = _plaza_geometry()
    ext = _crowd_extent(agents, duration)
    geo["zones"] = geo["zones"] + ext.pop("extra_zones")
    return {**geo, **ext, "scenarios": dict(_PLAZA_SCENARIOS), "near_misses": dict(_ALL_NEAR)}


def _groups_2p5hz() -> dict[str, Any]:
    """ETH/UCY-like: walking groups among a dense two-way crowd, sampled at 2.5 Hz with the
    small jitter of hand-annotated positions (measured on zara01/02: a few cm); groups that
    straggle or stand, strangers who walk abreast for a few seconds; truth written as the
    annotators write it (one label per group pair over its co-presence)."""
    return {
        "fps": 2.5, "extent": [[0, 0], [200, 140]], "headings": [0.0, 180.0],
        # Mix measured on the labelled ETH/UCY scenes: most group pairs walk abreast; about
        # one in about twenty straggles; strangers walk abreast now and then.
        # (standing groups are 2 of 189 labelled pairs: the kind exists for scene files,
        # one per 300 s scene would be ten times too many)
        "scenarios": {"accompany": 16, "straggling_group": 1, "strangers_abreast": 1,
                      "follow": 2, "overtake": 2},
        "near_misses": {"wide_side_by_side": 6, "far_follow": 4, "crossing": 4,
                        "wide_pass": 3},
        "truth_style": "group_labels",
        "background": {"agents": 300, "region": [[150, 0], [200, 140]], "cyclist_share": 0.0},
        "noise": {"jitter": 0.03, "drop_rate": 0.0, "id_switch_rate": 0.02, "false_tracks": 0,
                  "fps_jitter": 0.0},
    }


def _meva_30fps() -> dict[str, Any]:
    """MEVA-like: 30 fps boxes projected to the ground (jitter ~0.15 m per frame), a camera
    model whose scale is 0.75 of the truth (people come out ~1.3 m tall), conversations
    standing in circles and walking, seen only while they talk, handovers, stops, tracks
    breaking into new ids; meet truth written as MEVA's annotators write it."""
    return {
        "fps": 30.0, "extent": [[0, 0], [160, 120]],
        "scenarios": {"talk_group": 6, "walk_talk": 3, "meet": 2, "handover": 2, "stop": 3,
                      "follow": 2},
        "near_misses": {"crossing": 4, "wide_side_by_side": 3, "slow_down": 2},
        "background": {"agents": 20, "region": [[130, 0], [160, 120]], "cyclist_share": 0.0},
        "noise": {"jitter": 0.15, "drop_rate": 0.02, "id_switch_rate": 0.08, "false_tracks": 3,
                  "fps_jitter": 0.0, "scale": 0.75},
        "truth_style": "activity_labels",
    }


_DEFAULT_AGENTS = {"plaza": 12, "corridor": 0, "intersection": 0, "crowd": 600,
                   "groups-2p5hz": 300, "meva-30fps": 20,
                   **{name: agents for name, (_, agents) in REAL_PRESETS.items()}}


def preset_config(name: str, seed: int = 0, **overrides: Any) -> SceneConfig:
    """A preset scene; overrides replace top-level fields (`agents` sets background.agents,
    `noise` is merged into the preset's noise). Scenario counts scale with duration."""
    if name not in PRESETS:
        raise SimulationConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    duration = float(overrides.pop("duration", None) or DEFAULT_DURATION)
    agents = overrides.pop("agents", None)
    agents = _DEFAULT_AGENTS[name] if agents is None else int(agents)
    data: dict[str, Any]
    if name == "plaza":
        data = _plaza()
    elif name == "corridor":
        data = _corridor()
    elif name == "intersection":
        data = _intersection()
    elif name == "groups-2p5hz":
        data = _groups_2p5hz()
    elif name == "meva-30fps":
        data = _meva_30fps()
    elif name in REAL_PRESETS:
        data = REAL_PRESETS[name][0]()
    else:
        data = _crowd(agents, duration)
    if agents and "background" not in data:
        data["background"] = {"agents": 0, "region": [[-50, 40], [-30, 50]]}
    if "background" in data:
        data["background"] = {**data["background"], "agents": agents}
    scale = duration / DEFAULT_DURATION
    for key in ("scenarios", "near_misses"):
        data[key] = {k: max(1, round(n * scale)) for k, n in data[key].items() if n > 0}
    noise = overrides.pop("noise", None)
    if noise is not None:
        given = noise if isinstance(noise, dict) else noise.model_dump()
        data["noise"] = {**data.get("noise", {}), **given}
    data.update({"preset": name, "seed": seed, "duration": duration})
    data.update({k: v for k, v in overrides.items() if v is not None})
    return validate_config(data)
