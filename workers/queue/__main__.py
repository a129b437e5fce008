"""`python -m workers.queue …`: the worker command without the whole CLI (supervisors, tests)."""

from workers.cli.worker_cmd import main

main()
