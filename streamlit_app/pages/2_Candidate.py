"""Candidate: the actors over the window, feature curves, the clip, and the decision.

Shortcuts: A accept, X reject, U undo my last decision, N next candidate.
"""

from __future__ import annotations

from typing import Any, NoReturn

import streamlit as st
from applib import state
from applib.candidate_view import (
    Detail,
    actors_label,
    at,
    chosen_span,
    curves_chart,
    decisions_frame,
    parse_detail,
    scene_chart,
    snap,
    span_control,
)
from applib.queue_view import next_candidate, where_text

from workers.appdb import api as app_api

st.set_page_config(page_title="Candidate · secinf", page_icon=":material/search:",
                   layout="wide")
who = state.signed_in()
db = state.database()


def _open(candidate_id: int | None, second: bool = False) -> None:
    if candidate_id is None:
        st.session_state["flash"] = "No more candidates in the queue with these filters."
        st.switch_page("pages/1_Review_queue.py")
    st.session_state["candidate_id"] = candidate_id
    params = {"id": str(candidate_id), **({"opinion": "second"} if second else {})}
    st.switch_page("pages/2_Candidate.py", query_params=params)


def _next_id(current: int) -> int | None:
    """The next candidate of the queue (its filters and order) that is still undecided."""
    decided: list[int] = st.session_state.setdefault("decided", [])
    found = next_candidate(st.session_state.get("q_rows") or [], current, decided)
    if found is not None:
        return found
    saved = st.session_state.get("q_filter")
    flt: app_api.QueueFilter = saved[0] if saved else app_api.QueueFilter()
    order: app_api.Order = saved[1] if saved else "uncertain"
    limit: int = saved[2] if saved else 50
    rows = state.guarded(lambda: app_api.review_queue(db, who, flt, order, None, limit))
    st.session_state["q_rows"] = rows
    return next_candidate(rows, current, decided)


def _picker(problem: str | None = None) -> NoReturn:
    """Ask for a candidate number (after a refusal, say why), then stop the page."""
    st.session_state.pop("candidate_id", None)
    st.query_params.clear()
    st.title("Candidate")
    if problem:
        st.error(problem)
    typed = st.number_input("Candidate #", min_value=1, step=1, value=None, key="c_pick")
    if st.button("Open candidate", type="primary", disabled=typed is None):
        _open(int(typed) if typed is not None else None)
    st.stop()


raw_id = st.query_params.get("id") or st.session_state.get("candidate_id")
second = st.query_params.get("opinion") == "second"
if raw_id is None or not str(raw_id).isdigit():
    _picker()
cid = int(str(raw_id))

doc, refused = state.attempt(lambda: app_api.candidate_detail(db, who, cid))
if doc is None:
    _picker(refused)
detail: Detail = parse_detail(doc)
reasons: list[tuple[str, str]] = st.session_state.get("reasons") or state.guarded(
    lambda: app_api.review_reasons(db, who))
st.session_state["reasons"] = reasons
cand = detail.candidate
second = second or bool(detail.second_opinion and detail.second_opinion.get("for_me"))

st.title(f"Candidate #{cid} · {cand['type']}")
state.flash("success")
score = cand.get("score")
st.caption(" · ".join(x for x in (
    f"actors {actors_label(cand.get('actors'))}", where_text(cand),
    f"source {detail.source.get('name', cand.get('source_id'))}",
    f"score {score:.2f}" if isinstance(score, int | float) else "",
    f"status {cand.get('status')}" if cand.get("status") else "",
    f"span {detail.start_s:.2f} to {detail.end_s:.2f} s") if x))
if detail.event:
    st.caption(f"Event #{detail.event['event_id']} verified by {detail.event['verified_by']} "
               f"({detail.event['source']}).")

control = span_control(detail)
w_lo, w_hi = snap(detail.window[0], detail.fps, "up"), snap(detail.window[1], detail.fps, "down")
t_now = st.slider("Time (s on the source clock)", min_value=w_lo, max_value=max(w_hi, w_lo + 1e-3),
                  value=min(max(control.value[0], w_lo), w_hi), step=control.step,
                  format="%.2f s", key=f"t_{cid}")
if control.usable:
    picked = st.slider("Span (s, snaps to frames)", min_value=control.lo, max_value=control.hi,
                       value=control.value, step=control.step, format="%.2f s",
                       key=f"span_{cid}")
    adjusted = chosen_span((float(picked[0]), float(picked[1])), control, detail.fps)
else:
    st.caption("The actors are never tracked together: the span cannot be adjusted.")
    adjusted = None
span = adjusted or (detail.start_s, detail.end_s)

left, right = st.columns([1, 1])
with left:
    st.altair_chart(scene_chart(detail, span, t_now))
with right:
    if detail.curves.empty:
        st.caption("No feature curves for this candidate's window.")
    else:
        st.altair_chart(curves_chart(detail, span, t_now))
    if detail.video_uri:
        st.video(detail.video_uri, start_time=max(span[0], 0.0), end_time=max(span[1], 0.0))

# ---------------------------------------------------------------- decision
st.subheader("Second opinion" if second else "Decision")
if second:
    st.caption("You were asked for an independent second opinion on this candidate.")
note = st.text_input("Note (optional)", key=f"note_{cid}", max_chars=2000)
reason = st.selectbox("Reason for a rejection", [code for code, _ in reasons], index=None,
                      format_func=dict(reasons).__getitem__, key=f"reason_{cid}",
                      placeholder="Choose a reason before rejecting")
advance = st.toggle("Open the next candidate after deciding", value=True, key="advance")
accept_label = (f"Accept adjusted span ({span[0]:.2f} to {span[1]:.2f} s)" if adjusted
                else "Accept")
cols = st.columns(4)
do_accept = cols[0].button(accept_label, type="primary", shortcut="A", key="accept",
                           icon=":material/check:")
do_reject = cols[1].button("Reject", shortcut="X", key="reject", icon=":material/close:")
do_undo = cols[2].button("Undo my last decision", shortcut="U", key="undo",
                         icon=":material/undo:")
do_next = cols[3].button("Next candidate", shortcut="N", key="next",
                         icon=":material/skip_next:")


def _decide(kind: app_api.Decision) -> None:
    start, end = (None, None)
    if kind == "accept" and adjusted is not None:
        start, end = at(detail.origin, adjusted[0]), at(detail.origin, adjusted[1])
    why = reason if kind == "reject" else None
    if kind == "reject" and why is None:
        st.error("Choose a reason for the rejection first.")
        return
    result: dict[str, Any] | None
    if second:
        result, problem = state.attempt(lambda: app_api.give_second_opinion(
            db, who, cid, kind, why, start, end))
    else:
        result, problem = state.attempt(lambda: app_api.decide(
            db, who, cid, kind, why, start, end, note or None))
    if problem is not None:
        st.error(f"Not recorded: {problem}")
        return
    done = "Accepted" if kind == "accept" else "Rejected"
    extra = ""
    if result and result.get("event_id"):
        extra += f" → event #{result['event_id']}"
    if result and result.get("second_opinion"):
        extra += " · routed to a second reviewer"
    st.session_state["flash"] = f"{done} candidate #{cid}{extra}."
    st.session_state.setdefault("decided", []).append(cid)
    if advance and not second:
        _open(_next_id(cid))
    if second:
        st.switch_page("pages/3_Second_opinions.py")
    st.rerun()


if do_accept:
    _decide("accept")
if do_reject:
    _decide("reject")
if do_undo:
    undone, problem = state.attempt(lambda: app_api.undo_last_decision(db, who))
    if problem is not None:
        st.error(f"Nothing undone: {problem}")
    else:
        target = (undone or {}).get("candidate_id")
        st.session_state["flash"] = f"Undid your last decision (candidate #{target})."
        if target is not None and int(target) != cid:
            _open(int(target))
        st.rerun()
if do_next:
    _open(_next_id(cid))

if detail.blind:
    st.info("Decide on your own: the first decision is hidden until you give yours.")
elif detail.second_opinion:
    so = detail.second_opinion
    st.info(f"Second opinion requested from {so.get('assigned_to') or 'any other reviewer'}"
            + (" · answered" if so.get("answered") else " · open"))
st.subheader("Decisions so far")
history = decisions_frame(detail.decisions)
if history.empty:
    st.caption("None yet.")
else:
    st.dataframe(history, hide_index=True, width="stretch")
