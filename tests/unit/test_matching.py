"""Matching candidates to truth: type, actors by role (symmetric a/b), IoU, attributes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.evaluate.matching import Event, match_events, temporal_iou
from workers.evaluate.truth import TruthError, load_truth, parse_truth


def ev(t: str, actors: dict[str, str], s: float, e: float, **attrs: str) -> Event:
    return Event(t, actors, s, e, dict(attrs))


def test_temporal_iou() -> None:
    assert temporal_iou(0, 10, 0, 10) == 1.0
    assert temporal_iou(0, 10, 5, 15) == pytest.approx(5 / 15)
    assert temporal_iou(0, 1, 2, 3) == 0.0
    assert temporal_iou(1, 1, 1, 1) == 1.0


def test_symmetric_types_match_either_order_directed_do_not() -> None:
    truth = [ev("meet", {"a": "1", "b": "2"}, 0, 10), ev("follow", {"leader": "1",
                                                                   "follower": "2"}, 0, 10)]
    cands = [ev("meet", {"a": "2", "b": "1"}, 1, 10), ev("follow", {"leader": "2",
                                                                   "follower": "1"}, 0, 10)]
    res = match_events(truth, cands)
    assert res.per_type["meet"].tp == 1
    assert (res.per_type["follow"].tp, res.per_type["follow"].fp,
            res.per_type["follow"].fn) == (0, 1, 1)


def test_iou_threshold_and_attributes() -> None:
    truth = [ev("enter", {"actor": "5"}, 9.5, 10.5, zone="kiosk"),
             ev("choose_route", {"actor": "7"}, 20, 23, zone="fork", route="fork-east")]
    cands = [ev("enter", {"actor": "5"}, 9.9, 10.9, zone="kiosk"),      # IoU 0.6/1.4 < 0.5
             ev("choose_route", {"actor": "7"}, 20, 23, zone="fork", route="fork-north")]
    res = match_events(truth, cands)
    assert res.overall.tp == 0 and res.overall.fp == 2 and res.overall.fn == 2
    res = match_events(truth, cands, min_iou=0.4)
    assert res.per_type["enter"].tp == 1 and res.per_type["choose_route"].tp == 0


def test_one_to_one_greedy_by_iou_and_rates() -> None:
    truth = [ev("stop", {"actor": "1"}, 0, 10), ev("stop", {"actor": "1"}, 20, 30)]
    cands = [ev("stop", {"actor": "1"}, 0, 9), ev("stop", {"actor": "1"}, 0, 10),
             ev("stop", {"actor": "1"}, 21, 30)]
    res = match_events(truth, cands, types=["stop", "meet"])
    assert [(i, j) for i, j, _ in res.pairs] == [(0, 1), (1, 2)]
    s = res.per_type["stop"]
    assert (s.tp, s.fp, s.fn) == (2, 1, 0)
    assert s.precision == pytest.approx(2 / 3) and s.recall == 1.0
    assert s.f1 == pytest.approx(0.8)
    assert res.per_type["meet"].f1 == 1.0  # nothing to find, nothing found
    assert res.as_dict()["overall"]["tp"] == 2


def test_truth_file_parsing(tmp_path: Path) -> None:
    good = {"source": "s", "time_origin": "2026-01-01T00:00:00Z", "events": [
        {"type": "meet", "actors": {"a": 1, "b": "2"}, "start": 1, "end": 2.5,
         "attributes": {}}]}
    t = parse_truth(good)
    assert t.events[0].actors == {"a": "1", "b": "2"} and t.events[0].end == 2.5
    with pytest.raises(TruthError, match=r"events\[0\]: start 3.0 / end 2.0"):
        parse_truth({"events": [{"type": "x", "actors": {}, "start": 3, "end": 2}]})
    with pytest.raises(TruthError, match="`events` list"):
        parse_truth([])
    p = tmp_path / "truth.json"
    p.write_text("{\n  bad", encoding="utf-8")
    with pytest.raises(TruthError, match=r"truth.json:2: not valid JSON"):
        load_truth(p)
    p.write_text(json.dumps(good), encoding="utf-8")
    assert load_truth(p).source == "s"
