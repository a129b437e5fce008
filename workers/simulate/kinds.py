"""The free scenario builders by kind (the order is the placement order of a scene)."""

from __future__ import annotations

from collections.abc import Callable

from . import behaviours as bh
from . import realistic as rl
from .behaviours import Instance, Rng

Builder = Callable[[Rng, float], Instance]

FREE: dict[str, Builder] = {
    "stop": bh.stop, "follow": bh.follow, "accompany": bh.accompany, "overtake": bh.overtake,
    "meet": bh.meet, "handover": bh.handover, "startle": bh.startle,
    "straggling_group": rl.straggling_group, "standing_group": rl.standing_group,
    "strangers_abreast": rl.strangers_abreast, "talk_group": rl.talk_group,
    "walk_talk": rl.walk_talk,
    "slow_down": bh.slow_down, "far_follow": bh.far_follow,
    "wide_side_by_side": bh.wide_side_by_side, "wide_pass": bh.wide_pass,
    "crossing": bh.crossing, "trigger_ignored": bh.trigger_ignored,
    "spontaneous_change": bh.spontaneous_change,
    "walking_group": rl.walking_group, "conversation": rl.conversation,
    "vehicle_stop": rl.vehicle_stop,
}
