"""Every SQL statement the benchmark sends itself: the baselines, and its housekeeping.

This is benchmark code, not library code: nothing here is part of diamond_db,
and none of it is reviewed as the library's SQL in queries/. The library's
contenders run the library's own statements (through its operations, or the
text `render_search` and the registry give, run through raw psycopg).

Baselines (what the library is compared against):
- NAIVE SEARCH: the form the platform started with. A COUNT(*) statement, then
  SELECT * ... ORDER BY <sort column> LIMIT/OFFSET with no tie-breaker (so
  pages may overlap or skip rows on ties), two round trips.
- EXPLAIN FLOOR: the server's own execution time of a statement, from
  EXPLAIN (ANALYZE, TIMING OFF) (no per-node clock reads, so little overhead):
  what the statement costs with no client, no network, no planning.
- COUNT FLOOR (facets): one exact COUNT(*) of the same filters (the naive
  search's count statement), what the facets of a search are held to.
- ILIKE LOOKUP (quick search): the original quick lookup, `column ILIKE text
  || '%'` on the three columns, which no index serves (and `%`/`_` in the text
  act as wildcards), newest first.
- COPY FLOOR: plain COPY of the raw rows into an empty copy of
  raw_diamonds_nivoda (same columns, defaults, constraints and indexes): the
  fastest way PostgreSQL takes rows in, streamed (write_row per row as it is
  encoded, the ordinary psycopg way).

Identifiers here only ever come from the constants of this package (the
benchmark's own search definitions), never from input.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

import orjson
import psycopg
from psycopg import sql

Connection = psycopg.AsyncConnection[Any]

# -- naive search ----------------------------------------------------------------
# The original platform's predicates: one per filter, on the table itself.

NAIVE_PREDICATES: Final[Mapping[str, str]] = {
    "shape": "shape = ANY(%(shape)s)",
    "carat_min": "carats >= %(carat_min)s",
    "carat_max": "carats <= %(carat_max)s",
    "colors": "color = ANY(%(colors)s)",
    "clarities": "clarity = ANY(%(clarities)s)",
    "cuts": "cut = ANY(%(cuts)s)",
    "polishes": "polish = ANY(%(polishes)s)",
    "symmetries": "symmetry = ANY(%(symmetries)s)",
    "fluorescences": "fluorescence = ANY(%(fluorescences)s)",
    "certificate_labs": "certificate_lab = ANY(%(certificate_labs)s)",
    "lab_grown": "lab_grown = %(lab_grown)s",
    "treated": "treated = %(treated)s",
    "price_min": "supplier_price_cents >= %(price_min)s",
    "price_max": "supplier_price_cents <= %(price_max)s",
    "rating_min": "rating >= %(rating_min)s",
    "availability": "availability = ANY(%(availability)s)",
}


def naive_search(
    filters: Mapping[str, Any], sort_by: str, sort_order: str
) -> tuple[sql.Composed, sql.Composed]:
    """The naive count statement and page statement (params: the filters, limit, offset)."""
    where = sql.SQL(" AND ").join(
        [sql.SQL("status = 'active'")] + [sql.SQL(NAIVE_PREDICATES[name]) for name in filters]
    )
    count = sql.SQL("SELECT COUNT(*) FROM diamonds WHERE {}").format(where)
    direction = sql.SQL("ASC" if sort_order == "asc" else "DESC")
    page = sql.SQL(
        "SELECT * FROM diamonds WHERE {} ORDER BY {} {} LIMIT %(limit)s OFFSET %(offset)s"
    ).format(where, sql.Identifier(sort_by), direction)
    return count, page


async def run_naive_search(
    conn: Connection,
    statements: tuple[sql.Composed, sql.Composed],
    params: Mapping[str, Any],
) -> tuple[int, list[tuple[Any, ...]]]:
    """Count, then fetch the page: the original's two round trips."""
    count_sql, page_sql = statements
    cur = await conn.execute(count_sql, params)
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(page_sql, params)
    return int(row[0]), await cur.fetchall()


# -- EXPLAIN floor -----------------------------------------------------------------


async def explain_times(
    conn: Connection, query: str, params: Mapping[str, Any]
) -> tuple[float, float]:
    """The statement's server-side execution and planning times in seconds.

    From EXPLAIN (ANALYZE, TIMING OFF): the floor is the execution time; planning
    is reported beside it, since every unprepared run of the statement pays it too.
    """
    cur = await conn.execute(
        ("EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) " + query).encode(), params
    )
    row = await cur.fetchone()
    assert row is not None
    plan = row[0] if not isinstance(row[0], str) else json.loads(row[0])
    return float(plan[0]["Execution Time"]) / 1e3, float(plan[0]["Planning Time"]) / 1e3


async def explain_plan(conn: Connection, query: str, params: Mapping[str, Any]) -> str:
    """The statement's plan with actual times and buffers, as text (for the report)."""
    cur = await conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " + query).encode(), params)
    return "\n".join(str(row[0]) for row in await cur.fetchall())


# -- COPY floor ----------------------------------------------------------------------

COPY_TABLE: Final = "bench_raw_copy"
RAW_COLUMNS: Final = (
    "run_id",
    "supplier_stone_id",
    "offer_id",
    "source_updated_at",
    "payload",
    "payload_hash",
)


async def create_copy_table(conn: Connection) -> None:
    """An empty copy of raw_diamonds_nivoda: same columns, defaults, constraints, indexes."""
    await conn.execute(
        sql.SQL(
            "DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (LIKE raw_diamonds_nivoda INCLUDING ALL)"
        ).format(t=sql.Identifier(COPY_TABLE))
    )


async def empty_copy_table(conn: Connection) -> None:
    await conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(COPY_TABLE)))


async def drop_copy_table(conn: Connection) -> None:
    await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(COPY_TABLE)))


def encoded_raw_rows(run_id: Any, rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """RawDiamondInputs as COPY rows (RAW_COLUMNS order), each encoded and hashed when reached.

    orjson with sorted keys: the canonical JSON's bytes for these payloads (the ingest
    scenario's encoding profile checks that they equal json.dumps's).
    """
    for r in rows:
        utf8 = orjson.dumps(r.payload, option=orjson.OPT_SORT_KEYS)
        digest = hashlib.sha256(utf8).hexdigest()
        yield (run_id, r.supplier_stone_id, r.offer_id, r.source_updated_at, utf8.decode(), digest)


async def copy_rows(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """COPY rows (in RAW_COLUMNS order; payload as JSON text) into the empty copy.

    Each row is written as `rows` yields it: a generator's encoding of row k
    overlaps the server's parsing of the rows before it.
    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(COPY_TABLE), sql.SQL(", ").join(map(sql.Identifier, RAW_COLUMNS))
    )
    async with conn.cursor().copy(statement) as copy:
        for row in rows:
            await copy.write_row(row)


# -- ingest candidates that lost -------------------------------------------------------
# COPY into a transaction-scoped staging table, then one merge with the library's
# semantics (unchanged hashes untouched, changed rows back to pending). The batch's
# rows are distinct and sorted before they are written, as the library's are.

STAGING_TYPES: Final = ("text", "text", "timestamptz", "text", "text")
_STAGE: Final = (
    "CREATE TEMP TABLE bench_incoming (supplier_stone_id text, offer_id text, "
    "source_updated_at timestamptz, payload text, payload_hash text) ON COMMIT DROP"
)
_MERGE: Final = """
INSERT INTO raw_diamonds AS r
    (supplier, run_id, supplier_stone_id, offer_id, source_updated_at, payload, payload_hash)
SELECT 'nivoda', %(run_id)s, i.supplier_stone_id, i.offer_id, i.source_updated_at,
    i.payload::jsonb, i.payload_hash
FROM bench_incoming AS i
WHERE i.payload_hash IS DISTINCT FROM (
    SELECT c.payload_hash FROM raw_diamonds AS c
    WHERE c.supplier = 'nivoda' AND c.supplier_stone_id = i.supplier_stone_id)
ON CONFLICT (supplier, supplier_stone_id) DO UPDATE SET
    run_id = excluded.run_id, offer_id = excluded.offer_id,
    source_updated_at = excluded.source_updated_at, payload = excluded.payload,
    payload_hash = excluded.payload_hash, consolidated = FALSE, consolidated_at = NULL,
    consolidation_status = 'pending', claimed_by = NULL, claimed_at = NULL,
    consolidation_error = NULL, updated_at = now()
WHERE r.payload_hash IS DISTINCT FROM excluded.payload_hash
"""


async def staged_upsert(
    conn: Connection, run_id: Any, rows: Iterable[tuple[Any, ...]], *, binary: bool
) -> int:
    """COPY (text or binary) into an ON COMMIT DROP table, then one merge; rows changed."""
    async with conn.transaction():
        await conn.execute(_STAGE)
        statement = "COPY bench_incoming FROM STDIN" + (" (FORMAT BINARY)" if binary else "")
        async with conn.cursor().copy(statement.encode()) as copy:
            if binary:
                copy.set_types(list(STAGING_TYPES))
            for row in rows:
                await copy.write_row(row)
        cur = await conn.execute(_MERGE.encode(), {"run_id": run_id})
        await conn.execute("DROP TABLE bench_incoming")
        return cur.rowcount


# -- housekeeping --------------------------------------------------------------------
# Not measured: database creation and reuse, emptying and resetting tables between
# timed calls, sampling ids.


async def server_version(conn: Connection) -> str:
    cur = await conn.execute("SELECT version()")
    row = await cur.fetchone()
    return str(row[0]) if row else "unknown"


def database_exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def database_comment(conn: psycopg.Connection[Any], name: str) -> str | None:
    """The COMMENT ON DATABASE text where the benchmark records what a database holds."""
    row = conn.execute(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
        (name,),
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def create_database(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def drop_database(conn: psycopg.Connection[Any], name: str) -> None:
    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def comment_database(conn: psycopg.Connection[Any], name: str, text: str) -> None:
    conn.execute(
        sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(name), sql.Literal(text))
    )


def vacuum_analyze(conn: psycopg.Connection[Any], table: str | None = None) -> None:
    """VACUUM ANALYZE a table (every table when None); needs an autocommit connection."""
    if table is None:
        conn.execute("VACUUM ANALYZE")
    else:
        conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))


async def sample_diamond_ids(conn: Connection, count: int, seed: int) -> list[Any]:
    """`count` live diamond ids in a random order that is the same for the same table and seed."""
    cur = await conn.execute(
        "SELECT id FROM diamonds WHERE status = 'active' ORDER BY md5(id::text || %s) LIMIT %s",
        (str(seed), count),
    )
    return [row[0] for row in await cur.fetchall()]


async def empty_raw_table(conn: Connection) -> None:
    await conn.execute("TRUNCATE raw_diamonds_nivoda")


async def reset_raw_to_pending(conn: Connection) -> None:
    """Send every raw row back to the queue (pending, unclaimed), then VACUUM the dead versions."""
    await conn.execute(
        "UPDATE raw_diamonds_nivoda SET consolidation_status = 'pending', consolidated = FALSE, "
        "consolidated_at = NULL, claimed_by = NULL, claimed_at = NULL "
        "WHERE consolidation_status <> 'pending'"
    )
    await conn.execute("VACUUM ANALYZE raw_diamonds_nivoda")


async def raw_status_counts(conn: Connection) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT consolidation_status, count(*) FROM raw_diamonds_nivoda GROUP BY 1"
    )
    return {str(status): int(n) for status, n in await cur.fetchall()}


async def delete_supplier_diamonds(conn: Connection, supplier: str) -> int:
    """Remove the diamonds a write scenario added under its own supplier name."""
    cur = await conn.execute("DELETE FROM diamonds WHERE supplier = %s", (supplier,))
    return cur.rowcount


# -- quick lookup ----------------------------------------------------------------

ILIKE_LOOKUP: Final = """
SELECT * FROM diamonds
WHERE status = 'active'
    AND (supplier_stone_id ILIKE %(text)s || '%%'
        OR offer_id ILIKE %(text)s || '%%'
        OR certificate_number ILIKE %(text)s || '%%')
ORDER BY created_at DESC, id DESC
LIMIT 10
"""


async def ilike_lookup(conn: Connection, text: str) -> list[tuple[Any, ...]]:
    """The original quick lookup (a scan of every live diamond for a rare prefix)."""
    cur = await conn.execute(ILIKE_LOOKUP.encode(), {"text": text})
    return await cur.fetchall()


async def sample_lookup_texts(conn: Connection, count: int, seed: int) -> list[str]:
    """Prefixes a lookup box sees: a stone id without its last character, the first 8
    characters of an offer id, the first 7 of a certificate number, in turn."""
    cur = await conn.execute(
        "SELECT left(supplier_stone_id, -1), left(offer_id, 8), left(certificate_number, 7)"
        " FROM diamonds WHERE status = 'active' AND certificate_number IS NOT NULL"
        " ORDER BY md5(id::TEXT || %s::TEXT) LIMIT %s",
        (seed, count),
    )
    rows = await cur.fetchall()
    return [row[i % 3] for i, row in enumerate(rows)]


# -- dashboard: the COUNT(*) baseline and the benchmark's runs ------------------------

LIVE_COUNT: Final = "SELECT count(*) FROM diamonds WHERE status = 'active'"
DASHBOARD_SUPPLIER: Final = "bench-dashboard"


async def count_live(conn: Connection) -> int:
    """The baseline of the dashboard targets: a single COUNT(*) over live diamonds."""
    cur = await conn.execute(LIVE_COUNT)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def add_dashboard_runs(conn: Connection, runs: int) -> None:
    """`runs` runs of 3 partitions and 3 worker runs each, hourly, 9 in 10 finished."""
    await conn.execute(
        """
        WITH runs AS (
            INSERT INTO run_metadata
                (run_type, expected_workers, supplier, started_at, completed_at)
            SELECT 'full', 3, %(supplier)s, now() - n * interval '1 hour',
                CASE WHEN n %% 10 <> 0
                    THEN now() - n * interval '1 hour' + interval '20 minutes' END
            FROM generate_series(1, %(runs)s) AS n
            RETURNING run_id, started_at, completed_at
        ),
        partitions AS (
            INSERT INTO partition_progress
                (run_id, partition_id, next_offset, completed, updated_at)
            SELECT run_id, 'p' || p, 1000, completed_at IS NOT NULL,
                coalesce(completed_at, now())
            FROM runs, generate_series(1, 3) AS p
        )
        INSERT INTO worker_runs (run_id, partition_id, worker_id, status, records_processed,
            work_item_payload, started_at, completed_at, updated_at)
        SELECT run_id, 'p' || p, gen_random_uuid(),
            CASE WHEN completed_at IS NULL THEN 'running' ELSE 'completed' END, 1000,
            '{"estimated_records": 1000}', started_at, completed_at, coalesce(completed_at, now())
        FROM runs, generate_series(1, 3) AS p
        """,
        {"supplier": DASHBOARD_SUPPLIER, "runs": runs},
    )


async def delete_dashboard_runs(conn: Connection) -> int:
    """Remove the benchmark's runs (their partitions and worker runs cascade)."""
    cur = await conn.execute("DELETE FROM run_metadata WHERE supplier = %s", (DASHBOARD_SUPPLIER,))
    return cur.rowcount
