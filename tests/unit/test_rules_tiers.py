"""The ontology's `candidates.recall_factor`: validation, and what it changes in the rule SQL."""

from __future__ import annotations

import pytest
import yaml

from workers.rules.compile import compile_ontology, compile_pair_rows
from workers.rules.ontology import (
    DEFAULT_PATH,
    Ontology,
    OntologyError,
    dump_ontology,
    load_ontology,
    parse_ontology,
    with_recall_tier,
)
from workers.scoring.collect import (
    TRAINING_RECALL_FACTOR,
    TRAINING_REVISION,
    TRAINING_WIDEN,
    training_ontology,
)

TIERED_TYPES = {"stop", "follow", "accompany", "dwell", "meet", "handover"}


def _compiled(onto: Ontology) -> dict[str, str]:
    return {r.type: r.sql for r in compile_ontology(onto, 3)}


def _with(candidates: object) -> str:
    data = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    data["candidates"] = candidates
    return dump_ontology(data)


def test_recall_factor_validated_and_read() -> None:
    assert load_ontology(DEFAULT_PATH).recall_factor is None
    assert parse_ontology(_with({})).recall_factor is None
    assert parse_ontology(_with({"recall_factor": 1.0})).recall_factor is None
    assert parse_ontology(_with({"recall_factor": 0.5})).recall_factor == 0.5
    for bad in ({"recall_factor": 0}, {"recall_factor": 1.5}, {"recall_factor": "half"},
                {"recall": 0.5}):
        with pytest.raises(OntologyError, match="field 'candidates"):
            parse_ontology(_with(bad), "t.yaml")


def test_strict_sql_is_unchanged_without_a_recall_tier() -> None:
    plain = {r.type: r.sha256 for r in compile_ontology(load_ontology(DEFAULT_PATH), 3)}
    for text in (_with({}), _with({"recall_factor": 1.0})):
        assert {r.type: r.sha256 for r in compile_ontology(parse_ontology(text), 3)} == plain


def test_recall_tier_sql_only_for_kinds_with_a_minimum_duration() -> None:
    onto = with_recall_tier(load_ontology(DEFAULT_PATH), 0.5)
    plain, sql = _compiled(load_ontology(DEFAULT_PATH)), _compiled(onto)
    for kind, text in sql.items():
        if kind in TIERED_TYPES:
            assert "THEN 'strict' ELSE 'recall' END" in text, kind
            assert "rule_score, evidence, tier)" in text
        else:
            assert text == plain[kind], kind
    assert ">= 1.0::float8 AND" in sql["stop"] and ">= 2.0::float8 THEN 'strict'" in sql["stop"]
    assert "BETWEEN 0.25::float8 AND 3.0::float8" in sql["handover"]


def test_training_ontology_is_the_default_with_a_recall_tier() -> None:
    onto = training_ontology()
    default = load_ontology(DEFAULT_PATH)
    assert (onto.name, onto.version, onto.recall_factor) == (
        "training", 100 * default.version + TRAINING_REVISION, TRAINING_RECALL_FACTOR)
    assert {t: onto.widened(t) for t in TRAINING_WIDEN} == TRAINING_WIDEN
    assert onto.types == default.types and onto.features == default.features


def test_widen_validated() -> None:
    ok = parse_ontology(_with({"widen": {"meet": {"condition": "distance < 7.0"}}}))
    assert ok.widened("meet") == {"condition": "distance < 7.0"}
    assert ok.widened("accompany") is None and ok.recall_factor is None
    cases = [
        ({"widen": {"mingle": {"condition": "distance < 3"}}}, "no type 'mingle'"),
        ({"widen": {"enter": {"condition": "speed > 1"}}}, "kind 'zone_transition'"),
        ({"widen": {"handover": {"condition": "distance < 3"}}}, "not a handover"),
        ({"widen": {"overtake": {"condition": "distance < 3"}}}, "kind 'pair_sequence'"),
        ({"widen": {"meet": {"condition": "speed_of_light < 3"}}},
         "field 'candidates.widen.meet.condition'"),
        ({"widen": {"meet": {"hysteresis": "distance < 3"}}}, "'condition' is a required"),
        ({"widen": {"meet": {"condition": "distance < 3", "inner": "true"}}},
         "Additional properties"),
    ]
    for bad, message in cases:
        with pytest.raises(OntologyError, match=message):
            parse_ontology(_with(bad), "t.yaml")


def test_widen_adds_an_arm_and_keeps_the_fill_rows() -> None:
    wide = {"accompany": {"condition": "abs(lat_offset) <= 3.0 and speed > 0.3"},
            "meet": {"condition": "distance < 7.0", "hysteresis": "distance < 7.5"}}
    onto = with_recall_tier(load_ontology(DEFAULT_PATH), 0.5, widen=wide)
    tiered = _compiled(with_recall_tier(load_ontology(DEFAULT_PATH), 0.5))
    sql = _compiled(onto)
    for kind, text in sql.items():
        # a widened type gets the widened islands, unclaimed by the strict ones and by
        # stored candidates; the others compile as before
        assert ("rel_w_i" in text and "NOT EXISTS (SELECT 1 FROM candidates.candidates x"
                in text) if kind in wide else text == tiered[kind], kind
    assert "7.5" in sql["meet"] and "7.0" in sql["meet"]
    fill = compile_pair_rows(onto, 3)
    assert fill is not None and "7.5" in fill  # rows out to 7.5 m are kept for the rule
