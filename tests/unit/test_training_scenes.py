"""Training scenes get a source per simulated content: a scene of another duration (the demo
trains on 90 s scenes, `secinf train` on 120 s ones) never reuses an earlier run's points."""

from __future__ import annotations

from workers.scoring.collect import SceneSpec


def test_source_name_follows_the_simulated_content() -> None:
    short, long = SceneSpec("corridor", 3, 20.0), SceneSpec("corridor", 3, 30.0)
    a, b = short.source_name(short.simulated()), long.source_name(long.simulated())
    assert short.name == long.name and a != b
    assert a.startswith("train-corridor-default-3-") and len(a) == len(short.name) + 11
    # Deterministic: the same spec simulates the same scene, so the source is reused.
    assert short.source_name(short.simulated()) == a
    hard = SceneSpec("corridor", 3, 20.0, "hard")
    assert hard.source_name(hard.simulated()) not in (a, b)
