"""The operations dashboard's read models, each one statement (queries/dashboard.sql)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from .._executor import Executor
from ..keyset import MAX_PAGE, decode_keyset_cursor, keyset_page
from ..records import (
    ConsolidationProgress,
    DashboardSummary,
    KeysetPage,
    LastRun,
    RunOverview,
    RunStatus,
    SupplierStats,
)
from ..validation import (
    RUN_STATUSES,
    choice_arg,
    datetime_arg,
    int_arg,
    supplier_arg,
    timedelta_arg,
    uuid_arg,
)
from .run_control import STALLED_AFTER


def _last_runs(panel: dict[str, Any]) -> dict[str, LastRun]:
    """The summary's last-successful-runs panel (JSON) as records."""
    return {
        supplier: LastRun(
            run_id=UUID(run["run_id"]),
            started_at=datetime.fromisoformat(run["started_at"]),
            completed_at=None
            if run["completed_at"] is None
            else datetime.fromisoformat(run["completed_at"]),
        )
        for supplier, run in panel.items()
    }


def _threshold(stalled_after: timedelta) -> timedelta:
    checked: timedelta = timedelta_arg("stalled_after", stalled_after, minimum=timedelta(0))
    return checked


class DashboardOperations(Executor):
    """Operations of queries/dashboard.sql."""

    async def get_dashboard_summary(
        self, *, stalled_after: timedelta = STALLED_AFTER
    ) -> DashboardSummary:
        """The dashboard's front page, in one statement.

        Live diamonds by availability and by supplier, each supplier's last
        completed run, and the statuses of the runs started in the last 7 days.
        """
        row = await self._run("get_dashboard_summary", {"stalled_after": _threshold(stalled_after)})
        live, by_availability, by_supplier, last_runs, statuses = row
        return DashboardSummary(
            live_diamonds=live,
            by_availability=by_availability,
            by_supplier=by_supplier,
            last_successful_runs=_last_runs(last_runs),
            run_statuses=statuses,
        )

    async def list_runs(
        self,
        supplier: str | None = None,
        status: RunStatus | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
        *,
        stalled_after: timedelta = STALLED_AFTER,
    ) -> KeysetPage[RunOverview]:
        """Runs, newest first, with their counts and status; filters combine with AND.

        `status` filters on the same run_status the items show; runs without
        activity for `stalled_after` are `stalled`. `cursor` is the previous
        page's next_cursor.
        """
        after_started_at, after_run_id = decode_keyset_cursor(cursor)
        row_limit = int_arg("limit", limit, minimum=1, maximum=MAX_PAGE)
        rows = await self._all(
            RunOverview,
            "list_runs",
            supplier=None if supplier is None else supplier_arg("supplier", supplier),
            status=None if status is None else choice_arg("status", status, RUN_STATUSES),
            started_after=datetime_arg("started_after", started_after, optional=True),
            started_before=datetime_arg("started_before", started_before, optional=True),
            after_started_at=after_started_at,
            after_run_id=after_run_id,
            row_limit=row_limit + 1,
            stalled_after=_threshold(stalled_after),
        )
        return keyset_page(rows, row_limit, lambda run: (run.started_at, run.run_id))

    async def get_run_details(
        self, run_id: UUID | str, *, stalled_after: timedelta = STALLED_AFTER
    ) -> RunOverview | None:
        """One run with its counts and status (as list_runs shows it), or None."""
        return await self._one(
            RunOverview,
            "get_run_details",
            run_id=uuid_arg("run_id", run_id),
            stalled_after=_threshold(stalled_after),
        )

    async def get_supplier_stats(self) -> list[SupplierStats]:
        """Per supplier: live diamonds by availability, min/avg/max supplier price, last update."""
        return await self._all(SupplierStats, "get_supplier_stats")

    async def get_consolidation_progress(self, run_id: UUID | str) -> ConsolidationProgress:
        """The raw rows of a run by consolidation status, and the oldest pending one's time.

        An unknown run (or one that stored nothing) has all counts 0.
        """
        row = await self._one(
            ConsolidationProgress, "get_consolidation_progress", run_id=uuid_arg("run_id", run_id)
        )
        assert row is not None  # an aggregate without GROUP BY returns one row
        return row
