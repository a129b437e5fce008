"""Model: which scoring model is in charge of the project, how its models compare on held-out
sources, when the active model changed, and the examples that moved a model most (read-only).
"""

from __future__ import annotations

import json

import streamlit as st
from applib import state
from applib.model_view import (
    NO_MODELS,
    NOT_FOR_ROLE,
    ModelData,
    activations_frame,
    examples_frame,
    featured,
    fetch,
    in_charge_text,
    invalid_reasons_frame,
    may_view,
    models_frame,
    most_changed_frame,
    per_type_frame,
    training_text,
)

from workers.appdb import AppDB, Identity

st.set_page_config(page_title="Model · secinf", page_icon=":material/model_training:",
                   layout="wide")
who = state.signed_in()
db = state.database()
st.title("Model")
st.caption("The scoring model ranks the review queue. A project model is trained from its "
           "reviewers' decisions and imported labels, measured on held-out sources, and "
           "activated only when it beats the model in charge. Refreshed every minute.")
if not may_view(who.role):
    st.info(NOT_FOR_ROLE)
    st.stop()


@st.cache_data(ttl=60, show_spinner=False)
def _load(_db: AppDB, _who: Identity, conninfo: str, claims_key: str) -> ModelData:
    return fetch(_db, _who)


data = state.guarded(lambda: _load(db, who, db.conninfo,
                                   json.dumps(who.claims, sort_keys=True, default=str)))
st.markdown(f"**In charge:** {in_charge_text(data.models)}")

if not data.models:
    st.info(NO_MODELS)
else:
    st.subheader("Models")
    st.dataframe(models_frame(data.models), hide_index=True, width="stretch")
    st.caption("AP on the held-out sources: of the model, of rule_score, and of the model "
               "that was in charge when it was trained. Times in UTC.")

    st.subheader("Activation history")
    history = activations_frame(data.activations)
    if history.empty:
        st.info("No activation recorded yet.")
    else:
        st.dataframe(history, hide_index=True, width="stretch")

    shown = featured(data.models)
    versions = [str(m["version"]) for m in data.models]
    picked = st.selectbox("Model", versions, key="m_version",
                          index=versions.index(str(shown["version"])) if shown else 0)
    model = featured(data.models, picked)
    st.subheader(f"Most changed examples · {picked}")
    about = training_text(model)
    if about:
        st.caption(about)
    by_type = per_type_frame(model)
    if not by_type.empty:
        with st.expander("Held-out AP per event type"):
            st.dataframe(by_type, hide_index=True, width="stretch")
    changed = most_changed_frame(model, data.blind)
    if changed.empty:
        st.info("This model records no most-changed examples.")
    else:
        st.caption("The training examples whose score moved most in training: the decisions "
                   "that changed the model most.")
        st.dataframe(changed, hide_index=True, width="stretch")
        ids = [int(c) for c in changed["candidate_id"]]
        pick = st.columns([1, 3])
        chosen = pick[0].selectbox("Candidate", ids, key="m_pick",
                                   label_visibility="collapsed", placeholder="Candidate #")
        if pick[1].button("Open candidate", type="primary", disabled=chosen is None,
                          icon=":material/open_in_new:"):
            st.session_state["candidate_id"] = chosen
            st.switch_page("pages/2_Candidate.py", query_params={"id": str(chosen)})

st.subheader("Training examples")
st.dataframe(examples_frame(data.example_counts), hide_index=True, width="stretch")
reasons = invalid_reasons_frame(data.invalid_reasons)
if reasons.empty:
    st.caption("No invalid examples.")
else:
    st.caption("Invalid examples are skipped by training; `secinf models examples --refresh "
               "--project ORG/PROJECT` re-admits them under today's feature settings.")
    st.dataframe(reasons, hide_index=True, width="stretch")
