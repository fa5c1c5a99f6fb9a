"""Terminal presentation shared by the command line and the demo: pages, progress bars, URLs.

Both `cli.py` and `demo.py` use these; this module imports neither of them, so
the dependency runs one way: cli -> demo -> presentation -> library.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final

from psycopg.conninfo import conninfo_to_dict
from rich.cells import cell_len
from rich.columns import Columns
from rich.console import Console, JustifyMethod
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
from rich.table import Column, Table
from rich.text import Text

from .records import Diamond, DiamondSummary, Facets
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


# Progress columns by console width: all of them from PROGRESS_FULL_WIDTH on;
# narrower, no percentage or time remaining (the counts say as much); below
# PROGRESS_TIMINGS_WIDTH, no rate or elapsed time either. The counts always fit whole.
PROGRESS_FULL_WIDTH: Final = 110
PROGRESS_TIMINGS_WIDTH: Final = 80
# What the other columns of a narrower display take beside the description: the
# bar's minimum (6), counts up to 2000000/2000000 (15), then the rate (14) and
# elapsed time (7) when shown, and one space between columns.
_BESIDE_DESCRIPTION: Final = 6 + 15 + 2
_BESIDE_DESCRIPTION_TIMED: Final = 6 + 15 + 14 + 7 + 4


def progress_bars(console: Console) -> Progress:
    """The progress display of seed and demo, its columns chosen by the console's width.

    Counts, rate and times never wrap or get cut; the description gives way
    (ellipsis) and the bar shrinks instead.
    """
    width = console.width
    full = width >= PROGRESS_FULL_WIDTH
    timed = width >= PROGRESS_TIMINGS_WIDTH
    beside = _BESIDE_DESCRIPTION_TIMED if timed else _BESIDE_DESCRIPTION
    description = Column(
        no_wrap=True, overflow="ellipsis", max_width=None if full else max(8, width - beside)
    )
    columns: list[ProgressColumn] = [
        TextColumn("[bold]{task.description}", table_column=description),
        BarColumn(bar_width=None, table_column=Column(min_width=6, max_width=40)),
        MofNCompleteColumn(table_column=Column(no_wrap=True, justify="right")),
    ]
    if full:
        columns.append(TaskProgressColumn(table_column=Column(no_wrap=True, justify="right")))
    if timed:
        columns.append(_RateColumn(table_column=Column(no_wrap=True, justify="right")))
        columns.append(TimeElapsedColumn(table_column=Column(no_wrap=True)))
    if full:
        columns.append(TimeRemainingColumn(table_column=Column(no_wrap=True)))
    return Progress(*columns, console=console, transient=False)


def money(cents: int | None) -> str:
    """Cents as dollars with thousands separators ($1,234.56); empty for None."""
    return "" if cents is None else f"${Decimal(cents) / 100:,.2f}"


def _text(value: str | None) -> str:
    return value or ""


def _origin(lab_grown: bool) -> str:
    return "lab-grown" if lab_grown else "natural"


@dataclass(frozen=True, slots=True)
class _Column:
    """One column of the diamonds table: its header, alignment, the field it shows, as text."""

    header: str
    justify: JustifyMethod
    field: str
    text: Callable[[Any], str]

    def cell(self, record: Any) -> str:
        return self.text(getattr(record, self.field))


# In display order. A DiamondSummary (projection="list") has no stone number and no
# price per carat: its table starts with the id instead.
_DIAMOND_COLUMNS: Final = (
    _Column("stone", "left", "supplier_stone_id", str),
    _Column("id", "left", "id", str),
    _Column("shape", "left", "shape", str),
    _Column("carats", "right", "carats", str),
    _Column("color", "center", "color", _text),
    _Column("clarity", "center", "clarity", _text),
    _Column("cut", "center", "cut", _text),
    _Column("origin", "left", "lab_grown", _origin),
    _Column("price", "right", "supplier_price_cents", money),
    _Column("per carat", "right", "price_per_carat_cents", money),
    _Column("retail", "right", "retail_price_cents", money),
    _Column("availability", "left", "availability", str),
)
# Which columns a narrow console keeps, most wanted first (the first is always shown).
_KEEP_ORDER: Final = (
    "stone",
    "id",
    "price",
    "carats",
    "shape",
    "color",
    "clarity",
    "availability",
    "origin",
    "cut",
    "retail",
    "per carat",
)
assert sorted(_KEEP_ORDER) == sorted(c.header for c in _DIAMOND_COLUMNS)
# What a column adds to a table with borders besides its content: a rule and two
# spaces of padding; the table's right border adds one more character.
_COLUMN_FRAME: Final = 3


def _choose_columns(widths: dict[str, int], available: int) -> list[str]:
    """The headers to show, in _KEEP_ORDER's preference, whose full widths fit `available`.

    `widths` is each column's content width (its widest cell or header). The
    first column is always kept; a column that does not fit is skipped and a
    narrower, less wanted one may still fit.
    """
    budget = available - 1
    chosen: list[str] = []
    for header in (h for h in _KEEP_ORDER if h in widths):
        needed = widths[header] + _COLUMN_FRAME
        if not chosen or needed <= budget:
            chosen.append(header)
            budget -= needed
    return chosen


def _columns_of(record: type[Any]) -> list[_Column]:
    """The columns a record can fill: the stone number, or the id when it has none."""
    names = {f.name for f in fields(record)}
    if "supplier_stone_id" in names:
        names.discard("id")
    return [c for c in _DIAMOND_COLUMNS if c.field in names]


def print_page(console: Console, page: Page[Diamond] | Page[DiamondSummary], *, title: str) -> None:
    """A page of diamonds as a table as wide as the console allows, and its paging line.

    Columns are chosen by width so that no cell wraps: an id or a price is
    never split across lines; the least wanted columns are left out and named
    under the table.
    """
    available = _columns_of(type(page.items[0]) if page.items else Diamond)
    cells = {c.header: [c.cell(d) for d in page.items] for c in available}
    widths = {
        header: max([cell_len(header), *(cell_len(text) for text in texts)])
        for header, texts in cells.items()
    }
    shown = set(_choose_columns(widths, console.width))
    hidden = [c.header for c in available if c.header not in shown]
    columns = [c for c in available if c.header in shown]
    table = Table(
        title=title,
        title_justify="left",
        caption=f"not shown at this width: {', '.join(hidden)}" if hidden and page.items else None,
        caption_justify="left",
    )
    for column in columns:
        table.add_column(
            column.header,
            justify=column.justify,
            no_wrap=True,
            overflow="ellipsis",
            min_width=widths[column.header],
        )
    for row in range(len(page.items)):  # Text: a supplier's "[...]" is not rich markup
        table.add_row(*(Text(cells[column.header][row]) for column in columns))
    console.print(table)
    console.print(_paging_line(page), markup=False, soft_wrap=True)


def _paging_line(page: Page[Any]) -> str:
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


def print_facets(console: Console, facets: Facets, *, title: str) -> None:
    """Facet counts side by side, one small table per facet (None shown as "(none)")."""
    tables = []
    for facet, counts in facets.items():
        table = Table(title=facet, title_justify="left")
        table.add_column("value", no_wrap=True)
        table.add_column("count", justify="right", no_wrap=True)
        for value, n in counts.items():
            plus = "+" if (facet, value) in facets.capped else ""
            table.add_row(Text("(none)" if value is None else str(value)), f"{n:,}{plus}")
        tables.append(table)
    console.print(Text(title, style="bold"))
    console.print(Columns(tables))
    if facets.capped:
        console.print(f"+: more than {facets.count_cap:,} (count capped)", markup=False)
