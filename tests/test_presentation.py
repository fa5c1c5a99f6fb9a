"""Result tables and progress bars rendered at 80 and 160 columns: nothing split, nothing cut."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from helpers import diamond, fetch
from rich.cells import cell_len
from rich.console import Console

from diamond_db import Database
from diamond_db.presentation import money, print_page, progress_bars

WIDTHS = (80, 160)
HEADERS = (
    "stone",
    "shape",
    "carats",
    "color",
    "clarity",
    "cut",
    "origin",
    "price",
    "per carat",
    "retail",
    "availability",
)
# Ids and prices as wide as real ones get: a long supplier id, a seven-figure price.
STONES = (
    ("NIV-2025-00000017", 123_456_789, "MARQUISE"),
    ("LONG-SUPPLIER-STONE-ID-0001", 9_999_999, "ROUND"),
    ("syn-7-00000061", 925_300, "CUSHION"),
    ("S-4[b]", 45_000, "PEAR"),  # "[b]" would be rich markup (bold) if not shown as text
)
ORACLE = (
    "SELECT supplier_stone_id, supplier_price_cents, price_per_carat_cents, retail_price_cents"
    " FROM diamonds WHERE status = 'active' ORDER BY supplier_price_cents DESC, id"
)


def console(width: int) -> Console:
    """A console of exactly `width` columns writing into memory, recording plain text."""
    return Console(width=width, file=io.StringIO(), color_system=None, record=True)


@pytest.mark.parametrize("width", WIDTHS)
async def test_a_page_keeps_every_id_and_price_on_one_line(
    diamond_db: Database, diamond_db_url: str, width: int
) -> None:
    await diamond_db.upsert_diamonds(
        [
            diamond(
                stone,
                shape=shape,
                carats=Decimal("1.23"),
                supplier_price_cents=price,
                price_per_carat_cents=price * 100 // 123,
                retail_price_cents=price * 115 // 100,
                availability="unavailable",
                lab_grown=True,
            )
            for stone, price, shape in STONES
        ]
    )
    page = await diamond_db.search_diamonds(sort_by="supplier_price_cents", sort_order="desc")
    out = console(width)
    print_page(out, page, title="Every stone, most expensive first: $450.00 to $1,234,567.89")
    lines = out.export_text().splitlines()

    *table, paging = lines
    assert paging == "4 shown; 4 matching, page 1 of 1"
    assert all(cell_len(line) <= width for line in table), "\n".join(lines)
    body = [line for line in table if line.startswith("│")]
    expected = fetch(diamond_db_url, ORACLE)
    assert len(body) == len(expected) == len(STONES), "\n".join(lines)  # one line per stone
    header = next(line for line in table if line.startswith("┃"))
    shown = [name for name in HEADERS if f" {name} " in header]
    for line, (stone, price, per_carat, retail) in zip(body, expected, strict=True):
        assert f" {stone} " in line, "\n".join(lines)
        assert f" {money(price)} " in line, "\n".join(lines)
        if "per carat" in shown:
            assert f" {money(per_carat)} " in line
        if "retail" in shown:
            assert f" {money(retail)} " in line
        assert ("unavailable" in line) == ("availability" in shown)
    if width >= 160:
        assert shown == list(HEADERS)
        assert not any("not shown" in line for line in table)
    else:
        assert {"stone", "price", "carats"} <= set(shown) < set(HEADERS)
        caption = " ".join(line.strip() for line in table[table.index(body[-1]) + 2 :])
        hidden = [name for name in HEADERS if name not in shown]
        assert caption == f"not shown at this width: {', '.join(hidden)}"


@pytest.mark.parametrize("width", WIDTHS)
def test_progress_bars_show_whole_counts(width: int) -> None:
    out = console(width)
    tasks = (("workers storing raw payloads", 10_000), ("consolidating into diamonds", 2_000_000))
    now = [0.0]
    with progress_bars(out) as progress:
        progress.get_time = lambda: now[0]  # a clock the test moves: rates of 200,000+ rows/s
        for description, total in tasks:
            task = progress.add_task(description, total=total)
            for _ in range(10):
                now[0] += 0.005 * total / 1_000
                progress.update(task, advance=total // 10)
    lines = [line for line in out.export_text().splitlines() if line.strip()]
    assert len(lines) == len(tasks), lines  # one line per task: nothing wrapped
    for line, (description, total) in zip(lines, tasks, strict=True):
        assert cell_len(line) <= width
        assert line.startswith(description)
        assert f" {total}/{total} " in f"{line} "
        assert "rows/s" in line
        assert ("100%" in line) == (width >= 110)
