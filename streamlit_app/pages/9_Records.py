"""Records: how long each category of the project's data is kept, what retention deleted,
legal holds and erasures (api.retention, api.retention_runs, api.legal_holds,
api.tombstones). Read-only: changes go through the CLI or the API, audited with a reason."""

from __future__ import annotations

import streamlit as st
from applib import state
from applib.records_view import (
    ADMIN_ONLY,
    HOW_TO_CHANGE,
    NO_HOLDS,
    NO_RUNS,
    NO_TOMBSTONES,
    access,
    active_holds_text,
    holds,
    holds_frame,
    not_for_role,
    retention,
    retention_frame,
    runs,
    runs_chart,
    runs_frame,
    tombstones,
    tombstones_frame,
)

st.set_page_config(page_title="Records · secinf", page_icon=":material/policy:", layout="wide")
who = state.signed_in()
db = state.database()
st.title("Records")
st.caption("What the project keeps and for how long, what retention deleted, legal holds "
           "and erasures.")
may = state.guarded(lambda: access(db, who))
if not may.retention:
    st.info(not_for_role(who.role))
    st.stop()

st.subheader("Retention")
st.dataframe(retention_frame(state.guarded(lambda: retention(db, who))), hide_index=True,
             width="stretch")
st.caption(HOW_TO_CHANGE)
if not may.admin:
    st.caption(ADMIN_ONLY)
    st.stop()

hold_rows = state.guarded(lambda: holds(db, who))
st.subheader("Legal holds")
warning = active_holds_text(hold_rows)
if warning:
    st.warning(warning)
if hold_rows:
    st.dataframe(holds_frame(hold_rows), hide_index=True, width="stretch")
else:
    st.info(NO_HOLDS)

st.subheader("Retention runs")
run_rows = state.guarded(lambda: runs(db, who))
if run_rows:
    st.altair_chart(runs_chart(run_rows), width="stretch")
    st.dataframe(runs_frame(run_rows), hide_index=True, width="stretch")
else:
    st.info(NO_RUNS)

st.subheader("Erasures")
stones = state.guarded(lambda: tombstones(db, who))
if stones:
    st.dataframe(tombstones_frame(stones), hide_index=True, width="stretch")
    st.caption("A tombstone keeps what was erased (ids and counts, never the data) for 7 "
               "years; published dataset versions that held the actor are superseded.")
else:
    st.info(NO_TOMBSTONES)
