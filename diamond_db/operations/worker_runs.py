"""Worker runs: one worker's attempt at one partition of a run (queries/worker_runs.sql)."""

from __future__ import annotations

from .._executor import Executor


class WorkerRunOperations(Executor):
    """Operations of queries/worker_runs.sql."""
