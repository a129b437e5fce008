"""Analytics logic (no Streamlit calls): api.project_metrics sections as tables, charts and
CSV files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import altair as alt
import pandas as pd

from workers.analytics.export import csv_cell


@dataclass(frozen=True)
class Section:
    """One metric of the document: its key, title, columns and time columns."""

    key: str
    title: str
    columns: tuple[str, ...]
    times: tuple[str, ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section("events_over_time", "Events over time by type",
            ("bucket", "type", "verification", "events"), ("bucket",)),
    Section("dwell_histogram", "Dwell time per zone",
            ("zone", "bin_start_s", "bin_end_s", "events")),
    Section("follow_rate", "Follow rate",
            ("source_id", "source_name", "day", "follows", "actors", "rate"), ("day",)),
    Section("route_shares", "Route choice shares", ("zone", "route", "choices", "share")),
    Section("reaction_latency", "Reaction latency",
            ("trigger", "bin_start_s", "bin_end_s", "events")),
    Section("class_balance", "Class balance",
            ("type", "events", "events_rule", "events_model", "events_human", "share",
             "candidates", "candidates_new", "candidates_scored", "candidates_in_review",
             "candidates_accepted", "candidates_rejected")),
)


def section_frame(doc: Mapping[str, Any], section: Section) -> pd.DataFrame:
    """The rows of one section as a table with the section's columns, in their order."""
    rows = doc.get(section.key) or []
    frame = pd.DataFrame.from_records(list(rows), columns=list(section.columns))
    for col in section.times:
        frame[col] = pd.to_datetime(frame[col], utc=True).dt.tz_localize(None)  # UTC
    return frame


def frames(doc: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    return {s.key: section_frame(doc, s) for s in SECTIONS}


def totals(tables: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Headline numbers from the class balance: verified events (all, by a person) and
    candidates."""
    balance = tables["class_balance"]
    return {"Verified events": int(balance["events"].sum()),
            "Verified by a reviewer": int(balance["events_human"].sum()),
            "Candidates": int(balance["candidates"].sum())}


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as shown, as UTF-8 CSV (timestamps in ISO 8601); text cells that a
    spreadsheet would run as a formula get a leading quote (csv_cell), number columns are
    written as they are."""
    text_columns = [c for c in frame.columns
                    if not (pd.api.types.is_numeric_dtype(frame[c])
                            or pd.api.types.is_datetime64_any_dtype(frame[c]))]
    safe = frame.assign(**{c: frame[c].map(csv_cell) for c in text_columns})
    text: str = safe.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S%z")
    return text.encode()


def csv_name(section: Section, label: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in label).strip("-")
    return f"secinf-{safe or 'project'}-{section.key}.csv"


# ---------------------------------------------------------------- charts
Chart = alt.Chart | alt.FacetChart


BUCKET_FORMATS = {"hour": "%Y-%m-%d %H:00", "day": "%Y-%m-%d", "week": "week of %Y-%m-%d",
                  "month": "%Y-%m"}


def events_chart(frame: pd.DataFrame, bucket: str) -> alt.Chart:
    """Stacked bars of events per time bucket (one bar per bucket, labelled in UTC)."""
    data = frame.assign(when=frame["bucket"].dt.strftime(BUCKET_FORMATS.get(bucket, "%Y-%m-%d")))
    chart: alt.Chart = (alt.Chart(data).mark_bar()
                        .encode(x=alt.X("when:O", title=f"start ({bucket}, UTC)",
                                        sort=alt.SortField("bucket")),
                                y=alt.Y("sum(events):Q", title="events"),
                                color=alt.Color("type:N", title="type"),
                                tooltip=["when", "type", "verification", "events"]))
    return chart


def histogram_chart(frame: pd.DataFrame, group: str, unit: str = "s") -> alt.FacetChart:
    """Bars over [bin_start_s, bin_end_s), one small chart per zone or trigger."""
    data = frame.assign(**{group: frame[group].fillna("(none)")})
    chart: alt.FacetChart = (
        alt.Chart(data).mark_bar()
        .encode(x=alt.X("bin_start_s:Q", bin="binned", title=f"seconds ({unit})"),
                x2="bin_end_s:Q", y=alt.Y("events:Q", title="events"),
                tooltip=[group, "bin_start_s", "bin_end_s", "events"])
        .properties(width=260, height=160)
        .facet(facet=alt.Facet(f"{group}:N", title=None), columns=3))
    return chart


def follow_chart(frame: pd.DataFrame) -> alt.Chart:
    chart: alt.Chart = (alt.Chart(frame).mark_line(point=True)
                        .encode(x=alt.X("day:T", title="day (UTC)",
                                       scale=alt.Scale(type="utc")),
                                y=alt.Y("rate:Q", title="follows per tracked actor"),
                                color=alt.Color("source_name:N", title="source"),
                                tooltip=["source_name", "day:T", "follows", "actors",
                                         alt.Tooltip("rate:Q", format=".3f")]))
    return chart


def routes_chart(frame: pd.DataFrame) -> alt.Chart:
    data = frame.assign(zone=frame["zone"].fillna("(none)"), route=frame["route"].fillna("?"))
    chart: alt.Chart = (alt.Chart(data).mark_bar()
                        .encode(x=alt.X("share:Q", stack="normalize", title="share",
                                        axis=alt.Axis(format="%")),
                                y=alt.Y("zone:N", title="branch zone"),
                                color=alt.Color("route:N", title="route"),
                                tooltip=["zone", "route", "choices",
                                         alt.Tooltip("share:Q", format=".1%")]))
    return chart


def balance_chart(frame: pd.DataFrame) -> alt.Chart:
    long = frame.melt(id_vars=["type"], value_vars=["events_rule", "events_model",
                                                    "events_human"],
                      var_name="verification", value_name="count")
    long["verification"] = long["verification"].str.removeprefix("events_")
    chart: alt.Chart = (alt.Chart(long).mark_bar()
                        .encode(x=alt.X("count:Q", title="verified events"),
                                y=alt.Y("type:N", title=None, sort="-x"),
                                color=alt.Color("verification:N", title="verified by"),
                                tooltip=["type", "verification", "count"]))
    return chart


def chart_for(section: Section, frame: pd.DataFrame, bucket: str) -> Chart:
    """The chart of one section's table."""
    builders: dict[str, Callable[[pd.DataFrame], Chart]] = {
        "events_over_time": lambda f: events_chart(f, bucket),
        "dwell_histogram": lambda f: histogram_chart(f, "zone"),
        "follow_rate": follow_chart,
        "route_shares": routes_chart,
        "reaction_latency": lambda f: histogram_chart(f, "trigger"),
        "class_balance": balance_chart,
    }
    return builders[section.key](frame)
