"""`secinf usage show` and `secinf quotas show|set|clear`: a project's use against its
quotas, one metric's hours, and an operator's quota of its own for a project."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from workers import tenancy, usage
from workers.cli.output import console, print_json
from workers.db.connect import connect

usage_app = typer.Typer(help="A project's use of each metric against its quota.",
                        no_args_is_help=True)
quotas_app = typer.Typer(help="Quotas per project and metric: the plan's, or an operator's.",
                         no_args_is_help=True)
PROJECT = typer.Option(..., "--project", "-p", help="Project as org/project.")
JSON = typer.Option(False, "--json", help="Print JSON.")
REASON = typer.Option(..., "--reason", help="Why (kept in the audit log, 3-500 characters).")
STYLE = {"near": "bold yellow", "over": "bold red"}


# ---------------------------------------------------------------- usage show
@usage_app.command("show")
def usage_show(
    project: str = PROJECT,
    period: str | None = typer.Option(
        None, "--period", help="A past or the current period: a month (2026-12) or a UTC "
                               "day (2026-12-07); default: the current one."),
    hourly: str | None = typer.Option(
        None, "--hourly", metavar="METRIC",
        help="Also chart this metric per hour: the period's hours, or the last --hours."),
    hours: int = typer.Option(24, "--hours", help="Hours to chart without --period (<= 744)."),
    json_out: bool = JSON,
) -> None:
    """Use against quota per metric (used, quota, %, when it resets); 80 %+ highlighted."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        rows = usage.usage(conn, project_id, period)
        hours_rows: list[dict[str, Any]] = []
        if hourly is not None:
            usage.require_metric(conn, hourly)
            start, end = usage.hourly_range(rows, period, hours)
            hours_rows = usage.hourly(conn, project_id, hourly, start, end)
    if json_out:
        print_json({"project": project, "project_id": project_id, "period": period,
                    "usage": rows, **({"hourly": {"metric": hourly, "hours": hours_rows}}
                                      if hourly is not None else {})})
        return
    _usage_table(rows, f"usage of {project}" + (f" in {period}" if period else ""))
    if hourly is not None:
        unit = next(r["unit"] for r in rows if r["metric"] == hourly)
        _hourly_chart(hourly, unit, hours_rows)


def _usage_table(rows: list[dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for col, justify in (("metric", "left"), ("unit", "left"), ("used", "right"),
                         ("quota", "right"), ("%", "right"), ("period", "left"),
                         ("resets", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        state = usage.level(r["used_fraction"])
        table.add_row(r["metric"], r["unit"], usage.amount_text(r["used"], r["unit"]),
                      usage.quota_text(r["quota"], r["unit"]),
                      usage.percent_text(r["used_fraction"]),
                      f"{r['period']} from {r['period_start']:%Y-%m-%d}",
                      usage.utc_text(r["resets_at"]), style=STYLE.get(state))
    console.print(table)
    near = [r["metric"] for r in rows if usage.level(r["used_fraction"]) in STYLE]
    if near:
        console.print(f"[yellow]at 80 % or more of the quota:[/] {', '.join(near)} (work past "
                      "a quota is refused until it resets; an operator can raise it with "
                      "`secinf quotas set`)", highlight=False)


def _hourly_chart(metric: str, unit: str, hours: list[dict[str, Any]]) -> None:
    if not hours:
        return
    total = sum(int(h["amount"]) for h in hours)
    console.print(f"\n[bold]{escape(metric)}[/] per UTC hour, "
                  f"{hours[0]['hour']:%Y-%m-%d %H:00} to {hours[-1]['hour']:%Y-%m-%d %H:59} "
                  f"UTC: {usage.amount_text(total, unit)} in all", highlight=False)
    console.print(f"{'':10}  {'0     6     12    18    ':24}", highlight=False)
    for d in usage.days(hours):
        peak = (f", peak {usage.amount_text(d.peak, unit)} at {d.peak_hour:%H}:00"
                if d.peak_hour is not None else "")
        console.print(f"{d.day:%Y-%m-%d}  {d.line:24}  {usage.amount_text(d.total, unit)}"
                      f"{peak}", highlight=False)


# ---------------------------------------------------------------- quotas
@quotas_app.command("show")
def quotas_show(project: str = PROJECT, json_out: bool = JSON) -> None:
    """Each metric's quota in force, the plan's, and the project's own (who, when, why)."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        rows = usage.quotas(conn, project_id)
    if json_out:
        print_json({"project": project, "project_id": project_id, "quotas": rows})
        return
    table = Table(title=f"quotas of {project} (plan {rows[0]['plan'] if rows else '?'})")
    for col in ("metric", "per", "quota", "source", "plan's", "set by", "set at", "reason"):
        table.add_column(col)
    for r in rows:
        unit = r["unit"]
        table.add_row(
            r["metric"], r["period"], usage.quota_text(r["quota"], unit), r["quota_source"],
            usage.quota_text(r["plan_quota"], unit) if r["plan_has_quota"] else "unlimited",
            r["set_by"] or "", f"{r['set_at']:%Y-%m-%d %H:%M}" if r["set_at"] else "",
            escape(r["reason"] or ""))
    console.print(table)


@quotas_app.command("set")
def quotas_set(
    metric: str = typer.Argument(..., metavar="METRIC",
                                 help="The metric (`secinf quotas show` lists them)."),
    quota: str = typer.Argument(..., metavar="N|unlimited",
                                help="Per period, in the metric's unit: 5000, 10Gi, 2M, or "
                                     "'unlimited'."),
    project: str = PROJECT,
    reason: str = REASON,
    json_out: bool = JSON,
) -> None:
    """Give the project a quota of its own for a metric, over its plan's (operators only)."""
    value = usage.parse_quota(quota)
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        change = usage.set_quota(conn, project_id, metric, value, reason)
    _report(change, project, json_out)


@quotas_app.command("clear")
def quotas_clear(
    metric: str = typer.Argument(..., metavar="METRIC",
                                 help="The metric whose own quota to remove."),
    project: str = PROJECT,
    reason: str = REASON,
    json_out: bool = JSON,
) -> None:
    """Remove the project's own quota of a metric: the plan's applies again (operators)."""
    with connect() as conn:
        project_id = tenancy.resolve_project(conn, project)
        change = usage.set_quota(conn, project_id, metric, None, reason, clear=True)
    _report(change, project, json_out)


def _report(change: usage.QuotaChange, project: str, json_out: bool) -> None:
    if json_out:
        print_json({"project": project, **change.as_dict()})
        return
    if not change.changed:
        console.print(f"{change.metric} of {project} had no quota of its own: nothing changed "
                      f"({_quota_words(change.quota, change.source)})", highlight=False)
        return
    console.print(f"[green]✓[/] {change.metric} of {project}: "
                  f"{_quota_words(change.before, change.before_source)} → "
                  f"{_quota_words(change.quota, change.source)}", highlight=False)


def _quota_words(quota: int | None, source: str) -> str:
    amount = "unlimited" if quota is None else f"{quota:,}"
    return f"{amount}, " + {"override": "its own", "plan": "the plan's"}.get(source, "no quota")
