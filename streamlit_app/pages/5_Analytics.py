"""Analytics: events over time, dwell, follow rate, route choice, reaction latency, class
balance; filtered by source and time, each table downloadable as CSV."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import streamlit as st
from applib import state
from applib.analytics_view import (
    SECTIONS,
    chart_for,
    csv_bytes,
    csv_name,
    frames,
    totals,
)
from applib.queue_view import source_options

from workers.appdb import api as app_api

st.set_page_config(page_title="Analytics · secinf", page_icon=":material/monitoring:",
                   layout="wide")
who = state.signed_in()
db = state.database()
st.title("Analytics")

everything = state.facets(db, who)
sources = source_options(everything)
with st.sidebar:
    st.header("Filters")
    source_ids = st.multiselect("Source", list(sources), format_func=sources.__getitem__,
                                key="a_sources")
    start = end = None
    if st.toggle("Limit the time", key="a_time_on"):
        today = datetime.now(UTC).date()
        days = st.date_input("Days (UTC)", (today - timedelta(days=7), today), key="a_days")
        if isinstance(days, tuple) and len(days) == 2:
            start = datetime.combine(days[0], time(0), tzinfo=UTC)
            end = datetime.combine(days[1], time(0), tzinfo=UTC) + timedelta(days=1)

doc = state.guarded(lambda: app_api.project_metrics(db, who, start, end,
                                                     tuple(source_ids) or None))
tables = frames(doc)
label = str(st.session_state.get("project_label", "project")).replace("/", "-")
refreshed = doc.get("refreshed_at")
st.caption(f"From the analytics views refreshed at {refreshed} (pg_cron refreshes them "
           "concurrently)." if refreshed else
           "The analytics views have not been computed yet: pg_cron refreshes them within "
           "minutes (or run `SELECT analytics.refresh()`).")
cols = st.columns(3)
for col, (name, value) in zip(cols, totals(tables).items(), strict=True):
    col.metric(name, value)

for section in SECTIONS:
    frame = tables[section.key]
    st.subheader(section.title)
    if frame.empty:
        st.caption("Nothing to show for these filters.")
        continue
    st.altair_chart(chart_for(section, frame, str(doc.get("bucket", "hour"))), width="stretch")
    with st.expander("Table", expanded=False):
        st.dataframe(frame, hide_index=True, width="stretch")
    st.download_button(f"Download CSV · {section.title}", csv_bytes(frame),
                       file_name=csv_name(section, label), mime="text/csv",
                       key=f"csv_{section.key}", icon=":material/download:")
