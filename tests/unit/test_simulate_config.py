"""Scene config validation, loading and custom scenes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.errors import UserError
from workers.simulate import (
    SimulationConfigError,
    load_config,
    preset_config,
    simulate,
    validate_config,
)

CUSTOM: dict[str, Any] = {
    "source": "lab-1", "seed": 3, "duration": 200, "fps": 12.5,
    "extent": [[0, 0], [120, 80]],
    "zones": [
        {"name": "desk", "polygon": [[20, 20], [30, 20], [30, 28], [20, 28]]},
        {"name": "hub", "kind": "branch", "polygon": [[80, 50], [88, 50], [88, 58], [80, 58]]},
    ],
    "routes": [
        {"name": "hub-up", "from_zone": "hub", "polyline": [[84, 57], [84, 78]]},
        {"name": "hub-right", "from_zone": "hub", "polyline": [[87, 54], [118, 54]]},
    ],
    "triggers": [{"name": "door", "kind": "door_bang", "t": 40.0, "position": [60, 20]}],
    "scenarios": {"dwell": 2, "pass_through": 2, "startle": 2, "meet": 2, "choose_route": 2},
    "near_misses": {"crossing": 2, "trigger_ignored": 1},
    "noise": {"jitter": 0.0, "drop_rate": 0.0, "id_switch_rate": 0.0, "false_tracks": 0,
              "fps_jitter": 0.0},
}


def test_custom_scene_from_yaml_and_json(tmp_path: Path) -> None:
    y = tmp_path / "scene.yaml"
    y.write_text(yaml.safe_dump(CUSTOM))
    j = tmp_path / "scene.json"
    j.write_text(json.dumps(CUSTOM))
    assert load_config(y) == load_config(j)
    r = simulate(load_config(y))
    counts = r.stats["events"]
    for kind in ("dwell", "enter", "exit", "startle", "meet", "choose_route"):
        assert counts[kind] >= 1, counts
    assert r.scene["source"] == "lab-1" and r.scene["fps"] == 12.5
    door = [t for t in r.scene["triggers"] if t["name"] == "door"]
    assert door and door[0]["kind"] == "door_bang" and door[0]["t"] == 40.0


@pytest.mark.parametrize(("patch", "field"), [
    ({"fps": 0}, "fps"),
    ({"noise": {"drop_rate": 1.5}}, "noise.drop_rate"),
    ({"zones": [{"name": "z", "polygon": [[0, 0], [1, 0]]}]}, "zones.0.polygon"),
    ({"scenarios": {"teleport": 1}}, "scenarios"),
    ({"extent": [[10, 0], [0, 10]]}, "extent"),
    ({"routes": [{"name": "r", "from_zone": "desk", "polyline": [[0, 0], [1, 1]]}]},
     "from_zone 'desk' is not a branch zone"),
    ({"colour": "red"}, "colour"),
])
def test_bad_config_names_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(SimulationConfigError, match=field.replace(".", r"\.")):
        validate_config({**CUSTOM, **patch})


def test_config_error_is_a_user_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extent: [[0, 0], [1")
    with pytest.raises(UserError, match="cannot parse"):
        load_config(bad)
    with pytest.raises(SimulationConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(SimulationConfigError, match="top level"):
        validate_config([1, 2])


def test_preset_overrides() -> None:
    cfg = preset_config("plaza", 5, duration=150.0, fps=5.0, agents=3,
                        noise={"jitter": 0.1}, source="x")
    assert (cfg.duration, cfg.fps, cfg.background.agents, cfg.noise.jitter, cfg.source) == (
        150.0, 5.0, 3, 0.1, "x")
    assert cfg.scenarios["follow"] == 3  # scaled with duration
    with pytest.raises(SimulationConfigError, match="unknown preset"):
        preset_config("mall", 0)


def test_other_fps_still_consistent() -> None:
    from tests.unit.test_simulate_truth import reference_truth, truth_set

    r = simulate(preset_config("plaza", 2, fps=7.5, duration=150.0, noise=CUSTOM["noise"]))
    assert truth_set(r.clean_truth) == reference_truth(r)
