"""The review app under a shard map: sign in on the shard that knows the credentials, then
stay there (every request of the session goes to the signed-in project's shard).

API keys and accounts live on their project's shard. A key (random, unique) is tried on
each shard in turn until one accepts it; an account sign-in that names a project goes to
that project's shard straight away. A shard with a read replica (`secinf shards replica`)
gets the app's reads there, as SECINF_READ_DSN does for one server. No `st.` calls here
(streamlit_app/applib/state.py keeps the chosen shard in the session).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from workers import shards
from workers.appdb.session import (
    AppDB,
    Identity,
    authenticator_conninfo,
    read_authenticator_conninfo,
)
from workers.errors import AuthError, NotFound
from workers.settings import Settings, load_settings


def shard_conninfos(settings: Settings | None = None, project: str | None = None) -> list[str]:
    """The `authenticator` conninfo of every shard (of the project's only, when named and
    placed); without a map, the one server's: the primaries of `shard_pools`."""
    return [primary for primary, _ in shard_pools(settings, project)]


def shard_pools(settings: Settings | None = None, project: str | None = None
                ) -> list[tuple[str, str | None]]:
    """The `authenticator` conninfo of every shard (of the project's only, when named and
    placed; without a map, the one server's), each with its shard's replica's (None
    without one; without a map, SECINF_READ_DSN's): the two conninfos of an AppDB."""
    settings = settings or load_settings()
    if settings.shards is None:
        return [(authenticator_conninfo(settings), read_authenticator_conninfo(settings))]
    found: list[shards.Shard] = []
    if project:
        try:
            found = [shards.shard_of(project, settings)]
        except NotFound:
            pass  # not a placed project: let every shard say so
    return [(authenticator_conninfo(settings, s.conninfo),
             authenticator_conninfo(settings, s.read_conninfo) if s.read_conninfo else None)
            for s in found or shards.shards(settings)]


def sign_in(how: Callable[[AppDB], Identity],
            databases: Sequence[AppDB]) -> tuple[AppDB, Identity]:
    """Sign in on the first database (shard) that accepts the credentials; the last refusal
    when none does."""
    refusal: AuthError | None = None
    for db in databases:
        try:
            return db, how(db)
        except AuthError as exc:
            refusal = exc
    raise refusal or AuthError("no shard to sign in on: add one with `secinf shards add`")


__all__ = ["shard_conninfos", "shard_pools", "sign_in"]
