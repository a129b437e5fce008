"""The ontology's `candidates.recall_factor`: validation, and what it changes in the rule SQL."""

from __future__ import annotations

import pytest
import yaml

from workers.rules.compile import compile_ontology
from workers.rules.ontology import (
    DEFAULT_PATH,
    OntologyError,
    dump_ontology,
    load_ontology,
    parse_ontology,
    with_recall_tier,
)
from workers.scoring.collect import TRAINING_RECALL_FACTOR, training_ontology

TIERED_TYPES = {"stop", "follow", "accompany", "dwell", "meet", "handover"}


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
    plain = {r.type: r.sql for r in compile_ontology(load_ontology(DEFAULT_PATH), 3)}
    for rule in compile_ontology(onto, 3):
        if rule.type in TIERED_TYPES:
            assert "THEN 'strict' ELSE 'recall' END" in rule.sql, rule.type
            assert "rule_score, evidence, tier)" in rule.sql
        else:
            assert rule.sql == plain[rule.type], rule.type
    sql = {r.type: r.sql for r in compile_ontology(onto, 3)}
    assert ">= 1.0::float8 AND" in sql["stop"] and ">= 2.0::float8 THEN 'strict'" in sql["stop"]
    assert "BETWEEN 0.25::float8 AND 3.0::float8" in sql["handover"]


def test_training_ontology_is_the_default_with_a_recall_tier() -> None:
    onto = training_ontology()
    default = load_ontology(DEFAULT_PATH)
    assert (onto.name, onto.version, onto.recall_factor) == (
        "training", default.version, TRAINING_RECALL_FACTOR)
    assert onto.types == default.types and onto.features == default.features
