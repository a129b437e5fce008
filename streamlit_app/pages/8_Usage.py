"""Usage: the project's use against quota per metric (a chart of the used fraction with the
80 % and 100 % lines), one metric's hours, when quotas reset, and the organization's
subscription and invoices (api.usage, api.usage_hourly, api.subscription, api.invoices)."""

from __future__ import annotations

import json

import streamlit as st
from applib import state
from applib.usage_view import (
    HOURS,
    INVOICES_NOT_FOR_ROLE,
    NO_INVOICES,
    access,
    fraction_chart,
    hourly,
    hourly_chart,
    hourly_text,
    invoices,
    invoices_frame,
    not_for_role,
    period_choices,
    period_param,
    resets_text,
    subscription,
    subscription_text,
    usage,
    usage_frame,
    warning_text,
)

from workers import usage as words
from workers.appdb import AppDB, Identity
from workers.appdb.session import Row

st.set_page_config(page_title="Usage · secinf", page_icon=":material/speed:", layout="wide")
who = state.signed_in()
db = state.database()
st.title("Usage")
st.caption("What the project used of each metered quantity against its quota (the plan's, "
           "or one an operator set), and the organization's invoices. Refreshed every "
           "minute.")
claims_key = json.dumps(who.claims, sort_keys=True, default=str)
may = state.guarded(lambda: access(db, who))
if not (may.usage or may.invoices):
    st.info(not_for_role(who.role))
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def _usage(_db: AppDB, _who: Identity, conninfo: str, claims_key: str, period: str | None
           ) -> list[Row]:
    return usage(_db, _who, period)


@st.cache_data(ttl=60, show_spinner=False)
def _hourly(_db: AppDB, _who: Identity, conninfo: str, claims_key: str, metric: str,
            period: str | None, hours: int) -> list[Row]:
    start, end = words.hourly_range(_usage(_db, _who, conninfo, claims_key, period), period,
                                    hours)
    return hourly(_db, _who, metric, start, end)


@st.cache_data(ttl=60, show_spinner=False)
def _billing(_db: AppDB, _who: Identity, conninfo: str, claims_key: str
             ) -> tuple[list[Row], list[Row]]:
    return subscription(_db, _who), invoices(_db, _who)


if may.usage:
    choice = st.selectbox("Period", period_choices(), key="u_period",
                          help="The current quota period, or a past month (UTC).")
    period = period_param(choice)
    rows = state.guarded(lambda: _usage(db, who, db.conninfo, claims_key, period))
    st.subheader("Against quota")
    warning = warning_text(rows)
    if warning:
        st.warning(warning)
    st.altair_chart(fraction_chart(rows), width="stretch")
    st.dataframe(usage_frame(rows), hide_index=True, width="stretch")
    st.caption(resets_text(rows) + ". Metrics without a quota are unlimited and not charted.")

    st.subheader("Per hour")
    units = {r["metric"]: r["unit"] for r in rows}
    pick = st.columns(2)
    metric = pick[0].selectbox("Metric", list(units), key="u_metric")
    span = pick[1].selectbox("Hours", list(HOURS), key="u_hours", disabled=period is not None,
                             help="With a past month: that month's hours.")
    hours = state.guarded(lambda: _hourly(db, who, db.conninfo, claims_key, metric, period,
                                          HOURS[span]))
    st.altair_chart(hourly_chart(hours, metric, units[metric]), width="stretch")
    st.caption(hourly_text(hours, units[metric]))

if may.invoices:
    subs, bills = state.guarded(lambda: _billing(db, who, db.conninfo, claims_key))
    st.subheader("Subscription")
    st.markdown(subscription_text(subs))
    st.subheader("Invoices")
    if bills:
        st.dataframe(invoices_frame(bills), hide_index=True, width="stretch",
                     column_config={"invoice": st.column_config.LinkColumn(
                         "invoice", display_text="open in Stripe")})
    else:
        st.info(NO_INVOICES)
else:
    st.caption(INVOICES_NOT_FOR_ROLE)
