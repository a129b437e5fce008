"""KPF geom boxes in: the KRTD camera model, the fast geom parser, the reader (ground
projection, classes, stop/start track merge) and MEVA's shipped tracks.csv, in place."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import MEVA_CLIPS, shared_data
from workers.errors import UserError
from workers.ingest.formats import detect_format, open_tracks
from workers.ingest.kpf import (
    KpfOptions,
    geom_chunks,
    parse_geom_lines,
    read_activities,
    read_types,
)
from workers.ingest.krtd import parse_krtd, read_krtd
from workers.ingest.load import observed_heights
from workers.ingest.schema import FORMATS

# A camera 10 m above the origin looking straight down: ground (x, y) ↔ pixel
# (960 + 100·x, 540 - 100·y).
DOWN = "1000 0 960\n0 1000 540\n0 0 1\n\n1 0 0\n0 -1 0\n0 0 -1\n\n0 0 10\n\n0 0 0 0 0\n"
# 10 m up, looking horizontally along +y: the upper half of the image is sky.
LEVEL = "1000 0 960\n0 1000 540\n0 0 1\n\n1 0 0\n0 0 -1\n0 1 0\n\n0 10 0\n\n0.1 0 0 0 0\n"


def pixel(x: float, y: float) -> tuple[float, float]:
    return 960 + 100 * x, 540 - 100 * y


def geom_line(track: int, frame: int, box: tuple[float, ...],
              extra: str = ", keyframe: true") -> str:
    g = " ".join(f"{v:g}" for v in box)
    return (f"- {{ geom: {{id1: {track}, id0: {frame}, ts0: {frame}, ts1: {frame / 30:.2f}, "
            f"g0: {g}{extra} }} }}\n")


def foot_box(x: float, y: float, w: float = 20, h: float = 60) -> tuple[float, ...]:
    u, v = pixel(x, y)
    return (u - w / 2, v - h, u + w / 2, v)


def write_clip(folder: Path, *, camera: str = DOWN) -> Path:
    """A tiny clip: vehicle 21 stops at (1, 2) and vehicle 22 starts there; person 5."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = ['- { meta: "clip" }\n', '- { meta: { team: "test" } }\n']
    for f in range(100, 111):
        lines.append(geom_line(21, f, foot_box(1.0 + (110 - f) * 0.1, 2.0)))
    for f in range(115, 121):
        lines.append(geom_line(22, f, foot_box(1.0 - (f - 115) * 0.1, 2.0), extra=""))
    for f in range(100, 106):
        lines.append(geom_line(5, f, foot_box(-3.0, 4.0, w=10, h=40)))
    (folder / "clip.geom.yml").write_text("".join(lines))
    (folder / "clip.types.yml").write_text(
        "- { meta: clip }\n"
        "- { types: { id1: 21, cset3: { vehicle: 1.0 } } }\n"
        "- { types: { id1: 22, cset3: { vehicle: 0.9, person: 0.1 } } }\n"
        "- { types: { id1: 5, cset3: { person: 1.0 } } }\n")
    (folder / "clip.activities.yml").write_text(
        "- { act: { act2: {vehicle_stops: 1.0}, id2: 1, timespan: [{tsr0: [100, 110]}], "
        "actors: [{id1: 21, timespan: [{tsr0: [100, 110]}]}] } }\n"
        "- { act: { act2: {vehicle_starts: 1.0}, id2: 2, timespan: [{tsr0: [115, 120]}], "
        "actors: [{id1: 22, timespan: [{tsr0: [115, 120]}]}] } }\n")
    (folder / "camera.krtd").write_text(camera)
    return folder / "clip.geom.yml"


def read_all(path: Path, **kw: object) -> pl.DataFrame:
    reader = open_tracks(path, **kw)  # type: ignore[arg-type]
    return pl.concat(list(reader.chunks()))


# ---------------------------------------------------------------------------- KRTD
def test_krtd_projects_pixels_to_the_ground_and_back() -> None:
    cam = parse_krtd(DOWN)
    assert cam.centre.tolist() == [0.0, 0.0, 10.0]
    ground = np.array([[1.0, 2.0, 0.0], [-4.5, 0.25, 0.0]])
    pix = cam.project(ground)
    assert pix.tolist() == [[1060.0, 340.0], [510.0, 515.0]]
    back = cam.ground_points(pix[:, 0], pix[:, 1])
    assert np.allclose(back, ground[:, :2])


def test_krtd_rays_above_the_horizon_miss_the_ground() -> None:
    cam = parse_krtd(LEVEL)
    assert cam.distortion == (0.1, 0, 0, 0, 0)
    pts = cam.ground_points(np.array([960.0, 960.0, 960.0]), np.array([640.0, 540.0, 100.0]))
    assert pts[0].tolist() == pytest.approx([0.0, 100.0])  # 10 m down over 100 px at f=1000
    assert math.isnan(pts[1, 0]) and math.isnan(pts[2, 0])


@pytest.mark.parametrize(("text", "message"), [
    ("1 0 0\nfoo\n", "not a number"),
    ("1 0 0\n0 1 0\n0 0 1\n", r"expected K \(3 rows of 3\)"),
    (DOWN.replace("0 -1 0", "0 -2 0"), "R is not a rotation"),
    (DOWN.replace("1000 0 960", "-1000 0 960"), "positive focal lengths"),
])
def test_krtd_errors_name_the_file(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message) as info:
        parse_krtd(text, "cam.krtd")
    assert "cam.krtd" in str(info.value)


def test_krtd_camera_below_ground_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "c.krtd"
    p.write_text(DOWN.replace("0 0 10\n", "0 0 -10\n"))
    with pytest.raises(UserError, match="not above the ground"):
        read_krtd(p)
    with pytest.raises(UserError, match="cannot read the camera model"):
        read_krtd(tmp_path / "none.krtd")


def test_krtd_heights_of_upright_boxes() -> None:
    """The z where the top's ray passes the vertical line through the bottom's ground point:
    exact for a box drawn from a known person (straight down and level cameras)."""
    down, level = parse_krtd(DOWN), parse_krtd(LEVEL)
    for cam, foot in ((down, (0.0, 4.0)), (level, (3.0, 20.0)), (level, (-2.0, 12.0))):
        for height in (1.1, 1.7, 2.05):
            (u, bottom), (u_top, top) = cam.project(
                np.array([[*foot, 0.0], [*foot, height]]))
            if cam is level:
                assert u_top == pytest.approx(u)
            assert cam.object_heights(np.array([u]), np.array([top]),
                                      np.array([bottom]))[0] == pytest.approx(height)
    # Undefined: the bottom above the horizon, the top's ray vertical (the nadir).
    hs = level.object_heights(np.array([960.0, 960.0]), np.array([50.0, 900.0]),
                              np.array([100.0, 1040.0]))
    assert math.isnan(hs[0]) and hs[1] == pytest.approx(10 - 10 * 360 / 500)
    assert math.isnan(down.object_heights(np.array([960.0]), np.array([500.0]),
                                          np.array([540.0]))[0])


# ---------------------------------------------------------------------------- geom parser
def test_geom_lines_any_key_order_and_meta_skipped() -> None:
    text = ('- { meta: "x" }\n'
            "- { geom: {ts0: 7, g0: 1 2.5 3 4e1, id1: 42, occlusion: medium } }\n"
            "- { geom: {id1: 43, ts0: 8 } }\n"
            "\n")
    rows = parse_geom_lines(text, first_line=10).to_dicts()
    assert rows == [
        {"_row": 11, "track_id": "42", "frame": "7", "x1": "1", "y1": "2.5", "x2": "3",
         "y2": "4e1"},
        {"_row": 12, "track_id": "43", "frame": "8", "x1": None, "y1": None, "x2": None,
         "y2": None},
    ]


def test_block_style_geom_falls_back_to_yaml(tmp_path: Path) -> None:
    p = tmp_path / "b.geom.yml"
    p.write_text("- meta: clip\n- geom:\n    id1: 3\n    ts0: 9\n    g0: 10 20 30 40\n")
    (chunk, _), = list(geom_chunks(p))
    assert chunk.select("track_id", "frame", "x1", "y2").row(0) == ("3", "9", "10", "40")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**63 - 1), st.integers(0, 10**6),
                          st.lists(st.integers(-5000, 5000), min_size=4, max_size=4)),
                min_size=1, max_size=30))
def test_geom_parser_round_trips(records: list[tuple[int, int, list[int]]]) -> None:
    text = "".join(geom_line(t, f, tuple(b)) for t, f, b in records)
    got = parse_geom_lines(text).select("track_id", "frame", "x1", "y1", "x2", "y2").rows()
    assert got == [(str(t), str(f), *map(str, b)) for t, f, b in records]


def test_types_and_activities(tmp_path: Path) -> None:
    geom = write_clip(tmp_path)
    assert read_types(geom.with_name("clip.types.yml")) == {"21": "vehicle", "22": "vehicle",
                                                            "5": "person"}
    acts = read_activities(geom.with_name("clip.activities.yml"))
    assert [(a.name, a.start, a.end, [x.track_id for x in a.actors]) for a in acts] == [
        ("vehicle_stops", 100, 110, ["21"]), ("vehicle_starts", 115, 120, ["22"])]
    bad = tmp_path / "bad.activities.yml"
    bad.write_text("- { act: { act2: {x: 1.0}, timespan: [{tsr0: [5, 1]}] } }\n")
    with pytest.raises(UserError, match=r"ends .* before it starts"):
        read_activities(bad)


# ---------------------------------------------------------------------------- the reader
def test_reader_projects_bottom_centres_with_classes_and_time(tmp_path: Path) -> None:
    geom = write_clip(tmp_path)
    assert detect_format(geom) == "kpf" and "kpf" in FORMATS
    reader = open_tracks(geom)  # camera.krtd and clip.types.yml found beside it
    assert reader.format == "kpf" and reader.fps_hint == 30.0 and reader.default_units == "m"
    out = pl.concat(list(reader.chunks()))
    assert out.height == 23 and reader.bytes_read == geom.stat().st_size
    person = out.filter(pl.col("track_id") == "5").sort("frame")
    assert person["x"].to_list() == pytest.approx([-3.0] * 6)
    assert person["y"].to_list() == pytest.approx([4.0] * 6)
    assert person["class"].to_list() == ["person"] * 6
    assert person["t"].to_list() == pytest.approx([0, 1 / 30, 2 / 30, 3 / 30, 4 / 30, 5 / 30])
    assert person["_row"].to_list() == list(range(20, 26))  # the file's line numbers
    assert set(out["track_id"]) == {"5", "21", "22"}  # no --activities: tracks as written


def test_reader_merges_a_start_track_into_its_stop_track(tmp_path: Path) -> None:
    geom = write_clip(tmp_path)
    out = read_all(geom, kpf=KpfOptions(activities=geom.with_name("clip.activities.yml"),
                                        fps=10.0))
    assert set(out["track_id"]) == {"5", "21"}
    v = out.filter(pl.col("track_id") == "21").sort("frame")
    assert v["frame"].to_list() == [*map(str, range(100, 111)), *map(str, range(115, 121))]
    assert v["t"][-1] == pytest.approx(2.0)  # (120 - 100) / 10
    assert v["class"].unique().to_list() == ["vehicle"]


def test_reader_options_and_errors(tmp_path: Path) -> None:
    geom = write_clip(tmp_path)
    (tmp_path / "camera.krtd").rename(tmp_path / "elsewhere.txt")
    with pytest.raises(UserError, match="pass --camera"):
        open_tracks(geom)
    out = read_all(geom, kpf=KpfOptions(camera=tmp_path / "elsewhere.txt", frame0=0))
    assert out.filter(pl.col("frame") == "100")["t"].to_list() == pytest.approx([100 / 30] * 2)
    with pytest.raises(UserError, match="--map applies"):
        open_tracks(geom, mapping={"x": "a"})
    empty = tmp_path / "e.geom.yml"
    empty.write_text('- { meta: "nothing" }\n')
    with pytest.raises(UserError, match=r"no .* records"):
        open_tracks(empty, kpf=KpfOptions(camera=tmp_path / "elsewhere.txt"))


def test_reader_marks_sky_pixels_and_bad_frames_missing(tmp_path: Path) -> None:
    geom = tmp_path / "s.geom.yml"
    geom.write_text(geom_line(1, 0, (950, 100, 970, 200)) + geom_line(1, 1, (950, 600, 970, 700))
                    + "- { geom: {id1: 1, ts0: 2.5, g0: 950 600 970 700 } }\n")
    (tmp_path / "cam.krtd").write_text(LEVEL)
    out = read_all(geom)
    assert out["x"].is_null().to_list() == [True, False, False]
    assert out["frame"].to_list() == ["0", "1", "2.5"]  # validation reports the bad frame
    assert out["t"].is_null().to_list() == [False, False, True]
    assert out["class"].is_null().all()  # no types file beside it


# ---------------------------------------------------------------------------- MEVA in place
@pytest.mark.shared_data
@pytest.mark.parametrize("clip", MEVA_CLIPS)
def test_meva_geom_reproduces_the_shipped_tracks(clip: str) -> None:
    folder = shared_data("labelled", "meva", clip)
    raw = folder / "raw"
    started = time.perf_counter()
    out = read_all(raw / f"{clip}.geom.yml",
                   kpf=KpfOptions(activities=raw / f"{clip}.activities.yml"))
    seconds = time.perf_counter() - started
    shipped = pl.read_csv(folder / "tracks.csv", schema_overrides={"track_id": pl.String})
    mine = out.with_columns(pl.col("frame").cast(pl.Int64))
    joined = shipped.join(mine, on=["track_id", "frame"], how="full", suffix="_m")
    assert out.height == shipped.height
    assert joined["x"].null_count() == 0 and joined["x_m"].null_count() == 0
    for col, tol in (("x", 1e-3), ("y", 1e-3), ("t", 1e-3)):
        assert (joined[col] - joined[f"{col}_m"]).abs().max() <= tol, col  # type: ignore[operator]
    assert (joined["class"] == joined["class_m"]).all()
    assert seconds < 10, f"{clip}: {seconds:.1f} s"


def test_reader_measures_person_heights(tmp_path: Path) -> None:
    """Person tracks' median box heights (vehicles and short tracks left out)."""
    cam = parse_krtd(DOWN)
    lines = []
    for track, height, n in ((7, 1.6, 40), (8, 1.9, 31), (9, 1.0, 29), (21, 1.2, 40)):
        for f in range(n):
            y = 2.0 + 0.05 * f
            (u, bottom), (_, top) = cam.project(np.array([[0.0, y, 0.0], [0.0, y, height]]))
            lines.append(geom_line(track, f, (u - 8, top, u + 8, bottom)))
    geom = tmp_path / "h.geom.yml"
    geom.write_text("".join(lines))
    (tmp_path / "h.types.yml").write_text(
        "- { types: { id1: 7, cset3: { person: 1.0 } } }\n"
        "- { types: { id1: 8, cset3: { Person: 0.8, vehicle: 0.2 } } }\n"
        "- { types: { id1: 9, cset3: { person: 1.0 } } }\n"
        "- { types: { id1: 21, cset3: { vehicle: 1.0 } } }\n")
    (tmp_path / "cam.krtd").write_text(DOWN)
    reader = open_tracks(geom)
    for _ in reader.chunks():
        pass
    kpf = reader.kpf_geom
    assert kpf is not None
    assert kpf.person_heights() == pytest.approx({"7": 1.6, "8": 1.9})  # 9: 29 boxes only
    assert observed_heights(kpf.person_heights()) == {"p10": 1.63, "p50": 1.75, "p90": 1.87,
                                                      "tracks": 2}
    assert observed_heights({}) is None


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", MEVA_CLIPS)
def test_meva_person_heights_match_the_conversion(clip: str) -> None:
    """conversion.json's p10/p50/p90 counted the person tracks that take part in a truth
    event; over those tracks the heights agree within 0.05 m. Over every person track (what
    ingest stores), the median stays under 1.4 m: each clip gets the implausible_height
    warning."""
    folder = shared_data("labelled", "meva", clip)
    raw = folder / "raw"
    reader = open_tracks(raw / f"{clip}.geom.yml",
                         kpf=KpfOptions(activities=raw / f"{clip}.activities.yml"))
    for _ in reader.chunks():
        pass
    assert reader.kpf_geom is not None
    heights = reader.kpf_geom.person_heights()
    conversion = json.loads((folder / "conversion.json").read_text())
    truth = json.loads((folder / "truth.json").read_text())
    actors = {str(a) for e in truth["events"] for a in e["actors"].values()}
    mine = np.percentile([h for t, h in heights.items() if t in actors], [10, 50, 90])
    assert mine == pytest.approx(conversion["person_height_m_p10_p50_p90"], abs=0.05)
    stored = observed_heights(heights)
    assert stored is not None and stored["tracks"] >= 10
    assert abs(stored["p50"] - conversion["person_height_m_p10_p50_p90"][1]) < 0.1
    assert stored["p50"] < 1.4


def test_ingest_command_kpf_options(tmp_path: Path) -> None:
    from workers.cli.ingest_cmd import _kpf_options

    geom = write_clip(tmp_path)
    opts = _kpf_options(geom, None, 25.0, None, None, tmp_path / "a.yml", False)
    assert opts == KpfOptions(activities=tmp_path / "a.yml", fps=25.0)
    assert _kpf_options(tmp_path / "t.csv", None, None, None, None, None, False) is None
    with pytest.raises(UserError, match="--camera applies to KPF geom files"):
        _kpf_options(tmp_path / "t.csv", None, None, tmp_path / "c.krtd", None, None, False)
    with pytest.raises(UserError, match="drop --scale"):
        _kpf_options(geom, None, None, None, None, None, True)
