"""Dataset pieces without a database: semver, splits, drift statistics, and every quality
gate failing on a constructed case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from workers.datasets import card, splits
from workers.datasets.collect import Lifetime, OntologyRef, SourceRef
from workers.datasets.gates import GateConfig, GateInputs, WrittenTable, run_gates
from workers.datasets.schema import EVENTS_SCHEMA, FEATURES_SCHEMA
from workers.datasets.semver import SemVer, next_version
from workers.datasets.stats import ks_statistic, quantile_summary, summarise, total_variation
from workers.datasets.storage import write_parquet
from workers.errors import UserError

# ----------------------------------------------------------------------------- semver


def test_semver_parses_orders_and_bumps() -> None:
    assert SemVer.parse("1.10.0") > SemVer.parse("1.9.3")
    assert str(SemVer.parse("2.0.1").bump("minor")) == "2.1.0"
    assert str(SemVer.parse("2.3.1").bump("major")) == "3.0.0"
    for bad in ("1.0", "01.0.0", "1.0.0-rc1", "v1.0.0", "1.0.0.0"):
        with pytest.raises(UserError, match=r"MAJOR\.MINOR\.PATCH"):
            SemVer.parse(bad)


def test_next_version_minor_by_default_major_when_breaking() -> None:
    assert next_version(None, breaking=False) == "1.0.0"
    assert next_version("1.2.0", breaking=False) == "1.3.0"
    assert next_version("1.2.0", breaking=False, bump="patch") == "1.2.1"
    assert next_version("1.2.0", breaking=True) == "2.0.0"
    assert next_version("1.2.0", breaking=False, requested="1.2.5") == "1.2.5"
    with pytest.raises(UserError, match=r"not newer than the latest published 1\.2\.0"):
        next_version("1.2.0", breaking=False, requested="1.2.0")
    with pytest.raises(UserError, match=r"ontology changed: version 1\.5\.0 must be a major"):
        next_version("1.2.0", breaking=True, requested="1.5.0", why="the ontology changed")


# ----------------------------------------------------------------------------- splits


def test_parse_ratios_refuses_bad_input() -> None:
    assert splits.parse_ratios("0.8,0.1,0.1") == pytest.approx((0.8, 0.1, 0.1))
    for bad, msg in (("0.5,0.5", "three shares"), ("a,b,c", "three numbers"),
                     ("0.7,0.2,0.2", "sum to 1.1"), ("1.2,-0.1,-0.1", "three shares")):
        with pytest.raises(UserError, match=msg):
            splits.parse_ratios(bad)


def test_splits_are_deterministic_grouped_and_follow_the_ratios() -> None:
    counts = {f"cam-{i}": 10 + (i * 7) % 13 for i in range(40)}
    a = splits.assign(counts, 3, splits.DEFAULT_RATIOS)
    assert a == splits.assign(dict(reversed(list(counts.items()))), 3, splits.DEFAULT_RATIOS)
    assert set(a) == set(counts) and set(a.values()) == {"train", "val", "test"}
    total = sum(counts.values())
    shares = {s: sum(counts[n] for n, x in a.items() if x == s) / total
              for s in ("train", "val", "test")}
    assert shares["train"] == pytest.approx(0.7, abs=0.06)
    assert shares["val"] == pytest.approx(0.15, abs=0.06)
    # Another seed shuffles differently.
    assert any(splits.assign(counts, seed, splits.DEFAULT_RATIOS) != a for seed in range(4, 8))


def test_every_positive_split_gets_a_source_when_there_are_enough() -> None:
    for seed in range(20):
        a = splits.assign({"a": 5, "b": 5, "c": 5}, seed, splits.DEFAULT_RATIOS)
        assert sorted(a.values()) == ["test", "train", "val"]
    only_train = splits.assign({"a": 5, "b": 9}, 0, (1.0, 0.0, 0.0))
    assert set(only_train.values()) == {"train"}
    assert set(splits.assign({"solo": 3}, 1, splits.DEFAULT_RATIOS)) == {"solo"}


# ----------------------------------------------------------------------------- statistics


def test_total_variation_and_ks() -> None:
    assert total_variation({"a": 5, "b": 5}, {"a": 1, "b": 1}) == 0.0
    assert total_variation({"a": 1}, {"b": 3}) == 1.0
    assert total_variation({"a": 3, "b": 1}, {"a": 1, "b": 1}) == pytest.approx(0.25)
    assert ks_statistic([1, 2, 3], [1, 2, 3]) == 0.0
    assert ks_statistic([1, 2, 3], [10, 11]) == 1.0
    rng = np.random.default_rng(0)
    x, y = rng.exponential(2.0, 500), rng.exponential(3.0, 700)
    exact = ks_statistic(list(x), list(y))
    approx = ks_statistic(quantile_summary(list(x))["quantiles"],
                          quantile_summary(list(y))["quantiles"])
    assert approx == pytest.approx(exact, abs=0.02)


# ----------------------------------------------------------------------------- gates

ONTO = OntologyRef("default", 1, "0" * 64, {
    "enter": {"roles": ["actor"], "attributes": ["zone"]},
    "meet": {"roles": ["a", "b"], "symmetric": True},
    "stop": {"roles": ["actor"]},
})
SOURCES = {1: SourceRef(1, "cam", "m", 10.0, True)}
T0 = 1_767_225_600_000_000  # 2026-01-01 in µs


def _event(i: int, type_: str, actors: dict[str, str], start: float, end: float,
           **extra: Any) -> dict[str, Any]:
    return {"event_id": i, "split": "train", "source": "cam", "type": type_,
            "actors": [{"role": r, "track_id": t} for r, t in sorted(actors.items())],
            "zone": "gate" if type_ == "enter" else None, "route": None, "trigger": None,
            "latency_s": None, "start_ts": T0 + int(start * 1e6), "end_ts": T0 + int(end * 1e6),
            "start_s": start, "end_s": end, "duration_s": end - start, "confidence": 0.9,
            "verification": "rule", "rule_score": 0.9, "model_score": None,
            "model_version": None, "ontology_version": 1, "units": "m", **extra}


def _base_events() -> list[dict[str, Any]]:
    out = []
    for i in range(6):
        out.append(_event(i, "enter", {"actor": str(i)}, 10.0 + i, 11.0 + i))
        out.append(_event(10 + i, "stop", {"actor": str(i)}, 20.0 + i, 24.0 + i))
        out.append(_event(20 + i, "meet", {"a": str(i), "b": str(i + 1)}, 30.0 + i, 36.0 + i))
    return out


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    cols = {f.name: [r[f.name] for r in rows] for f in schema}
    arrays = [pa.array(cols[f.name], pa.int64()).cast(f.type) if pa.types.is_timestamp(f.type)
              else pa.array(cols[f.name], f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _features(events: list[dict[str, Any]]) -> pa.Table:
    rows = []
    for e in events:
        for a in e["actors"]:
            rows.append({"event_id": e["event_id"], "role": a["role"],
                         "track_id": a["track_id"], "ts": e["start_ts"], "t_rel_s": 0.0,
                         "in_span": True, "frame": 0, "segment": 0, "dt": 0.1, "x": 1.0,
                         "y": 2.0, "vx": 0.1, "vy": 0.0, "speed": 0.1, "accel": 0.0,
                         "jerk": 0.0, "heading": 0.0, "turn_rate": 0.0, "curvature": None})
    return _table(rows, FEATURES_SCHEMA)


def _inputs(tmp: Path, events: list[dict[str, Any]], previous: Any = None,
            lifetime_pad_s: float = 100.0, write_schema: pa.Schema | None = None
            ) -> GateInputs:
    ev, feats = _table(events, EVENTS_SCHEMA), _features(events)
    path = write_parquet(tmp, "train/events.parquet",
                         ev if write_schema is None else ev.cast(write_schema))
    lifetimes = [Lifetime(e["event_id"], a["role"], a["track_id"],
                          e["start_ts"] - int(lifetime_pad_s * 1e6),
                          e["end_ts"] + int(lifetime_pad_s * 1e6))
                 for e in events for a in e["actors"]]
    stats = summarise(ev, feats.num_rows, 0)
    return GateInputs(ev, feats, lifetimes, ONTO, SOURCES, stats, previous,
                      [WrittenTable(path, "events", ev.num_rows)])


RELAXED = GateConfig(min_per_type=1, max_class_share=1.0, max_imbalance=1e9)


def _failed(inp: GateInputs, cfg: GateConfig = RELAXED) -> dict[str, str]:
    return {g.gate: g.summary for g in run_gates(inp, cfg) if not g.passed}


def test_clean_events_pass_every_gate(tmp_path: Path) -> None:
    assert _failed(_inputs(tmp_path, _base_events())) == {}


def test_schema_gate(tmp_path: Path) -> None:
    events = _base_events()
    events[0]["actors"] = [{"role": "who", "track_id": "0"}]
    events[1]["type"] = "teleport"
    events[2]["zone"] = "x"  # meet has no attributes: an extra value is fine
    events[3]["zone"] = None  # enter needs its zone
    failed = _failed(_inputs(tmp_path, events))
    assert set(failed) == {"schema"}
    assert "roles ['who'], ontology says ['actor']" in failed["schema"]
    assert "type 'teleport' is not in ontology default v1" in failed["schema"]
    assert "(enter): no zone" in failed["schema"]
    # A file whose schema differs from the expected one.
    wrong = EVENTS_SCHEMA.set(EVENTS_SCHEMA.get_field_index("confidence"),
                              pa.field("confidence", pa.float32(), nullable=False))
    failed = _failed(_inputs(tmp_path / "w", _base_events(), write_schema=wrong))
    assert "train/events.parquet: schema differs" in failed["schema"]


def test_finite_values_gate(tmp_path: Path) -> None:
    events = _base_events()
    events[0]["latency_s"] = float("inf")
    events[1]["confidence"] = 1.5
    failed = _failed(_inputs(tmp_path, events))
    assert set(failed) == {"finite_values"}
    assert "events.latency_s: 1 NaN or infinite values" in failed["finite_values"]
    assert "events.confidence: 1 values outside [0, 1]" in failed["finite_values"]


def test_spans_gate(tmp_path: Path) -> None:
    failed = _failed(_inputs(tmp_path, _base_events(), lifetime_pad_s=-0.5))
    assert set(failed) == {"spans_in_tracks"}
    assert "outside track" in failed["spans_in_tracks"]
    inp = _inputs(tmp_path, _base_events())
    missing = [Lifetime(0, "actor", "0", None, None), *inp.lifetimes[1:]]
    got = _failed(GateInputs(inp.events, inp.features, missing, ONTO, SOURCES, inp.statistics,
                             None, inp.written))
    assert got == {"spans_in_tracks": "event 0: track 0 (actor) has no points"}


def test_duplicates_gate_sees_swapped_symmetric_actors_and_overlaps(tmp_path: Path) -> None:
    events = _base_events()
    events.append(_event(99, "meet", {"a": "1", "b": "0"}, 30.0, 36.0))        # = event 20
    events.append(_event(98, "stop", {"actor": "0"}, 20.1, 24.0))              # IoU 0.975
    events.append(_event(97, "stop", {"actor": "0"}, 22.0, 26.0))              # IoU 0.33: ok
    failed = _failed(_inputs(tmp_path, events))
    assert set(failed) == {"no_duplicates"}
    assert "events 20 and 99 duplicate each other (temporal IoU 1.00)" in failed["no_duplicates"]
    assert "events 10 and 98" in failed["no_duplicates"]
    assert "events 97" not in failed["no_duplicates"]
    assert "and 97 " not in failed["no_duplicates"]


def test_min_per_type_and_class_balance_gates(tmp_path: Path) -> None:
    inp = _inputs(tmp_path, _base_events())
    assert _failed(inp, GateConfig(min_per_type=7, max_class_share=1.0, max_imbalance=1e9)
                   ) == {"min_per_type": "enter: 6 events < 7; meet: 6 events < 7; "
                                          "stop: 6 events < 7"}
    skewed = _base_events() + [_event(100 + i, "enter", {"actor": str(50 + i)}, 1.0, 2.0)
                               for i in range(30)]
    failed = _failed(_inputs(tmp_path / "s", skewed),
                     GateConfig(min_per_type=1, max_class_share=0.6, max_imbalance=5))
    assert set(failed) == {"class_balance"}
    assert "enter is 75% of the events > 60%" in failed["class_balance"]
    assert "largest/smallest type = 6.0 > 5" in failed["class_balance"]


def test_drift_gate(tmp_path: Path) -> None:
    base = _inputs(tmp_path, _base_events())
    same = _inputs(tmp_path / "b", _base_events(), previous=("1.0.0", base.statistics))
    assert _failed(same) == {}
    only_enter = [e for e in _base_events() if e["type"] == "enter"]
    failed = _failed(_inputs(tmp_path / "c", only_enter, previous=("1.0.0", base.statistics)))
    assert failed == {"drift": "type mix moved: TVD 0.667 > 0.25 against 1.0.0"}
    longer = [{**e, "end_ts": e["end_ts"] + 20_000_000, "end_s": e["end_s"] + 20,
               "duration_s": e["duration_s"] + 20} for e in _base_events()]
    failed = _failed(_inputs(tmp_path / "d", longer, previous=("1.0.0", base.statistics)),
                     GateConfig(min_per_type=1, max_class_share=1.0, max_imbalance=1e9,
                                drift_min_n=5))
    assert "all durations moved: KS 1.000 > 0.35 against 1.0.0" in failed["drift"]


def test_card_renders_every_section(tmp_path: Path) -> None:
    inp = _inputs(tmp_path, _base_events())
    results = run_gates(inp, RELAXED)
    text = card.render(card.CardInputs(
        name="events", version="1.0.0", project="acme/north", status="published", seed=0,
        ratios=splits.DEFAULT_RATIOS, context_s=2.0, ontology=ONTO.as_dict(),
        model_version="m1", model_metrics={"held_out": {
            "n": 10, "positives": 4, "model": {"auc": 0.9, "ap": 0.8},
            "rule_score": {"auc": 0.7, "ap": 0.6}, "ap_gain": 0.2}},
        statistics=inp.statistics, gates=results, config=RELAXED, files=[],
        sources_total=1, sources_simulated=1, pixel_sources=0))
    for heading in ("Intended use", "Class balance per split", "How events were verified",
                    "Privacy", "Known biases", "Evaluation figures", "Quality gates"):
        assert f"## {heading}" in text
    assert "| held_out | 10 | 4 | 0.9 | 0.8 | 0.7 | 0.6 | 0.2 |" in text
    assert "1 of 1 sources are marked as simulated" in text
    plots = card.plot(inp.events, tmp_path / "card")
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in plots.values())
