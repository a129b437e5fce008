"""The one root exception and its family. Each docstring is the default message.

Users see `str(error)` and never a traceback; the CLI maps `UserError` to exit code 2 and
anything else to exit code 1.
"""

from __future__ import annotations


class SecinfError(Exception):
    """secinf failed."""

    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class UserError(SecinfError):
    """The input is not valid."""

    exit_code = 2


class NotFound(UserError):
    """No such object."""


class DatabaseUnavailable(SecinfError):
    """Cannot reach the database: run `secinf db up`, or set SECINF_DSN to a running server."""


class MissingExtension(SecinfError):
    """A required Postgres extension is not installed on the server."""


class ReadOnlyConnection(UserError):
    """This connection is read-only: writes go to the primary (SECINF_DSN or the local
    cluster), not to SECINF_READ_DSN."""


class ClusterError(SecinfError):
    """The project's Postgres cluster could not be managed."""


class BackupError(SecinfError):
    """pgBackRest failed: see its log under <home>/pgbackrest/log."""


class AuthError(UserError):
    """Invalid, revoked or expired credentials."""
