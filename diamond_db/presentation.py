"""Terminal presentation shared by the command line and the demo: pages, progress bars, URLs.

Both `cli.py` and `demo.py` use these; this module imports neither of them, so
the dependency runs one way: cli -> demo -> presentation -> library.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any, Final

from psycopg.conninfo import conninfo_to_dict
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from .records import Diamond
from .search import Page

# Bulk statements of seed and demo legitimately take longer than a request's statement.
BULK_SLOW_QUERY_THRESHOLD: Final = 10.0


def where(url: str) -> str:
    """host:port/dbname of a URL, never its password.

    Raises psycopg.ProgrammingError when `url` is not a connection string.
    """
    info = conninfo_to_dict(url)
    host = info.get("host") or "localhost"
    return f"{host}:{info.get('port') or 5432}/{info.get('dbname') or info.get('user') or ''}"


def bulk_settings() -> dict[str, Any]:
    """Seed and demo send big statements by design: warn about them only past 10 s,
    unless DIAMOND_DB_SLOW_QUERY_MS says otherwise."""
    if os.environ.get("DIAMOND_DB_SLOW_QUERY_MS", "").strip():
        return {}
    return {"slow_query_threshold": BULK_SLOW_QUERY_THRESHOLD}


class _RateColumn(ProgressColumn):
    """Rows per second, from rich's own speed estimate."""

    def render(self, task: Task) -> Text:
        return Text("" if task.speed is None else f"{task.speed:,.0f} rows/s")


def progress_bars(console: Console) -> Progress:
    """The progress display of seed and demo: description, bar, counts, rate, times."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def _money(cents: int | None) -> str:
    return "" if cents is None else f"${Decimal(cents) / 100:,.2f}"


def print_page(console: Console, page: Page[Diamond], *, title: str) -> None:
    """A page of diamonds as a table, with its paging line under it."""
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("stone", "left"),
        ("shape", "left"),
        ("carats", "right"),
        ("color", "center"),
        ("clarity", "center"),
        ("cut", "center"),
        ("origin", "left"),
        ("price", "right"),
        ("per carat", "right"),
        ("retail", "right"),
        ("availability", "left"),
    ):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for d in page.items:
        table.add_row(
            d.supplier_stone_id,
            d.shape,
            f"{d.carats}",
            d.color or "",
            d.clarity or "",
            d.cut or "",
            "lab-grown" if d.lab_grown else "natural",
            _money(d.supplier_price_cents),
            _money(d.price_per_carat_cents),
            _money(d.retail_price_cents),
            d.availability,
        )
    console.print(table)
    console.print(_paging_line(page), markup=False, soft_wrap=True)


def _paging_line(page: Page[Diamond]) -> str:
    if page.total == 0:
        return "no diamond matches"
    if page.total is None:
        total = "total not counted"
    else:
        plus = "" if page.total_is_exact else "+"
        total = f"{page.total:,}{plus} matching, page {page.page} of {page.total_pages:,}{plus}"
    shown = f"{len(page.items)} shown"
    cursor = f"; next page: --cursor {page.next_cursor}" if page.next_cursor else ""
    return f"{shown}; {total}{cursor}"
