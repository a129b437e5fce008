"""Page logic of the review app, without a database: spans snapped to frames, keyset pages,
filters, the candidate document, positions at a time, analytics tables and CSV."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from applib.analytics_view import SECTIONS, chart_for, csv_bytes, csv_name, frames, totals
from applib.candidate_view import (
    at,
    chosen_span,
    curves_chart,
    parse_detail,
    positions_at,
    scene_chart,
    snap,
    span_control,
    view_box,
)
from applib.queue_view import (
    Pager,
    build_filter,
    counts_frame,
    next_candidate,
    queue_frame,
    source_options,
)
from applib.reviewers_view import agreement_frame, measures_chart, shown, stats_frame

from workers.appdb.session import Identity
from workers.errors import AuthError

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


def _doc(fps: float | None = 10.0, limits: tuple[float, float] | None = (2.0, 9.0)
         ) -> dict[str, Any]:
    """A candidate_detail document shaped as sql/503_review_detail.sql builds it."""
    def track(y: float, speed: float) -> list[dict[str, Any]]:
        return [{"t": round(1.0 + i / 10, 1), "frame": 10 + i, "x": i * 0.1 * speed, "y": y,
                 "speed": speed, "heading": 0.0} for i in range(0, 91)]
    return {
        "candidate": {"candidate_id": 7, "type": "follow", "actors": {"leader": "1",
                                                                      "follower": "2"},
                      "zone": "gate", "start_ts": "2026-01-01T00:00:03.04+00:00",
                      "end_ts": "2026-01-01T00:00:06.96+00:00", "start_s": 3.04, "end_s": 6.96,
                      "score": 0.5, "status": "new"},
        "source": {"source_id": 1, "name": "cam", "fps": fps, "units": "m", "video_uri": None,
                   "time_origin": "2026-01-01T00:00:00+00:00"},
        "window": {"from_s": -1.96, "to_s": 11.96},
        "span_limits": ({"from_s": limits[0], "to_s": limits[1]} if limits
                        else {"from_s": None, "to_s": None}),
        "zones": [{"name": "gate", "kind": "zone", "polygon": [[0, 0], [0, 2], [2, 2], [2, 0]]},
                  {"name": "far", "kind": "zone", "polygon": [[500, 500], [501, 501]]}],
        "routes": [{"name": "north", "from_zone": "gate", "path": [[1, 1], [1, 9]]}],
        "actors": {"leader": {"track_id": "1", "points": track(0.0, 1.0)},
                   "follower": {"track_id": "2", "points": track(1.0, 1.2)}},
        "pairs": [{"a": "follower", "b": "leader", "points": [
            {"t": 1.0 + i / 10, "distance": 1.0 + i / 100, "heading_diff": 3.0}
            for i in range(91)]}],
        "decisions": [], "event": None, "second_opinion": None, "blind": False,
    }


# ---------------------------------------------------------------- spans and frames
@pytest.mark.parametrize(("t", "fps", "how", "expected"), [
    (3.04, 10, "nearest", 3.0), (3.06, 10, "nearest", 3.1), (12.3, 10, "down", 12.3),
    (12.3, 10, "up", 12.3), (3.01, 10, "up", 3.1), (3.09, 10, "down", 3.0),
    (1.0, 30, "nearest", 1.0), (0.05, 25, "nearest", 0.04), (0.5, None, "nearest", 0.5)])
def test_snap_to_frames(t: float, fps: float | None, how: Any, expected: float) -> None:
    assert snap(t, fps, how) == pytest.approx(expected, abs=1e-9)


def test_span_control_stays_where_the_actors_are_tracked() -> None:
    detail = parse_detail(_doc())
    control = span_control(detail)
    assert (control.lo, control.hi, control.step) == (2.0, 9.0, 0.1)
    assert control.value == (3.0, 7.0)
    assert chosen_span((3.0, 7.0), control, detail.fps) is None  # untouched: as proposed
    assert chosen_span((6.5, 3.0), control, detail.fps) == (3.0, 6.5)
    assert chosen_span((3.0, 6.4999999), control, detail.fps) == (3.0, 6.5)


def test_span_control_without_common_tracking_is_unusable() -> None:
    detail = parse_detail(_doc(limits=None))
    assert detail.limits is None
    control = span_control(detail)
    assert control.usable and (control.lo, control.hi) == (-1.9, 11.9)
    narrow = parse_detail({**_doc(), "span_limits": {"from_s": 4.0, "to_s": 4.05}})
    assert not span_control(narrow).usable


def test_clock_seconds_become_timestamps_to_the_microsecond() -> None:
    assert at(ORIGIN, 6.5) == ORIGIN + timedelta(seconds=6.5)
    assert at(ORIGIN, 1 / 3) == ORIGIN + timedelta(microseconds=333333)


# ---------------------------------------------------------------- the candidate document
def test_parse_detail_tracks_curves_and_geometry() -> None:
    detail = parse_detail(_doc())
    assert detail.candidate_id == 7 and detail.fps == 10.0 and detail.units == "m"
    assert detail.origin == ORIGIN and detail.window == (-1.96, 11.96)
    assert list(detail.tracks["actor"].unique()) == ["follower 2", "leader 1"]
    assert set(detail.curves["panel"]) == {"speed ({u}/s)", "distance between actors ({u})",
                                           "heading difference (deg)"}
    assert detail.zones[0] == ("gate", [(0.0, 0.0), (0.0, 2.0), (2.0, 2.0), (2.0, 0.0)])
    assert detail.routes == [("north", [(1.0, 1.0), (1.0, 9.0)])]


def test_positions_at_a_time_pick_each_actors_nearest_point() -> None:
    detail = parse_detail(_doc())
    now = positions_at(detail.tracks, 5.02, tolerance=0.15)
    assert list(now["role"]) == ["follower", "leader"]
    assert list(now["t"]) == [5.0, 5.0]
    assert positions_at(detail.tracks, 50.0, tolerance=0.15).empty


def test_view_box_frames_the_actors_and_their_zone_not_the_whole_scene() -> None:
    (x0, x1), (y0, y1) = view_box(parse_detail(_doc()))
    assert x0 < 0 and x1 > 10.8 and x1 < 100  # the far zone is left out
    assert x1 - x0 == pytest.approx(y1 - y0)


def test_charts_build_for_the_document() -> None:
    detail = parse_detail(_doc())
    scene = scene_chart(detail, (3.0, 6.5), 5.0).to_dict()
    assert len(scene["layer"]) == 6
    curves = curves_chart(detail, (3.0, 6.5), 5.0).to_dict()
    assert len(curves["vconcat"]) == 3


# ---------------------------------------------------------------- queue
def test_pager_goes_forward_and_back_and_restarts_on_new_filters() -> None:
    pager = Pager()
    pager.reset_for("a")
    assert (pager.after, pager.number, pager.has_previous) == (None, 1, False)
    pager.forward("c1")
    pager.forward("c2")
    assert (pager.after, pager.number) == ("c2", 3)
    pager.back()
    assert pager.after == "c1"
    pager.reset_for("a")
    assert pager.after == "c1"
    pager.reset_for("b")
    assert (pager.after, pager.number) == (None, 1)
    pager.back()
    assert pager.number == 1


def test_build_filter_leaves_out_what_is_not_limited() -> None:
    flt = build_filter([], [], (0.0, 1.0), [], None, None)
    assert flt.params() == {"types": None, "source_ids": None, "min_score": None,
                            "max_score": None, "statuses": None, "from": None, "to": None}
    late, early = ORIGIN + timedelta(hours=1), ORIGIN
    flt = build_filter(["follow"], [3], (0.2, 1.0), ["new"], late, early)
    assert flt.params() == {"types": ["follow"], "source_ids": [3], "min_score": 0.2,
                            "max_score": None, "statuses": ["new"], "from": early, "to": late}


def test_counts_and_source_options() -> None:
    counts = {"total": 5, "by_type": {"follow": 2, "stop": 3}, "by_source": {"4": 5},
              "source_names": {"4": "plaza"}}
    assert counts_frame(counts, "by_type").to_dict("records") == [
        {"value": "stop", "candidates": 3}, {"value": "follow", "candidates": 2}]
    assert source_options(counts) == {4: "plaza (5)"}
    assert counts_frame({}, "by_type").empty


def test_queue_frame_and_next_candidate() -> None:
    rows = [{"candidate_id": i, "type": "stop", "source_name": "cam", "actors": {"actor": "9"},
             "zone": "gate" if i == 2 else None, "route": None, "trigger": None,
             "start_ts": ORIGIN, "end_ts": ORIGIN + timedelta(seconds=1.5), "score": 0.5,
             "model_score": None, "rule_score": 0.5, "status": "new"} for i in (1, 2, 3)]
    frame = queue_frame(rows)
    assert list(frame["id"]) == [1, 2, 3]
    assert frame["where"].tolist() == ["", "zone gate", ""]
    assert frame["start"][0] == datetime(2026, 1, 1)  # UTC, without a zone for Arrow
    assert frame["duration s"][0] == 1.5
    assert next_candidate(rows, 1) == 2
    assert next_candidate(rows, 1, skip=[2]) == 3
    assert next_candidate(rows, 3) == 1
    assert next_candidate(rows, 3, skip=[1, 2]) is None
    assert next_candidate(rows, None) == 1


# ---------------------------------------------------------------- reviewers and analytics
def test_reviewer_tables() -> None:
    stats = stats_frame([{"reviewer": "bea", "decisions": 4, "accepts": 3, "rejects": 1,
                          "per_hour": 12.3456, "second_opinions": 1, "kappa": None,
                          "mean_iou": 0.91234, "reputation": 0.6}])
    assert stats["accept share"][0] == 0.75 and stats["per_hour"][0] == 12.346
    assert (shown(stats["kappa"][0]), shown(stats["decisions"][0]),
            shown(stats["mean_iou"][0])) == ("n/a", "4", "0.912")
    assert measures_chart(stats).to_dict()["mark"]["type"] == "bar"
    assert agreement_frame([]).empty


def test_analytics_tables_totals_and_csv() -> None:
    doc = {"bucket": "hour",
           "events_over_time": [{"bucket": "2026-01-01T00:00:00+00:00", "type": "follow",
                                 "verification": "human", "events": 2}],
           "class_balance": [{"type": "follow", "events": 2, "events_rule": 0,
                              "events_model": 0, "events_human": 2, "share": 1.0,
                              "candidates": 5, "candidates_new": 3, "candidates_scored": 0,
                              "candidates_in_review": 0, "candidates_accepted": 2,
                              "candidates_rejected": 0}]}
    tables = frames(doc)
    assert set(tables) == {s.key for s in SECTIONS}
    assert tables["dwell_histogram"].empty
    assert totals(tables) == {"Verified events": 2, "Verified by a reviewer": 2,
                              "Candidates": 5}
    events = next(s for s in SECTIONS if s.key == "events_over_time")
    text = csv_bytes(tables["events_over_time"]).decode()
    assert text.splitlines() == ["bucket,type,verification,events",
                                 "2026-01-01T00:00:00,follow,human,2"]
    assert pd.read_csv(io.StringIO(text))["events"].tolist() == [2]
    assert csv_name(events, "acme/north") == "secinf-acme-north-events_over_time.csv"
    assert chart_for(events, tables["events_over_time"], "hour").to_dict()["mark"]["type"] \
        == "bar"


def test_analytics_csv_quotes_formula_text_and_keeps_numbers() -> None:
    doc = {"dwell_histogram": [{"zone": "=cmd|' /C calc'!A0", "bin_start_s": -2.5,
                                "bin_end_s": 0.0, "events": 3},
                               {"zone": "@gate", "bin_start_s": 0.0, "bin_end_s": 2.5,
                                "events": -1},
                               {"zone": None, "bin_start_s": 2.5, "bin_end_s": 5.0,
                                "events": 0}],
           "route_shares": [{"zone": "+fork", "route": "-left", "choices": 2, "share": 0.5},
                            {"zone": "fork", "route": "\tright", "choices": 2,
                             "share": 0.5}]}
    tables = frames(doc)
    dwell = csv_bytes(tables["dwell_histogram"]).decode()
    assert dwell.splitlines() == ["zone,bin_start_s,bin_end_s,events",
                                  "'=cmd|' /C calc'!A0,-2.5,0.0,3",
                                  "'@gate,0.0,2.5,-1",
                                  ",2.5,5.0,0"]
    assert pd.read_csv(io.StringIO(dwell))["bin_start_s"].tolist() == [-2.5, 0.0, 2.5]
    assert csv_bytes(tables["route_shares"]).decode().splitlines() == [
        "zone,route,choices,share", "'+fork,'-left,2,0.5", "fork,'\tright,2,0.5"]
    assert tables["dwell_histogram"]["zone"][0] == "=cmd|' /C calc'!A0"  # the table as shown


def test_identity_expiry_and_roles() -> None:
    grant = {"token": "jwt-never-shown", "claims": {"role": "reviewer", "sub": "bea", "exp": 10},
             "expires_at": "2026-01-01T00:00:10+00:00"}
    who = Identity.from_grant(grant, "account")
    assert who.expired(datetime.fromtimestamp(10, UTC))
    assert not who.expired(datetime.fromtimestamp(9, UTC))
    assert who.token == "jwt-never-shown" and "jwt-never-shown" not in repr(who)
    with pytest.raises(AuthError, match="no usable role"):
        Identity.from_grant({**grant, "claims": {"role": "postgres"}}, "key")
