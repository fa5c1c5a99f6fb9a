"""The dashboard read models against a Python oracle, on generated runs and diamonds."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
from helpers import fetch_dicts

from diamond_db import Database, RawDiamondInput, RunOverview

SUPPLIERS = ("nivoda", "vdb", "rapnet")
AVAILABILITIES = ("available", "on_hold", "sold", "unavailable")
STALLED_AFTER = timedelta(minutes=15)


def insert_diamonds(url: str, rng: random.Random, count: int) -> None:
    rows = [
        (
            rng.choice(SUPPLIERS),
            f"stone-{n}",
            f"offer-{n}",
            Decimal("1.00"),
            rng.randrange(50_000, 5_000_000),
            rng.choice(AVAILABILITIES),
            "deleted" if rng.random() < 0.1 else "active",
            timedelta(minutes=rng.randrange(0, 10_000)),
        )
        for n in range(count)
    ]
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO diamonds (supplier, supplier_stone_id, offer_id, shape, carats,"
            " supplier_price_cents, price_per_carat_cents, availability, status, updated_at)"
            " VALUES (%s, %s, %s, 'ROUND', %s, %s, 1, %s, %s, now() - %s)",
            rows,
        )


async def generate_runs(db: Database, url: str, rng: random.Random, count: int) -> None:
    """Runs of every shape: with partitions or counters, finished, cancelled, stalled, old."""
    for n in range(count):
        run = await db.create_run_metadata("full", 3, supplier=rng.choice(SUPPLIERS))
        if rng.random() < 0.7:  # workers with partitions
            for p in range(rng.randrange(1, 4)):
                partition = f"p{p}"
                await db.init_partition(run.run_id, partition)
                worker = await db.create_worker_run(
                    run.run_id, partition, uuid4(), {"estimated_records": 100 * (p + 1)}
                )
                rows = supplier_rows(run.run_id, partition, rng.randrange(0, 30))
                if rows:
                    await db.record_page(run.run_id, partition, worker.id, 0, len(rows), rows)
                fate = rng.random()
                if fate < 0.5:
                    await db.complete_partition(run.run_id, partition, len(rows))
                elif fate < 0.7:
                    await db.fail_partition(run.run_id, partition, "supplier 500")
        else:  # the counters only
            for _ in range(rng.randrange(0, 4)):
                if rng.random() < 0.7:
                    await db.increment_completed_workers(run.run_id)
                else:
                    await db.increment_failed_workers(run.run_id)
        ending = rng.random()
        if ending < 0.2:
            await db.complete_run(run.run_id)
        elif ending < 0.3:
            await db.cancel_run(run.run_id, f"cancelled {n}")
        elif ending < 0.5:
            await db.mark_consolidation_started(run.run_id)
            await db.add_consolidation_stats(run.run_id, rng.randrange(100), rng.randrange(5))
            if rng.random() < 0.5:
                await db.finish_consolidation(run.run_id)
        age = timedelta(hours=rng.choice((0, 0, 1, 30, 24 * 9)), minutes=rng.randrange(60))
        shift_run(url, run.run_id, age)


def supplier_rows(run_id: UUID, partition: str, count: int) -> list[RawDiamondInput]:
    return [RawDiamondInput(f"{run_id}-{partition}-{n}", f"o-{n}", {"n": n}) for n in range(count)]


def shift_run(url: str, run_id: UUID, age: timedelta) -> None:
    """Move every timestamp of a run `age` into the past."""
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in (
            "UPDATE run_metadata SET started_at = started_at - %(age)s,"
            " completed_at = completed_at - %(age)s, cancelled_at = cancelled_at - %(age)s,"
            " consolidation_started_at = consolidation_started_at - %(age)s,"
            " consolidation_finished_at = consolidation_finished_at - %(age)s,"
            " consolidation_updated_at = consolidation_updated_at - %(age)s"
            " WHERE run_id = %(run)s",
            "UPDATE partition_progress SET updated_at = updated_at - %(age)s"
            " WHERE run_id = %(run)s",
            "UPDATE worker_runs SET started_at = started_at - %(age)s,"
            " updated_at = updated_at - %(age)s, completed_at = completed_at - %(age)s"
            " WHERE run_id = %(run)s",
        ):
            conn.execute(statement, {"age": age, "run": run_id})


# -- the oracle: README's run status, in Python ---------------------------------------


def oracle_runs(url: str, now: datetime) -> list[dict[str, Any]]:
    """Every run as list_runs should show it, newest first."""
    runs = fetch_dicts(url, "SELECT * FROM run_metadata")
    partitions = fetch_dicts(url, "SELECT * FROM partition_progress")
    workers = fetch_dicts(url, "SELECT * FROM worker_runs")
    result = []
    for run in runs:
        mine = [p for p in partitions if p["run_id"] == run["run_id"]]
        theirs = [w for w in workers if w["run_id"] == run["run_id"]]
        if mine:
            completed = sum(p["completed"] for p in mine)
            failed = sum(p["failed"] for p in mine)
            pending = len(mine) - completed - failed
        else:
            completed, failed = run["completed_workers"], run["failed_workers"]
            pending = max(run["expected_workers"] - completed - failed, 0)
        stamps = [run["started_at"], run["completed_at"], run["cancelled_at"]]
        stamps += [run["consolidation_updated_at"]] + [p["updated_at"] for p in mine]
        stamps += [s for w in theirs for s in (w["started_at"], w["updated_at"], w["completed_at"])]
        last_activity = max(s for s in stamps if s is not None)
        estimates = [(w["work_item_payload"] or {}).get("estimated_records") for w in theirs]
        result.append(
            {
                "run_id": run["run_id"],
                "supplier": run["supplier"],
                "started_at": run["started_at"],
                "workers_completed": completed,
                "workers_failed": failed,
                "workers_pending": pending,
                "partitions": len(mine),
                "rows_processed": sum(w["records_processed"] for w in theirs),
                "estimated_rows": sum(e for e in estimates if e is not None) if theirs else None,
                "last_activity_at": last_activity,
                "status": oracle_status(run, completed, failed, pending, last_activity, now),
            }
        )
    return sorted(result, key=lambda r: (r["started_at"], r["run_id"]), reverse=True)


def oracle_status(
    run: dict[str, Any], completed: int, failed: int, pending: int, last: datetime, now: datetime
) -> str:
    if run["cancelled_at"] is not None:
        return "cancelled"
    finished = run["completed_at"] is not None or run["consolidation_finished_at"] is not None
    if finished or (pending == 0 and completed == 0 and failed > 0):
        if failed == 0:
            return "completed"
        return "failed" if completed == 0 else "partial"
    return "stalled" if last < now - STALLED_AFTER else "running"


def shown(run: RunOverview) -> dict[str, Any]:
    keys = (
        "run_id",
        "supplier",
        "started_at",
        "workers_completed",
        "workers_failed",
        "workers_pending",
        "partitions",
        "rows_processed",
        "estimated_rows",
        "last_activity_at",
        "status",
    )
    return {key: getattr(run, key) for key in keys}


async def every_page(db: Database, **filters: Any) -> list[RunOverview]:
    runs: list[RunOverview] = []
    cursor = None
    while True:
        page = await db.list_runs(**filters, limit=7, cursor=cursor)
        runs += page.items
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


def now_of(url: str) -> datetime:
    [row] = fetch_dicts(url, "SELECT now() AS now")
    now: datetime = row["now"]
    return now


async def test_runs_their_statuses_and_the_summary_match_the_oracle(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(1414)
    insert_diamonds(diamond_db_url, rng, 400)
    await generate_runs(diamond_db, diamond_db_url, rng, 40)
    expected = oracle_runs(diamond_db_url, now_of(diamond_db_url))
    assert len({r["status"] for r in expected}) == 6  # the generator reaches every status

    assert [shown(r) for r in await every_page(diamond_db)] == expected
    for status in ("running", "completed", "partial", "failed", "cancelled", "stalled"):
        runs = await every_page(diamond_db, status=status)
        assert [r.run_id for r in runs] == [r["run_id"] for r in expected if r["status"] == status]
    week_ago = now_of(diamond_db_url) - timedelta(days=7)
    vdb = await every_page(diamond_db, supplier="vdb", started_after=week_ago)
    assert [r.run_id for r in vdb] == [
        r["run_id"] for r in expected if r["supplier"] == "vdb" and r["started_at"] >= week_ago
    ]
    older = await every_page(diamond_db, started_before=week_ago)
    assert [r.run_id for r in older] == [
        r["run_id"] for r in expected if r["started_at"] < week_ago
    ]
    one = expected[3]
    details = await diamond_db.get_run_details(one["run_id"])
    assert details is not None
    assert shown(details) == one

    summary = await diamond_db.get_dashboard_summary()
    live = fetch_dicts(diamond_db_url, "SELECT * FROM diamonds WHERE status = 'active'")
    assert summary.live_diamonds == len(live)
    assert summary.by_availability == dict(Counter(d["availability"] for d in live))
    assert summary.by_supplier == dict(Counter(d["supplier"] for d in live))
    assert summary.run_statuses == dict(
        Counter(r["status"] for r in expected if r["started_at"] >= week_ago)
    )
    last_completed: dict[str, UUID] = {}
    for run in reversed(expected):  # oldest first: the newest completed one stays
        if run["status"] == "completed":
            last_completed[run["supplier"]] = run["run_id"]
    assert {s: r.run_id for s, r in summary.last_successful_runs.items()} == last_completed


async def test_supplier_stats_and_consolidation_progress_match_the_oracle(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(7)
    insert_diamonds(diamond_db_url, rng, 300)
    stats = await diamond_db.get_supplier_stats()
    live = fetch_dicts(diamond_db_url, "SELECT * FROM diamonds WHERE status = 'active'")
    for row in stats:
        mine = [d for d in live if d["supplier"] == row.supplier]
        prices = [d["supplier_price_cents"] for d in mine]
        counts = Counter(d["availability"] for d in mine)
        assert (row.live, row.available, row.on_hold, row.sold, row.unavailable) == (
            len(mine),
            counts["available"],
            counts["on_hold"],
            counts["sold"],
            counts["unavailable"],
        )
        assert (row.min_price_cents, row.max_price_cents) == (min(prices), max(prices))
        assert row.avg_price_cents == round(Decimal(sum(prices)) / len(prices))
        assert row.last_updated_at == max(d["updated_at"] for d in mine)
    assert [s.supplier for s in stats] == sorted({d["supplier"] for d in live})

    run = await diamond_db.create_run_metadata("full", 1, supplier="vdb")
    await diamond_db.upsert_raw_diamonds(
        run.run_id, supplier_rows(run.run_id, "p", 10), supplier="vdb"
    )
    claimed = await diamond_db.claim_unconsolidated_raw_diamonds(6, "c1", supplier="vdb")
    await diamond_db.mark_as_consolidated(
        [r.id for r in claimed[:3]], claimed_by="c1", supplier="vdb"
    )
    await diamond_db.mark_as_failed([claimed[3].id], "bad", claimed_by="c1", supplier="vdb")
    progress = await diamond_db.get_consolidation_progress(run.run_id)
    raw = fetch_dicts(diamond_db_url, "SELECT * FROM raw_diamonds WHERE run_id = %s", run.run_id)
    pending = [r["created_at"] for r in raw if r["consolidation_status"] == "pending"]
    assert (progress.total, progress.done, progress.failed, progress.processing) == (10, 3, 1, 2)
    assert (progress.pending, progress.oldest_pending_at) == (4, min(pending))
    empty = await diamond_db.get_consolidation_progress(uuid4())
    assert (empty.total, empty.oldest_pending_at) == (0, None)
