"""KPF (Kitware Packet Format, MEVA/DIVA annotations): boxes, object types, activities.

A clip is three YAML files of one record per line, `- { geom: {...} }`:

* `*.geom.yml` — boxes: `id1` track, `ts0` frame, `g0` "x1 y1 x2 y2" pixels;
* `*.types.yml` — `types: {id1, cset3: {class: probability}}` per track;
* `*.activities.yml` — `act: {act2: {name: p}, id2, timespan: [{tsr0: [f0, f1]}],
  actors: [{id1, timespan: [...]}]}`.

Geom files are large, so they are not parsed as YAML (CSafeLoader needs ≈ 5 s for 3 MB):
the flow-style lines are cut into fields by Polars regular expressions (≈ 0.1 s for 3 MB).
A file in block style (`- geom:` on its own line) falls back to the YAML parser.

MEVA tracks a vehicle only while it takes part in an activity, so a vehicle that stops
and later starts usually has two tracks: the `vehicle_stops` track ends where the stop
ends and a new track carries the `vehicle_starts`. `track_links` pairs them (box overlap
at the hand-over, one-to-one, best overlap first); the truth import spans a `stop` over the
gap and ingest can merge the second track into the first (`--activities`).

While reading, the reader measures every person box's height through the camera model
(`Camera.height_expr`); `person_heights()` gives each person track's median, and ingest
stores the clip's spread in the source's attributes (people far from 1.7 m tall mean the
camera model's scale is off: docs/pipeline.md, "Warnings").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from workers.errors import UserError
from workers.ingest.files import line_blocks, open_binary, read_text
from workers.ingest.krtd import Camera, read_krtd

KPF_FPS = 30.0
"""Frame rate of MEVA/DIVA video (the KPF frame numbers count these frames)."""
STOP_ACTIVITIES = ("vehicle_stops",)
START_ACTIVITIES = ("vehicle_starts",)
LINK_MIN_IOU = 0.5
"""Least box IoU between a stop's last box and a start's first box to call them one
vehicle (the MEVA development clips: linked pairs 0.52 to 1.0, the best unlinked 0.11)."""
PERSON_CLASSES = ("person", "pedestrian")
"""Classes (types file, case-insensitive) whose boxes give observed person heights."""
MIN_HEIGHT_BOXES = 30
"""Boxes a person track needs for its median height to count (1 s at 30 fps): the MEVA
clips' shorter person tracks are partly hidden people, 0.7 to 0.8 m tall."""
BLOCK_BYTES = 16 << 20
GEOM_COLUMNS = ("_row", "track_id", "frame", "x1", "y1", "x2", "y2")

_NUM = r"[-+0-9.eE]+"
_FLOW_GEOM = r"^\s*-\s*\{\s*geom\s*:"
_BLOCK_GEOM = re.compile(rb"^\s*-\s*geom\s*:\s*$", re.MULTILINE)
_ID1 = r"\bid1\s*:\s*['\"]?([^,}\s'\"]+)"
_TS0 = r"\bts0\s*:\s*['\"]?([^,}\s'\"]+)"
_G0 = (rf"\bg0\s*:\s*['\"]?(?P<x1>{_NUM})\s+(?P<y1>{_NUM})\s+(?P<x2>{_NUM})"
       rf"\s+(?P<y2>{_NUM})")


# ---------------------------------------------------------------------------- small files
def _load_yaml_records(path: Path, what: str) -> list[dict[str, Any]]:
    """A KPF file as its list of one-key records (small files only: types, activities)."""
    text = read_text(path, f"the KPF {what} file")
    try:
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise UserError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', exc)}); "
                        f"is it a KPF {what} file?") from exc
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise UserError(f"{path}: a KPF {what} file is a YAML list of records such as "
                        "`- { meta: ... }`")
    return data


def _best_label(scores: Any) -> str | None:
    """The highest-scoring key of {label: probability} (or a bare label)."""
    if isinstance(scores, str):
        return scores
    if isinstance(scores, dict) and scores:
        return str(max(scores, key=lambda k: float(scores[k] or 0)))
    return None


def read_types(path: Path) -> dict[str, str]:
    """`*.types.yml` → {track id: class} (the most probable class of `cset3`)."""
    out: dict[str, str] = {}
    for n, rec in enumerate(_load_yaml_records(path, "types"), start=1):
        body = rec.get("types")
        if not isinstance(body, dict):
            continue
        label = _best_label(body.get("cset3"))
        if "id1" not in body or label is None:
            raise UserError(f"{path}: record {n} needs id1 and cset3 {{class: p}}")
        out[str(body["id1"])] = label
    return out


@dataclass(frozen=True)
class ActorSpan:
    """One actor of an activity and the frames it takes part in (inclusive)."""

    track_id: str
    start: int
    end: int


@dataclass(frozen=True)
class Activity:
    """One activity instance: its name (most probable `act2`), frames (inclusive) and
    actors."""

    name: str
    activity_id: str
    start: int
    end: int
    actors: tuple[ActorSpan, ...]


def _span(raw: Any, where: str) -> tuple[int, int] | None:
    """[{tsr0: [f0, f1]}, ...] → (min f0, max f1); None when absent."""
    if raw is None:
        return None
    try:
        pairs = [(int(s["tsr0"][0]), int(s["tsr0"][1])) for s in raw]
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UserError(f"{where}: timespan must be [{{tsr0: [first_frame, last_frame]}}]"
                        ) from exc
    if not pairs:
        return None
    start, end = min(p[0] for p in pairs), max(p[1] for p in pairs)
    if end < start:
        raise UserError(f"{where}: timespan ends (frame {end}) before it starts ({start})")
    return start, end


def read_activities(path: Path) -> list[Activity]:
    """`*.activities.yml` → activities; an actor without a timespan takes the activity's."""
    out: list[Activity] = []
    for n, rec in enumerate(_load_yaml_records(path, "activities"), start=1):
        body = rec.get("act")
        if not isinstance(body, dict):
            continue
        where = f"{path}: record {n}"
        name = _best_label(body.get("act2"))
        span = _span(body.get("timespan"), where)
        if name is None or span is None:
            raise UserError(f"{where}: an activity needs act2 {{name: p}} and a timespan")
        actors = []
        for a in body.get("actors") or []:
            if not isinstance(a, dict) or "id1" not in a:
                raise UserError(f"{where}: each actor needs id1")
            own = _span(a.get("timespan"), where) or span
            actors.append(ActorSpan(str(a["id1"]), own[0], own[1]))
        out.append(Activity(name, str(body.get("id2", n)), span[0], span[1], tuple(actors)))
    return out


# ---------------------------------------------------------------------------- geom
def _line_blocks(path: Path, block_bytes: int) -> Iterator[tuple[int, bytes]]:
    """(1-based number of the block's first line, block of whole lines)."""
    line_no = 1
    with open_binary(path) as fh:
        for block in line_blocks(fh, block_bytes):
            yield line_no, block
            line_no += block.count(b"\n")


def _decode(block: bytes, path: Path) -> str:
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text near byte {exc.start}; is it a KPF geom "
                        "file?") from exc


def parse_geom_lines(text: str, first_line: int = 1) -> pl.DataFrame:
    """Flow-style geom lines → (_row = line number, track_id, frame, x1, y1, x2, y2), all
    strings as written (null where a field is missing); other records are skipped."""
    lines = pl.DataFrame({"line": text.splitlines()}, schema={"line": pl.String})
    lines = lines.with_row_index("_row", offset=first_line).filter(
        pl.col("line").str.contains(_FLOW_GEOM))
    line = pl.col("line")
    return lines.select(
        pl.col("_row").cast(pl.Int64),
        line.str.extract(_ID1, 1).alias("track_id"),
        line.str.extract(_TS0, 1).alias("frame"),
        line.str.extract_groups(_G0).alias("g"),
    ).unnest("g")


def _yaml_geom(path: Path) -> pl.DataFrame:
    """Block-style geom (rare; slow): the whole file through the YAML parser."""
    rows: dict[str, list[Any]] = {c: [] for c in GEOM_COLUMNS}
    for n, rec in enumerate(_load_yaml_records(path, "geom"), start=1):
        body = rec.get("geom")
        if not isinstance(body, dict):
            continue
        box = str(body.get("g0", "")).split()
        rows["_row"].append(n)
        rows["track_id"].append(None if body.get("id1") is None else str(body["id1"]))
        rows["frame"].append(None if body.get("ts0") is None else str(body["ts0"]))
        for i, c in enumerate(("x1", "y1", "x2", "y2")):
            rows[c].append(box[i] if len(box) == 4 else None)
    return pl.DataFrame(rows, schema={c: pl.Int64 if c == "_row" else pl.String
                                      for c in GEOM_COLUMNS})


def geom_chunks(path: Path, block_bytes: int = BLOCK_BYTES) -> Iterator[tuple[pl.DataFrame,
                                                                           int]]:
    """(chunk of geom records, bytes of the file it covers); see parse_geom_lines. `_row` is
    the record's line (block style: its record number)."""
    with open_binary(path) as fh:
        head = fh.read(1 << 16)
    if _BLOCK_GEOM.search(head):
        yield _yaml_geom(path), path.stat().st_size
        return
    for line_no, block in _line_blocks(path, block_bytes):
        yield parse_geom_lines(_decode(block, path), line_no), len(block)


def numeric_boxes(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast a geom chunk's box columns to floats and add `frame_no` (Int64; null where
    the frame is not an integer); unparseable → null."""
    f = pl.col("frame").cast(pl.Float64, strict=False)
    return frame.with_columns(
        pl.when(f == f.floor()).then(f.cast(pl.Int64, strict=False)).alias("frame_no"),
        *[pl.col(c).cast(pl.Float64, strict=False) for c in ("x1", "y1", "x2", "y2")])


@dataclass
class GeomScan:
    """What one pass over a geom file tells: its first frame and, for the tracks asked
    for, every box."""

    first_frame: int | None = None
    records: int = 0
    boxes: dict[str, pl.DataFrame] = field(default_factory=dict)
    track_ids: set[str] = field(default_factory=set)

    def box_near(self, track_id: str, frame: int) -> tuple[float, float, float, float] | None:
        """The track's box at the frame nearest `frame` (None: no box of that track)."""
        rows = self.boxes.get(track_id)
        if rows is None or rows.is_empty():
            return None
        best = rows.with_columns((pl.col("frame") - frame).abs().alias("_d")).sort(
            "_d", "frame").row(0, named=True)
        return (best["x1"], best["y1"], best["x2"], best["y2"])


def scan_geom(path: Path, tracks: Iterable[str] = (),
              block_bytes: int = BLOCK_BYTES) -> GeomScan:
    """One pass: the smallest frame, all track ids and the boxes of `tracks`."""
    wanted = sorted(set(tracks))
    scan = GeomScan()
    parts: list[pl.DataFrame] = []
    for chunk, _ in geom_chunks(path, block_bytes):
        num = numeric_boxes(chunk).drop("frame").rename({"frame_no": "frame"})
        scan.records += num.height
        low = num["frame"].min()
        if isinstance(low, int) and (scan.first_frame is None or low < scan.first_frame):
            scan.first_frame = low
        scan.track_ids.update(num["track_id"].drop_nulls().unique().to_list())
        if wanted:
            parts.append(num.filter(pl.col("track_id").is_in(wanted)))
    if parts:
        allrows = pl.concat(parts).drop_nulls()
        for (tid,), rows in allrows.group_by("track_id"):
            scan.boxes[str(tid)] = rows
    return scan


# ---------------------------------------------------------------------------- track links
def box_iou(a: tuple[float, float, float, float] | None,
            b: tuple[float, float, float, float] | None) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes (0 if either is missing)."""
    if a is None or b is None:
        return 0.0
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class TrackLink:
    """A stop activity and the start activity that ends it (same vehicle)."""

    stop: Activity
    start: Activity
    iou: float

    @property
    def stop_track(self) -> str:
        return self.stop.actors[0].track_id if self.stop.actors else ""

    @property
    def start_track(self) -> str:
        return self.start.actors[0].track_id if self.start.actors else ""


def link_tracks_wanted(activities: Iterable[Activity], stop_names: Iterable[str],
                       start_names: Iterable[str]) -> set[str]:
    """Track ids whose boxes `track_links` needs."""
    names = set(stop_names) | set(start_names)
    return {a.actors[0].track_id for a in activities if a.name in names and a.actors}


def track_links(activities: Iterable[Activity], scan: GeomScan,
                stop_names: Iterable[str] = STOP_ACTIVITIES,
                start_names: Iterable[str] = START_ACTIVITIES,
                min_iou: float = LINK_MIN_IOU) -> list[TrackLink]:
    """Pair each stop with the start that continues it: the start begins after the stop
    ends and the stop's last box overlaps the start's first box by ≥ min_iou; pairs are
    taken best overlap first, each stop and each start at most once."""
    acts = list(activities)
    stops = [a for a in acts if a.name in set(stop_names) and a.actors]
    starts = [a for a in acts if a.name in set(start_names) and a.actors]
    candidates: list[tuple[float, int, int]] = []
    for i, s in enumerate(stops):
        last = scan.box_near(s.actors[0].track_id, s.end)
        for j, g in enumerate(starts):
            if g.start <= s.end:
                continue
            iou = box_iou(last, scan.box_near(g.actors[0].track_id, g.start))
            if iou >= min_iou:
                candidates.append((iou, i, j))
    links: list[TrackLink] = []
    used_stop: set[int] = set()
    used_start: set[int] = set()
    for iou, i, j in sorted(candidates, key=lambda c: (-c[0], stops[c[1]].start,
                                                        starts[c[2]].start)):
        if i in used_stop or j in used_start:
            continue
        used_stop.add(i)
        used_start.add(j)
        links.append(TrackLink(stops[i], starts[j], iou))
    return sorted(links, key=lambda lk: lk.stop.start)


def merge_map(links: Iterable[TrackLink]) -> dict[str, str]:
    """{start track: stop track} for links between two tracks, resolved through chains
    (a vehicle that stops twice keeps its first id)."""
    parent = {lk.start_track: lk.stop_track for lk in links
              if lk.start_track and lk.start_track != lk.stop_track}
    out: dict[str, str] = {}
    for child in parent:
        root, seen = parent[child], {child}
        while root in parent and root not in seen:
            seen.add(root)
            root = parent[root]
        out[child] = root
    return out


# ---------------------------------------------------------------------------- ingest side
@dataclass(frozen=True)
class KpfOptions:
    """Side files and time base of a KPF geom ingest (`secinf ingest --camera/--types/
    --activities/--fps`). None: found beside the geom file or the default."""

    camera: Path | None = None
    types: Path | None = None
    activities: Path | None = None
    fps: float | None = None
    frame0: int | None = None
    """Frame of t = 0 (default: the first frame in the geom file, as the truth import)."""



def clip_stem(path: Path) -> str:
    """`clip.geom.yml` → `clip` (the name the sibling KPF files share)."""
    name = path.name
    for suffix in (".geom.yml", ".geom.yaml", ".activities.yml", ".activities.yaml",
                   ".types.yml", ".types.yaml"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def sibling(path: Path, kind: str) -> Path | None:
    """`clip.<kind>.yml` (or .yaml) beside a KPF file, if it exists."""
    stem = clip_stem(path)
    for ext in ("yml", "yaml"):
        p = path.with_name(f"{stem}.{kind}.{ext}")
        if p.is_file():
            return p
    return None


def find_camera(geom: Path) -> Path:
    """The only `.krtd` beside the geom file (else a UserError asking for --camera)."""
    found = sorted(geom.parent.glob("*.krtd"))
    if len(found) == 1:
        return found[0]
    which = "none" if not found else ", ".join(p.name for p in found)
    raise UserError(f"{geom}: KPF boxes are pixels; pass --camera FILE.krtd (the clip's "
                    f"camera model) to project them to the ground (.krtd beside it: {which})")


@dataclass
class KpfGeomReader:
    """Streams a geom file as canonical rows: box bottom-centre projected to the ground
    (metres), class from the types file, t = (frame - frame0) / fps."""

    path: Path
    options: KpfOptions = field(default_factory=KpfOptions)
    block_bytes: int = BLOCK_BYTES
    camera: Camera | None = None
    classes: dict[str, str] = field(default_factory=dict)
    renames: dict[str, str] = field(default_factory=dict)
    fps: float = KPF_FPS
    frame0: int = 0
    camera_path: Path | None = None
    types_path: Path | None = None
    _heights: list[pl.DataFrame] = field(default_factory=list, repr=False)
    """(track_id, height_m) of every person box read so far (see person_heights)."""

    def open(self) -> KpfGeomReader:
        opts = self.options
        self.camera_path = opts.camera or find_camera(self.path)
        self.camera = read_krtd(self.camera_path)
        self.types_path = opts.types or sibling(self.path, "types")
        self.classes = read_types(self.types_path) if self.types_path else {}
        self.fps = float(opts.fps or KPF_FPS)
        if not (self.fps > 0 and self.fps < 1e6):
            raise UserError(f"--fps {self.fps}: frames per second must be a positive number")
        acts = read_activities(opts.activities) if opts.activities else []
        wanted = link_tracks_wanted(acts, STOP_ACTIVITIES, START_ACTIVITIES)
        scan = scan_geom(self.path, wanted, self.block_bytes)
        if scan.records == 0:
            raise UserError(f"{self.path}: no `- {{ geom: {{id1, ts0, g0}} }}` records; is "
                            "it a KPF geom file?")
        if acts:
            self.renames = merge_map(track_links(acts, scan))
        self.frame0 = opts.frame0 if opts.frame0 is not None else int(scan.first_frame or 0)
        return self

    def chunks(self) -> Iterator[tuple[pl.DataFrame, int]]:
        """(canonical chunk, bytes of the file it covers). `frame` stays as written (so
        validation reports a bad one); t, x, y and class are computed. Person boxes'
        heights are collected on the way (person_heights)."""
        assert self.camera is not None, "open() first"
        centre = (pl.col("x1") + pl.col("x2")) / 2
        x, y = self.camera.ground_exprs(centre, pl.col("y2"))
        height = self.camera.height_expr(centre, pl.col("y1"), pl.col("y2"))
        tid = pl.col("track_id")
        people = sorted(t for t, c in self.classes.items() if c.lower() in PERSON_CLASSES)
        self._heights = []
        for chunk, size in geom_chunks(self.path, self.block_bytes):
            boxes = numeric_boxes(chunk)
            if people:
                self._heights.append(boxes.filter(tid.is_in(people)).select(
                    tid, height.alias("height_m")).drop_nulls().filter(
                    pl.col("height_m").is_finite()))
            yield boxes.select(
                pl.col("_row"),
                (tid.replace(self.renames) if self.renames else tid).alias("track_id"),
                pl.col("frame"),
                ((pl.col("frame_no") - self.frame0) / self.fps).alias("t"),
                x.alias("x"), y.alias("y"),
                tid.replace_strict(self.classes, default=None, return_dtype=pl.String)
                .alias("class"),
                pl.lit(None, dtype=pl.Float64).alias("confidence"),
            ), size

    def person_heights(self, min_boxes: int = MIN_HEIGHT_BOXES) -> dict[str, float]:
        """{person track id: median height of its boxes in metres} over what chunks() has
        read: tracks whose class in the types file is a person, with at least `min_boxes`
        boxes that give a height (empty without a types file)."""
        if not self._heights:
            return {}
        per_track = pl.concat(self._heights).group_by("track_id").agg(
            pl.col("height_m").median(), pl.len().alias("boxes"))
        return {str(t): float(h) for t, h, n in per_track.iter_rows() if n >= min_boxes}


__all__ = ["KPF_FPS", "MIN_HEIGHT_BOXES", "PERSON_CLASSES", "Activity", "ActorSpan",
           "GeomScan", "KpfGeomReader", "KpfOptions", "TrackLink", "box_iou", "clip_stem",
           "find_camera", "geom_chunks", "merge_map", "parse_geom_lines", "read_activities",
           "read_types", "scan_geom", "sibling", "track_links"]
