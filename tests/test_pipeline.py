"""The ingestion pipeline end to end: a run, concurrent workers, the last worker, consolidators."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from helpers import fetch_dicts

from diamond_db import Database, DiamondInput, RawDiamond, RawDiamondInput
from diamond_db.records import RunType

WORKERS = 6
PAGES = 3
PAGE_SIZE = 200
CONSOLIDATORS = 3


def supplier_payload(n: int, price_bump: int = 0) -> dict[str, Any]:
    """What the supplier's API returns for stone n (a slice of it)."""
    carats = 0.5 + (n % 40) / 10
    return {
        "id": f"stone-{n:05d}",
        "offer": {"id": f"offer-{n}", "price": 100_000 + 37 * n + price_bump},
        "diamond": {
            "certificate": {
                "shape": ("ROUND", "OVAL", "PEAR")[n % 3],
                "carats": carats,
                "color": "DEFGH"[n % 5],
                "labgrown": n % 4 == 0,
            },
            "availability": "AVAILABLE",
        },
    }


def page(partition: int, number: int, price_bump: int = 0) -> list[RawDiamondInput]:
    first = (partition * PAGES + number) * PAGE_SIZE
    return [
        RawDiamondInput(f"stone-{n:05d}", f"offer-{n}", supplier_payload(n, price_bump))
        for n in range(first, first + PAGE_SIZE)
    ]


def to_diamond(raw: RawDiamond) -> DiamondInput:
    """The consolidator's mapping from a raw payload to a canonical diamond."""
    certificate = raw.payload["diamond"]["certificate"]
    carats = Decimal(str(certificate["carats"]))
    price = raw.payload["offer"]["price"]
    return DiamondInput(
        supplier_stone_id=raw.supplier_stone_id,
        offer_id=raw.offer_id,
        shape=certificate["shape"],
        carats=carats,
        color=certificate["color"],
        lab_grown=certificate["labgrown"],
        supplier_price_cents=price,
        price_per_carat_cents=int(price / carats),
        source_updated_at=raw.source_updated_at,
    )


async def worker(db: Database, run_id: UUID, partition: int, price_bump: int = 0) -> bool:
    """Ingest one partition page by page; True if this worker was the run's last."""
    item = {"partition": partition, "pages": PAGES}
    record = await db.create_worker_run(run_id, f"partition-{partition}", uuid4(), item)
    processed = 0
    for number in range(PAGES):
        rows = page(partition, number, price_bump)
        await db.upsert_raw_diamonds(run_id, rows)
        processed += len(rows)
        await db.update_worker_run(record.id, "running", processed)
    await db.update_worker_run(record.id, "completed", processed)
    counters = await db.increment_completed_workers(run_id)
    return counters.completed_workers + counters.failed_workers == counters.expected_workers


async def consolidator(db: Database, name: str) -> int:
    """Claim raw rows until none is left; upsert their diamonds; mark them consolidated."""
    consolidated = 0
    while claimed := await db.claim_unconsolidated_raw_diamonds(250, name):
        await db.upsert_diamonds([to_diamond(raw) for raw in claimed])
        consolidated += await db.mark_as_consolidated([raw.id for raw in claimed], claimed_by=name)
    return consolidated


async def run_pipeline(db: Database, run_type: RunType, workers: int, bump: int = 0) -> UUID:
    """One run: workers ingest concurrently, the last one starts the consolidators.

    Checks that exactly one worker learns it was the last, and that the
    consolidators together consolidate each changed stone once.
    """
    run = await db.create_run_metadata(run_type, workers)
    bumps = [bump] + [0] * (workers - 1)  # prices move in partition 0 only
    last = await asyncio.gather(*(worker(db, run.run_id, p, bumps[p]) for p in range(workers)))
    assert last.count(True) == 1
    counts = await asyncio.gather(*(consolidator(db, f"c{i}") for i in range(CONSOLIDATORS)))
    changed = workers if run_type == "full" else 1  # incremental: partition 0 only
    assert sum(counts) == changed * PAGES * PAGE_SIZE
    await db.complete_run(run.run_id, datetime(2024, 6, 1, tzinfo=UTC))
    return run.run_id


async def test_full_then_incremental_run(diamond_db: Database, diamond_db_url: str) -> None:
    stones = WORKERS * PAGES * PAGE_SIZE
    async with Database(diamond_db_url, max_size=12) as db:
        run_id = await run_pipeline(db, "full", WORKERS)

    [run] = fetch_dicts(diamond_db_url, "SELECT * FROM run_metadata WHERE run_id = %s", run_id)
    assert (run["completed_workers"], run["failed_workers"]) == (WORKERS, 0)
    assert run["completed_at"] is not None
    assert run["watermark_after"] == datetime(2024, 6, 1, tzinfo=UTC)
    workers = fetch_dicts(
        diamond_db_url,
        "SELECT status, records_processed, count(*) AS n FROM worker_runs"
        " WHERE run_id = %s GROUP BY 1, 2",
        run_id,
    )
    assert workers == [
        {"status": "completed", "records_processed": PAGES * PAGE_SIZE, "n": WORKERS}
    ]
    raw = fetch_dicts(
        diamond_db_url,
        "SELECT consolidation_status, consolidated, count(*) AS n"
        " FROM raw_diamonds_nivoda GROUP BY 1, 2",
    )
    assert raw == [{"consolidation_status": "done", "consolidated": True, "n": stones}]
    expected_total = sum(supplier_payload(n)["offer"]["price"] for n in range(stones))
    [diamonds] = fetch_dicts(
        diamond_db_url,
        "SELECT count(*) AS n, sum(supplier_price_cents) AS total FROM diamonds"
        " WHERE supplier = 'nivoda' AND status = 'active'",
    )
    assert (diamonds["n"], diamonds["total"]) == (stones, expected_total)
    [sample] = fetch_dicts(
        diamond_db_url, "SELECT * FROM diamonds WHERE supplier_stone_id = %s", "stone-00042"
    )
    assert (sample["shape"], sample["carats"], sample["color"]) == ("ROUND", Decimal("0.70"), "F")

    # An incremental run re-fetches two partitions, with new prices in partition 0:
    # the unchanged payloads of partition 1 are not consolidated again.
    async with Database(diamond_db_url, max_size=12) as db:
        await run_pipeline(db, "incremental", 2, bump=5)
    [diamonds] = fetch_dicts(
        diamond_db_url, "SELECT sum(supplier_price_cents) AS total FROM diamonds"
    )
    assert diamonds["total"] == expected_total + 5 * PAGES * PAGE_SIZE
    assert await diamond_db.get_unconsolidated_count() == 0
