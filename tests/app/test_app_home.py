"""Sign-in page (AppTest): API key, wrong key, sign-out, and pages refusing strangers."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.app.conftest import app_test
from workers import tenancy
from workers.appdb import Identity
from workers.review import accounts

pytestmark = pytest.mark.db
Conn = psycopg.Connection[dict[str, Any]]


def _sign_in_with_key(key: str) -> Any:
    at = app_test("streamlit_app.py").run()
    at.text_input[0].input(key)
    at.button[0].click().run()
    return at


def test_sign_in_with_an_api_key_shows_who_and_where(secinf_env: str, reviewer_key: str) -> None:
    at = _sign_in_with_key(reviewer_key)
    assert not at.exception and not at.error
    who = at.session_state["identity"]
    assert isinstance(who, Identity) and who.role == "reviewer"
    assert "acme/north" in at.success[0].value and who.person in at.success[0].value


def test_a_wrong_key_gets_a_clear_message(secinf_env: str, reviewer_key: str) -> None:
    at = _sign_in_with_key(reviewer_key[:-3] + "xyz")
    assert [e.value for e in at.error] == [
        "Sign-in failed: invalid, revoked or expired API key (Check the key you were given, "
        "or ask a project admin for a new one (secinf keys create).)"]
    assert "identity" not in at.session_state


def test_a_revoked_key_signs_the_reviewer_out_with_a_message(
        secinf_env: str, reviewer_key: str, db: Conn) -> None:
    at = _sign_in_with_key(reviewer_key)
    tenancy.revoke_key(db, reviewer_key[:16])
    at.switch_page("pages/4_Reviewers.py").run()
    assert "identity" not in at.session_state
    assert any("API key revoked or expired" in w.value for w in at.warning)


def test_account_sign_in_and_a_disabled_account_is_signed_out(
        secinf_env: str, db: Conn, project: str) -> None:
    accounts.create(db, "carl", "a long passphrase", project, "reviewer")
    at = app_test("streamlit_app.py").run()
    [user, password] = [t for t in at.text_input if t.label in ("User name", "Password")]
    user.input("carl")
    password.input("wrong passphrase")
    [sign_in] = [b for b in at.button if b.label == "Sign in"]
    sign_in.click().run()
    assert [e.value for e in at.error] == [
        "Sign-in failed: invalid user name or password, or the account is disabled (Check your "
        "user name and password, or ask an administrator (secinf accounts).)"]
    [user, password] = [t for t in at.text_input if t.label in ("User name", "Password")]
    user.input("carl")
    password.input("a long passphrase")
    [sign_in] = [b for b in at.button if b.label == "Sign in"]
    sign_in.click().run()
    assert at.session_state["identity"].subject == "carl"
    accounts.set_disabled(db, "carl")
    at.switch_page("pages/1_Review_queue.py").run()
    assert "identity" not in at.session_state
    assert [w.value for w in at.warning] == ["signed out: account disabled (Ask an administrator "
                                             "to re-enable it (secinf accounts).)"]


def test_sign_out(secinf_env: str, reviewer_key: str) -> None:
    at = _sign_in_with_key(reviewer_key)
    [out] = [b for b in at.button if b.label == "Sign out"]
    out.click().run()
    assert "identity" not in at.session_state
    assert [i.value for i in at.warning] == ["Signed out."]


@pytest.mark.parametrize("page", ["pages/1_Review_queue.py", "pages/2_Candidate.py",
                                  "pages/3_Second_opinions.py", "pages/4_Reviewers.py",
                                  "pages/5_Analytics.py"])
def test_pages_ask_strangers_to_sign_in(secinf_env: str, page: str) -> None:
    at = app_test(page).run()
    assert not at.exception
    assert [i.value for i in at.info] == ["Sign in first."]
