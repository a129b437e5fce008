"""`secinf accounts …`: local sign-in accounts for the review app (admin connection)."""

from __future__ import annotations

import sys

import typer

from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.errors import UserError
from workers.review import accounts

accounts_app = typer.Typer(help="Local sign-in accounts for the review app.",
                           no_args_is_help=True)

JSON = typer.Option(False, "--json", help="Print JSON.")
USERNAME = typer.Argument(..., help="User name (2-128 letters, digits or . _ @ + -).")
PASSWORD = typer.Option(None, "--password",
                        help="The password (visible in the process list: prefer the prompt "
                             "or --password-stdin).")
PASSWORD_STDIN = typer.Option(False, "--password-stdin",
                              help="Read the password from the first line of stdin.")


def _password(given: str | None, from_stdin: bool) -> str:
    if given is not None and from_stdin:
        raise UserError("give the password either with --password or --password-stdin, not both")
    if given is not None:
        return given
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("--password-stdin: stdin had no password line")
        return line
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def accounts_create(
    username: str = USERNAME,
    project: str | None = typer.Option(None, "--project", "-p",
                                       help="Project (org/project) to join at once."),
    role: str = typer.Option("reviewer", "--role", "-r",
                             help="Role in that project: reviewer, project_admin, customer, "
                                  "analyst."),
    display_name: str | None = typer.Option(None, "--display-name", help="Name to show."),
    password: str | None = PASSWORD,
    password_stdin: bool = PASSWORD_STDIN,
    json_out: bool = JSON,
) -> None:
    """Create an account (only a bcrypt hash of its password is stored)."""
    secret = _password(password, password_stdin)
    with connect() as conn:
        made = accounts.create(conn, username, secret, project, role, display_name)
    if json_out:
        print_json(made)
    else:
        where = f" as {role} in {project}" if project else " (no project yet: accounts grant)"
        console.print(f"[green]✓[/] account [bold]{username}[/]{where}")


def accounts_grant(
    username: str = USERNAME,
    project: str = typer.Option(..., "--project", "-p", help="Project as org/project."),
    role: str = typer.Option("reviewer", "--role", "-r",
                             help="reviewer, project_admin, customer or analyst."),
) -> None:
    """Give an account a role in a project (or change its role there)."""
    with connect() as conn:
        accounts.grant(conn, username, project, role)
    console.print(f"[green]✓[/] {username} is {role} in {project}")


def accounts_passwd(
    username: str = USERNAME,
    password: str | None = PASSWORD,
    password_stdin: bool = PASSWORD_STDIN,
) -> None:
    """Set a new password."""
    secret = _password(password, password_stdin)
    with connect() as conn:
        accounts.set_password(conn, username, secret)
    console.print(f"[green]✓[/] new password for {username}")


def accounts_disable(
    username: str = USERNAME,
    enable: bool = typer.Option(False, "--enable", help="Re-enable instead."),
) -> None:
    """Disable an account: it cannot sign in and its tokens stop working at once."""
    with connect() as conn:
        accounts.set_disabled(conn, username, not enable)
    console.print(f"[green]✓[/] {username} {'enabled' if enable else 'disabled'}")


def accounts_list(json_out: bool = JSON) -> None:
    """List accounts with their projects and roles (never a password hash)."""
    with connect() as conn:
        rows = accounts.list_accounts(conn)
    print_json(rows) if json_out else print_table(rows, title="accounts")


accounts_app.command("create")(accounts_create)
accounts_app.command("grant")(accounts_grant)
accounts_app.command("passwd")(accounts_passwd)
accounts_app.command("disable")(accounts_disable)
accounts_app.command("list")(accounts_list)
