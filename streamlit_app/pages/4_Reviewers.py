"""Reviewers: throughput, agreement (Cohen's kappa, mean span IoU) and reputation."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st
from applib import state
from applib.reviewers_view import (
    agreement_chart,
    agreement_frame,
    measures_chart,
    shown,
    stats_frame,
)

from workers.appdb import api as app_api

st.set_page_config(page_title="Reviewers · secinf", page_icon=":material/leaderboard:",
                   layout="wide")
who = state.signed_in()
db = state.database()
st.title("Reviewers")
st.caption("Throughput is decisions per active hour. Agreement compares first decisions with "
           "second opinions: Cohen's kappa on accept/reject, mean temporal IoU of the spans "
           "both accepted. Reputation weights who is drawn for future second opinions.")

start = end = None
if st.toggle("Only decisions in a period", key="r_period"):
    today = datetime.now(UTC).date()
    days = st.date_input("Period", (today - timedelta(days=7), today), key="r_days")
    if isinstance(days, tuple) and len(days) == 2:
        start = datetime.combine(days[0], time(0), tzinfo=UTC)
        end = datetime.combine(days[1], time(0), tzinfo=UTC) + timedelta(days=1)

stats = stats_frame(state.guarded(lambda: app_api.reviewer_stats(db, who, start, end)))
agreement = agreement_frame(state.guarded(lambda: app_api.agreement_by_type(db, who)))

if stats.empty:
    st.info("No decisions yet in this project.")
else:
    me = stats[stats["reviewer"] == who.person]
    if not me.empty:
        cols = st.columns(4)
        for col, (label, column) in zip(cols, (
                ("My decisions", "decisions"), ("My decisions per hour", "per_hour"),
                ("My kappa", "kappa"), ("My reputation", "reputation")), strict=True):
            col.metric(label, shown(me[column].iloc[0]))
    st.subheader("Per reviewer")
    st.dataframe(stats, hide_index=True, width="stretch")
    st.altair_chart(measures_chart(stats))
    st.caption("Kappa and IoU stay empty until second opinions on your decisions come back.")

st.subheader("Agreement per event type")
if agreement.empty:
    st.info("No second opinions answered yet.")
else:
    st.dataframe(agreement, hide_index=True, width="stretch")
    st.altair_chart(agreement_chart(agreement), width="stretch")
