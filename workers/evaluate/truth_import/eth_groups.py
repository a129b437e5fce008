"""ETH/UCY walking groups (`groups.txt` beside `obsmat.txt`) → `accompany` truth.

`groups.txt` has one group per line (space-separated pedestrian ids); the tracks file is
`obsmat.txt` (frame, ped_id, x, z, y, vx, vz, vy; metres) or any whitespace text that starts
with `frame ped_id` (the `frame ped_id x y` files `secinf ingest --format eth` reads). Each
pair on a group line is one event spanning the time both are annotated; a pair annotated
together for less than `min_duration_s` is dropped. Group labels are per person, not per
moment: a group that splits for a while stays one event.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from workers.errors import UserError
from workers.ingest.files import read_text

from .common import (
    DEFAULT_TIME_ORIGIN,
    Imported,
    TimeBase,
    check_fps,
    event,
    norm_id,
    pair_actors,
    truth_document,
)

SAMPLE_HZ = 2.5
"""ETH/UCY positions are annotated at 2.5 Hz: frame numbers step by fps / 2.5."""
MIN_DURATION_S = 2.0
TRACK_NAMES = ("obsmat.txt",)
GROUP_NAMES = ("groups.txt",)


def resolve_inputs(inputs: list[Path]) -> tuple[Path, Path, str]:
    """(tracks file, groups file, scene name) from a scene folder, its `raw/` folder or
    the two files."""
    if len(inputs) == 1 and inputs[0].is_dir():
        folder = inputs[0]
        if not (folder / "groups.txt").is_file() and (folder / "raw" / "groups.txt").is_file():
            folder = folder / "raw"
        tracks, groups = folder / "obsmat.txt", folder / "groups.txt"
        missing = [p.name for p in (tracks, groups) if not p.is_file()]
        if missing:
            raise UserError(f"{inputs[0]}: no {' or '.join(missing)} in it; an ETH/UCY scene "
                            "folder holds obsmat.txt and groups.txt (or name both files)")
    else:
        files = [p for p in inputs if not p.is_dir()]
        groups_l = [p for p in files if p.name.lower().startswith("groups")]
        tracks_l = [p for p in files if p not in groups_l]
        if len(groups_l) != 1 or len(tracks_l) != 1 or len(files) != len(inputs):
            raise UserError("--format eth-groups: give the scene folder, or two files: the "
                            "tracks (obsmat.txt or 'frame ped_id x y' text) and groups.txt")
        tracks, groups = tracks_l[0], groups_l[0]
    folder = tracks.resolve().parent
    scene = folder.parent.name if folder.name == "raw" else folder.name
    return tracks, groups, scene


def read_spans(path: Path) -> tuple[dict[str, tuple[float, float]], list[float]]:
    """{ped id: (first frame, last frame)} and the per-pedestrian frame steps."""
    spans: dict[str, tuple[float, float]] = {}
    last: dict[str, float] = {}
    steps: list[float] = []
    for n, line in enumerate(read_text(path, "the tracks").splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        try:
            frame, pid = float(parts[0]), norm_id(parts[1])
        except (ValueError, IndexError) as exc:
            raise UserError(f"{path}:{n}: expected 'frame ped_id ...' numbers (obsmat.txt "
                            f"or ETH/UCY text), got {line.strip()[:60]!r}") from exc
        lo, hi = spans.get(pid, (frame, frame))
        spans[pid] = (min(lo, frame), max(hi, frame))
        if pid in last and frame > last[pid]:
            steps.append(frame - last[pid])
        last[pid] = frame
    if not spans:
        raise UserError(f"{path}: no rows; expected 'frame ped_id ...' lines (obsmat.txt)")
    return spans, steps


def read_groups(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, member ids) per non-empty line."""
    out = []
    for n, line in enumerate(read_text(path, "the groups file").splitlines(), start=1):
        ids = [norm_id(v) for v in line.replace(",", " ").split()]
        if ids:
            out.append((n, ids))
    return out


def eth_groups_truth(inputs: list[Path], *, source: str | None = None,
                     time_origin: str = DEFAULT_TIME_ORIGIN, fps: float | None = None,
                     frame0: int | None = None,
                     min_duration_s: float = MIN_DURATION_S) -> Imported:
    """Import one ETH/UCY scene (see the module docstring)."""
    tracks, groups_path, scene = resolve_inputs(inputs)
    spans, steps = read_spans(tracks)
    groups = read_groups(groups_path)
    if fps is None:
        fps = SAMPLE_HZ * min(steps) if steps else 25.0
    base = TimeBase(check_fps(fps), int(frame0) if frame0 is not None
                    else int(min(lo for lo, _ in spans.values())))
    notes: list[str] = []
    events = []
    seen: set[tuple[str, str]] = set()
    unknown: set[str] = set()
    short = 0
    for _, ids in groups:
        for p, q in itertools.combinations(ids, 2):
            if p == q:
                continue
            actors = pair_actors(p, q)
            key = (actors["a"], actors["b"])
            if key in seen:
                continue
            seen.add(key)
            missing = [i for i in (p, q) if i not in spans]
            if missing:
                unknown.update(missing)
                continue
            start = base.seconds(max(spans[p][0], spans[q][0]))
            end = base.seconds(min(spans[p][1], spans[q][1]))
            if end - start < min_duration_s:
                short += 1
                continue
            events.append(event("accompany", actors, start, end, {"group": list(ids)}))
    if unknown:
        notes.append(f"{groups_path}: {len(unknown)} id(s) not in {tracks.name} skipped: "
                     f"{', '.join(sorted(unknown)[:10])}")
    if short:
        notes.append(f"{short} pair(s) annotated together < {min_duration_s:g} s dropped")
    doc = truth_document(source or scene, time_origin, events)
    return Imported(doc, base, notes, {"tracks": str(tracks), "groups": str(groups_path)})


def import_eth_groups(raw_dir: Path | list[Path], *, source: str | None = None,
                      time_origin: str = DEFAULT_TIME_ORIGIN, fps: float | None = None,
                      frame0: int | None = None,
                      min_duration_s: float = MIN_DURATION_S) -> dict[str, Any]:
    """The truth document of an ETH/UCY scene folder (or its two files)."""
    inputs = raw_dir if isinstance(raw_dir, list) else [raw_dir]
    return eth_groups_truth([Path(p) for p in inputs], source=source,
                            time_origin=time_origin, fps=fps, frame0=frame0,
                            min_duration_s=min_duration_s).truth
