"""The quality report: the default ontology on human-labelled real scenes and on simulated
presets, in one scratch database, as a new user would run it (a fresh project, `ingest`,
`tick --until-idle`, `evaluate`).

Real scenes are found under a labelled root laid out like `../shared/data/labelled/`:
`groups/<scene>/` and `meva/<clip>/`, each with `tracks.csv` and `truth.json`. What people
labelled there decides what is judged (`JUDGED`): in the walking-group scenes only
`accompany` (nothing else is labelled either way); in MEVA `meet` and vehicle `stop`
(person stops are not labelled, so only candidates whose actor is a vehicle count).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from workers import tenancy
from workers.bench.scratch import scratch_database
from workers.db.connect import connect
from workers.errors import UserError
from workers.ingest import IngestRequest, ingest
from workers.pipeline import TickReport, tick
from workers.rules import store
from workers.rules.ontology import Ontology, load_ontology
from workers.settings import ONTOLOGIES_DIR, REPO_ROOT
from workers.simulate import EVENT_TYPES, PRESETS, preset_config, simulate, write_outputs

from .matching import Event, TypeScore, match_events
from .truth import load_candidates, load_truth, resolve_source

DEFAULT_LABELLED = REPO_ROOT.parent / "shared" / "data" / "labelled"
ORG, PROJECT = "quality", "report"

# Per labelled set: the judged types, each with the actor classes a candidate must have to
# count (empty: any class).
JUDGED: dict[str, dict[str, tuple[str, ...]]] = {
    "groups": {"accompany": ()},
    "meva": {"meet": (), "stop": ("vehicle",)},
}
SIM_SET = "simulated"
# The preset modelled on each labelled set: its F1 is the "simulator F1" beside the set's.
SIM_MATCH = {"groups": "groups-2p5hz", "meva": "meva-30fps"}


@dataclass(frozen=True)
class Scene:
    """One scene of the report: where its tracks and truth are and what is judged."""

    set: str
    name: str
    tracks: Path
    truth: Path
    judged: dict[str, tuple[str, ...]]
    scene_json: Path | None = None

    @property
    def source(self) -> str:
        return f"{self.set}-{self.name}"[:120]


@dataclass
class SceneScore:
    """Counts per judged type of one scene."""

    scene: Scene
    per_type: dict[str, TypeScore]


@dataclass
class QualityReport:
    """Every scene's scores, the sums per (set, type) and the tick that produced them."""

    scenes: list[SceneScore] = field(default_factory=list)
    tick: TickReport | None = None
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> dict[tuple[str, str], TypeScore]:
        """Micro-averaged counts per (set, type) over the set's scenes."""
        out: dict[tuple[str, str], TypeScore] = {}
        for s in self.scenes:
            for etype, score in s.per_type.items():
                out.setdefault((s.scene.set, etype), TypeScore()).add(score)
        return out

    def preset_summary(self, preset: str) -> dict[str, TypeScore]:
        """Counts per type over the simulated scenes of one preset."""
        out: dict[str, TypeScore] = {}
        for s in self.scenes:
            if s.scene.set == SIM_SET and s.scene.name.rsplit("-", 1)[0] == preset:
                for etype, score in s.per_type.items():
                    out.setdefault(etype, TypeScore()).add(score)
        return out

    def simulated_f1(self, set_name: str, etype: str) -> float | None:
        """The simulator's F1 for a type beside a real set: the preset modelled on that set
        when it ran, else every simulated scene; None when no simulated truth has it."""
        match = self.preset_summary(SIM_MATCH.get(set_name, ""))
        score = match.get(etype) or self.summary().get((SIM_SET, etype))
        return round(score.f1, 4) if score is not None and score.tp + score.fn > 0 else None

    def as_dict(self) -> dict[str, Any]:
        summary = self.summary()
        return {
            "scenes": [{"set": s.scene.set, "scene": s.scene.name,
                        "per_type": {t: v.as_dict() for t, v in sorted(s.per_type.items())}}
                       for s in self.scenes],
            "summary": [{"set": k[0], "type": k[1], **v.as_dict(),
                         "simulated_f1": self.simulated_f1(k[0], k[1])}
                        for k, v in sorted(summary.items())],
            "tick": self.tick.as_dict() if self.tick else None,
            "skipped": self.skipped,
        }


def labelled_scenes(root: Path) -> list[Scene]:
    """Every scene under `root` (groups/*, meva/*) that has tracks.csv and truth.json."""
    scenes = []
    for set_name, judged in JUDGED.items():
        folder = root / set_name
        if not folder.is_dir():
            continue
        for d in sorted(p for p in folder.iterdir() if p.is_dir()):
            if (d / "tracks.csv").is_file() and (d / "truth.json").is_file():
                scenes.append(Scene(set_name, d.name, d / "tracks.csv", d / "truth.json",
                                    judged))
    return scenes


def simulated_scenes(presets: Iterable[str], seeds: Iterable[int], out_dir: Path) -> list[Scene]:
    """Simulate each preset and seed into `out_dir`; every event type is judged."""
    scenes = []
    judged: dict[str, tuple[str, ...]] = {t: () for t in EVENT_TYPES}
    for preset in presets:
        for seed in seeds:
            files = write_outputs(simulate(preset_config(preset, seed=seed)),
                                  out_dir / f"{preset}-{seed}")
            scenes.append(Scene(SIM_SET, f"{preset}-{seed}", files["parquet"], files["truth"],
                                judged, files["scene"]))
    return scenes


def _actor_classes(conn: psycopg.Connection[Any], source_id: int) -> dict[str, str | None]:
    rows = conn.execute("SELECT track_id, max(class) AS class FROM ingest.track_points "
                        "WHERE source_id = %s GROUP BY track_id", (source_id,)).fetchall()
    return {str(r["track_id"]): r["class"] for r in rows}


def judge(truth: Sequence[Event], candidates: Sequence[Event],
          judged: dict[str, tuple[str, ...]],
          classes: dict[str, str | None]) -> dict[str, TypeScore]:
    """Scores of the judged types only; a type with classes counts only candidates whose
    every actor has one of them."""
    def keep(ev: Event) -> bool:
        if ev.type not in judged:
            return False
        allowed = judged[ev.type]
        return not allowed or all(classes.get(a) in allowed for a in ev.actors.values())

    result = match_events([e for e in truth if e.type in judged],
                          [c for c in candidates if keep(c)], types=judged)
    return {t: result.per_type[t] for t in judged}


def run_quality(scenes: Sequence[Scene], ontology: Ontology | None = None,
                progress: Callable[[str], None] | None = None) -> QualityReport:
    """Ingest every scene into one project of a scratch database, tick until idle, and
    score each scene's judged types."""
    onto = ontology or load_ontology(ONTOLOGIES_DIR / "default.yaml")
    report = QualityReport()
    say = progress or (lambda _msg: None)
    with scratch_database("quality") as target, connect(conninfo=target) as conn:
        project = tenancy.create_project(conn, ORG, PROJECT)
        pid, ref = str(project["project_id"]), f"{ORG}/{PROJECT}"
        store.load(conn, pid, onto)
        for scene in scenes:
            say(f"ingest {scene.set}/{scene.name}")
            # every scene is a finished clip, recorded or simulated: events holding at its
            # last frame count, and an interval held open for what may still come (a
            # bridge, a lost track) closes at the end (docs/rules.md "The end of a
            # recording"); the simulator's truth runs to the last frame too
            ingest(conn, IngestRequest(project=ref, source=scene.source, path=scene.tracks,
                                       scene=scene.scene_json, ended=True))
        say(f"tick until idle ({len(scenes)} sources)")
        report.tick = tick(conn, until_idle=True)
        for scene in scenes:
            src = resolve_source(conn, scene.source, ref)
            scores = judge(load_truth(scene.truth).events, load_candidates(conn, src),
                           scene.judged, _actor_classes(conn, src.source_id))
            report.scenes.append(SceneScore(scene, scores))
    return report


def collect_scenes(labelled: Path | None, presets: Sequence[str], seeds: Sequence[int],
                   sim_dir: Path) -> tuple[list[Scene], list[str]]:
    """The labelled scenes (or why there are none) plus the simulated ones."""
    skipped: list[str] = []
    root = labelled or DEFAULT_LABELLED
    real = labelled_scenes(root) if root.is_dir() else []
    if not real:
        skipped.append(f"no labelled scenes under {root} (groups/*/ or meva/*/ with "
                       "tracks.csv and truth.json): pass --labelled DIR")
    unknown = [p for p in presets if p not in PRESETS]
    if unknown:
        raise UserError(f"--presets: unknown preset(s) {', '.join(unknown)}; choose from "
                        f"{', '.join(PRESETS)}")
    return [*real, *simulated_scenes(presets, seeds, sim_dir)], skipped


def quality_report(labelled: Path | None, presets: Sequence[str], seeds: Sequence[int],
                   progress: Callable[[str], None] | None = None) -> QualityReport:
    """Collect the scenes, run them, and keep the reasons for anything skipped."""
    with tempfile.TemporaryDirectory(prefix="secinf-quality-") as tmp:
        scenes, skipped = collect_scenes(labelled, presets, seeds, Path(tmp))
        report = run_quality(scenes, progress=progress)
    report.skipped = skipped
    return report
