"""Truth written the way annotators write it (config `truth_style`: group_labels,
activity_labels).

The definitions' truth is complete: every interval a definition holds is an event. People
label differently. ETH/UCY annotators list who belongs to a group; the published truth is one
`accompany` per pair of a group, spanning the whole time both are seen, whether they walk
side by side, one lags behind, or they stand and wait — and nothing for strangers who walk
abreast for a few seconds in a crowd. A simulator that predicts real F1 writes its truth the
same way (docs/quality.md). MEVA annotators label a conversation's actors over the
activity: every pair of a talking group, however far apart they stand in the circle.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from .behaviours import Instance
from .realistic import GROUP_KINDS, TALK_KINDS
from .truth import Track, _event

MIN_TOGETHER_S = 2.0  # the published truth drops pairs seen together for less than 2 s


STYLES = {"group_labels": ("accompany", GROUP_KINDS, MIN_TOGETHER_S),
          "activity_labels": ("meet", TALK_KINDS, 1.0)}


def _window(inst: Instance, k: int, offset: float, tr: Track, fps: float) -> tuple[int, int]:
    """Frames of member k in the instance's activity: its planted window if the instance
    has one (`meta["windows"]`, local seconds), else the whole track."""
    windows = inst.meta.get("windows")
    lo, hi = int(tr.frames[0]), int(tr.frames[-1])
    if isinstance(windows, list):
        s, e = windows[k]
        lo = max(lo, math.ceil((s + offset) * fps - 1e-9))
        hi = min(hi, math.floor((e + offset) * fps + 1e-9))
    return lo, hi


def labelled_truth(style: str, events: list[dict[str, Any]], instances: Sequence[Instance],
                   groups: Sequence[Sequence[int]], tracks: Sequence[Track], fps: float,
                   offsets: Sequence[float]) -> list[dict[str, Any]]:
    """`events` with the style's type replaced by one label per pair of each labelled
    instance over the time both are in it: their common frames, or the overlap of their
    planted activity windows (MEVA: the activity's actor spans)."""
    etype, kinds, min_s = STYLES[style]
    out = [e for e in events if e["type"] != etype]
    for inst, members, offset in zip(instances, groups, offsets, strict=True):
        if inst.kind not in kinds:
            continue
        for (i, p), (j, q) in itertools.combinations(enumerate(members), 2):
            a, b = tracks[p], tracks[q]
            a_lo, a_hi = _window(inst, i, offset, a, fps)
            b_lo, b_hi = _window(inst, j, offset, b, fps)
            lo, hi = max(a_lo, b_lo), min(a_hi, b_hi)
            if (hi - lo) / fps < min_s:
                continue
            x, y = (a, b) if int(a.id) < int(b.id) else (b, a)
            out.append(_event(etype, {"a": x.id, "b": y.id}, lo / fps, hi / fps))
    return out
