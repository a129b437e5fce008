"""Second opinions: decisions routed to you for an independent look."""

from __future__ import annotations

import streamlit as st
from applib import state
from applib.queue_view import opinions_frame

from workers.appdb import api as app_api

st.set_page_config(page_title="Second opinions · secinf", page_icon=":material/group:",
                   layout="wide")
who = state.signed_in()
db = state.database()
st.title("Second opinions")
state.flash("success")
st.caption("A share of first decisions is routed to a second reviewer, drawn by reputation. "
           "Decide without looking at the first decision; agreement feeds the Reviewers page.")

rows = state.guarded(lambda: app_api.second_opinions_for_me(db, who, 100))
if not rows:
    st.info("Nothing is waiting for your opinion.")
    st.stop()

st.dataframe(opinions_frame(rows), hide_index=True, width="stretch")
ids = [int(r["candidate_id"]) for r in rows]
pick = st.selectbox("Candidate", ids, key="so_pick")
if st.button("Give my opinion", type="primary", shortcut="O", icon=":material/rate_review:"):
    st.session_state["candidate_id"] = pick
    st.switch_page("pages/2_Candidate.py", query_params={"id": str(pick), "opinion": "second"})
