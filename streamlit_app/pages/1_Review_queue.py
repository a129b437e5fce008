"""Review queue: filter, order and page through the candidates of your project."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import altair as alt
import streamlit as st
from applib import state
from applib.queue_view import (
    ORDER_LABELS,
    STATUS_LABELS,
    UNDECIDED,
    Pager,
    build_filter,
    count_of,
    counts_frame,
    filter_key,
    queue_frame,
    source_options,
)

from workers.appdb import api as app_api

st.set_page_config(page_title="Review queue · secinf", page_icon=":material/list:",
                   layout="wide")
who = state.signed_in()
db = state.database()
st.title("Review queue")
state.flash("success")

everything = state.facets(db, who)
type_choices = sorted((everything.get("by_type") or {}).keys())
sources = source_options(everything)

with st.sidebar:
    st.header("Filters")
    types = st.multiselect("Type", type_choices, key="q_types")
    source_ids = st.multiselect("Source", list(sources), format_func=sources.__getitem__,
                                key="q_sources")
    statuses = st.multiselect("Status", list(STATUS_LABELS), default=list(UNDECIDED),
                              format_func=STATUS_LABELS.__getitem__, key="q_statuses")
    score_range = st.slider("Score", 0.0, 1.0, (0.0, 1.0), step=0.01, key="q_score")
    start = end = None
    if st.toggle("Limit the time", key="q_time_on"):
        day = st.date_input("Day (UTC)", value=datetime.now(UTC).date(), key="q_day")
        t_from, t_to = st.slider("Start time (UTC)", time(0, 0), time(23, 59),
                                 (time(0, 0), time(23, 59)), step=timedelta(minutes=1),
                                 key="q_times")
        start = datetime.combine(day, t_from, tzinfo=UTC)
        end = datetime.combine(day, t_to, tzinfo=UTC) + timedelta(minutes=1)
    order = st.radio("Order", app_api.ORDERS, format_func=ORDER_LABELS.__getitem__,
                     key="q_order") or "uncertain"
    limit = st.select_slider("Rows per page", [10, 25, 50, 100], value=25, key="q_limit")

flt = build_filter(types, source_ids, score_range, statuses, start, end)
pager: Pager = st.session_state.setdefault("q_pager", Pager())
pager.reset_for(filter_key(flt, order, limit))
st.session_state["q_filter"] = (flt, order, limit)

counts = state.guarded(lambda: app_api.review_counts(db, who, flt))
rows = state.guarded(lambda: app_api.review_queue(db, who, flt, order, pager.after, limit))
st.session_state["q_rows"] = rows

head = st.columns([1, 1, 1, 3])
head[0].metric("Matching candidates", int(counts.get("total", 0)))
head[1].metric("Page", pager.number)
head[2].metric("On this page", len(rows))
with head[3]:
    by_type = counts_frame(counts, "by_type")
    if not by_type.empty:
        st.altair_chart(
            alt.Chart(by_type).mark_bar().encode(
                x=alt.X("candidates:Q", title="candidates"),
                y=alt.Y("value:N", title=None, sort="-x"),
                tooltip=["value", "candidates"]).properties(height=28 * len(by_type) + 20),
            width="stretch")
st.caption(" · ".join(f"{STATUS_LABELS.get(s, s)}: {count_of(counts, 'by_status', s)}"
                      for s in STATUS_LABELS))

table = queue_frame(rows)
picked = st.dataframe(table, hide_index=True, width="stretch",
                      on_select="rerun", selection_mode="single-row", key="q_table",
                      column_config={"start": st.column_config.DatetimeColumn(
                          "start", format="YYYY-MM-DD HH:mm:ss.SSS")})
selected = picked.selection.rows if picked is not None else []

nav = st.columns([1, 1, 2, 1.2, 1.3])
if nav[0].button("Previous page", disabled=not pager.has_previous, icon=":material/west:"):
    pager.back()
    st.rerun()
if nav[1].button("Next page", disabled=len(rows) < limit, icon=":material/east:"):
    pager.forward(rows[-1]["cursor"] if rows else None)
    st.rerun()
options = [int(r["candidate_id"]) for r in rows]
default = options[selected[0]] if selected else (options[0] if options else None)
chosen = nav[3].selectbox("Candidate", options, index=options.index(default) if default
                          in options else None, key="q_pick", label_visibility="collapsed",
                          placeholder="Candidate #")
if nav[4].button("Open candidate", type="primary", disabled=chosen is None, shortcut="O",
                 icon=":material/open_in_new:"):
    st.session_state["candidate_id"] = chosen
    st.switch_page("pages/2_Candidate.py", query_params={"id": str(chosen)})
if not rows:
    st.info("No candidates match these filters.")
