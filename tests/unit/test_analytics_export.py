"""CSV of analytics metrics: fixed columns, empty fields for nulls, a header when empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.analytics import METRIC_COLUMNS, csv_cell, metric_csv, write_csv


def test_rows_follow_the_metric_columns_whatever_the_key_order() -> None:
    rows = [{"share": 0.6, "choices": 3, "route": "north", "zone": "fork"},
            {"zone": None, "route": "a,b", "choices": 1, "share": 1.0}]
    assert metric_csv("route_shares", rows) == (
        "zone,route,choices,share\nfork,north,3,0.6\n,\"a,b\",1,1.0\n")


def test_every_metric_gets_a_file_with_a_header(tmp_path: Path) -> None:
    paths = write_csv({"follow_rate": [{"source_id": 1, "source_name": "cam", "day": "2026-01-01",
                                        "follows": 2, "actors": 0, "rate": None}]}, tmp_path)
    assert [p.stem for p in paths] == list(METRIC_COLUMNS)
    assert (tmp_path / "follow_rate.csv").read_text().splitlines()[1] == "1,cam,2026-01-01,2,0,"
    assert (tmp_path / "dwell_histogram.csv").read_text() == "zone,bin_start_s,bin_end_s,events\n"


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="no metric 'speed': one of events_over_time"):
        metric_csv("speed", [])


def test_text_that_a_spreadsheet_would_run_gets_a_leading_quote() -> None:
    rows = [{"zone": "=HYPERLINK(\"http://x\")", "route": "+1", "choices": -3, "share": -0.5},
            {"zone": "-north", "route": "@SUM(A1)", "choices": 0, "share": 0.25},
            {"zone": "\tgate", "route": "\rexit", "choices": 1, "share": 1},
            {"zone": "plain = text", "route": "a-b", "choices": 2, "share": None}]
    assert metric_csv("route_shares", rows).split("\n") == [
        "zone,route,choices,share",
        "\"'=HYPERLINK(\"\"http://x\"\")\",'+1,-3,-0.5",  # numbers stay numbers, negative too
        "'-north,'@SUM(A1),0,0.25",
        "'\tgate,'\rexit,1,1",
        "plain = text,a-b,2,", ""]


def test_csv_cell_quotes_only_text() -> None:
    assert [csv_cell(v) for v in ("=1+2", "-", "@", "ok", "", -1, -2.5, True, None)] == [
        "'=1+2", "'-", "'@", "ok", "", -1, -2.5, True, None]
