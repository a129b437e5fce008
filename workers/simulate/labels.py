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
from collections.abc import Sequence
from typing import Any

from .behaviours import GROUP_KINDS, TALK_KINDS, Instance
from .truth import Track, _event

MIN_TOGETHER_S = 2.0  # the published truth drops pairs seen together for less than 2 s


STYLES = {"group_labels": ("accompany", GROUP_KINDS, MIN_TOGETHER_S),
          "activity_labels": ("meet", TALK_KINDS, 1.0)}


def labelled_truth(style: str, events: list[dict[str, Any]], instances: Sequence[Instance],
                   groups: Sequence[Sequence[int]], tracks: Sequence[Track],
                   fps: float) -> list[dict[str, Any]]:
    """`events` with the style's type replaced by one label per pair of each labelled
    instance over the pair's common frames (MEVA: the activity's actor spans)."""
    etype, kinds, min_s = STYLES[style]
    out = [e for e in events if e["type"] != etype]
    for inst, members in zip(instances, groups, strict=True):
        if inst.kind not in kinds:
            continue
        for p, q in itertools.combinations(members, 2):
            a, b = tracks[p], tracks[q]
            lo = max(int(a.frames[0]), int(b.frames[0]))
            hi = min(int(a.frames[-1]), int(b.frames[-1]))
            if (hi - lo) / fps < min_s:
                continue
            x, y = (a, b) if int(a.id) < int(b.id) else (b, a)
            out.append(_event(etype, {"a": x.id, "b": y.id}, lo / fps, hi / fps))
    return out
