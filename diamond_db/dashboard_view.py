"""The operations dashboard in the terminal: runs, a run, the error log, the status page.

Rich tables for the `runs`, `errors` and `status` commands of cli.py; this
module imports only the library's records, so the dependency runs one way.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .records import (
    ConsolidationProgress,
    DashboardSummary,
    ErrorGroup,
    KeysetPage,
    PartitionProgress,
    RunOverview,
)

STATUS_STYLES = {
    "running": "cyan",
    "completed": "green",
    "partial": "yellow",
    "failed": "red",
    "cancelled": "magenta",
    "stalled": "bold red",
}


def when(stamp: datetime | None) -> str:
    """A timestamp to the second, in UTC; empty for None."""
    return "" if stamp is None else stamp.strftime("%Y-%m-%d %H:%M:%S")


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        numeric = column in {
            "rows",
            "estimated",
            "done",
            "failed",
            "pending",
            "count",
            "next offset",
        }
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    return table


def print_runs(console: Console, page: KeysetPage[RunOverview]) -> None:
    """A page of runs, newest first, and how to get the next one."""
    table = _table(
        "runs",
        "run",
        "supplier",
        "status",
        "started",
        "done",
        "failed",
        "pending",
        "rows",
        "estimated",
        "last activity",
    )
    for run in page.items:
        table.add_row(
            Text(str(run.run_id)),
            Text(run.supplier),
            _status(run.status),
            when(run.started_at),
            str(run.workers_completed),
            str(run.workers_failed),
            str(run.workers_pending),
            f"{run.rows_processed:,}",
            "" if run.estimated_rows is None else f"{run.estimated_rows:,}",
            when(run.last_activity_at),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False, soft_wrap=True)


def print_run(
    console: Console,
    run: RunOverview,
    partitions: Iterable[PartitionProgress],
    consolidation: ConsolidationProgress,
) -> None:
    """One run: its fields, its partitions and its raw rows' consolidation."""
    fields = Table(title=f"run {run.run_id}", title_justify="left", show_header=False)
    fields.add_column(no_wrap=True)
    fields.add_column()
    fields.add_row("status", _status(run.status))
    for name, value in (
        ("supplier", run.supplier),
        ("type", run.run_type),
        ("started", when(run.started_at)),
        ("completed", when(run.completed_at)),
        ("cancelled", when(run.cancelled_at)),
        ("cancel reason", run.cancel_reason or ""),
        (
            "workers",
            f"{run.workers_completed} completed, {run.workers_failed} failed, "
            f"{run.workers_pending} pending ({run.worker_runs} worker runs, "
            f"{run.workers_running} running)",
        ),
        ("rows", f"{run.rows_processed:,} of ~{run.estimated_rows or 0:,} estimated"),
        (
            "consolidation",
            f"started {when(run.consolidation_started_at) or '-'}, finished "
            f"{when(run.consolidation_finished_at) or '-'}: "
            f"{run.consolidation_processed:,} processed, "
            f"{run.consolidation_errors:,} errors",
        ),
        (
            "raw rows",
            f"{consolidation.total:,}: {consolidation.done:,} done, "
            f"{consolidation.pending:,} pending, {consolidation.processing:,} "
            f"processing, {consolidation.failed:,} failed",
        ),
        ("last activity", when(run.last_activity_at)),
    ):
        fields.add_row(name, Text(value))
    console.print(fields)
    table = _table(
        "partitions", "partition", "state", "next offset", "attempts", "updated", "last error"
    )
    for p in partitions:
        state = "completed" if p.completed else "failed" if p.failed else "in progress"
        table.add_row(
            Text(p.partition_id),
            state,
            f"{p.next_offset:,}",
            str(p.attempts),
            when(p.updated_at),
            Text(p.last_error or ""),
        )
    console.print(table)


def print_errors(console: Console, page: KeysetPage[ErrorGroup]) -> None:
    """Error groups, most recently seen first."""
    table = _table("errors", "service", "count", "last seen", "first seen", "error")
    for group in page.items:
        table.add_row(
            Text(group.service),
            f"{group.occurrences:,}",
            when(group.last_seen),
            when(group.first_seen),
            Text(group.pattern, overflow="fold"),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"more: --cursor {page.next_cursor}", markup=False, soft_wrap=True)


def print_summary(console: Console, summary: DashboardSummary) -> None:
    """The dashboard summary: live diamonds, last successful runs, the week's run statuses."""
    live = _table(f"live diamonds: {summary.live_diamonds:,}", "by", "", "count")
    for availability, count in sorted(summary.by_availability.items()):
        live.add_row("availability", Text(availability), f"{count:,}")
    for supplier, count in sorted(summary.by_supplier.items()):
        live.add_row("supplier", Text(supplier), f"{count:,}")
    console.print(live)
    runs = _table("last successful run per supplier", "supplier", "run", "started", "completed")
    for supplier, run in sorted(summary.last_successful_runs.items()):
        runs.add_row(
            Text(supplier), Text(str(run.run_id)), when(run.started_at), when(run.completed_at)
        )
    console.print(runs)
    week = _table("runs started in the last 7 days", "status", "count")
    for status, count in sorted(summary.run_statuses.items()):
        week.add_row(_status(status), f"{count:,}")
    console.print(week)
