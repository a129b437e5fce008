"""The queue is infrastructure: importing it loads no domain, and torch loads only when a
scoring job runs (issue 21, "The queue as infrastructure")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOMAINS = ("workers.pipeline", "workers.rules", "workers.scoring", "workers.ingest",
           "workers.billing", "workers.records", "workers.cli", "workers.job_kinds")


def _modules_after(code: str) -> set[str]:
    """The names in sys.modules after running `code` in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\n"
                           "print(json.dumps(sorted(sys.modules)))"],
                          cwd=ROOT, capture_output=True, text=True, check=True, timeout=120)
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


def test_the_queue_package_imports_no_domain_and_no_torch() -> None:
    loaded = _modules_after(
        "import workers.queue, workers.queue.client, workers.queue.registry, "
        "workers.queue.worker, workers.queue.listener, workers.queue.notify, "
        "workers.queue.builtin")
    assert "torch" not in loaded
    assert sorted(m for m in loaded if m.startswith(DOMAINS)) == []


def test_a_worker_that_loads_every_kind_does_not_import_torch() -> None:
    loaded = _modules_after(
        "import workers.worker_main\n"
        "from workers.queue import registry\n"
        "registry.load_plugins()\n"
        "kinds = registry.kinds()\n"
        "assert {'pipeline_run', 'ingest_file', 'score_candidates', 'noop'} <= set(kinds)\n"
        "workers.worker_main.configure('cpu')")
    assert "torch" not in loaded
    assert "workers.pipeline.jobs" in loaded


def test_the_composition_root_lists_modules_that_exist() -> None:
    from workers import job_kinds
    from workers.queue import registry

    assert registry.plugin_modules() == job_kinds.MODULES
    assert registry.load_plugins() == list(job_kinds.MODULES)


def test_the_worker_command_reads_its_defaults_from_worker_config() -> None:
    import inspect

    from workers.queue.worker import WorkerConfig
    from workers.worker_main import worker_command

    defaults = {name: p.default.default
                for name, p in inspect.signature(worker_command).parameters.items()}
    config = WorkerConfig()
    assert (defaults["concurrency"], defaults["batch"], defaults["lease"], defaults["poll"],
            defaults["grace"], defaults["role"]) == (config.concurrency, config.batch,
                                                     config.lease_s, config.poll_s,
                                                     config.grace_s, config.role)


def test_only_a_worker_named_to_score_loads_torch_at_start() -> None:
    start = ("from workers.scoring.jobs import configure\n"
             "from workers.worker_main import SCORING_KINDS, DEFAULT_DEVICE\n"
             "names = {names!r}\n"
             "configure(DEFAULT_DEVICE, now=bool(set(names) & set(SCORING_KINDS)))\n")
    assert "torch" not in _modules_after(start.format(names=("ingest_file", "pipeline_run")))
    assert "torch" in _modules_after(start.format(names=("score_candidates",)))


def test_an_unknown_device_is_refused_without_torch() -> None:
    import pytest

    from workers.errors import UserError
    from workers.scoring.jobs import configure

    with pytest.raises(UserError, match="--device 'tpu' is not one of auto, cpu, cuda"):
        configure("tpu")
