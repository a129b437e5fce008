"""Datasets: the project's dataset versions and, for a published one and a chosen split,
its files' signed download links (size, rows, sha256, expiry) from api.dataset_download."""

from __future__ import annotations

import json

import streamlit as st
from applib import state
from applib.datasets_view import (
    LINKS_NOTE,
    NO_PUBLISHED,
    NO_VERSIONS,
    SPLITS,
    download_links,
    expired,
    expiry_text,
    links_markdown,
    may_download,
    not_for_role,
    published,
    size_text,
    total_bytes,
    versions,
    versions_frame,
)

from workers.appdb import AppDB, Identity
from workers.appdb.session import Row

st.set_page_config(page_title="Datasets · secinf", page_icon=":material/dataset:",
                   layout="wide")
who = state.signed_in()
db = state.database()
st.title("Datasets")
st.caption("Dataset versions exported from the project's verified events (`secinf export`). "
           "A published version downloads by signed URLs of the file service "
           "(`secinf serve`): each file's link below, with the sha256 to check it by. "
           "The list is refreshed every minute.")
claims_key = json.dumps(who.claims, sort_keys=True, default=str)
if not state.guarded(lambda: may_download(db, who)):
    st.info(not_for_role(who.role))
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def _versions(_db: AppDB, _who: Identity, conninfo: str, claims_key: str) -> list[Row]:
    return versions(_db, _who)


# Links are issued (and audited) once a minute per caller, version and split, not on every
# rerun; links about to expire are issued again.
@st.cache_data(ttl=60, show_spinner=False)
def _links(_db: AppDB, _who: Identity, conninfo: str, claims_key: str, version: str,
           split: str) -> list[Row]:
    return download_links(_db, _who, version, split)


rows = state.guarded(lambda: _versions(db, who, db.conninfo, claims_key))
if not rows:
    st.info(NO_VERSIONS)
    st.stop()
st.dataframe(versions_frame(rows), hide_index=True, width="stretch")
choices = published(rows)
if not choices:
    st.info(NO_PUBLISHED)
    st.stop()

pick = st.columns(2)
version = pick[0].selectbox("Version", choices, key="d_version")
split = pick[1].selectbox("Split", SPLITS, key="d_split")
links, refused = state.attempt(lambda: _links(db, who, db.conninfo, claims_key, version, split))
if links is not None and expired(links):
    _links.clear()
    links, refused = state.attempt(
        lambda: _links(db, who, db.conninfo, claims_key, version, split))
if refused is not None or links is None:
    st.error(f"No download links for {version}: {refused}")
    st.stop()

st.subheader(f"Download · {version} · {split}")
files = [r for r in links if r["path"] != "manifest.json"]
st.markdown(f"**{len(files)} file(s)** and manifest.json, {size_text(total_bytes(links))}. "
            + expiry_text(links))
st.markdown(links_markdown(links))
st.caption(LINKS_NOTE)
