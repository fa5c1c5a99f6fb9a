"""Batch runs: creation, atomic worker counters, completion (queries/run_metadata.sql)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from .._executor import Executor
from ..errors import NotFoundError
from ..records import RunMetadata, RunType, WorkerCounters
from ..validation import RUN_TYPES, choice_arg, datetime_arg, int_arg, supplier_arg, uuid_arg


class RunMetadataOperations(Executor):
    """Operations of queries/run_metadata.sql."""

    async def create_run_metadata(
        self,
        run_type: RunType,
        expected_workers: int,
        watermark_before: datetime | None = None,
        *,
        supplier: str = "nivoda",
    ) -> RunMetadata:
        """Start a run of one feed (`supplier`) expecting `expected_workers` workers to report."""
        row = await self._one(
            RunMetadata,
            "create_run_metadata",
            supplier=supplier_arg("supplier", supplier),
            run_type=choice_arg("run_type", run_type, RUN_TYPES),
            expected_workers=int_arg("expected_workers", expected_workers, minimum=0),
            watermark_before=datetime_arg("watermark_before", watermark_before, optional=True),
        )
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def get_run_metadata(self, run_id: UUID | str) -> RunMetadata | None:
        """The run, or None when the id is unknown."""
        return await self._one(RunMetadata, "get_run_metadata", run_id=uuid_arg("run_id", run_id))

    async def increment_completed_workers(self, run_id: UUID | str) -> WorkerCounters:
        """Count one more completed worker, atomically; the counters right after.

        Of concurrent callers each sees a distinct count, so exactly one sees
        completed + failed reach expected: the last worker. NotFoundError for an
        unknown run.
        """
        return await self._increment("increment_completed_workers", run_id)

    async def increment_failed_workers(self, run_id: UUID | str) -> WorkerCounters:
        """Count one more failed worker, atomically; the counters right after (as above)."""
        return await self._increment("increment_failed_workers", run_id)

    async def _increment(self, statement: str, run_id: UUID | str) -> WorkerCounters:
        run = uuid_arg("run_id", run_id)
        counters = await self._one(WorkerCounters, statement, run_id=run)
        if counters is None:
            raise NotFoundError(f"run {run} does not exist")
        return counters

    async def complete_run(
        self, run_id: UUID | str, watermark_after: datetime | None = None
    ) -> RunMetadata:
        """Mark the run completed now, with the watermark the next run starts from.

        NotFoundError for an unknown run.
        """
        run = uuid_arg("run_id", run_id)
        row = await self._one(
            RunMetadata,
            "complete_run",
            run_id=run,
            watermark_after=datetime_arg("watermark_after", watermark_after, optional=True),
        )
        if row is None:
            raise NotFoundError(f"run {run} does not exist")
        return row
