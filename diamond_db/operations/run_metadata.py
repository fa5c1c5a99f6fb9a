"""Batch runs: creation, atomic worker counters, completion (queries/run_metadata.sql)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from .._executor import Executor
from ..records import RunMetadata, RunType
from ..validation import RUN_TYPES, choice_arg, datetime_arg, int_arg, uuid_arg


class RunMetadataOperations(Executor):
    """Operations of queries/run_metadata.sql."""

    async def create_run_metadata(
        self,
        run_type: RunType,
        expected_workers: int,
        watermark_before: datetime | None = None,
    ) -> RunMetadata:
        """Start a run that expects `expected_workers` workers to report."""
        row = await self._one(
            RunMetadata,
            "create_run_metadata",
            run_type=choice_arg("run_type", run_type, RUN_TYPES),
            expected_workers=int_arg("expected_workers", expected_workers, minimum=0),
            watermark_before=datetime_arg("watermark_before", watermark_before, optional=True),
        )
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def get_run_metadata(self, run_id: UUID | str) -> RunMetadata | None:
        """The run, or None when the id is unknown."""
        return await self._one(RunMetadata, "get_run_metadata", run_id=uuid_arg("run_id", run_id))
