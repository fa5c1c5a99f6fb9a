"""Resumable workers: partition progress and pages (queries/partition_progress.sql).

A worker handles one page message at a time: `init_partition` (idempotent),
fetch the page at `next_offset`, `upsert_raw_diamonds` (idempotent by hash),
then `record_page`, which advances the offset and counts the rows in one
statement, then enqueues the next page. Every state change is a
compare-and-set: a redelivered message or a second worker loses cleanly.
"""

from __future__ import annotations

from collections.abc import Sized
from datetime import timedelta
from uuid import UUID

from .._executor import Executor
from ..errors import NotFoundError, ValidationError
from ..records import PartitionProgress
from ..validation import int_arg, text_arg, timedelta_arg, uuid_arg


def _offsets(expected_offset: object, new_offset: object) -> tuple[int, int]:
    """Checked (expected, new) offsets: a page moves the offset forward."""
    expected = int_arg("expected_offset", expected_offset, minimum=0)
    new = int_arg("new_offset", new_offset, minimum=0)
    if new <= expected:
        raise ValidationError("new_offset", f"must be greater than expected_offset ({expected})")
    return expected, new


class PartitionProgressOperations(Executor):
    """Operations of queries/partition_progress.sql."""

    async def init_partition(self, run_id: UUID | str, partition_id: str) -> PartitionProgress:
        """The partition's progress, created at offset 0 on first call (idempotent).

        A redelivered message gets the existing row back, wherever it stands.
        A partition created after its run was cancelled starts failed.
        NotFoundError for an unknown run.
        """
        run = uuid_arg("run_id", run_id)
        partition = text_arg("partition_id", partition_id)
        created = await self._one(
            PartitionProgress, "init_partition", run_id=run, partition_id=partition
        )
        if created is not None:
            return created
        # Not inserted: it exists (this second statement's snapshot sees it, even
        # when a concurrent init created it), or the run does not.
        existing = await self.get_partition(run, partition)
        if existing is None:
            raise NotFoundError(f"run {run} does not exist")
        return existing

    async def get_partition(
        self, run_id: UUID | str, partition_id: str
    ) -> PartitionProgress | None:
        """The partition's progress (read on the primary), or None."""
        return await self._one(
            PartitionProgress,
            "get_partition",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
        )

    async def advance_partition(
        self,
        run_id: UUID | str,
        partition_id: str,
        expected_offset: int,
        new_offset: int,
    ) -> bool:
        """Move next_offset from `expected_offset` to `new_offset` (compare-and-set).

        True for exactly one of concurrent callers with the same expected
        offset; False when the partition is elsewhere, completed or failed.
        """
        expected, new = _offsets(expected_offset, new_offset)
        advanced = await self._value(
            "advance_partition",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
            expected_offset=expected,
            new_offset=new,
        )
        return advanced is True

    async def record_page(
        self,
        run_id: UUID | str,
        partition_id: str,
        worker_run_id: UUID | str,
        expected_offset: int,
        new_offset: int,
        rows: Sized,
    ) -> bool:
        """After storing a page: advance the offset and count `len(rows)`, in one statement.

        The offset moves (compare-and-set, as advance_partition) and the worker
        run's records_processed grows together or not at all, so a crash never
        leaves one without the other. False, changing nothing, for a
        redelivered page, a finished partition or a worker run no longer
        running (a cancelled run).
        """
        expected, new = _offsets(expected_offset, new_offset)
        if not isinstance(rows, Sized) or isinstance(rows, str | bytes):
            raise ValidationError("rows", "expected the page's rows (a sequence)")
        recorded = await self._value(
            "record_page",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
            worker_run_id=uuid_arg("worker_run_id", worker_run_id),
            expected_offset=expected,
            new_offset=new,
            row_count=len(rows),
        )
        return recorded is True

    async def complete_partition(
        self, run_id: UUID | str, partition_id: str, expected_offset: int
    ) -> bool:
        """Mark the partition completed if in progress at `expected_offset` (compare-and-set).

        Counts the run's completed worker in the same statement. True for
        exactly one caller.
        """
        completed = await self._value(
            "complete_partition",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
            expected_offset=int_arg("expected_offset", expected_offset, minimum=0),
        )
        return completed is True

    async def fail_partition(self, run_id: UUID | str, partition_id: str, error: str) -> bool:
        """Mark the partition failed, keeping `error`; True once per failure episode.

        Only the first failure counts the run's failed worker (same statement);
        a later one, or one for a completed partition, returns False.
        """
        failed = await self._value(
            "fail_partition",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
            error=text_arg("error", error, empty=True),
        )
        return failed is True

    async def retry_partition(self, run_id: UUID | str, partition_id: str) -> bool:
        """Failed -> in progress, keeping next_offset, attempts + 1; True if it was failed.

        Takes the partition off the run's failed workers; refused (False) in a
        cancelled run.
        """
        retried = await self._value(
            "retry_partition",
            run_id=uuid_arg("run_id", run_id),
            partition_id=text_arg("partition_id", partition_id),
        )
        return retried is True

    async def list_partitions(self, run_id: UUID | str) -> list[PartitionProgress]:
        """Every partition of the run, by partition_id."""
        return await self._all(
            PartitionProgress, "list_partitions", run_id=uuid_arg("run_id", run_id)
        )

    async def get_stalled_partitions(self, older_than: timedelta) -> list[PartitionProgress]:
        """Partitions in progress not updated for `older_than`, oldest first, to re-drive.

        What is left when a worker died between advancing the offset and
        enqueueing the next page; cancelled runs are left out.
        """
        age = timedelta_arg("older_than", older_than, minimum=timedelta(0))
        return await self._all(PartitionProgress, "get_stalled_partitions", older_than=age)
