"""Scene geometry and triggers from scene.json (what `secinf simulate` writes).

{"fps": 10, "units": "m", "time_origin": "...", "zones": [{"name", "kind", "polygon"}],
 "routes": [{"name", "from_zone", "polyline"}],
 "triggers": [{"name", "kind", "t", "position", "radius"}]}. Trigger `t` is seconds since
the source's time_origin. Geometry in pixels goes through the source's transform; every
point must land within the world bounds (transform.ground_point).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workers.errors import UserError
from workers.ingest.schema import ResolvedSource
from workers.ingest.transform import ground_point

ZONE_KINDS = ("zone", "branch")


@dataclass(frozen=True)
class SceneFile:
    """A parsed scene.json: its raw document and the header fields it offers."""

    path: Path
    doc: dict[str, Any]

    @property
    def fps(self) -> float | None:
        fps = self.doc.get("fps")
        return float(fps) if isinstance(fps, int | float) and fps > 0 else None

    @property
    def units(self) -> str | None:
        units = self.doc.get("units")
        return units if units in ("m", "px", "cm", "mm") else None

    @property
    def time_origin(self) -> datetime | None:
        value = self.doc.get("time_origin")
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError as exc:
            raise UserError(f"{self.path}: time_origin {value!r} is not an ISO "
                            "timestamp") from exc
        if parsed.tzinfo is None:
            raise UserError(f"{self.path}: time_origin {value!r} needs a time zone "
                            "(e.g. 2026-01-01T00:00:00Z)")
        return parsed


def read_scene(path: Path) -> SceneFile:
    """Parse and check a scene.json; any problem is one UserError naming the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"--scene {path}: cannot read it ({exc.strerror})") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"--scene {path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise UserError(f"--scene {path}: expected a JSON object with zones, routes, triggers")
    scene = SceneFile(path, doc)
    scene.time_origin  # noqa: B018  (validates early)
    for key in ("zones", "routes", "triggers"):
        if not isinstance(doc.get(key, []), list):
            raise UserError(f"--scene {path}: {key} must be a list")
    return scene


def _points(value: Any, where: str, minimum: int) -> list[tuple[float, float]]:
    ok = isinstance(value, list) and len(value) >= minimum
    pts: list[tuple[float, float]] = []
    if ok:
        for p in value:
            if (not isinstance(p, list | tuple) or len(p) != 2
                    or not all(isinstance(v, int | float) and math.isfinite(v) for v in p)):
                ok = False
                break
            pts.append((float(p[0]), float(p[1])))
    if not ok:
        raise UserError(f"{where}: needs at least {minimum} [x, y] points of finite numbers")
    return pts


def _name(item: Any, where: str) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
            or not item["name"].strip():
        raise UserError(f"{where}: every entry needs a non-empty \"name\"")
    return str(item["name"])


def normalise_scene(scene: SceneFile, source: ResolvedSource) -> dict[str, Any]:
    """The document ingest.upsert_scene takes: source units, absolute trigger times."""
    doc = scene.doc
    geometry_px = (scene.units or source.input_units) not in ("m",)
    transform = source.transform if geometry_px or scene.units in ("cm", "mm") else None

    where = f"--scene {scene.path}"

    def move(pts: list[tuple[float, float]], what: str) -> list[list[float]]:
        return [ground_point(x, y, transform, f"{where} {what}") for x, y in pts]

    zones, routes, triggers = [], [], []
    for z in doc.get("zones", []):
        name = _name(z, f"{where} zones")
        kind = z.get("kind", "zone")
        if kind not in ZONE_KINDS:
            raise UserError(f"{where}: zone {name!r} has kind {kind!r}; use zone or branch")
        zones.append({"name": name, "kind": kind,
                      "polygon": move(_points(z.get("polygon"), f"{where} zone {name!r}", 3),
                                      f"zone {name!r}"),
                      "attributes": z.get("attributes") or {}})
    for r in doc.get("routes", []):
        name = _name(r, f"{where} routes")
        if not isinstance(r.get("from_zone"), str):
            raise UserError(f"{where}: route {name!r} needs from_zone (a branch zone name)")
        routes.append({"name": name, "from_zone": r["from_zone"],
                       "polyline": move(_points(r.get("polyline"), f"{where} route {name!r}",
                                                2), f"route {name!r}")})
    for t in doc.get("triggers", []):
        name = _name(t, f"{where} triggers")
        secs = t.get("t")
        if not isinstance(secs, int | float) or not math.isfinite(secs):
            raise UserError(f"{where}: trigger {name!r} needs t (seconds since time_origin)")
        pos = t.get("position")
        radius = t.get("radius")
        if radius is not None and not (isinstance(radius, int | float) and radius > 0):
            raise UserError(f"{where}: trigger {name!r} radius must be a positive number")
        if pos is not None:
            pos = move(_points([pos], f"{where} trigger {name!r} position", 1),
                       f"trigger {name!r}")[0]
            if radius is not None and transform is not None and transform.scale is not None:
                radius = radius * transform.scale
        triggers.append({"name": name, "kind": t.get("kind") or "event",
                         "ts": (source.time_origin + timedelta(seconds=float(secs))).isoformat(),
                         "position": pos, "radius": radius})
    out: dict[str, Any] = {"zones": zones, "routes": routes, "triggers": triggers}
    if isinstance(doc.get("preset"), str):
        # secinf simulate's scene.json: the source is marked simulated (datasets' data card
        # counts such sources), with what made it.
        out["simulated"] = {k: doc[k] for k in ("preset", "seed", "noise", "duration")
                            if k in doc}
    return out
