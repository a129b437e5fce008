"""Write a SimResult: tracks (Parquet and/or CSV), scene.json, truth.json."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from .scene import SimResult

FORMATS = ("parquet", "csv")


def write_outputs(result: SimResult, out_dir: str | Path,
                  formats: Iterable[str] = FORMATS) -> dict[str, Path]:
    """Write files into out_dir; return {"parquet"|"csv"|"scene"|"truth": path}."""
    fmts = list(dict.fromkeys(formats))
    bad = [f for f in fmts if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown format(s) {', '.join(bad)}; choose from {', '.join(FORMATS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    if "parquet" in fmts:
        paths["parquet"] = out / "tracks.parquet"
        result.tracks.write_parquet(paths["parquet"])
    if "csv" in fmts:
        paths["csv"] = out / "tracks.csv"
        result.tracks.write_csv(paths["csv"])
    paths["scene"] = out / "scene.json"
    paths["scene"].write_text(json.dumps(result.scene, indent=2) + "\n", encoding="utf-8")
    paths["truth"] = out / "truth.json"
    paths["truth"].write_text(json.dumps(result.truth, indent=1) + "\n", encoding="utf-8")
    return paths
