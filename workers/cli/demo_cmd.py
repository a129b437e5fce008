"""`secinf demo`: the main job on the embedded default scene, end to end.

Database up → demo organization and project → the default ontology → a scoring model
(trained once, then reused) → a simulated `plaza` scene with ground truth → ingest →
pipeline until idle (features, candidates, scoring jobs) → a worker until the queue drains →
verified events, analytics, a published dataset version → its train split downloaded by
signed URL as the customer and checked against its sha256 (demo_delivery.py) → what each
stage produced, the evaluation against truth, the score distribution.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import psycopg
import typer

from workers import tenancy
from workers.appdb.session import AppDB
from workers.cli import demo_delivery as delivery
from workers.cli.db_cmd import bring_up
from workers.cli.output import console, print_json, print_table
from workers.db.connect import connect
from workers.db.queries import fetch_all, fetch_one, query
from workers.errors import NotFound, UserError
from workers.evaluate.report import evaluate_source, table
from workers.evaluate.truth import load_truth
from workers.ingest import IngestRequest, ingest
from workers.pipeline.runner import tick
from workers.queue.worker import WorkerConfig, run_worker
from workers.review import accounts
from workers.rules import store
from workers.rules.ontology import load_ontology
from workers.settings import ONTOLOGIES_DIR, REPO_ROOT, load_settings
from workers.simulate import preset_config, simulate, write_outputs

DEMO_ORG = "demo"
DEMO_PROJECT = "plaza"
DEMO_SEED = 7
DEMO_SOURCE = f"plaza-{DEMO_SEED}"
DEMO_REVIEWER = "demo-reviewer"
"""The account the demo's reviewer key belongs to."""

EXAMPLE_QUERIES = """\
  -- as admin: what the pipeline derived
  SELECT track_id, ts, speed, heading FROM features.kinematics ORDER BY ts LIMIT 5;
  SELECT zone_name, track_id, entered_at, left_at FROM features.zone_presence LIMIT 5;
  -- what a customer sees through the API (PostgREST runs each request exactly like this)
  BEGIN; SET LOCAL ROLE customer;
  SELECT set_config('request.jwt.claims', '{{"role":"customer","project_id":"{pid}"}}', true);
  SELECT * FROM api.projects; ROLLBACK;"""

def ensure_model(conn: Any) -> str:
    """The newest registered model's version; trains a small one (8 scenes, 12 epochs) if
    there is none — `secinf train` trains the full-size one."""
    from workers.scoring.registry import load_model  # torch: loaded only when the demo runs
    from workers.scoring.training import run_training

    try:
        return load_model(conn).version
    except NotFound:
        conn.rollback()
    with console.status("training a small scoring model (first run only)…"):
        report = run_training(conn, scenes=8, seed=0, epochs=12, duration=90.0)
    return str(report["version"])


def score_histogram(scores: list[float], path: Path) -> list[dict[str, Any]]:
    """Ten-bin counts of model scores, and the same as a PNG bar chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = [0] * 10
    for v in scores:
        bins[min(9, int(v * 10))] += 1
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar([i / 10 + 0.05 for i in range(10)], bins, width=0.09)
    ax.set_xlabel("model_score")
    ax.set_ylabel("candidates")
    ax.set_title("demo scene: model score distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [{"score": f"{i / 10:.1f} to {(i + 1) / 10:.1f}", "candidates": n,
             "bar": "█" * round(40 * n / max(1, max(bins)))} for i, n in enumerate(bins)]


def run_demo(out_dir: Path) -> dict[str, Any]:
    """Run every stage on the demo scene; returns what each produced."""
    settings = load_settings()
    with console.status("database…"):
        info = bring_up(settings)
    with connect(settings) as conn:
        project = tenancy.create_project(conn, DEMO_ORG, DEMO_PROJECT)
        ref = f"{DEMO_ORG}/{DEMO_PROJECT}"
        key = tenancy.create_key(conn, ref, "customer", "30d", "demo")
        ontology = store.load(conn, str(project["project_id"]),
                              load_ontology(ONTOLOGIES_DIR / "default.yaml"))
        model = ensure_model(conn)

        with console.status("simulating the plaza scene…"):
            result = simulate(preset_config("plaza", seed=DEMO_SEED))
            files = write_outputs(result, out_dir)
        with console.status("ingesting…"):
            summary = ingest(conn, IngestRequest(project=ref, source=DEMO_SOURCE,
                                                 path=files["parquet"], scene=files["scene"]))
        with console.status("running the pipeline until idle…"):
            report = tick(conn, until_idle=True)
            # Idempotent re-runs: rules over features computed before this ontology was
            # active, and scoring jobs for any candidate not yet queued.
            store.backfill(conn, str(project["project_id"]), DEMO_SOURCE)
            conn.execute(query("scoring", "queue_unscored"),
                         {"source_id": None, "project_id": project["project_id"]})
            conn.commit()
        with console.status("scoring: a worker runs until the queue drains…"):
            stats = run_worker(settings.conninfo(),
                               WorkerConfig(mode="until_idle", poll_s=1.0, concurrency=2),
                               signals=False)
        source = fetch_one(conn, "demo", "source_id",
                           {"project_id": project["project_id"], "name": DEMO_SOURCE})
        assert source is not None
        sid = {"source_id": source["source_id"]}
        counts = fetch_one(conn, "demo", "feature_counts", sid)
        per_type = [dict(r) for r in fetch_all(conn, "demo", "candidates_per_type", sid)]
        scores = [float(str(r["model_score"])) for r in fetch_all(conn, "demo", "model_scores", sid)
                  if r["model_score"] is not None]
        evaluation = evaluate_source(conn, load_truth(files["truth"]), DEMO_SOURCE, ref)
        pid = str(project["project_id"])
        with console.status("verifying events, refreshing analytics, publishing a dataset…"):
            events = delivery.verify_events(conn, ref, pid)
            analytics_ms = delivery.refresh_analytics(conn)
            dataset = delivery.publish_dataset(conn, ref, pid)
        with console.status("learning loop: a reviewer's decisions, a retrain, the queue "
                            "re-ranked…"):
            from workers.cli.demo_learning import learning_loop  # torch, like ensure_model

            learning = learning_loop(conn, settings, pid, ref, DEMO_SOURCE, files["truth"],
                                     out_dir, DEMO_SEED)
        reviewer = _reviewer_key(conn, ref)
    app_db = AppDB.from_settings(settings)
    try:
        api_rows = delivery.api_sample(app_db, key["api_key"])
        with console.status("downloading the train split by signed URL…"):
            download = delivery.download_split(app_db, key["api_key"], dataset, ref,
                                               out_dir / "download", settings)
    finally:
        app_db.close()
    return {
        "database": info, "project": project, "customer_key": key["api_key"],
        "customer_key_prefix": key["lookup_prefix"], "files": {k: str(v) for k, v in files.items()},
        "ontology": f"{ontology.name} v{ontology.version}",
        "model_version": model, "ingest": summary.as_json(), "tick": report.as_dict(),
        "features": dict(counts or {}), "candidates_per_type": per_type,
        "evaluation": evaluation, "worker": vars(stats),
        "score_histogram": score_histogram(scores, out_dir / "model_scores.png"),
        "scores": len(scores), "events": events, "analytics_refresh_ms": round(analytics_ms),
        "dataset": dataset, "reviewer_key": reviewer["api_key"], "api_query": api_rows,
        "learning": learning, "download": download,
    }


def _reviewer_key(conn: psycopg.Connection[Any], ref: str) -> dict[str, Any]:
    """A 30-day reviewer key owned by the account `demo-reviewer` (created with a random
    password on first use): review decisions are made by people, and a key decides as its
    owner (docs/review.md)."""
    try:
        accounts.create(conn, DEMO_REVIEWER, secrets.token_urlsafe(18), ref, "reviewer")
    except UserError:  # an earlier demo made it: give it this project too
        conn.rollback()
        accounts.grant(conn, DEMO_REVIEWER, ref, "reviewer")
    return tenancy.create_key(conn, ref, "reviewer", "30d", "demo-reviewer", owner=DEMO_REVIEWER)


def download_line(dl: dict[str, Any]) -> str:
    """The demo's line about the split it downloaded by signed URL."""
    if dl["status"] == "skipped":
        return "download: skipped — no published dataset version, nothing to fetch by signed URL"
    service = (f"file service started on {dl['base_url']} for the download"
               if dl["service"] == "started" else f"file service at {dl['base_url']}")
    newest = (f" (the newest published; {dl['instead_of']} is blocked by a quality gate)"
              if dl.get("instead_of") else "")
    return (f"downloaded {dl['split']} split of {dl['version']}{newest}: {dl['files']} files "
            f"+ manifest.json, {dl['bytes'] / 1e6:.1f} MB, sha256 verified via signed URLs "
            f"({service}; files in {dl['dest']})")


def demo_command(
    out: Path = typer.Option(REPO_ROOT / "out" / "demo", help="Where the scene files go."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Set up the database and run the whole product on the built-in demo scene."""
    res = run_demo(out)
    evaluation = res.pop("evaluation")
    if json_out:
        res.pop("customer_key")
        res.pop("reviewer_key")
        print_json({**res, "evaluation": evaluation.as_dict()})
        return
    pid = res["project"]["project_id"]
    console.rule("[bold]secinf demo")
    console.print(f"project [bold]{DEMO_ORG}/{DEMO_PROJECT}[/] · id {pid} · ontology "
                  f"{res['ontology']} · scoring model {res['model_version']}")
    console.print(f"scene {DEMO_SOURCE}: files in {out}")
    ing = res["ingest"]
    dup = " (already ingested: duplicate batch)" if ing.get("duplicate_batch") else ""
    console.print(f"ingest: {ing['rows_total']:,} rows, {ing['inserted']:,} inserted, "
                  f"{ing['invalid']:,} invalid{dup}")
    tk = res["tick"]
    console.print(f"pipeline: {tk['ticks']} tick(s), {tk['points']:,} points in "
                  f"{tk['seconds']:.1f} s, errors: {len(tk['errors'])}")
    print_table([res["features"]], title="feature rows for the demo scene")
    print_table(res["candidates_per_type"], title="candidates per type")
    console.print(table(evaluation.result, f"evaluation against truth.json "
                                           f"({evaluation.truth_events} truth events)"))
    wk = res["worker"]
    console.print(f"worker: {wk['succeeded']} scoring job(s) done, {wk['dead']} dead-lettered; "
                  f"{res['scores']} candidates scored")
    print_table(res["score_histogram"], title="model score distribution "
                f"(plot: {out / 'model_scores.png'})")
    print_table(res["events"], title="verified events (auto-accepted by model score; "
                "reviewers add 'human' ones in the app)")
    console.print(f"analytics views refreshed in {res['analytics_refresh_ms']} ms "
                  "(secinf analytics export -p demo/plaza writes the metrics as CSV)")
    ds = res["dataset"]
    if ds["status"] == "skipped":
        console.print("dataset: none published — no verified events yet (accept candidates "
                      "in the review app, or lower --auto-accept-model with "
                      "`secinf review settings`)")
    elif ds["unchanged"]:
        console.print(f"dataset events@{ds['version']}: already published with these "
                      f"{ds['events']} events (nothing changed since)")
    else:
        size = f"{ds['bytes'] / 1e6:.1f} MB" if ds.get("bytes") else "?"
        console.print(f"dataset events@{ds['version']}: {ds['status']}, {ds['events']} events, "
                      f"{len(ds['files'])} files, {size} in {ds['path']}")
        print_table([{"split": k, **v} if isinstance(v, dict) else {"split": k, "events": v}
                     for k, v in ds["by_split"].items()], title="dataset splits (by source)")
        console.print(f"  manifest: {ds['path']}/manifest.json · verify: "
                      f"secinf datasets verify {ds['version']} -p demo/plaza")
    console.print(download_line(res["download"]), highlight=False)
    ln = res["learning"]
    console.print(f"learning loop: a scripted reviewer decided {ln['decisions']['accept']} "
                  f"accept / {ln['decisions']['reject']} reject on two scenes; secinf train "
                  f"--project → {ln['model'] or 'no model'}: {ln['verdict']}", highlight=False)
    print_table(ln["queue_before"], title="review queue head (uncertain order) before the retrain")
    print_table(ln["queue_after"], title="... and after (rescored by the model in charge)")
    if res["api_query"]:
        print_table(res["api_query"], title="api.query_events(p_limit => 5) as the demo "
                                            "customer (the PostgREST request model)")
    else:
        console.print("api.query_events as the demo customer: no events yet")
    console.print("  over HTTP (PostgREST):  " + delivery.CURL_EXAMPLE.format(
        key=res["customer_key"]), markup=False, highlight=False)
    console.print("[bold]review app:[/] make app, then open http://localhost:8501 and sign in "
                  f"with the reviewer key (30 days, shown once): {res['reviewer_key']}")
    conninfo = res["database"]["conninfo"]
    console.print(f'connect:  [bold]secinf db psql[/]   or   psql "{conninfo}"')
    console.print(f"customer API key (30 days, shown once): {res['customer_key']}")
    console.print("example queries:")
    console.print(EXAMPLE_QUERIES.format(pid=pid), markup=False, highlight=False)
