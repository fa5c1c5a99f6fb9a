"""Run control: cancel and delete runs, worker progress, consolidation reports
(queries/run_control.sql)."""

from __future__ import annotations

from datetime import timedelta
from typing import Final
from uuid import UUID

from .._executor import Executor
from ..errors import NotFoundError, RunStateError
from ..records import RunCancellation, RunMetadata
from ..validation import INT4_MAX, int_arg, text_arg, uuid_arg

# A run with no activity for this long is `stalled` (README, "Run status").
STALLED_AFTER: Final = timedelta(minutes=15)


class RunControlOperations(Executor):
    """Operations of queries/run_control.sql."""

    async def cancel_run(self, run_id: UUID | str, reason: str) -> RunCancellation:
        """Cancel a run in one transaction; idempotent.

        Partitions neither completed nor failed become failed, running worker
        runs failed with `reason`, and the run is marked cancelled with its
        completed_at set if unset. A repeated cancel changes nothing (counts 0);
        a run that had already finished is not marked cancelled
        (`cancelled_at` None). NotFoundError for an unknown run.
        """
        run = uuid_arg("run_id", run_id)
        why = text_arg("reason", reason)
        async with self._atomic() as tx:
            partitions = await tx._rowcount("cancel_partitions", run_id=run, reason=why)
            workers = await tx._rowcount("cancel_worker_runs", run_id=run, reason=why)
            row = await tx._run("cancel_run_row", {"run_id": run, "reason": why})
            if row is None:
                raise NotFoundError(f"run {run} does not exist")  # rolls back (nothing changed)
        return RunCancellation(
            run_id=run,
            partitions_failed=partitions,
            worker_runs_failed=workers,
            cancelled_at=row[0],
        )

    async def delete_run(self, run_id: UUID | str) -> None:
        """Delete a finished run with its partitions and worker runs, in one statement.

        Only a run whose status is completed, partial, failed or cancelled, as
        decided by the statement itself; any other raises RunStateError (nothing
        deleted). NotFoundError for an unknown run. The raw payloads the run
        wrote stay.
        """
        run = uuid_arg("run_id", run_id)
        row = await self._run("delete_run", {"run_id": run, "stalled_after": STALLED_AFTER})
        if row is None:
            raise NotFoundError(f"run {run} does not exist")
        status, deleted = row
        if not deleted:
            raise RunStateError(run, status, "only a finished or cancelled run can be deleted")

    async def update_worker_progress(self, worker_run_id: UUID | str, rows: int) -> bool:
        """Add `rows` to a running worker run's records_processed, atomically.

        False (nothing changed) when the worker run is unknown or no longer
        running, e.g. its run was cancelled: the worker should stop.
        """
        updated = await self._value(
            "update_worker_progress",
            worker_run_id=uuid_arg("worker_run_id", worker_run_id),
            row_count=int_arg("rows", rows, minimum=0, maximum=INT4_MAX),
        )
        return updated is True

    async def mark_consolidation_started(self, run_id: UUID | str) -> bool:
        """Record the start of the run's consolidation; True for the first call only."""
        started = await self._value("mark_consolidation_started", run_id=uuid_arg("run_id", run_id))
        return started is True

    async def finish_consolidation(self, run_id: UUID | str) -> int | None:
        """Record the end of the run's consolidation and bump its supplier's dataset version.

        One transaction, so the new version is visible exactly when the end is.
        Returns the new version; None, changing nothing, when the consolidation
        had already finished. NotFoundError for an unknown run.
        """
        run = uuid_arg("run_id", run_id)
        async with self._atomic() as tx:
            finished = await tx._one(RunMetadata, "finish_consolidation", run_id=run)
            if finished is not None:
                version: int = await tx._value("bump_dataset_version", supplier=finished.supplier)
                return version
            if await tx._one(RunMetadata, "get_run_metadata", run_id=run) is None:
                raise NotFoundError(f"run {run} does not exist")
            return None

    async def add_consolidation_stats(
        self, run_id: UUID | str, processed: int, errors: int
    ) -> RunMetadata:
        """Add a consolidator's counts to the run's; the run afterwards.

        Additive in one statement: concurrent consolidators' reports add up.
        NotFoundError for an unknown run.
        """
        run = uuid_arg("run_id", run_id)
        row = await self._one(
            RunMetadata,
            "add_consolidation_stats",
            run_id=run,
            processed=int_arg("processed", processed, minimum=0),
            errors=int_arg("errors", errors, minimum=0),
        )
        if row is None:
            raise NotFoundError(f"run {run} does not exist")
        return row
