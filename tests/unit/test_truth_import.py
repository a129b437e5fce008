"""`secinf truth import`: ETH/UCY groups and KPF activities → truth.json; label maps; the
CLI's atomic write and exit codes; the shipped truth of ../shared/data/labelled, in place."""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MEVA_CLIPS, shared_data
from tests.unit.test_kpf_ingest import foot_box, geom_line
from workers.cli.main import main
from workers.errors import UserError
from workers.evaluate.truth import parse_truth
from workers.evaluate.truth_import import (
    MEVA_MAP,
    eth_groups_truth,
    import_eth_groups,
    import_kpf,
    kpf_truth,
    load_label_map,
    parse_label_map,
    write_truth,
)
from workers.ingest import kpf as kpf_format

TOL = 1e-3


def same_events(mine: list[dict[str, Any]], shipped: list[dict[str, Any]]) -> None:
    """Equal as sets of (type, actors, start, end), times within TOL."""
    def spans(events: list[dict[str, Any]]) -> dict[tuple[Any, ...], list[tuple[float, float]]]:
        out: dict[tuple[Any, ...], list[tuple[float, float]]] = defaultdict(list)
        for e in events:
            out[(e["type"], tuple(sorted(e["actors"].items())))].append((e["start"], e["end"]))
        return {k: sorted(v) for k, v in out.items()}
    a, b = spans(mine), spans(shipped)
    assert set(a) == set(b), (sorted(set(a) - set(b))[:5], sorted(set(b) - set(a))[:5])
    for key in a:
        assert len(a[key]) == len(b[key]), key
        for (s1, e1), (s2, e2) in zip(a[key], b[key], strict=True):
            assert abs(s1 - s2) <= TOL and abs(e1 - e2) <= TOL, (key, (s1, e1), (s2, e2))


def rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 3)
    if isinstance(value, list):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


# ---------------------------------------------------------------------------- ETH/UCY
def write_eth(folder: Path) -> Path:
    """obsmat rows every 10 frames (25 fps numbering, 2.5 Hz) from frame 1."""
    spans = {1: (1, 101), 2: (21, 81), 3: (91, 121), 9: (1, 61), 10: (1, 81)}
    rows = [(f, pid) for pid, (a, b) in spans.items() for f in range(a, b + 1, 10)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "obsmat.txt").write_text("".join(
        f"   {f:.7e}   {p:.7e}   1.0e+00   0.0e+00   2.0e+00   0 0 0\n" for f, p in sorted(rows)))
    (folder / "groups.txt").write_text(" 2 1\n1 3\n\n 10 9\n1 99\n")
    return folder


def test_eth_groups_pairs_span_the_common_time(tmp_path: Path) -> None:
    write_eth(tmp_path / "plaza" / "raw")
    imp = eth_groups_truth([tmp_path / "plaza"])
    assert imp.time_base.as_dict() == {"fps": 25.0, "frame0": 1}
    assert imp.truth["source"] == "plaza" and imp.truth["time_origin"] == "2026-01-01T00:00:00Z"
    assert imp.truth["events"] == [
        {"type": "accompany", "actors": {"a": "9", "b": "10"}, "start": 0.0, "end": 2.4,
         "attributes": {"group": ["10", "9"]}},
        {"type": "accompany", "actors": {"a": "1", "b": "2"}, "start": 0.8, "end": 3.2,
         "attributes": {"group": ["2", "1"]}},
    ]
    assert any("< 2 s dropped" in n for n in imp.notes)  # 1 and 3 overlap 0.4 s
    assert any("not in obsmat.txt" in n and "99" in n for n in imp.notes)
    parse_truth(imp.truth)


def test_eth_groups_options_and_files(tmp_path: Path) -> None:
    raw = write_eth(tmp_path / "s")
    doc = import_eth_groups([raw / "groups.txt", raw / "obsmat.txt"], source="x",
                            min_duration_s=0.0, fps=10.0)
    assert doc["source"] == "x" and len(doc["events"]) == 3
    pair = next(e for e in doc["events"] if e["actors"] == {"a": "1", "b": "3"})
    assert (pair["start"], pair["end"]) == (9.0, 10.0)  # (91 - 1) / 10, (101 - 1) / 10
    with pytest.raises(UserError, match=r"obsmat\.txt and groups\.txt"):
        import_eth_groups(tmp_path)
    (raw / "obsmat.txt").write_text("1 2 3\nnot numbers\n")
    with pytest.raises(UserError, match=r"obsmat.txt:2: expected 'frame ped_id"):
        import_eth_groups(raw)


# ---------------------------------------------------------------------------- KPF
def write_kpf(folder: Path) -> Path:
    """Persons 9, 10, 11 talk (9 and 10 also embrace); vehicle 21 stops, 22 starts there;
    vehicle 23 stops elsewhere; 24 starts at another place; 30 (a vehicle) in a talk."""
    folder.mkdir(parents=True, exist_ok=True)
    geom = [geom_line(9, f, foot_box(0, 0)) for f in range(100, 131)]
    geom += [geom_line(21, f, foot_box(5, 5)) for f in range(200, 211)]
    geom += [geom_line(22, f, foot_box(5 - (f - 215) * 0.05, 5)) for f in range(215, 231)]
    geom += [geom_line(23, f, foot_box(-5, 5)) for f in range(300, 311)]
    geom += [geom_line(24, f, foot_box(9, -9)) for f in range(400, 411)]
    (folder / "c.geom.yml").write_text('- { meta: "c" }\n' + "".join(geom))
    types = {9: "person", 10: "person", 11: "person", 21: "vehicle", 22: "vehicle",
             23: "vehicle", 24: "vehicle", 30: "vehicle"}
    (folder / "c.types.yml").write_text("".join(
        f"- {{ types: {{ id1: {k}, cset3: {{ {v}: 1.0 }} }} }}\n" for k, v in types.items()))

    def act(name: str, span: tuple[int, int], *actors: tuple[int, int, int]) -> str:
        who = ", ".join(f"{{id1: {a}, timespan: [{{tsr0: [{s}, {e}]}}]}}" for a, s, e in actors)
        return (f"- {{ act: {{ act2: {{{name}: 1.0}}, id2: 7, timespan: [{{tsr0: [{span[0]}, "
                f"{span[1]}]}}], src_status: test, actors: [{who}] }} }}\n")
    (folder / "c.activities.yml").write_text(
        '- { meta: "c" }\n'
        + act("person_talks_to_person", (100, 130), (9, 100, 130), (10, 100, 124),
              (11, 110, 120), (30, 100, 130))
        + act("person_embraces_person", (120, 160), (9, 120, 160), (10, 120, 160))
        + act("vehicle_stops", (200, 210), (21, 200, 210))
        + act("vehicle_starts", (215, 230), (22, 215, 230))
        + act("vehicle_stops", (300, 310), (23, 300, 310))
        + act("vehicle_starts", (400, 410), (24, 400, 410))
        + act("vehicle_turns_left", (400, 410), (24, 400, 410)))
    return folder


def test_kpf_meets_and_stops_with_the_meva_map(tmp_path: Path) -> None:
    imp = kpf_truth([write_kpf(tmp_path / "clip")])
    assert imp.time_base.as_dict() == {"fps": 30.0, "frame0": 100}
    s = imp.time_base.seconds
    events = {(e["type"], tuple(e["actors"].values())): e for e in imp.truth["events"]}
    assert set(events) == {("meet", ("9", "10")), ("meet", ("9", "11")),
                           ("meet", ("10", "11")), ("stop", ("21",)), ("stop", ("23",)),
                           ("stop", ("24",))}
    both = events[("meet", ("9", "10"))]  # talk [100, 124] and embrace [120, 160] merged
    assert (both["start"], both["end"]) == (0.0, s(160))
    assert both["attributes"] == {"activities": ["person_talks_to_person",
                                                 "person_embraces_person"], "group_size": 3}
    assert (events[("meet", ("10", "11"))]["start"], events[("meet", ("10", "11"))]["end"]) \
        == (s(110), s(120))
    linked = events[("stop", ("21",))]
    assert (linked["start"], linked["end"]) == (s(200), s(215))
    assert linked["attributes"] == {
        "paired": True, "activities": ["vehicle_stops", "vehicle_starts"],
        "merged_track": "22", "link_iou": 1.0, "stopping": [s(200), s(210)],
        "starting": [s(215), s(230)]}
    assert events[("stop", ("23",))]["attributes"] == {"activities": ["vehicle_stops"],
                                                      "paired": False}
    alone = events[("stop", ("24",))]
    assert (alone["start"], alone["end"]) == (s(400), s(410))
    assert any("vehicle_turns_left 1" in n for n in imp.notes)
    assert imp.truth["source"] == "c"
    parse_truth(imp.truth)


def test_kpf_with_a_custom_map(tmp_path: Path) -> None:
    clip = write_kpf(tmp_path / "clip")
    custom = tmp_path / "map.yaml"
    custom.write_text("fps: 10\nevents:\n"
                      "  - {type: talk, kind: actors, activities: [person_talks_to_person], "
                      "actor_class: person, role: speaker, min_duration_s: 1.5}\n")
    doc = import_kpf(clip, custom, source="s", time_origin="2026-02-01T01:00:00+01:00")
    assert doc["time_origin"] == "2026-02-01T00:00:00Z"
    assert [(e["type"], e["actors"], e["start"], e["end"]) for e in doc["events"]] == [
        ("talk", {"speaker": "9"}, 0.0, 3.0), ("talk", {"speaker": "10"}, 0.0, 2.4)]


@pytest.mark.parametrize(("text", "message"), [
    ("events: []", "a label map has `events:`"),
    ("events: [{type: meet, kind: triples, activities: [a]}]", "kind: one of pairs"),
    ("events: [{type: meet, kind: pairs, activities: [a], colour: red}]", "unknown key"),
    ("events: [{type: meet, kind: pairs, activities: [a], role: x}]",
     "unknown key.*role for kind pairs"),
    ("events: [{type: meet, kind: pairs, activities: []}]", "list of activity names"),
    ("events: [{type: a, kind: pairs, activities: [x]}, {type: b, kind: actors, "
     "activities: [x]}]", "mapped twice"),
    ("fps: -3\nevents: [{type: a, kind: pairs, activities: [x]}]", "fps: a number"),
    ("events: [{type: stop, kind: stop_start, stop_activities: [s], start_activities: [g], "
     "min_link_iou: 2}]", "min_link_iou: a number in"),
])
def test_label_map_errors_name_the_key(text: str, message: str) -> None:
    import yaml

    with pytest.raises(UserError, match=message):
        parse_label_map(yaml.safe_load(text), "m.yaml")


def test_the_meva_default_map_matches_the_reader_defaults() -> None:
    meva = load_label_map()
    assert meva.path == str(MEVA_MAP) and meva.fps == kpf_format.KPF_FPS
    stop = next(r for r in meva.rules if r.kind == "stop_start")
    assert stop.stop_activities == kpf_format.STOP_ACTIVITIES
    assert stop.start_activities == kpf_format.START_ACTIVITIES
    assert stop.min_link_iou == kpf_format.LINK_MIN_IOU  # what ingest --activities merges


def test_kpf_needs_its_files(tmp_path: Path) -> None:
    clip = write_kpf(tmp_path / "clip")
    (clip / "c.types.yml").unlink()
    with pytest.raises(UserError, match=r"give the clip's \*.types.yml"):
        import_kpf(clip)
    no_classes = parse_label_map({"events": [{"type": "m", "kind": "pairs",
                                              "activities": ["x"]}]}, "m")
    (clip / "c.geom.yml").unlink()
    with pytest.raises(UserError, match=r"\*.geom.yml too \(its first frame is t = 0"):
        import_kpf([clip / "c.activities.yml"], no_classes)
    with pytest.raises(UserError, match=r"no \*\.activities\.yml"):
        import_kpf(tmp_path)


# ---------------------------------------------------------------------------- writing, CLI
def test_write_is_atomic(tmp_path: Path) -> None:
    out = tmp_path / "truth.json"
    out.write_text("old")
    with pytest.raises(TypeError):
        write_truth({"events": [{"bad": {1, 2}}]}, out)
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["truth.json"]
    with pytest.raises(UserError, match="does not exist"):
        write_truth({"events": []}, tmp_path / "no" / "t.json")
    write_truth({"source": "s", "events": []}, out)
    assert json.loads(out.read_text()) == {"source": "s", "events": []}


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str],
            monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["secinf", "truth", "import", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_writes_truth_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    clip = write_kpf(tmp_path / "clip")
    out = tmp_path / "truth.json"
    code, stdout, _ = run_cli([str(clip), "--out", str(out), "--json"], capsys, monkeypatch)
    assert code == 0
    summary = json.loads(stdout)
    assert summary["format"] == "kpf" and summary["events"] == {"meet": 3, "stop": 3}
    assert summary["time_base"] == {"fps": 30.0, "frame0": 100}
    assert len(json.loads(out.read_text())["events"]) == 6
    code, stdout, err = run_cli([str(write_eth(tmp_path / "eth")), "-o", str(out)], capsys,
                                monkeypatch)
    assert code == 0 and "2 accompany" in " ".join(stdout.split()) and "note:" in err


@pytest.mark.parametrize("args", [
    ["{eth}", "--map", "m.yaml"],
    ["{eth}", "--format", "kpf"],
    ["{eth}", "--format", "csv"],
    ["{kpf}", "--min-duration", "3"],
    ["{kpf}", "--map", "{tmp}/missing.yaml"],
    ["{tmp}/nothing-here"],
    ["{eth}", "--time-origin", "yesterday"],
    ["{eth}", "--fps", "0"],
])
def test_cli_bad_input_exits_2_and_leaves_out_alone(
        args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    eth, clip = write_eth(tmp_path / "eth"), write_kpf(tmp_path / "clip")
    out = tmp_path / "out" / "truth.json"
    out.parent.mkdir()
    out.write_text("previous")
    filled = [a.format(eth=eth, kpf=clip, tmp=tmp_path) for a in args]
    code, _, err = run_cli([*filled, "--out", str(out)], capsys, monkeypatch)
    assert code == 2, err
    assert "error:" in err and "Traceback" not in err
    assert out.read_text() == "previous" and len(list(out.parent.iterdir())) == 1


# ---------------------------------------------------------------------------- shipped truth
@pytest.mark.shared_data
@pytest.mark.parametrize("scene", ["hotel", "zara01", "zara02"])
def test_eth_groups_reproduce_the_shipped_truth(scene: str) -> None:
    folder = shared_data("labelled", "groups", scene)
    shipped = json.loads((folder / "truth.json").read_text())
    mine = import_eth_groups(folder / "raw")
    assert (mine["source"], mine["time_origin"]) == (shipped["source"],
                                                     shipped["time_origin"])
    same_events(mine["events"], shipped["events"])
    assert [rounded(e) for e in mine["events"]] == [rounded(e) for e in shipped["events"]]


@pytest.mark.shared_data
@pytest.mark.parametrize("scene", ["hotel", "zara01", "zara02"])
def test_eth_time_base_is_the_shipped_tracks(scene: str) -> None:
    folder = shared_data("labelled", "groups", scene)
    base = eth_groups_truth([folder / "raw"]).time_base
    lines = (folder / "tracks.csv").read_text().splitlines()[1:200]
    for line in lines:
        _, frame, t, *_ = line.split(",")
        assert abs(base.seconds(int(frame)) - float(t)) <= TOL


@pytest.mark.shared_data
@pytest.mark.parametrize("clip", MEVA_CLIPS)
def test_kpf_reproduces_the_shipped_meva_truth(clip: str) -> None:
    folder = shared_data("labelled", "meva", clip)
    shipped = json.loads((folder / "truth.json").read_text())
    conversion = json.loads((folder / "conversion.json").read_text())
    imp = kpf_truth([folder / "raw"])
    assert imp.time_base.frame0 == conversion["frame0"]
    mine = imp.truth
    assert (mine["source"], mine["time_origin"]) == (shipped["source"],
                                                     shipped["time_origin"])
    same_events(mine["events"], shipped["events"])
    assert [rounded(e) for e in mine["events"]] == [rounded(e) for e in shipped["events"]]
    counts: dict[str, int] = {}
    for e in mine["events"]:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    assert counts == conversion["events"]
