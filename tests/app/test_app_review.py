"""Review pages (AppTest) against a real database: queue, candidate decisions, undo, a lost
race, second opinions, reviewer statistics, analytics, and another project seeing nothing.

The candidates come from the real pipeline over a short simulated scene (tests/app/conftest.py).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.app.conftest import app_test
from tests.support.factories import make_person_key
from workers.appdb import AppDB, Identity
from workers.appdb import api as app_api
from workers.review import accounts

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _queue_ids(at: Any) -> list[int]:
    return [int(i) for i in at.dataframe[0].value["id"]]


def _button(at: Any, label: str) -> Any:
    [found] = [b for b in at.button if b.label == label]
    return found


def test_queue_pages_filters_and_counts(reviewer: Identity, scene: list[dict[str, Any]]) -> None:
    at = app_test("pages/1_Review_queue.py", reviewer)
    at.run()
    assert not at.exception and not at.error
    total = {m.label: m.value for m in at.metric}["Matching candidates"]
    assert int(total) == len(scene)
    at.select_slider(key="q_limit").set_value(10).run()
    first = _queue_ids(at)
    assert len(first) == 10 and set(first) <= {r["candidate_id"] for r in scene}

    _button(at, "Next page").click().run()
    second = _queue_ids(at)
    assert second and not set(second) & set(first)
    assert len(first) + len(second) == len(scene)
    assert _button(at, "Next page").disabled
    _button(at, "Previous page").click().run()
    assert _queue_ids(at) == first

    stops = sum(r["type"] == "stop" for r in scene)
    at.multiselect(key="q_types").set_value(["stop"]).run()
    assert {m.label: m.value for m in at.metric}["Matching candidates"] == str(stops)
    assert set(at.dataframe[0].value["type"]) == {"stop"}
    at.radio(key="q_order").set_value("newest").run()
    starts = list(at.dataframe[0].value["start"])
    assert starts == sorted(starts, reverse=True)

    at.multiselect(key="q_types").set_value([]).run()
    at.slider(key="q_score").set_value((0.0, 0.7)).run()
    scores = list(at.dataframe[0].value["score"])
    assert scores and max(scores) <= 0.7
    assert int({m.label: m.value for m in at.metric}["Matching candidates"]) == len(scores)


def test_candidate_adjust_span_and_accept_makes_a_human_event(
        reviewer: Identity, scene: list[dict[str, Any]], db: Conn) -> None:
    cand = next(r for r in scene if r["type"] == "follow")
    cid = cand["candidate_id"]
    at = app_test("pages/2_Candidate.py", reviewer)
    at.query_params["id"] = str(cid)
    at.run()
    assert not at.exception and not at.error
    assert at.title[0].value == f"Candidate #{cid} · follow"
    assert len(at.get("vega_lite_chart")) == 2  # the scene and the feature curves

    span = at.slider(key=f"span_{cid}")
    start, end = span.value
    span.set_value((start, round(end - 0.5, 6))).run()
    accept = _button(at, f"Accept adjusted span ({start:.2f} to {end - 0.5:.2f} s)")
    at.toggle(key="advance").set_value(False).run()
    accept.click().run()
    assert not at.exception and not at.error
    event = db.execute("SELECT source, verified_by, start_ts, end_ts, decision_id"
                       " FROM events.events WHERE candidate_id = %s", (cid,)).fetchone()
    assert event is not None
    assert (event["source"], event["verified_by"]) == ("human", reviewer.person)
    origin = cand["start_ts"].replace(hour=0, minute=0, second=0, microsecond=0)
    assert event["start_ts"] == origin + timedelta(seconds=start)
    assert event["end_ts"] == origin + timedelta(seconds=round(end - 0.5, 6))
    assert at.success[0].value.startswith(f"Accepted candidate #{cid} → event #")
    assert db.execute("SELECT status FROM candidates.candidates WHERE candidate_id = %s",
                      (cid,)).fetchone() == {"status": "accepted"}


def test_reject_needs_a_reason_and_undo_takes_it_back(
        reviewer: Identity, scene: list[dict[str, Any]], db: Conn) -> None:
    cid = scene[0]["candidate_id"]
    at = app_test("pages/2_Candidate.py", reviewer)
    at.query_params["id"] = str(cid)
    at.run()
    at.toggle(key="advance").set_value(False).run()
    _button(at, "Reject").click().run()
    assert [e.value for e in at.error] == ["Choose a reason for the rejection first."]
    at.selectbox(key=f"reason_{cid}").set_value("no_event").run()
    _button(at, "Reject").click().run()
    assert db.execute("SELECT kind, reason FROM review.decisions WHERE candidate_id = %s",
                      (cid,)).fetchall() == [{"kind": "reject", "reason": "no_event"}]
    _button(at, "Undo my last decision").click().run()
    assert not at.error
    assert [s.value for s in at.success] == [f"Undid your last decision (candidate #{cid})."]
    assert db.execute("SELECT count(*) AS n FROM review.current WHERE candidate_id = %s",
                      (cid,)).fetchone() == {"n": 0}
    _button(at, "Undo my last decision").click().run()
    assert [e.value for e in at.error] == [
        "Nothing undone: you have no decision to undo (Only your own live decisions can be "
        "undone, newest first.)"]


def test_a_lost_race_says_who_decided_first(
        reviewer: Identity, scene: list[dict[str, Any]], app_db: AppDB, db: Conn,
        project: str) -> None:
    db.execute("INSERT INTO review.settings (project_id, second_opinion_share) VALUES (%s, 0)",
               (project,))  # the rival's accept is not routed to a second opinion
    db.commit()
    cid = scene[1]["candidate_id"]
    at = app_test("pages/2_Candidate.py", reviewer)
    at.query_params["id"] = str(cid)
    at.run()
    rival = app_db.sign_in_key(str(make_person_key(db, project)["api_key"]))
    app_api.decide(app_db, rival, cid, "accept")  # the rival clicks first
    _button(at, "Accept").click().run()
    [error] = [e.value for e in at.error]
    assert error.startswith(f"Not recorded: candidate {cid} was already decided by "
                            f"{rival.person} at ")
    assert db.execute("SELECT count(*) AS n, min(verified_by) AS who FROM events.events"
                      " WHERE candidate_id = %s", (cid,)).fetchone() == {
                          "n": 1, "who": rival.person}


def test_next_candidate_follows_the_queue(reviewer: Identity,
                                          scene: list[dict[str, Any]]) -> None:
    at = app_test("pages/1_Review_queue.py", reviewer)
    at.run()
    ids = _queue_ids(at)
    _button(at, "Open candidate").click().run()
    assert at.title[0].value.startswith(f"Candidate #{ids[0]} · ")
    assert at.query_params["id"] == str(ids[0])
    # AppTest reruns the page it was switched to: follow the app's switch, as a browser does.
    at.switch_page("pages/2_Candidate.py")
    _button(at, "Next candidate").click().run()
    assert at.title[0].value.startswith(f"Candidate #{ids[1]} · ")


def test_second_opinion_round_trip_and_reviewer_stats(
        reviewer: Identity, scene: list[dict[str, Any]], app_db: AppDB, db: Conn,
        project: str) -> None:
    db.execute("INSERT INTO review.settings (project_id, second_opinion_share) VALUES (%s, 1)"
               " ON CONFLICT (project_id) DO UPDATE SET second_opinion_share = 1", (project,))
    db.commit()
    accounts.create(db, "bea", "correct horse 1", project, "reviewer")
    cid = scene[2]["candidate_id"]
    first = app_api.decide(app_db, reviewer, cid, "accept")
    assert first["second_opinion"] is True

    home = app_test("streamlit_app.py").run()
    [account_tab_user, account_tab_password] = [t for t in home.text_input
                                                if t.label in ("User name", "Password")]
    account_tab_user.input("bea")
    account_tab_password.input("correct horse 1")
    [sign_in] = [b for b in home.button if b.label == "Sign in"]
    sign_in.click().run()
    bea = home.session_state["identity"]
    assert (bea.subject, bea.method) == ("bea", "account")

    at = app_test("pages/3_Second_opinions.py", bea).run()
    assert list(at.dataframe[0].value["id"]) == [cid]
    _button(at, "Give my opinion").click().run()
    assert at.title[0].value.startswith(f"Candidate #{cid}")
    assert at.subheader[0].value == "Second opinion"
    at.switch_page("pages/2_Candidate.py")
    _button(at, "Accept").click().run()
    assert not at.error and not at.exception
    assert db.execute("SELECT reviewer, opinion, kind FROM review.decisions"
                      " WHERE candidate_id = %s ORDER BY decision_id", (cid,)).fetchall() == [
        {"reviewer": reviewer.person, "opinion": "first", "kind": "accept"},
        {"reviewer": "bea", "opinion": "second", "kind": "accept"}]

    stats = app_test("pages/4_Reviewers.py", bea).run()
    assert not stats.exception and not stats.error
    table = stats.dataframe[0].value
    assert sorted(table["reviewer"]) == sorted(["bea", reviewer.person])
    assert set(table["mean_iou"]) == {1.0}
    agreement = stats.dataframe[1].value
    assert list(agreement["pairs"]) == [1]


def test_analytics_shows_the_accepted_event_with_csv(
        reviewer: Identity, scene: list[dict[str, Any]], app_db: AppDB, db: Conn) -> None:
    cid = next(r["candidate_id"] for r in scene if r["type"] == "follow")
    app_api.decide(app_db, reviewer, cid, "accept")
    db.execute("SELECT analytics.refresh(false)")
    db.commit()
    at = app_test("pages/5_Analytics.py", reviewer).run()
    assert not at.exception and not at.error
    headers = [s.value for s in at.subheader]
    assert headers[0] == "Events over time by type" and "Class balance" in headers
    downloads = at.get("download_button")
    assert downloads, "each shown section offers its CSV"


def test_another_projects_reviewer_sees_none_of_it(
        reviewer: Identity, scene: list[dict[str, Any]], app_db: AppDB, db: Conn,
        other_project: str) -> None:
    other = other_project
    them = app_db.sign_in_key(str(make_person_key(db, other)["api_key"]))
    at = app_test("pages/1_Review_queue.py", them).run()
    theirs = {r["candidate_id"] for r in db.execute(
        "SELECT candidate_id FROM candidates.candidates WHERE project_id = %s", (other,))}
    assert theirs and set(_queue_ids(at)) == theirs
    assert not theirs & {r["candidate_id"] for r in scene}
    assert set(at.dataframe[0].value["source"]) == {"b-plaza"}
    cid = scene[0]["candidate_id"]
    page = app_test("pages/2_Candidate.py", them)
    page.query_params["id"] = str(cid)
    page.run()
    assert [e.value for e in page.error] == [
        f"no candidate {cid} in your project (Pick a candidate from the review queue.)"]
    assert [t.value for t in page.title] == ["Candidate"]  # and a box for another number
    assert page.number_input(key="c_pick").value is None


def test_candidate_shows_the_sources_video_at_the_span(
        reviewer: Identity, scene: list[dict[str, Any]], db: Conn) -> None:
    cand = next(r for r in scene if r["type"] == "stop")
    cid = cand["candidate_id"]
    db.execute("UPDATE ingest.sources SET video_uri = 'https://cdn.example.com/cam.mp4'"
               " WHERE source_id = %s", (cand["source_id"],))
    db.commit()
    at = app_test("pages/2_Candidate.py", reviewer)
    at.query_params["id"] = str(cid)
    at.run()
    assert not at.exception and not at.error
    [video] = at.get("video")
    assert video.proto.url == "https://cdn.example.com/cam.mp4"
    origin = cand["start_ts"].replace(hour=0, minute=0, second=0, microsecond=0)
    assert video.proto.start_time == int((cand["start_ts"] - origin).total_seconds())
