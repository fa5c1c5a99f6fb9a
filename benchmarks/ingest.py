"""Scenario 3: raw ingest of N full-size payloads (~1.9 KB JSON) into an empty raw table.

Contenders (each timed call ingests all N rows; the table is emptied before, untimed):
- bulk:      upsert_raw_diamonds(run_id, rows), one call (validation, encoding, hashing included)
- reingest:  the same call again over a table already holding exactly these rows
             (the unchanged-payload path: nothing is rewritten)
- single:    upsert_raw_diamond one row at a time, sequentially
- single10:  upsert_raw_diamond one row at a time from 10 concurrent callers
- bulk_iter: upsert_raw_diamonds(run_id, iter(rows)): the streamed form (a generator's
             rows encoded while earlier statements are written)
- copy:      THE FLOOR. COPY into an empty copy of the table (benchmarks/baselines.py),
             written the ordinary psycopg way: copy.write_row in the loop, each row's
             canonical JSON and SHA-256 computed inside the timed region just before it is
             written, so the client encodes row k while the server parses row k-1
- copy_prebuilt: the previous baseline, kept for comparison only: every row encoded into
             a list first, then the list streamed (no overlap of encoding and sending;
             slower than `copy`, so ratios against it flatter the library)

Also profiled once: the client-side canonical encoding plus hashing of the N payloads
(stdlib json, the library's payload_hash, and orjson when installed).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any, Final

import orjson

from diamond_db import RawDiamondInput, payload_hash

from . import baselines
from .memory import PeakWindow
from .payloads import full_inputs
from .plan import Bench
from .stats import Contender, alternate

SCENARIO: Final = "ingest"
RATIOS: Final = (
    ("bulk", "copy"),
    ("bulk_iter", "copy"),
    ("single", "bulk"),
    ("single10", "bulk"),
    ("reingest", "bulk"),
    ("copy_prebuilt", "copy"),
    ("bulk", "copy_prebuilt"),
)
CONCURRENT_CALLERS: Final = 10


def canonical(payload: dict[str, Any]) -> str:
    """The canonical JSON the payload_hash column is defined on (issue 4)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


async def run(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db
    # The input is held for the whole scenario (every contender ingests it again).
    with PeakWindow("ingest: generating the input rows", plan.ingest_rows) as held:
        rows = list(full_inputs(plan.ingest_rows, plan.seed, start=50_000_000))
    bench.memory.append(held)
    bench.info["ingest_payload_bytes_mean"] = sum(
        len(canonical(r.payload).encode()) for r in rows
    ) / len(rows)
    bench.info["encode_profile"] = profile_encoding(rows)
    run_id = (await db.create_run_metadata("full", 1)).run_id
    async with db.pool.connection() as conn:
        await baselines.create_copy_table(conn)

    async def empty(_: int) -> None:
        async with db.pool.connection() as conn:
            await baselines.empty_raw_table(conn)
            await baselines.empty_copy_table(conn)

    async def filled(r: int) -> None:
        await empty(r)
        await db.upsert_raw_diamonds(run_id, rows)

    async def bulk(_: int) -> None:
        assert await db.upsert_raw_diamonds(run_id, rows) == len(rows)

    async def reingest(_: int) -> None:
        assert await db.upsert_raw_diamonds(run_id, rows) == 0

    async def single(_: int) -> None:
        await _singles(bench, run_id, rows)

    async def single10(_: int) -> None:
        share = [rows[i::CONCURRENT_CALLERS] for i in range(CONCURRENT_CALLERS)]
        await asyncio.gather(*(_singles(bench, run_id, part) for part in share))

    async def bulk_iter(_: int) -> None:
        assert await db.upsert_raw_diamonds(run_id, iter(rows)) == len(rows)

    async def copy(_: int) -> None:
        async with db.pool.connection() as conn:
            await baselines.copy_rows(conn, baselines.encoded_raw_rows(run_id, rows))

    async def copy_prebuilt(_: int) -> None:
        prebuilt = list(baselines.encoded_raw_rows(run_id, rows))
        async with db.pool.connection() as conn:
            await baselines.copy_rows(conn, prebuilt)

    n = len(rows)
    contenders = [
        Contender("bulk", bulk, setup=empty, items=n),
        Contender("reingest", reingest, setup=filled, items=n),
        Contender("single", single, setup=empty, items=n),
        Contender("single10", single10, setup=empty, items=n),
        Contender("copy", copy, setup=empty, items=n),
        Contender("bulk_iter", bulk_iter, setup=empty, items=n),
        Contender("copy_prebuilt", copy_prebuilt, setup=empty, items=n),
    ]
    try:
        case = await alternate(
            SCENARIO, f"raw ingest of {n:,} rows", contenders, rounds=plan.ingest_rounds
        )
    finally:
        async with db.pool.connection() as conn:
            await baselines.drop_copy_table(conn)
            await baselines.empty_raw_table(conn)
    for a, b in RATIOS:
        case.ratio(a, b)
    case.info["payload_bytes_mean"] = bench.info["ingest_payload_bytes_mean"]
    bench.add(case)


async def _singles(bench: Bench, run_id: Any, rows: Sequence[RawDiamondInput]) -> None:
    for r in rows:
        await bench.db.upsert_raw_diamond(
            run_id, r.supplier_stone_id, r.offer_id, r.payload, r.source_updated_at
        )


def profile_encoding(rows: Sequence[RawDiamondInput]) -> dict[str, Any]:
    """Seconds to encode and hash every payload: stdlib json, payload_hash(), orjson."""
    payloads = [r.payload for r in rows]

    def timed(encode: Any) -> float:
        started = time.perf_counter()
        for p in payloads:
            hashlib.sha256(encode(p)).hexdigest()
        return time.perf_counter() - started

    result: dict[str, Any] = {
        "rows": len(payloads),
        "stdlib_json_plus_sha256_s": timed(lambda p: canonical(p).encode()),
    }
    started = time.perf_counter()
    for p in payloads:
        payload_hash(p)
    result["library_payload_hash_s"] = time.perf_counter() - started
    result["orjson_plus_sha256_s"] = timed(lambda p: orjson.dumps(p, option=orjson.OPT_SORT_KEYS))
    same = all(
        orjson.dumps(p, option=orjson.OPT_SORT_KEYS) == canonical(p).encode() for p in payloads
    )
    result["orjson_output_identical"] = same
    return result
