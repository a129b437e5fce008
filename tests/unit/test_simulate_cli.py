"""`secinf simulate` command: summary, JSON, exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from workers.cli.simulate_cmd import simulate_command

app = typer.Typer()
app.command()(simulate_command)


def test_json_summary(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["--out", str(tmp_path), "--preset", "corridor", "--seed", "2",
                                   "--duration", "120", "--format", "parquet", "--json",
                                   "--drop-rate", "0", "--jitter", "0.1"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["source"] == "corridor-2"
    assert set(data["files"]) == {"parquet", "scene", "truth"}
    assert data["points"] > 0 and data["tracks"] > 0 and data["events"]["follow"] > 0
    scene = json.loads((tmp_path / "scene.json").read_text())
    assert scene["noise"]["jitter"] == 0.1 and scene["noise"]["drop_rate"] == 0.0


def test_human_summary(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["--out", str(tmp_path), "--duration", "60",
                                   "--source", "demo"])
    assert res.exit_code == 0, res.output
    assert "scene demo" in res.stdout and "simulated in" in res.stdout
    assert (tmp_path / "tracks.csv").exists() and (tmp_path / "tracks.parquet").exists()


def test_bad_inputs_exit_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("extent: [[0, 0], [10, 10]]\nfps: -1\n")
    for args in (["--config", str(bad)], ["--format", "xlsx"], ["--preset", "mall"],
                 ["--drop-rate", "3"]):
        res = CliRunner().invoke(app, ["--out", str(tmp_path / "o"), *args])
        assert res.exit_code == 2, (args, res.output)
        assert "Traceback" not in res.output
        assert "error" in res.stderr
    res = CliRunner().invoke(app, ["--out", str(tmp_path / "o"), "--config", str(bad)])
    assert "fps" in res.stderr
