"""Streamlit glue shared by every page: the pooled database, the signed-in person, errors.

Pages call `signed_in()` first (it stops the page with a link to sign in when nobody is),
and run every database call through `guarded()`, which turns a revoked or expired session
into a sign-out with a message and any other refusal into a visible error.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import streamlit as st

from workers.appdb import AppDB, Identity, SessionEnded
from workers.appdb import api as app_api
from workers.appdb import shards as app_shards
from workers.appdb.session import authenticator_conninfo, read_authenticator_conninfo
from workers.errors import SecinfError
from workers.settings import load_settings

T = TypeVar("T")
HOME = "streamlit_app.py"
IDENTITY = "identity"
FLASH = "flash"
SHARD = "shard_conninfo"
SHARD_READ = "shard_read_conninfo"


def _close(db: AppDB) -> None:
    db.close()


@st.cache_resource(show_spinner=False, on_release=_close)
def _pool(conninfo: str, read_conninfo: str | None = None) -> AppDB:
    return AppDB(conninfo, read_conninfo=read_conninfo)


def database() -> AppDB:
    """The process-wide pools of `authenticator` connections (one per pair of conninfos):
    of the shard the caller signed in on under a shard map (SECINF_SHARDS), else of the one
    server, with the read replica's beside it when SECINF_READ_DSN is set, or the shard's
    own replica when it has one (reads go there; docs/scale.md)."""
    shard = st.session_state.get(SHARD)
    if isinstance(shard, str):
        read = st.session_state.get(SHARD_READ)
        return _pool(shard, read if isinstance(read, str) else None)
    settings = load_settings()
    return _pool(authenticator_conninfo(settings), read_authenticator_conninfo(settings))


def sign_in_on_shards(how: Callable[[AppDB], Identity], project: str | None = None
                      ) -> tuple[AppDB, Identity]:
    """Sign in on the shard that accepts the credentials (the one server without a map);
    the session's requests then go to that shard (`database`)."""
    dbs = [_pool(c, r) for c, r in app_shards.shard_pools(load_settings(), project)]
    db, who = app_shards.sign_in(how, dbs)
    st.session_state[SHARD] = db.conninfo
    st.session_state[SHARD_READ] = db.read_conninfo
    return db, who


@st.cache_data(ttl=60, show_spinner=False)
def _facets(_db: AppDB, _who: Identity, claims_key: str) -> dict[str, Any]:
    return app_api.review_counts(_db, _who, app_api.QueueFilter(statuses=app_api.STATUSES))


def facets(db: AppDB, who: Identity) -> dict[str, Any]:
    """Counts over every candidate of the caller's project (the filters' choices: types,
    sources with names), cached for a minute per caller (keyed by the whole claims)."""
    return guarded(lambda: _facets(db, who, json.dumps(who.claims, sort_keys=True)))


def identity() -> Identity | None:
    value = st.session_state.get(IDENTITY)
    return value if isinstance(value, Identity) else None


def sign_in(who: Identity, project_label: str) -> None:
    st.session_state[IDENTITY] = who
    st.session_state["project_label"] = project_label


def sign_out(message: str | None = None) -> None:
    """Forget the caller (and every page's state); `message` shows on the sign-in page."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if message:
        st.session_state[FLASH] = message


def flash(kind: str = "warning") -> None:
    """Show (once) the message left by a sign-out or a page switch."""
    message = st.session_state.pop(FLASH, None)
    if message:
        {"warning": st.warning, "success": st.success, "info": st.info}.get(kind, st.warning)(
            str(message))


def signed_in() -> Identity:
    """The signed-in caller, or stop the page with a link to the sign-in page."""
    who = identity()
    if who is None:
        st.info("Sign in first.")
        st.page_link(HOME, label="Sign in", icon=":material/login:")
        st.stop()
    with st.sidebar:
        st.caption(f"Signed in as **{who.person}** ({who.role}) · "
                   f"{st.session_state.get('project_label', '')}")
    return who


def guarded(call: Callable[[], T]) -> T:
    """Run a database call; sign out on a dead session, stop the page on any other error."""
    try:
        return call()
    except SessionEnded as exc:
        sign_out(str(exc))
        st.switch_page(HOME)
    except SecinfError as exc:
        st.error(str(exc))
        st.stop()


def attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """Like guarded(), but a refusal (e.g. a lost race) comes back as a message to show."""
    try:
        return call(), None
    except SessionEnded as exc:
        sign_out(str(exc))
        st.switch_page(HOME)
    except SecinfError as exc:
        return None, str(exc)
