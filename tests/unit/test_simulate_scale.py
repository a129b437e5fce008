"""Scale: the crowd preset reaches a million points quickly (timing printed, not asserted)."""

from __future__ import annotations

import time

import pytest

from workers.simulate import preset_config, simulate


@pytest.mark.slow
def test_crowd_reaches_a_million_points() -> None:
    started = time.perf_counter()
    r = simulate(preset_config("crowd", 0, agents=2000))
    elapsed = time.perf_counter() - started
    print(f"crowd: {r.stats['points']:,} points, {r.stats['tracks']} tracks in {elapsed:.2f} s")
    assert r.stats["points"] >= 1_000_000
    assert r.stats["background_agents"] == 2000
