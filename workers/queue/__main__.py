"""`python -m workers.queue …`: the worker command without the whole CLI (supervisors, tests).
The process is wired in workers.worker_main (the composition root's job kinds, settings)."""

from workers.worker_main import main

main()
