"""secinf review and analytics app: sign-in (API key or local account)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st
from applib import state

from workers.appdb import AppDB, Identity
from workers.appdb import api as app_api
from workers.errors import SecinfError

st.set_page_config(page_title="secinf · review", page_icon=":material/verified:",
                   layout="wide")
st.title("secinf · review and analytics")
state.flash()


def _sign_in(how: Callable[[AppDB], Identity], project: str | None = None) -> None:
    try:
        db, who = state.sign_in_on_shards(how, project)
        projects = app_api.projects(db, who)
    except SecinfError as exc:
        st.error(f"Sign-in failed: {exc}")
        return
    label = ", ".join(f"{p['org']}/{p['slug']}" for p in projects) or "no project"
    state.sign_in(who, label)
    st.rerun()


who = state.identity()
if who is None:
    st.write("Reviewers and analysts sign in with an API key of their project, or with a "
             "local account. Everything you see is what your role may see in your project.")
    key_tab, account_tab = st.tabs(["API key", "Account"])
    with key_tab, st.form("key_form", clear_on_submit=True):
        key = st.text_input("API key", type="password", placeholder="sik_…")
        by_key = st.form_submit_button("Sign in with key", type="primary")
    with account_tab, st.form("account_form", clear_on_submit=True):
        username = st.text_input("User name")
        password = st.text_input("Password", type="password")
        project = st.text_input("Project (org/project)", placeholder="optional")
        by_account = st.form_submit_button("Sign in", type="primary")
    if by_key:
        _sign_in(lambda db: db.sign_in_key(key))
    if by_account:
        _sign_in(lambda db: db.sign_in_account(username, password, project or None),
                 project or None)
    st.stop()

st.success(f"Signed in as **{who.person}**, role **{who.role}**, project "
           f"**{st.session_state.get('project_label', '')}**.")
if who.expires_at is not None:
    st.caption(f"This session ends at {who.expires_at:%Y-%m-%d %H:%M:%S %Z}; "
               "sign in again then.")
cols = st.columns(8)
cols[0].page_link("pages/1_Review_queue.py", label="Review queue", icon=":material/list:")
cols[1].page_link("pages/2_Candidate.py", label="Candidate", icon=":material/search:")
cols[2].page_link("pages/3_Second_opinions.py", label="Second opinions",
                  icon=":material/group:")
cols[3].page_link("pages/4_Reviewers.py", label="Reviewers", icon=":material/leaderboard:")
cols[4].page_link("pages/5_Analytics.py", label="Analytics", icon=":material/monitoring:")
cols[5].page_link("pages/7_Datasets.py", label="Datasets", icon=":material/dataset:")
cols[6].page_link("pages/8_Usage.py", label="Usage", icon=":material/speed:")
cols[7].page_link("pages/9_Records.py", label="Records", icon=":material/policy:")
if st.button("Sign out", icon=":material/logout:"):
    state.sign_out("Signed out.")
    st.rerun()
