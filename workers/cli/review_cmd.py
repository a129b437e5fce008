"""`secinf review settings`: a project's second-opinion share and auto-accept thresholds."""

from __future__ import annotations

import typer

from workers.cli.output import print_json, print_table
from workers.db.connect import connect
from workers.review import settings as review_settings

review_app = typer.Typer(help="Review settings of a project.", no_args_is_help=True)


@review_app.command("settings")
def review_settings_command(
    project: str = typer.Option(..., "--project", "-p", help="Project as org/project."),
    second_opinion_share: float | None = typer.Option(
        None, "--second-opinion-share", help="Share of first decisions routed to a second "
                                             "reviewer (0-1; default 0.2)."),
    auto_accept_model: str | None = typer.Option(
        None, "--auto-accept-model", help="Model score from which candidates become 'model' "
                                          "events without a person (0-1 or 'off'; default "
                                          "0.95)."),
    auto_accept_rule: str | None = typer.Option(
        None, "--auto-accept-rule", help="Rule score from which candidates become 'rule' "
                                         "events (0-1 or 'off'; default off)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show (and, with options, change) the project's review settings; the pg_cron job
    secinf-review-promote applies the thresholds every minute (docs/review.md)."""
    with connect() as conn:
        row = review_settings.update(conn, project, second_opinion_share=second_opinion_share,
                                     auto_accept_model=auto_accept_model,
                                     auto_accept_rule=auto_accept_rule)
    if json_out:
        print_json(row)
    else:
        print_table([row], title=f"review settings of {project}")
