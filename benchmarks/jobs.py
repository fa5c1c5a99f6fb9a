"""Scenario: re-price every live diamond after a rule change, three ways, on identical data.

Contenders (each round starts from the same values: every live diamond at
markup 1.15, retail = price x 1.15, then VACUUM, untimed; a pricing rule of
markup 1.25 makes every price change; autovacuum is off for diamonds meanwhile):
- job:      start_catalogue_job("pricing") + run_catalogue_job (5,000-row batches,
            snapshots, checkpoint, lease: one transaction per batch)
- original: the TypeScript package's method, reproduced: 1,000-row id-keyset
            fetch into Python, the same rule evaluation in Python, UPDATE ...
            FROM UNNEST of the changed rows, then a snapshot INSERT ... UNNEST
            (two autocommit statements per batch)
- floor:    one set-based UPDATE of the same rows and columns, the new values
            precomputed (untimed) in an unlogged table; no snapshots

Also measured: the same job when nothing changes (no write, checked by WAL),
8 clients searching during the job vs without it, the revert's rows/s, WAL
bytes per changed row, and on a copy of diamonds: the share of the update's
time spent maintaining the eleven secondary indexes, each index's marginal
write cost, and fillfactor 90 vs 100 for an update that changes no indexed
column (HOT).
"""

from __future__ import annotations

import asyncio
import time
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final
from uuid import UUID

import psycopg

from diamond_db import PricingRule

from .migration import Clients
from .plan import Bench
from .stats import Case, Contender, Measured, alternate

SCENARIO: Final = "jobs"
CLIENTS: Final = 8
BATCH: Final = 5_000
ORIGINAL_BATCH: Final = 1_000
OLD_MARKUP: Final = Decimal("1.1500")
NEW_MARKUP: Final = Decimal("1.2500")
NIL: Final = UUID(int=0)
COPY: Final = "bench_jobs_copy"

RESET: Final = """
UPDATE diamonds
SET markup_ratio = 1.1500, retail_price_cents = diamond_retail_cents(supplier_price_cents, 1.15),
    pricing_rating = 5, rating = 5
WHERE status = 'active'
  AND (markup_ratio, retail_price_cents, pricing_rating, rating)
      IS DISTINCT FROM (1.1500, diamond_retail_cents(supplier_price_cents, 1.15), 5, 5)
"""
CLEAR_JOBS: Final = "DELETE FROM catalogue_jobs"
# Each timed run starts from an explicit VACUUM (_fresh); a background vacuum of the
# million rows another run left dead would land in whichever contender it meets (at
# 1,000,000 it takes minutes, one of the two cores), so none runs meanwhile.
AUTOVACUUM_OFF: Final = "ALTER TABLE diamonds SET (autovacuum_enabled = false)"
AUTOVACUUM_ON: Final = "ALTER TABLE diamonds RESET (autovacuum_enabled)"
ORIGINAL_JOB: Final = (
    "INSERT INTO catalogue_jobs (kind, status, reason) VALUES ('pricing', 'completed',"
    " 'benchmark: the original method') RETURNING id"
)
FETCH: Final = """
SELECT id, supplier, carats, shape, lab_grown, supplier_price_cents, fancy_color,
       markup_ratio, retail_price_cents, pricing_rating, rating
FROM diamonds WHERE status = 'active' AND id > %s ORDER BY id LIMIT %s
"""
UPDATE_UNNEST: Final = """
UPDATE diamonds AS d
SET markup_ratio = v.markup, retail_price_cents = v.retail, pricing_rating = v.pricing_rating,
    rating = v.rating, updated_at = now()
FROM unnest(%s::uuid[], %s::numeric[], %s::bigint[], %s::int[], %s::int[])
    AS v (id, markup, retail, pricing_rating, rating)
WHERE d.id = v.id
"""
SNAPSHOT_UNNEST: Final = """
INSERT INTO catalogue_job_snapshots (
    job_id, diamond_id, old_markup_ratio, new_markup_ratio, old_retail_price_cents,
    new_retail_price_cents, old_pricing_rating, new_pricing_rating, old_rating, new_rating)
SELECT %s, * FROM unnest(%s::uuid[], %s::numeric[], %s::numeric[], %s::bigint[],
    %s::bigint[], %s::int[], %s::int[], %s::int[], %s::int[])
ON CONFLICT (job_id, diamond_id) DO NOTHING
"""
PRECOMPUTE: Final = """
CREATE UNLOGGED TABLE bench_jobs_new AS
SELECT d.id, pr.markup_ratio, diamond_retail_cents(d.supplier_price_cents, pr.markup_ratio)
    AS retail_price_cents, pr.rating AS pricing_rating, pr.rating
FROM diamonds AS d
LEFT JOIN LATERAL pricing_rule_for(d.carats, d.shape, d.lab_grown, d.supplier,
    d.supplier_price_cents, d.fancy_color IS NOT NULL) AS pr ON TRUE
WHERE d.status = 'active'
"""
FLOOR: Final = """
UPDATE diamonds AS d
SET markup_ratio = n.markup_ratio, retail_price_cents = n.retail_price_cents,
    pricing_rating = n.pricing_rating, rating = n.rating, updated_at = now()
FROM bench_jobs_new AS n
WHERE d.id = n.id
"""


async def _execute(url: str, *statements: str, params: Any = None) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for statement in statements:
            await conn.execute(statement.encode(), params)


async def _lsn(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (await conn.execute(b"SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")).fetchone()
    assert row is not None
    return int(row[0])


class Wal:
    """WAL bytes written by each contender's timed runs (lsn before and after)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.start = 0
        self.bytes: dict[str, list[int]] = {}

    async def mark(self) -> None:
        self.start = await _lsn(self.url)

    async def add(self, name: str) -> None:
        self.bytes.setdefault(name, []).append(await _lsn(self.url) - self.start)


# -- the original's rule evaluation, in Python ------------------------------------


def _matches(rule: PricingRule, row: dict[str, Any]) -> bool:
    def within(low: Any, high: Any, value: Any) -> bool:
        return (low is None or low <= value) and (high is None or value <= high)

    return (
        within(rule.carat_min, rule.carat_max, row["carats"])
        and (rule.shapes is None or row["shape"] in rule.shapes)
        and (rule.lab_grown is None or rule.lab_grown == row["lab_grown"])
        and (rule.supplier is None or rule.supplier == row["supplier"])
        and within(rule.price_min_cents, rule.price_max_cents, row["supplier_price_cents"])
        and (rule.fancy is None or rule.fancy == (row["fancy_color"] is not None))
    )


def _priced(rules: list[PricingRule], row: dict[str, Any]) -> tuple[Any, ...]:
    rule = next((r for r in rules if _matches(r, row)), None)
    if rule is None:
        return None, None, None, None
    exact = row["supplier_price_cents"] * rule.markup_ratio
    retail = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return rule.markup_ratio, retail, rule.rating, rule.rating  # no rating rules here


async def original(url: str, rules: list[PricingRule], job_id: UUID) -> int:
    """The TypeScript package's re-pricing loop; returns the rows it changed."""
    changed = 0
    after = NIL
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        while True:
            await cursor.execute(FETCH.encode(), (after, ORIGINAL_BATCH))
            rows = await cursor.fetchall()
            if not rows:
                return changed
            after = rows[-1]["id"]
            olds, news = [], []
            for row in rows:
                old = (
                    row["markup_ratio"],
                    row["retail_price_cents"],
                    row["pricing_rating"],
                    row["rating"],
                )
                new = _priced(rules, row)
                if new != old:
                    olds.append((row["id"], *old))
                    news.append((row["id"], *new))
            if not news:
                continue
            columns = list(zip(*news, strict=True))
            await conn.execute(UPDATE_UNNEST.encode(), [list(c) for c in columns])
            old_columns = list(zip(*olds, strict=True))
            interleaved = [list(columns[0])]
            for i in range(1, 5):
                interleaved += [list(old_columns[i]), list(columns[i])]
            await conn.execute(SNAPSHOT_UNNEST.encode(), [job_id, *interleaved])
            changed += len(news)


# -- the scenario ---------------------------------------------------------------------


async def run(bench: Bench) -> None:
    db, url = bench.db, bench.url
    rounds, warmup = bench.plan.jobs_rounds, 0
    await _execute(url, CLEAR_JOBS, RESET, AUTOVACUUM_OFF)
    rule = await db.create_pricing_rule(priority=1, markup_ratio=NEW_MARKUP, rating=5)
    try:
        await _contenders(bench, rounds, warmup)
        await _no_change_and_revert(bench)
        await _searching(bench)
        await _index_costs(bench)
    finally:
        await _execute(url, AUTOVACUUM_ON)
        await db.deactivate_pricing_rule(rule.id)
        await _execute(url, "DELETE FROM pricing_rules WHERE id = %s", params=(rule.id,))
        await _execute(url, CLEAR_JOBS, RESET, f"DROP TABLE IF EXISTS {COPY}")
        await _execute(url, "DROP TABLE IF EXISTS bench_jobs_new", "VACUUM ANALYZE diamonds")


async def _fresh(url: str) -> None:
    """Every live diamond back at the old prices, old snapshots gone, the table vacuumed."""
    await _execute(url, CLEAR_JOBS, RESET, "VACUUM diamonds", "CHECKPOINT")


async def _contenders(bench: Bench, rounds: int, warmup: int) -> None:
    db, url = bench.db, bench.url
    live = await _live(url)
    wal = Wal(url)
    changed: dict[str, int] = {}
    rules = await db.get_active_pricing_rules()

    async def fresh(_: int) -> None:
        await _fresh(url)
        await wal.mark()

    async def fresh_with_values(_: int) -> None:
        await _fresh(url)
        await _execute(url, "DROP TABLE IF EXISTS bench_jobs_new", PRECOMPUTE)
        await wal.mark()

    async def job(_: int) -> None:
        started = await db.start_catalogue_job("pricing", reason="benchmark")
        done = await db.run_catalogue_job(started.id, worker_id="bench", batch_size=BATCH)
        changed["job"] = done.changed

    async def orig(_: int) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            row = await (await conn.execute(ORIGINAL_JOB.encode())).fetchone()
        assert row is not None
        changed["original"] = await original(url, rules, row[0])

    async def floor(_: int) -> None:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            changed["floor"] = (await conn.execute(FLOOR.encode())).rowcount

    def check(name: str) -> Any:
        async def done(_: int) -> None:
            await wal.add(name)

        return done

    contenders = [
        Contender("job", job, setup=fresh, check=check("job"), items=live),
        Contender("original", orig, setup=fresh, check=check("original"), items=live),
        Contender("floor", floor, setup=fresh_with_values, check=check("floor"), items=live),
    ]
    case = await alternate(
        SCENARIO, f"re-price {live:,} diamonds", contenders, rounds=rounds, warmup=warmup
    )
    case.ratio("job", "floor")
    case.ratio("job", "original")
    case.ratio("original", "floor")
    case.info["changed"] = changed
    for name, samples in wal.bytes.items():
        case.info[f"wal_bytes_per_row {name}"] = min(samples) / max(changed.get(name, 1), 1)
    bench.add(case)
    bench.console.print(
        f"  job/floor {case.ratios['job/floor']:.2f}, job/original "
        f"{case.ratios['job/original']:.2f}; WAL bytes/row: "
        + ", ".join(f"{n} {case.info[f'wal_bytes_per_row {n}']:,.0f}" for n in wal.bytes)
    )


async def _live(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        row = await (
            await conn.execute(b"SELECT count(*) FROM diamonds WHERE status = 'active'")
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _timed_job(bench: Bench) -> tuple[float, Any]:
    started_at = time.perf_counter()
    job = await bench.db.start_catalogue_job("pricing", reason="benchmark")
    done = await bench.db.run_catalogue_job(job.id, worker_id="bench", batch_size=BATCH)
    return time.perf_counter() - started_at, done


async def _no_change_and_revert(bench: Bench) -> None:
    """The changing job, the same job again (nothing to change), then its revert."""
    url = bench.url
    await _fresh(url)
    changing, first = await _timed_job(bench)
    before = await _lsn(url)
    unchanged, second = await _timed_job(bench)
    wal = await _lsn(url) - before
    started = time.perf_counter()
    reverted = await bench.db.revert_catalogue_job(first.id, worker_id="bench", batch_size=BATCH)
    reverting = time.perf_counter() - started
    case = Case(
        SCENARIO,
        "no-change run and revert",
        {
            "changing": Measured("changing", [changing], first.processed),
            "no change": Measured("no change", [unchanged], second.processed),
            "revert": Measured("revert", [reverting], reverted.restored),
        },
    )
    case.ratios["changing/no change"] = changing / unchanged
    case.info.update(
        no_change_rows_changed=second.changed,
        no_change_wal_bytes=wal,
        revert_rows_per_s=reverted.restored / reverting,
        revert_skipped=reverted.skipped,
    )
    bench.add(case)
    bench.console.print(
        f"  no change: {unchanged:.1f} s ({changing / unchanged:.1f}x faster than changing, "
        f"{second.changed} rows, {wal:,} WAL bytes); revert {reverted.restored / reverting:,.0f}"
        " rows/s"
    )


async def _searching(bench: Bench) -> None:
    """8 clients search for a fixed window without a job, then for as long again during one.

    The window is the job's whole run when it is shorter. At 1,000,000 diamonds
    eight clients slow the job to ~26 minutes on two cores; a window of its
    steady state measures the same thing, and the job is then cancelled.
    """
    window = bench.plan.jobs_search_seconds
    await _fresh(bench.url)
    clients = Clients(bench)
    tasks = [asyncio.create_task(clients.client(n)) for n in range(CLIENTS)]
    try:
        await asyncio.sleep(window)
        clients.phase = "during"
        started_at = time.perf_counter()
        job = await bench.db.start_catalogue_job("pricing", reason="benchmark")
        run = asyncio.create_task(
            bench.db.run_catalogue_job(job.id, worker_id="bench", batch_size=BATCH)
        )
        await asyncio.wait([run], timeout=window)
        took = time.perf_counter() - started_at
    finally:
        clients.stop()
        await asyncio.gather(*tasks)
    if not run.done():
        await bench.db.cancel_catalogue_job(job.id)
    done = await run
    before = Measured("before", clients.latencies["before"])
    during = Measured("during", clients.latencies["during"])
    case = Case(
        SCENARIO, f"{CLIENTS} clients searching during a job", {"before": before, "during": during}
    )
    case.ratios["p95 during/before"] = during.p95 / before.p95
    case.info.update(
        window_seconds=took,
        job_status=done.status,
        job_processed_in_window=done.processed,
        job_total=done.total,
        failed_searches={k: len(v) for k, v in clients.failures.items()},
    )
    bench.add(case)
    bench.console.print(
        f"  searches p95 {before.p95 * 1e3:.1f} ms without, {during.p95 * 1e3:.1f} ms during "
        f"the job ({done.processed:,} of {done.total:,} rows in {took:.0f} s, {done.status}); "
        f"failed {sum(case.info['failed_searches'].values())}"
    )


# -- index maintenance and fillfactor, on a copy of diamonds -------------------------

PRICE_CHANGE: Final = f"""
UPDATE {COPY}
SET markup_ratio = CASE WHEN markup_ratio = 1.15 THEN 1.25 ELSE 1.15 END,
    retail_price_cents = diamond_retail_cents(supplier_price_cents,
        CASE WHEN markup_ratio = 1.15 THEN 1.25 ELSE 1.15 END),
    updated_at = now()
"""
UNINDEXED_CHANGE: Final = f"""
UPDATE {COPY}
SET pricing_rating = CASE WHEN pricing_rating = 5 THEN 6 ELSE 5 END, updated_at = now()
"""
HOT_COUNT: Final = f"""
SELECT pg_stat_get_xact_tuples_hot_updated('{COPY}'::regclass),
       pg_stat_get_xact_tuples_updated('{COPY}'::regclass)
"""
INDEXES: Final = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid),
       coalesce(s.idx_scan, 0), pg_relation_size(i.indexrelid)
FROM pg_index AS i
LEFT JOIN pg_stat_user_indexes AS s ON s.indexrelid = i.indexrelid
WHERE i.indrelid = 'diamonds'::regclass AND NOT i.indisprimary AND NOT i.indisunique
ORDER BY 1
"""


async def _copy(conn: psycopg.AsyncConnection[Any], rows: int, fillfactor: int) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {COPY}".encode())
    create = f"CREATE TABLE {COPY} (LIKE diamonds INCLUDING DEFAULTS) WITH (fillfactor = %s)"
    await conn.execute(create.replace("%s", str(int(fillfactor))).encode())
    fill = f"INSERT INTO {COPY} SELECT * FROM diamonds WHERE status = 'active' ORDER BY id LIMIT %s"
    await conn.execute(fill.encode(), (rows,))
    await conn.execute(f"ALTER TABLE {COPY} ADD PRIMARY KEY (id)".encode())
    await conn.execute(f"VACUUM ANALYZE {COPY}".encode())


async def _update(conn: psycopg.AsyncConnection[Any], statement: str) -> tuple[float, int, int]:
    """One update in its own transaction: (seconds, WAL bytes, HOT share in per mille)."""
    lsn = b"SELECT pg_current_wal_lsn() - '0/0'::pg_lsn"
    start_lsn = (await (await conn.execute(lsn)).fetchall())[0][0]
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute(statement.encode())
        hot, updated = (await (await conn.execute(HOT_COUNT.encode())).fetchall())[0]
    took = time.perf_counter() - started
    wal = int((await (await conn.execute(lsn)).fetchall())[0][0] - start_lsn)
    await conn.execute(f"VACUUM {COPY}".encode())
    return took, wal, int(1000 * hot / max(updated, 1))


async def _index_costs(bench: Bench) -> None:
    rows = min(await _live(bench.url), 10_000 if bench.plan.quick else 100_000)
    async with await psycopg.AsyncConnection.connect(bench.url, autocommit=True) as conn:
        indexes = await (await conn.execute(INDEXES.encode())).fetchall()
        await _copy(conn, rows, 100)
        bare, bare_wal, _ = await _update(conn, PRICE_CHANGE)
        for name, definition, _, _ in indexes:
            await conn.execute(_on_copy(name, definition).encode())
        full, full_wal, _ = await _update(conn, PRICE_CHANGE)
        marginal = {}
        for name, definition, _, _ in indexes:
            await conn.execute(f"DROP INDEX {_copy_name(name)}".encode())
            without, _, _ = await _update(conn, PRICE_CHANGE)
            marginal[name] = full - without
            await conn.execute(_on_copy(name, definition).encode())
        fill = {}
        for fillfactor in (100, 90):
            await _copy(conn, rows, fillfactor)
            for name, definition, _, _ in indexes:
                await conn.execute(_on_copy(name, definition).encode())
            fill[fillfactor] = await _update(conn, UNINDEXED_CHANGE)
        await conn.execute(f"DROP TABLE IF EXISTS {COPY}".encode())
    case = Case(
        SCENARIO,
        f"index maintenance ({rows:,}-row copy)",
        {
            "all indexes": Measured("all indexes", [full], rows),
            "primary key only": Measured("primary key only", [bare], rows),
            "unindexed change ff100": Measured("unindexed change ff100", [fill[100][0]], rows),
            "unindexed change ff90": Measured("unindexed change ff90", [fill[90][0]], rows),
        },
    )
    case.ratios["index share"] = (full - bare) / full
    case.ratios["ff90/ff100 unindexed change"] = fill[90][0] / fill[100][0]
    case.info.update(
        wal_bytes_per_row_all_indexes=full_wal / rows,
        wal_bytes_per_row_primary_key_only=bare_wal / rows,
        hot_per_mille={str(ff): fill[ff][2] for ff in fill},
        wal_bytes_per_row_unindexed={str(ff): fill[ff][1] / rows for ff in fill},
        indexes={
            name: {
                "marginal_ms_per_1k_rows": 1e6 * marginal[name] / rows,
                "scans": scans,
                "bytes": size,
            }
            for name, _, scans, size in indexes
        },
    )
    bench.add(case)
    bench.console.print(
        f"  index maintenance: {case.ratios['index share']:.0%} of the update's time "
        f"({full_wal / rows:,.0f} vs {bare_wal / rows:,.0f} WAL bytes/row); HOT with "
        f"fillfactor 100: {fill[100][2] / 10:.0f}%, 90: {fill[90][2] / 10:.0f}% "
        f"(time ratio {case.ratios['ff90/ff100 unindexed change']:.2f})"
    )
    for name, _, scans, size in indexes:
        bench.console.print(
            f"    {name}: +{1e6 * marginal[name] / rows:.1f} ms per 1,000 rows, "
            f"{scans:,} scans, {size / 2**20:.1f} MiB"
        )


def _copy_name(name: str) -> str:
    return name.replace("diamonds_", "bench_jobs_copy_", 1)


def _on_copy(name: str, definition: str) -> str:
    """An index definition of diamonds, re-targeted at the copy (names from the catalog)."""
    return definition.replace(name, _copy_name(name), 1).replace(
        " ON public.diamonds ", f" ON public.{COPY} ", 1
    )
