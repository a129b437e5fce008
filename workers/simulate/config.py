"""Scene configuration: pydantic models and YAML/JSON loading."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workers.errors import UserError

EventType = Literal[
    "enter", "exit", "dwell", "stop", "follow", "accompany", "overtake",
    "meet", "handover", "choose_route", "startle",
]
EVENT_TYPES: tuple[str, ...] = (
    "enter", "exit", "dwell", "stop", "follow", "accompany", "overtake",
    "meet", "handover", "choose_route", "startle",
)
# Planted scenario kinds; "enter" and "exit" are planted together by "pass_through".
ScenarioKind = Literal[
    "pass_through", "dwell", "stop", "follow", "accompany", "overtake",
    "meet", "handover", "choose_route", "startle", "straggling_group", "standing_group",
    "strangers_abreast", "talk_group", "walk_talk", "walking_group", "conversation",
    "vehicle_stop",
]
# Kinds a `layout: mingled` scene can hold (groups that cross the crowd).
MINGLED_KINDS = frozenset({"walking_group", "standing_group"})
TrackClass = Literal["pedestrian", "cyclist", "vehicle"]
NearMissKind = Literal[
    "wide_side_by_side", "far_follow", "zone_graze", "slow_down", "wide_pass",
    "crossing", "trigger_ignored", "spontaneous_change", "short_stay",
]
NEAR_MISS_KINDS: tuple[str, ...] = (
    "wide_side_by_side", "far_follow", "zone_graze", "slow_down", "wide_pass",
    "crossing", "trigger_ignored", "spontaneous_change", "short_stay",
)

Point = tuple[float, float]


class SimulationConfigError(UserError):
    """The scene configuration is invalid."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoiseConfig(_Model):
    """Observation noise applied after truth is computed; every knob may be zero."""

    jitter: float = Field(0.05, ge=0.0, le=5.0, description="position noise sigma, metres")
    drop_rate: float = Field(0.02, ge=0.0, lt=1.0, description="share of points dropped")
    id_switch_rate: float = Field(0.05, ge=0.0, le=1.0, description="chance a track switches id")
    false_tracks: int = Field(3, ge=0, le=10_000, description="short spurious tracks")
    fps_jitter: float = Field(0.05, ge=0.0, le=0.4, description="frame time sigma, in periods")
    scale: float = Field(1.0, gt=0.0, le=10.0, description="calibration scale error: observed "
                         "positions are true positions times this (truth stays in true metres)")
    jitter_tau: float = Field(0.0, ge=0.0, le=60.0, description="correlation time of the "
                              "position noise, seconds (0: independent per frame)")
    jitter_hold: bool = Field(False, description="the noise keeps its value and jumps to a new "
                              "one at random moments (mean interval jitter_tau): a box that "
                              "sticks and jumps")
    clip_to_events: list[TrackClass] = Field(
        default_factory=list, description="classes whose tracks exist only from their first "
        "event's start to their last event's end (MEVA tracks a person during an activity)")
    break_rate: float = Field(0.0, ge=0.0, le=1.0, description="chance that a track with events "
                              "breaks inside one of them and goes on under a new id")
    untracked_stops: list[TrackClass] = Field(
        default_factory=list, description="classes not tracked while they stand: a stop of "
        "theirs is a gap in the data, and the track resumes under a new id")
    untracked_stops_keep_id: bool = Field(
        False, description="after an untracked stop the track resumes under its own id: the "
        "tracks before and after were linked (the MEVA label import links a vehicle's "
        "stopping and starting tracks by box overlap)")


class ZoneConfig(_Model):
    name: str = Field(min_length=1)
    kind: Literal["zone", "branch"] = "zone"
    polygon: list[Point] = Field(min_length=3)

    @model_validator(mode="after")
    def _area(self) -> ZoneConfig:
        pts = self.polygon
        area = 0.5 * sum(
            pts[i][0] * pts[(i + 1) % len(pts)][1] - pts[(i + 1) % len(pts)][0] * pts[i][1]
            for i in range(len(pts))
        )
        if abs(area) < 1.0:
            raise ValueError(f"zone {self.name!r} polygon has area {abs(area):.2f} m² (< 1)")
        return self


class RouteConfig(_Model):
    name: str = Field(min_length=1)
    from_zone: str = Field(min_length=1)
    polyline: list[Point] = Field(min_length=2)


class TriggerConfig(_Model):
    name: str = Field(min_length=1)
    kind: str = "bang"
    t: float = Field(ge=0.0)
    position: Point
    radius: float = Field(8.0, gt=0.0)


class BackgroundConfig(_Model):
    """Background crowd in straight lanes inside `region` (never interacts)."""

    agents: int = Field(0, ge=0, le=1_000_000)
    region: tuple[Point, Point] | None = None
    cyclist_share: float = Field(0.2, ge=0.0, le=1.0)
    walker_speed: tuple[float, float] = Field(
        (0.7, 1.6), description="speed range of walkers in a mingled crowd, m/s")


class SceneConfig(_Model):
    preset: str = "custom"
    source: str | None = None
    seed: int = 0
    fps: float = Field(10.0, gt=0.0, le=120.0)
    duration: float = Field(300.0, gt=0.0, le=86_400.0)
    extent: tuple[Point, Point]
    headings: list[float] | None = Field(
        None, description="allowed headings (degrees) of free scenarios; none: any"
    )
    zones: list[ZoneConfig] = Field(default_factory=list)
    routes: list[RouteConfig] = Field(default_factory=list)
    triggers: list[TriggerConfig] = Field(default_factory=list)
    scenarios: dict[ScenarioKind, int] = Field(default_factory=dict)
    near_misses: dict[NearMissKind, int] = Field(default_factory=dict)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    layout: Literal["isolated", "mingled"] = Field(
        "isolated", description="isolated: planted groups >= 10 m from each other and from the "
        "background lanes; mingled: the extent is a camera's view that walkers and groups "
        "cross in both directions among each other (truth covers every pair)")
    truth_style: Literal["definitions", "group_labels", "activity_labels"] = Field(
        "definitions", description="definitions: every event the definitions hold (complete); "
        "group_labels: accompany written the way ETH/UCY annotators write it, one label per "
        "pair of a group over the whole time both are seen, and none for strangers; "
        "activity_labels: meet written the way MEVA annotators write it, one label per pair "
        "of a conversation over the time both take part")

    @model_validator(mode="after")
    def _consistent(self) -> SceneConfig:
        (x0, y0), (x1, y1) = self.extent
        if not (x1 > x0 and y1 > y0):
            raise ValueError("extent must be [[xmin, ymin], [xmax, ymax]] with max > min")
        if self.noise.scale != 1.0 and (self.zones or self.routes or self.triggers):
            raise ValueError("noise.scale (a calibration error) applies to positions only: use "
                             "it in scenes without zones, routes or triggers")
        names = [z.name for z in self.zones]
        if len(set(names)) != len(names):
            raise ValueError("zone names must be unique")
        kinds = {z.name: z.kind for z in self.zones}
        for r in self.routes:
            if kinds.get(r.from_zone) != "branch":
                raise ValueError(
                    f"route {r.name!r}: from_zone {r.from_zone!r} is not a branch zone")
        if len({r.name for r in self.routes}) != len(self.routes):
            raise ValueError("route names must be unique")
        if len({t.name for t in self.triggers}) != len(self.triggers):
            raise ValueError("trigger names must be unique")
        for k, n in [*self.scenarios.items(), *self.near_misses.items()]:
            if n < 0:
                raise ValueError(f"count for {k!r} must be >= 0")
        needs_zone = {"pass_through", "dwell", "zone_graze", "short_stay"}
        wanted = {k for k, n in [*self.scenarios.items(), *self.near_misses.items()] if n > 0}
        if wanted & needs_zone and "zone" not in kinds.values():
            raise ValueError("zone scenarios need at least one zone of kind 'zone'")
        if self.scenarios.get("choose_route", 0) > 0 and not self.routes:
            raise ValueError("choose_route scenarios need routes")
        if self.layout == "mingled":
            bad = sorted(k for k in wanted if k not in MINGLED_KINDS)
            if bad or self.triggers or self.routes:
                raise ValueError(
                    f"layout 'mingled' holds only {', '.join(sorted(MINGLED_KINDS))} and zones "
                    f"(no triggers or routes); got {', '.join(bad) or 'triggers/routes'}")
        lo, hi = self.background.walker_speed
        if not 0.2 <= lo <= hi <= 3.0:
            raise ValueError("background.walker_speed must be [low, high] within 0.2-3.0 m/s")
        region = self.background.region
        if region is not None:
            (bx0, by0), (bx1, by1) = region
            if not (x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1):
                raise ValueError("background.region must lie inside extent")
        return self


def _format_error(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        lines.append(f"field '{loc}': {err['msg']}")
    return "invalid scene config: " + "; ".join(lines)


def validate_config(data: Any) -> SceneConfig:
    """Validate a parsed mapping; raise SimulationConfigError naming the bad field."""
    if not isinstance(data, dict):
        raise SimulationConfigError("invalid scene config: top level must be a mapping")
    try:
        return SceneConfig.model_validate(data)
    except ValidationError as exc:
        raise SimulationConfigError(_format_error(exc)) from exc


def load_config(path: str | Path) -> SceneConfig:
    """Load a YAML or JSON scene config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SimulationConfigError(f"cannot read scene config {p}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SimulationConfigError(f"cannot parse scene config {p}: {exc}") from exc
    return validate_config(data)
