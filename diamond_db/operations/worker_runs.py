"""Worker runs: one worker's attempt at one partition of a run (queries/worker_runs.sql)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from .._executor import Executor
from ..errors import NotFoundError
from ..records import WorkerRun, WorkerStatus
from ..validation import (
    INT4_MAX,
    WORKER_STATUSES,
    choice_arg,
    int_arg,
    json_arg,
    text_arg,
    uuid_arg,
)


class WorkerRunOperations(Executor):
    """Operations of queries/worker_runs.sql."""

    async def create_worker_run(
        self,
        run_id: UUID | str,
        partition_id: str,
        worker_id: UUID | str,
        work_item_payload: Mapping[str, Any] | None = None,
    ) -> WorkerRun:
        """Record a worker starting on a partition of a run (status 'running').

        A second worker for the same (run_id, partition_id) gets the database's
        unique violation (psycopg.errors.UniqueViolation, SQLSTATE 23505).
        """
        payload = json_arg("work_item_payload", work_item_payload, optional=True)
        row = await self._one(
            WorkerRun,
            "create_worker_run",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
            worker_id=uuid_arg("worker_id", worker_id),
            work_item_payload=None if payload is None else Jsonb(payload),
        )
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def update_worker_run(
        self,
        id: UUID | str,
        status: WorkerStatus,
        records_processed: int,
        error_message: str | None = None,
    ) -> WorkerRun:
        """Record a worker's progress or outcome; the updated row.

        completed_at is set once the status is 'completed' or 'failed'.
        NotFoundError for an unknown id.
        """
        worker_run = uuid_arg("id", id)
        row = await self._one(
            WorkerRun,
            "update_worker_run",
            id=worker_run,
            status=choice_arg("status", status, WORKER_STATUSES),
            records_processed=int_arg(
                "records_processed", records_processed, minimum=0, maximum=INT4_MAX
            ),
            error_message=text_arg("error_message", error_message, optional=True, empty=True),
        )
        if row is None:
            raise NotFoundError(f"worker run {worker_run} does not exist")
        return row

    async def get_worker_runs_by_run_id(self, run_id: UUID | str) -> list[WorkerRun]:
        """Every worker run of a run, by partition_id."""
        return await self._all(
            WorkerRun, "get_worker_runs_by_run_id", run_id=uuid_arg("run_id", run_id)
        )

    async def get_failed_worker_runs(self, run_id: UUID | str) -> list[WorkerRun]:
        """The failed worker runs of a run, with their work_item_payload, for a retry."""
        return await self._all(
            WorkerRun, "get_failed_worker_runs", run_id=uuid_arg("run_id", run_id)
        )

    async def reset_failed_worker(self, run_id: UUID | str, partition_id: str) -> bool:
        """Delete a partition's failed worker run and take it off the run's failed_workers.

        One statement, so the counter never disagrees with the rows. True if a
        failed worker run was deleted.
        """
        run = uuid_arg("run_id", run_id)
        partition = text_arg("partition_id", partition_id)
        return await self._reset(run, partition) > 0

    async def reset_all_failed_workers(self, run_id: UUID | str) -> int:
        """Delete every failed worker run of a run and take them off failed_workers; how many.

        One statement, so the counter never disagrees with the rows.
        """
        return await self._reset(uuid_arg("run_id", run_id), None)

    async def _reset(self, run_id: UUID, partition_id: str | None) -> int:
        deleted = await self._value(
            "reset_failed_workers", run_id=run_id, partition_id=partition_id
        )
        return int(deleted or 0)
