"""End to end in a real browser: `streamlit run` against a test database, Debian's Chromium
driven by Playwright. A reviewer signs in with an API key, opens a candidate from the queue,
narrows its span with the keyboard, accepts it, and the database holds the human event with
that span; a reviewer of another project signs in and sees none of it. Every page is
photographed into the test artifacts (artifacts/app/, or $SECINF_TEST_ARTIFACTS)."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from tests.app.browser import ARTIFACTS, CHROMIUM, chromium, streamlit_app
from tests.support.factories import make_person_key

pytestmark = [pytest.mark.db, pytest.mark.browser, pytest.mark.slow]
Conn = psycopg.Connection[dict[str, Any]]
WAIT_MS = 30_000
SPAN_STEPS = 5  # frames the end of the span moves left (10 fps: 0.5 s)
VIEWPORT = {"width": 1440, "height": 1800}  # Streamlit scrolls inside the page: show it all


def _shot(page: Any, name: str) -> None:
    """A full-page screenshot once the run has finished and every element has drawn."""
    page.locator("[data-testid='stStatusWidget']").wait_for(state="hidden", timeout=WAIT_MS)
    page.locator("[data-testid='stSkeleton']").first.wait_for(state="detached",
                                                            timeout=WAIT_MS)
    page.wait_for_timeout(400)  # charts and grids paint after their data arrives
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, url: str, key: str) -> None:
    page.goto(url)
    page.get_by_role("textbox", name="API key").fill(key)
    page.get_by_role("button", name="Sign in with key").click()
    page.get_by_text("Signed in as").first.wait_for(timeout=WAIT_MS)


def _metric(page: Any, label: str) -> int:
    """The value of the st.metric labelled `label`."""
    box = page.get_by_test_id("stMetric").filter(has_text=label)
    return int(box.get_by_test_id("stMetricValue").inner_text().strip())


def _go(page: Any, name: str, ready: str) -> None:
    """Open a page from the sidebar navigation and wait until `ready` shows."""
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name, exact=True).click()
    page.get_by_text(ready).first.wait_for(timeout=WAIT_MS)


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed "
                    "(apt-get install chromium); the test never downloads a browser")
def test_reviewer_adjusts_and_accepts_and_another_project_sees_nothing(
        dsn: str, db: Conn, project: str, other_project: str) -> None:
    started = time.monotonic()
    north, south = project, other_project
    db.execute("INSERT INTO review.settings (project_id, second_opinion_share) VALUES (%s, 0)",
               (north,))
    db.commit()
    north_key = make_person_key(db, north)
    key_north = str(north_key["api_key"])
    key_south = str(make_person_key(db, south)["api_key"])

    with streamlit_app(dsn, ARTIFACTS / "streamlit.log") as url, chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        _sign_in(page, url, key_north)
        _shot(page, "01_home")

        _go(page, "Review queue", "Matching candidates")
        _shot(page, "02_review_queue")
        page.get_by_role("button", name="Open candidate").click()
        heading = page.get_by_role("heading", name=re.compile(r"^Candidate #\d+ · "))
        heading.wait_for(timeout=WAIT_MS)
        cid = int(re.findall(r"#(\d+)", heading.inner_text())[0])
        proposed = db.execute("SELECT start_ts, end_ts FROM candidates.candidates"
                              " WHERE candidate_id = %s", (cid,)).fetchone()
        assert proposed is not None

        # The span control's second thumb is its end: move it left frame by frame.
        end_thumb = page.get_by_role("slider").nth(2)
        end_thumb.focus()
        for _ in range(SPAN_STEPS):
            end_thumb.press("ArrowLeft")
        accept = page.get_by_role("button", name=re.compile(r"^Accept adjusted span"))
        accept.wait_for(timeout=WAIT_MS)
        _shot(page, "03_candidate")
        label = accept.inner_text()
        start_s, end_s = (float(x) for x in re.findall(r"(\d+\.\d+)", label)[:2])
        # Accept by its keyboard shortcut (A), as a reviewer working fast would.
        page.evaluate("document.activeElement.blur()")
        page.keyboard.press("a")
        page.get_by_text(f"Accepted candidate #{cid} → event #").wait_for(timeout=WAIT_MS)
        _shot(page, "04_candidate_after_accept")

        event = db.execute("SELECT source, verified_by, start_ts, end_ts FROM events.events"
                           " WHERE candidate_id = %s", (cid,)).fetchone()
        assert event is not None and event["source"] == "human"
        assert event["verified_by"] == north_key["owner"]  # the key's person (one reviewer)
        origin = proposed["start_ts"].replace(hour=0, minute=0, second=0, microsecond=0)
        assert event["start_ts"] == origin + timedelta(seconds=start_s)
        assert event["end_ts"] == origin + timedelta(seconds=end_s)
        snapped_end = round(round((proposed["end_ts"] - origin).total_seconds() * 10) / 10, 1)
        assert end_s == pytest.approx(snapped_end - SPAN_STEPS / 10)

        db.execute("SELECT analytics.refresh(false)")
        db.commit()
        _go(page, "Second opinions", "Second opinions")
        _shot(page, "05_second_opinions")
        _go(page, "Reviewers", "Per reviewer")
        _shot(page, "06_reviewers")
        _go(page, "Analytics", "Events over time by type")
        assert _metric(page, "Verified by a reviewer") == 1
        _shot(page, "07_analytics")

        other = browser.new_page(viewport=VIEWPORT)
        _sign_in(other, url, key_south)
        _go(other, "Review queue", "Matching candidates")
        south_open = db.execute(
            "SELECT count(*) AS n FROM candidates.candidates WHERE project_id = %s"
            " AND status IN ('new', 'scored')", (south,)).fetchone()
        assert _metric(other, "Matching candidates") == south_open["n"]
        _shot(other, "08_other_project_queue")
        _go(other, "Candidate", "Candidate #")
        typed = other.get_by_role("spinbutton", name="Candidate #")
        typed.fill(str(cid))
        typed.press("Enter")
        other.get_by_role("button", name="Open candidate").click()
        other.get_by_text(f"no candidate {cid} in your project").wait_for(timeout=WAIT_MS)
        _shot(other, "09_other_project_candidate")
        _go(other, "Analytics", "Verified by a reviewer")
        assert _metric(other, "Verified by a reviewer") == 0
        _shot(other, "10_other_project_analytics")
    elapsed = time.monotonic() - started
    assert elapsed < 120, f"the browser test took {elapsed:.0f}s"
