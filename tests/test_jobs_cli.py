"""`diamond-db jobs ...`: start with search filters, work with a progress bar, the refusals."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers import diamond, fetch, scalar
from test_cli import run, url  # noqa: F401 (fixtures)

from diamond_db import Database


async def _seed(database_url: str) -> None:
    async with Database(database_url, min_size=1) as db:
        await db.upsert_diamonds([diamond(f"c{n}", lab_grown=n % 2 == 0) for n in range(30)])
        await db.create_pricing_rule(priority=1, markup_ratio="1.3000", rating=7)


def test_start_with_search_flags_work_show_list_and_refusals(
    run: Any,  # noqa: F811
    url: str,  # noqa: F811
) -> None:
    asyncio.run(_seed(url))

    started = run("jobs", "start", "pricing", "--reason", "cli", "--lab-grown",
                  "--shape", "ROUND,OVAL", "--carat-min", "1", "--database-url", url)  # fmt: skip
    assert started.code == 0, started.err
    job_id = str(scalar(url, "SELECT id FROM catalogue_jobs"))
    assert job_id in started.out
    assert "15 diamonds" in started.out
    [(filters,)] = fetch(url, "SELECT filters FROM catalogue_jobs")
    assert filters == {"shape": ["ROUND", "OVAL"], "carat_min": "1", "lab_grown": True}

    again = run("jobs", "start", "pricing", "--database-url", url)
    assert again.code == 1
    assert "already active" in again.err

    worked = run("jobs", "work", job_id, "--batch-size", "4", "--database-url", url)
    assert worked.code == 0, worked.err
    assert f"job {job_id} is completed: 15 processed, 15 changed" in worked.out
    assert scalar(url, "SELECT count(*) FROM diamonds WHERE retail_price_cents = 130000") == 15

    shown = run("jobs", "show", job_id, "--database-url", url)
    assert "completed" in shown.out
    assert "lab_grown" in shown.out
    listed = run("jobs", "list", "--database-url", url)
    assert job_id in listed.out
    cancelled = run("jobs", "cancel", job_id, "--database-url", url)
    assert cancelled.code == 1
    assert "cannot be cancelled" in cancelled.err
    sorted_ = run("jobs", "start", "rating", "--sort-by", "rating", "--database-url", url)
    assert sorted_.code == 2
    assert "--sort-by is not a filter" in sorted_.err

    reverted = run("jobs", "revert", job_id, "--database-url", url)
    assert reverted.code == 0, reverted.err
    assert "15 restored, 0 skipped" in reverted.out
