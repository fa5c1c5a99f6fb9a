"""A database as the platform's original TypeScript package built and filled it (test support).

The adoption of such a database (sql/migrations/adopt/0001_from_typescript.sql, run by
`diamond-db migrate`) is tested on what this module builds:

- `create_ts_schema(conn)`: exactly the schema of /work/shared/docs/ts-era-schema.md (plain
  CREATE TABLE / CREATE INDEX, PostgreSQL's default constraint names, the seeded pricing rule).
- `fill_ts_data(conn, diamonds=..., seed=...)`: rows written the way the TypeScript package wrote
  them, set-based (INSERT ... SELECT over generate_series; 1,000,000 diamonds for measuring is
  the same call with diamonds=1_000_000). Deterministic: ids, values and timestamps are derived
  from the row number and the seed by hashing, never from random() or now().
- `insert_legacy_nulls(conn)`: hand-written / old rows with NULL in the nullable flags, counters
  and timestamps, which the adoption converts (NULL_CONVERSIONS).
- `insert_violations(conn)`: rows the library's CHECKs and foreign keys reject, which the
  adoption keeps as they are and `migrate` reports.
- `snapshot(conn)` and `compare_snapshots(before, after)`: every row of every table in its
  TypeScript-era columns, to check that adoption kept the data (conversions applied).

Sync psycopg: every function takes an open connection and leaves it with nothing uncommitted
(it commits what it wrote when the connection is not in autocommit mode).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple

import psycopg
from psycopg import sql

# The schema of ts-era-schema.md, statement for statement as the TypeScript package's
# sql/bootstrap.sql wrote it (its one index migration re-created the same indexes, so a
# database of that era has exactly these objects). Column order is the documented one.
TS_SCHEMA_SQL: Final = """
CREATE TABLE api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash TEXT NOT NULL UNIQUE,
    client_name TEXT NOT NULL,
    permissions TEXT[] DEFAULT '{}',
    active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    last_used_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ
);
CREATE INDEX idx_api_keys_hash ON api_keys (key_hash) WHERE active = TRUE;

CREATE TABLE raw_diamonds_nivoda (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id UUID NOT NULL,
    supplier_stone_id TEXT NOT NULL UNIQUE,
    offer_id TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ,
    payload JSONB NOT NULL,
    payload_hash TEXT NOT NULL,
    consolidated BOOLEAN DEFAULT FALSE,
    consolidated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_raw_nivoda_consolidated ON raw_diamonds_nivoda (consolidated)
    WHERE NOT consolidated;
CREATE INDEX idx_raw_nivoda_run_id ON raw_diamonds_nivoda (run_id);
CREATE INDEX idx_raw_nivoda_unconsolidated_created ON raw_diamonds_nivoda (created_at ASC)
    WHERE NOT consolidated;

CREATE TABLE diamonds (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier TEXT NOT NULL DEFAULT 'nivoda',
    supplier_stone_id TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    shape TEXT NOT NULL,
    carats DECIMAL(6,2) NOT NULL,
    color TEXT NOT NULL,
    clarity TEXT NOT NULL,
    cut TEXT,
    polish TEXT,
    symmetry TEXT,
    fluorescence TEXT,
    lab_grown BOOLEAN DEFAULT FALSE,
    treated BOOLEAN DEFAULT FALSE,
    supplier_price_cents BIGINT NOT NULL,
    price_per_carat_cents BIGINT NOT NULL,
    retail_price_cents BIGINT,
    markup_ratio DECIMAL(5,4),
    rating INTEGER CHECK (rating BETWEEN 1 AND 10),
    availability TEXT NOT NULL,
    raw_availability TEXT,
    hold_id TEXT,
    image_url TEXT,
    video_url TEXT,
    certificate_lab TEXT,
    certificate_number TEXT,
    certificate_pdf_url TEXT,
    measurements JSONB,
    attributes JSONB,
    supplier_name TEXT,
    supplier_legal_name TEXT,
    status TEXT DEFAULT 'active',
    source_updated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW(),
    deleted_at TIMESTAMPTZ,
    UNIQUE (supplier, supplier_stone_id)
);
CREATE INDEX idx_diamonds_search ON diamonds (shape, carats, color, clarity)
    WHERE status = 'active';
CREATE INDEX idx_diamonds_price ON diamonds (supplier_price_cents) WHERE status = 'active';
CREATE INDEX idx_diamonds_availability ON diamonds (availability) WHERE status = 'active';
CREATE INDEX idx_diamonds_offer ON diamonds (offer_id);
CREATE INDEX idx_diamonds_lab_grown ON diamonds (lab_grown) WHERE status = 'active';
CREATE INDEX idx_diamonds_cut ON diamonds (cut) WHERE status = 'active';
CREATE INDEX idx_diamonds_created ON diamonds (created_at DESC) WHERE status = 'active';
CREATE INDEX idx_diamonds_deleted ON diamonds (deleted_at) WHERE status = 'deleted';
CREATE INDEX idx_diamonds_carats ON diamonds (carats) WHERE status = 'active';

CREATE TABLE pricing_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    priority INTEGER NOT NULL DEFAULT 100,
    carat_min DECIMAL(6,2),
    carat_max DECIMAL(6,2),
    shapes TEXT[],
    lab_grown BOOLEAN,
    supplier TEXT,
    markup_ratio DECIMAL(5,4) NOT NULL,
    rating INTEGER CHECK (rating BETWEEN 1 AND 10),
    active BOOLEAN DEFAULT TRUE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_pricing_rules_active ON pricing_rules (priority) WHERE active = TRUE;
INSERT INTO pricing_rules (priority, markup_ratio, rating) VALUES (1000, 1.15, 5);

CREATE TABLE run_metadata (
    run_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    run_type TEXT NOT NULL,
    expected_workers INTEGER NOT NULL,
    completed_workers INTEGER DEFAULT 0,
    failed_workers INTEGER DEFAULT 0,
    watermark_before TIMESTAMPTZ,
    watermark_after TIMESTAMPTZ,
    started_at TIMESTAMPTZ DEFAULT NOW(),
    completed_at TIMESTAMPTZ
);
CREATE INDEX idx_run_metadata_incomplete ON run_metadata (started_at DESC)
    WHERE completed_at IS NULL;

CREATE TABLE worker_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id UUID NOT NULL,
    partition_id TEXT NOT NULL,
    worker_id UUID NOT NULL,
    status TEXT NOT NULL,
    records_processed INTEGER DEFAULT 0,
    error_message TEXT,
    work_item_payload JSONB,
    started_at TIMESTAMPTZ DEFAULT NOW(),
    completed_at TIMESTAMPTZ,
    UNIQUE (run_id, partition_id)
);
CREATE INDEX idx_worker_runs_status ON worker_runs (run_id, status);
CREATE INDEX idx_worker_runs_run_started ON worker_runs (run_id, started_at);

CREATE TABLE hold_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    diamond_id UUID REFERENCES diamonds(id),
    supplier TEXT NOT NULL,
    supplier_hold_id TEXT,
    offer_id TEXT NOT NULL,
    status TEXT NOT NULL,
    denied BOOLEAN DEFAULT FALSE,
    hold_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_hold_history_diamond_id ON hold_history (diamond_id, created_at DESC);

CREATE TABLE purchase_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    diamond_id UUID REFERENCES diamonds(id),
    supplier TEXT NOT NULL,
    supplier_order_id TEXT,
    offer_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    reference TEXT,
    comments TEXT,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
);
CREATE INDEX idx_purchase_history_diamond_id ON purchase_history (diamond_id);
"""

# Each table's TypeScript-era columns, in the documented order; the first is the primary key.
TS_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "api_keys": (
        "id", "key_hash", "client_name", "permissions", "active", "created_at", "last_used_at",
        "expires_at",
    ),
    "raw_diamonds_nivoda": (
        "id", "run_id", "supplier_stone_id", "offer_id", "source_updated_at", "payload",
        "payload_hash", "consolidated", "consolidated_at", "created_at", "updated_at",
    ),
    "diamonds": (
        "id", "supplier", "supplier_stone_id", "offer_id", "shape", "carats", "color", "clarity",
        "cut", "polish", "symmetry", "fluorescence", "lab_grown", "treated",
        "supplier_price_cents", "price_per_carat_cents", "retail_price_cents", "markup_ratio",
        "rating", "availability", "raw_availability", "hold_id", "image_url", "video_url",
        "certificate_lab", "certificate_number", "certificate_pdf_url", "measurements",
        "attributes", "supplier_name", "supplier_legal_name", "status", "source_updated_at",
        "created_at", "updated_at", "deleted_at",
    ),
    "pricing_rules": (
        "id", "priority", "carat_min", "carat_max", "shapes", "lab_grown", "supplier",
        "markup_ratio", "rating", "active", "created_at", "updated_at",
    ),
    "run_metadata": (
        "run_id", "run_type", "expected_workers", "completed_workers", "failed_workers",
        "watermark_before", "watermark_after", "started_at", "completed_at",
    ),
    "worker_runs": (
        "id", "run_id", "partition_id", "worker_id", "status", "records_processed",
        "error_message", "work_item_payload", "started_at", "completed_at",
    ),
    "hold_history": (
        "id", "diamond_id", "supplier", "supplier_hold_id", "offer_id", "status", "denied",
        "hold_until", "created_at",
    ),
    "purchase_history": (
        "id", "diamond_id", "supplier", "supplier_order_id", "offer_id", "idempotency_key",
        "status", "reference", "comments", "created_at", "updated_at",
    ),
}  # fmt: skip

# snapshot() reads these as md5(jsonb::text): jsonb's text form is canonical, so equal
# digests mean equal documents, and 100,000 payloads are compared in a fraction of the time.
JSONB_COLUMNS: Final = frozenset({"payload", "measurements", "attributes", "work_item_payload"})


class _AdoptionTime:
    """Marker in NULL_CONVERSIONS: the NULL becomes the time the adoption ran (a timestamp)."""

    def __repr__(self) -> str:
        return "ADOPTION_TIME"


ADOPTION_TIME: Final = _AdoptionTime()

# What the adoption turns a legacy NULL into, per (table, column): the conversions stated in
# sql/migrations/adopt/0001_from_typescript.sql. Columns absent here keep their NULLs (a NULL
# hold_history/purchase_history.diamond_id cannot be converted: the adoption reports it).
NULL_CONVERSIONS: Final[dict[tuple[str, str], object]] = {
    ("diamonds", "lab_grown"): False,
    ("diamonds", "treated"): False,
    ("diamonds", "status"): "deleted",  # NULL was never 'active': not live, as before
    ("diamonds", "created_at"): ADOPTION_TIME,
    ("diamonds", "updated_at"): ADOPTION_TIME,
    ("raw_diamonds_nivoda", "consolidated"): False,  # and consolidation_status 'failed'
    ("raw_diamonds_nivoda", "created_at"): ADOPTION_TIME,
    ("raw_diamonds_nivoda", "updated_at"): ADOPTION_TIME,
    ("pricing_rules", "active"): False,
    ("pricing_rules", "created_at"): ADOPTION_TIME,
    ("pricing_rules", "updated_at"): ADOPTION_TIME,
    ("run_metadata", "completed_workers"): 0,
    ("run_metadata", "failed_workers"): 0,
    ("run_metadata", "started_at"): ADOPTION_TIME,
    ("worker_runs", "records_processed"): 0,
    ("worker_runs", "started_at"): ADOPTION_TIME,
    ("api_keys", "permissions"): [],
    ("api_keys", "active"): False,
    ("api_keys", "created_at"): ADOPTION_TIME,
    ("hold_history", "denied"): False,
    ("hold_history", "created_at"): ADOPTION_TIME,
    ("purchase_history", "created_at"): ADOPTION_TIME,
    ("purchase_history", "updated_at"): ADOPTION_TIME,
}

# The fixed origin of every generated timestamp, so that a seed always gives the same rows.
EPOCH: Final = "2025-01-01 00:00:00+00"

Snapshot = dict[str, list[tuple[Any, ...]]]


class Violation(NamedTuple):
    """A row the library's constraints reject: its table, primary key (text), column, value.

    `value` is the column's value as psycopg loads it (Decimal, int, str, list, UUID or None).
    """

    table: str
    id: str
    column: str
    value: object


# The library constraint each kind of violation (table, column) breaks.
VIOLATED_CONSTRAINTS: Final[dict[tuple[str, str], str]] = {
    ("diamonds", "availability"): "diamonds_availability_check",
    ("diamonds", "status"): "diamonds_status_check",
    ("diamonds", "carats"): "diamonds_carats_check",
    ("diamonds", "supplier_price_cents"): "diamonds_prices_check",
    ("diamonds", "markup_ratio"): "diamonds_markup_ratio_check",
    ("raw_diamonds_nivoda", "payload_hash"): "raw_diamonds_nivoda_payload_hash_check",
    ("pricing_rules", "shapes"): "pricing_rules_shapes_check",
    ("pricing_rules", "markup_ratio"): "pricing_rules_markup_ratio_check",
    ("run_metadata", "run_type"): "run_metadata_run_type_check",
    ("run_metadata", "expected_workers"): "run_metadata_counters_check",
    ("worker_runs", "status"): "worker_runs_status_check",
    ("worker_runs", "records_processed"): "worker_runs_records_processed_check",
    ("worker_runs", "run_id"): "worker_runs_run_id_fkey",
    ("api_keys", "key_hash"): "api_keys_key_hash_check",
    ("hold_history", "status"): "hold_history_status_check",
    ("hold_history", "diamond_id"): "hold_history_diamond_id_not_null",
    ("purchase_history", "status"): "purchase_history_status_values_check",
    ("purchase_history", "diamond_id"): "purchase_history_diamond_id_not_null",
}


def create_ts_schema(conn: psycopg.Connection[Any]) -> None:
    """Build the TypeScript-era schema (8 tables, their indexes, the seeded rule) in `conn`'s
    database, which must have none of those tables yet."""
    conn.execute(TS_SCHEMA_SQL.encode())
    _commit(conn)


# A uniform pseudo-random number in [0, 1) for row n, draw k: a hash of (n, seed, k). Written
# into the statements below as r(k); hashint8extended is PostgreSQL's own 64-bit hash (stable
# for a given server version), so generation is set-based and deterministic.
def _r(k: int) -> str:
    return f"((hashint8extended(g.n, %(seed)s * 64 + {k}) & 1048575)::float8 / 1048576)"


def _uuid(kind: str, n: str = "g.n") -> str:
    """A deterministic UUID for row `n` of a kind: md5 of (kind, seed, n)."""
    return f"md5('{kind}-' || %(seed)s || '-' || ({n}))::uuid"


_RUNS_SQL: Final = f"""
INSERT INTO run_metadata (
    run_id, run_type, expected_workers, completed_workers, failed_workers,
    watermark_before, watermark_after, started_at, completed_at
)
SELECT
    {_uuid("run")},
    CASE WHEN mod(g.n, 7) = 1 THEN 'full' ELSE 'incremental' END,
    %(workers)s,
    0,
    0,
    CASE WHEN g.n > 1 THEN %(epoch)s::timestamptz + (g.n - 1) * interval '6 hours' END,
    CASE WHEN g.n < %(runs)s THEN %(epoch)s::timestamptz + g.n * interval '6 hours' END,
    %(epoch)s::timestamptz + g.n * interval '6 hours' + interval '1 minute',
    CASE
        WHEN g.n < %(runs)s
            THEN %(epoch)s::timestamptz + g.n * interval '6 hours' + interval '42 minutes'
    END
FROM generate_series(1, %(runs)s) AS g (n)
"""

# Every run has `workers` partitions; the last run is still going (its upper partitions run).
_WORKER_RUNS_SQL: Final = f"""
INSERT INTO worker_runs (
    id, run_id, partition_id, worker_id, status, records_processed, error_message,
    work_item_payload, started_at, completed_at
)
SELECT
    {_uuid("worker-run")},
    {_uuid("run", "w.run")},
    'partition-' || w.part,
    {_uuid("worker", "mod(g.n, 16)")},
    w.status,
    CASE WHEN w.status = 'completed' THEN 1000 + mod(g.n * 37, 5000) ELSE mod(g.n * 13, 900) END,
    CASE WHEN w.status = 'failed' THEN 'Nivoda API timeout after 3 retries' END,
    jsonb_build_object(
        'partitionId', 'partition-' || w.part,
        'minPrice', w.part * 50000,
        'maxPrice', (w.part + 1) * 50000,
        'totalRecords', 1000 + mod(g.n * 37, 5000),
        'offset', 0,
        'limit', 30
    ),
    %(epoch)s::timestamptz + w.run * interval '6 hours' + interval '2 minutes',
    CASE
        WHEN w.status <> 'running'
            THEN %(epoch)s::timestamptz + w.run * interval '6 hours' + interval '40 minutes'
    END
FROM
    generate_series(1, %(runs)s * %(workers)s) AS g (n),
    LATERAL (
        SELECT
            (g.n - 1) / %(workers)s + 1 AS run,
            mod(g.n - 1, %(workers)s) AS part
    ) AS p,
    LATERAL (
        SELECT
            p.run,
            p.part,
            CASE
                WHEN p.run = %(runs)s AND p.part >= %(workers)s / 2 THEN 'running'
                WHEN mod(p.run * 7 + p.part, 23) = 0 THEN 'failed'
                ELSE 'completed'
            END AS status
    ) AS w
"""

# The TypeScript worker bumped the run's counters atomically as each worker finished.
_RUN_COUNTERS_SQL: Final = """
UPDATE run_metadata AS m
SET
    completed_workers = c.completed,
    failed_workers = c.failed
FROM (
    SELECT
        run_id,
        count(*) FILTER (WHERE status = 'completed') AS completed,
        count(*) FILTER (WHERE status = 'failed') AS failed
    FROM worker_runs
    GROUP BY run_id
) AS c
WHERE c.run_id = m.run_id
"""

# One diamond per row number n (stone NIV-n; every 50th from another supplier). About a third
# lab-grown, round-heavy shapes, carats near the magic weights, mostly available, 3 percent
# soft-deleted (status 'deleted' with deleted_at, as the TypeScript softDelete wrote it).
_DIAMONDS_SQL: Final = f"""
INSERT INTO diamonds (
    id, supplier, supplier_stone_id, offer_id, shape, carats, color, clarity, cut, polish,
    symmetry, fluorescence, lab_grown, treated, supplier_price_cents, price_per_carat_cents,
    retail_price_cents, markup_ratio, rating, availability, raw_availability, hold_id, image_url,
    video_url, certificate_lab, certificate_number, certificate_pdf_url, measurements,
    attributes, supplier_name, supplier_legal_name, status, source_updated_at, created_at,
    updated_at, deleted_at
)
SELECT
    {_uuid("diamond")},
    CASE WHEN mod(g.n, 50) = 0 THEN 'other-supplier' ELSE 'nivoda' END,
    'NIV-' || g.n,
    {_uuid("offer")}::text,
    s.shape,
    s.carats,
    s.color,
    s.clarity,
    s.cut,
    s.cut,
    CASE WHEN s.cut IS NULL THEN 'VG' ELSE s.cut END,
    (ARRAY['NON', 'NON', 'NON', 'NON', 'FNT', 'MED', 'STG'])[1 + floor({_r(6)} * 7)::int],
    s.lab_grown,
    {_r(7)} < 0.02,
    s.price,
    round(s.price / s.carats)::bigint,
    CASE WHEN {_r(8)} >= 0.05 THEN round(s.price * 1.15)::bigint END,
    CASE WHEN {_r(8)} >= 0.05 THEN 1.1500 END,
    CASE WHEN {_r(9)} >= 0.1 THEN 1 + floor({_r(10)} * 10)::int END,
    s.availability,
    CASE s.availability
        WHEN 'available' THEN 'AVAILABLE'
        WHEN 'on_hold' THEN 'ON_HOLD'
        WHEN 'sold' THEN 'SOLD'
        ELSE 'MEMO'
    END,
    CASE WHEN s.availability = 'on_hold' THEN 'HOLD-' || g.n END,
    'https://images.example.com/NIV-' || g.n || '.jpg',
    CASE WHEN {_r(11)} < 0.8 THEN 'https://videos.example.com/NIV-' || g.n || '.mp4' END,
    CASE WHEN s.lab_grown THEN 'IGI' ELSE 'GIA' END,
    (1000000000 + g.n)::text,
    'https://certs.example.com/' || (1000000000 + g.n) || '.pdf',
    jsonb_build_object(
        'length', round((6.5 * cbrt(s.carats::float8))::numeric, 2),
        'width', round((6.4 * cbrt(s.carats::float8))::numeric, 2),
        'depth', round((3.9 * cbrt(s.carats::float8))::numeric, 2),
        'depthPercentage', 59 + floor({_r(12)} * 50) / 10,
        'table', 54 + floor({_r(13)} * 80) / 10
    ),
    jsonb_build_object(
        'girdle', (ARRAY['THN-MED', 'MED', 'MED-STK', 'STK'])[1 + floor({_r(14)} * 4)::int],
        'culet', 'NON',
        'eyeClean', s.clarity NOT IN ('SI2', 'I1', 'I2'),
        'origin', CASE WHEN s.lab_grown THEN 'CVD' ELSE 'natural' END
    ),
    (ARRAY['Antwerp Gems', 'Mumbai Diamonds', 'Surat Brilliants', 'New York Stones'])
        [1 + mod(g.n, 4)],
    (ARRAY['Antwerp Gems BV', 'Mumbai Diamonds Pvt', 'Surat Brilliants Ltd', 'NY Stones LLC'])
        [1 + mod(g.n, 4)],
    CASE WHEN s.deleted THEN 'deleted' ELSE 'active' END,
    s.created + interval '50 minutes',
    s.created,
    s.created + floor({_r(15)} * 20) * interval '1 day',
    CASE WHEN s.deleted THEN s.created + interval '30 days' END
FROM
    generate_series(%(first)s::bigint, %(last)s::bigint) AS g (n),
    LATERAL (
        SELECT
            (ARRAY['ROUND', 'ROUND', 'ROUND', 'ROUND', 'OVAL', 'CUSHION', 'EMERALD',
                   'PRINCESS', 'PEAR', 'RADIANT', 'MARQUISE', 'ASSCHER', 'HEART'])
                [1 + floor({_r(1)} * 13)::int] AS shape,
            {_r(2)} < 0.33 AS lab_grown,
            (ARRAY['D', 'E', 'F', 'G', 'G', 'H', 'H', 'I', 'J', 'K'])
                [1 + floor({_r(3)} * 10)::int] AS color,
            (ARRAY['FL', 'IF', 'VVS1', 'VVS2', 'VS1', 'VS1', 'VS2', 'VS2', 'SI1', 'SI1',
                   'SI2', 'I1'])[1 + floor({_r(4)} * 12)::int] AS clarity,
            round(
                ((ARRAY[0.30, 0.40, 0.50, 0.70, 0.90, 1.00, 1.00, 1.20, 1.50, 2.00, 3.00,
                        4.00])[1 + floor({_r(5)} * 12)::int]
                 + floor({_r(16)} * 8) / 100)::numeric,
                2
            ) AS carats,
            CASE
                WHEN {_r(17)} < 0.90 THEN 'available'
                WHEN {_r(17)} < 0.95 THEN 'on_hold'
                WHEN {_r(17)} < 0.98 THEN 'sold'
                ELSE 'unavailable'
            END AS availability,
            {_r(18)} < 0.03 AS deleted,
            %(epoch)s::timestamptz - interval '90 days' + g.n * interval '7 seconds' AS created
        OFFSET 0  -- a fence: each value is computed once, not once per reference
    ) AS b,
    LATERAL (
        SELECT
            b.*,
            CASE WHEN b.shape = 'ROUND' THEN
                (ARRAY['EX', 'EX', 'EX', 'VG', 'VG', 'GD'])[1 + floor({_r(19)} * 6)::int]
            END AS cut,
            (100 * round(
                b.carats * (CASE WHEN b.lab_grown THEN 420 ELSE 5500 END)
                * (0.6 + {_r(20)})
                * power(b.carats::float8, 0.9)::numeric
            ))::bigint AS price
        OFFSET 0
    ) AS s
"""

# One raw payload per stone NIV-n, shaped like a Nivoda API item and padded to about
# `payload_bytes`; payload_hash is the lowercase hex SHA-256 of the JSON text, as the
# TypeScript upsertRawDiamond computed it. Stones up to `consolidated_upto` were consolidated
# (consolidated with consolidated_at); the newer ones wait for the consolidator.
_RAW_SQL: Final = f"""
INSERT INTO raw_diamonds_nivoda (
    id, run_id, supplier_stone_id, offer_id, source_updated_at, payload, payload_hash,
    consolidated, consolidated_at, created_at, updated_at
)
SELECT
    {_uuid("raw")},
    {_uuid("run", "1 + mod(g.n, %(runs)s)")},
    'NIV-' || g.n,
    p.offer_id,
    p.created + interval '50 minutes',
    p.payload,
    encode(sha256(convert_to(p.payload::text, 'UTF8')), 'hex'),
    g.n <= %(consolidated_upto)s,
    CASE WHEN g.n <= %(consolidated_upto)s THEN p.created + interval '2 hours' END,
    p.created,
    p.created + interval '1 hour'
FROM
    generate_series(%(first)s::bigint, %(last)s::bigint) AS g (n),
    LATERAL (
        SELECT
            {_uuid("offer")}::text AS offer_id,
            %(epoch)s::timestamptz - interval '90 days' + g.n * interval '7 seconds'
                - interval '1 hour' AS created
        OFFSET 0  -- a fence: each value is computed once, not once per reference
    ) AS o,
    LATERAL (
        SELECT
            o.*,
            jsonb_build_object(
                'id', o.offer_id,
                'price', 100 * (1000 + mod(g.n * 7919, 500000)),
                'discount', -mod(g.n, 30),
                'diamond', jsonb_build_object(
                    'id', 'NIV-' || g.n,
                    'availability', 'AVAILABLE',
                    'image', 'https://images.example.com/NIV-' || g.n || '.jpg',
                    'video', 'https://videos.example.com/NIV-' || g.n || '.mp4',
                    'supplierStockId', 'STK' || g.n,
                    'certificate', jsonb_build_object(
                        'certNumber', (1000000000 + g.n)::text,
                        'lab', 'GIA',
                        'shape', 'ROUND',
                        'carats', 0.30 + mod(g.n, 400) / 100.0,
                        'color', 'G',
                        'clarity', 'VS1',
                        'labgrown', mod(g.n, 3) = 0
                    ),
                    'supplier', jsonb_build_object(
                        'name', 'Antwerp Gems', 'legal_name', 'Antwerp Gems BV'
                    )
                ),
                'comments', repeat(md5('c' || g.n), %(padding)s)
            ) AS payload
        OFFSET 0
    ) AS p
"""

_PRICING_RULES_SQL: Final = f"""
INSERT INTO pricing_rules (
    id, priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating,
    active, created_at, updated_at
)
SELECT
    {_uuid("rule", "r.n")}, r.priority, r.carat_min, r.carat_max, r.shapes, r.lab_grown,
    r.supplier, r.markup_ratio, r.rating, r.active,
    %(epoch)s::timestamptz - interval '120 days' + r.n * interval '1 day',
    %(epoch)s::timestamptz - interval '60 days' + r.n * interval '1 day'
FROM (VALUES
    (1, 10, NULL::numeric, NULL::numeric, NULL::text[], TRUE, NULL::text, 1.3000, 6, TRUE),
    (2, 20, 1.00, 1.99, ARRAY['ROUND'], FALSE, NULL, 1.2000, 8, TRUE),
    (3, 30, 0.30, 0.99, NULL, NULL, NULL, 1.1800, 5, TRUE),
    (4, 40, NULL, NULL, ARRAY['OVAL', 'PEAR', 'MARQUISE'], NULL, 'nivoda', 1.2500, 7, TRUE),
    (5, 50, 3.00, NULL, NULL, FALSE, NULL, 1.1000, 9, TRUE),
    (6, 60, NULL, NULL, NULL, NULL, 'other-supplier', 1.4000, NULL, FALSE)
) AS r (n, priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating,
        active)
"""

# Keys are stored as the lowercase hex SHA-256 of the raw key (Node's digest('hex')).
_API_KEYS_SQL: Final = f"""
INSERT INTO api_keys (
    id, key_hash, client_name, permissions, active, created_at, last_used_at, expires_at
)
SELECT
    {_uuid("key")},
    encode(sha256(convert_to('dk_live_' || %(seed)s || '_' || g.n, 'UTF8')), 'hex'),
    'client-' || g.n,
    CASE mod(g.n, 4)
        WHEN 0 THEN ARRAY['read']
        WHEN 1 THEN ARRAY['read', 'hold']
        WHEN 2 THEN ARRAY['read', 'hold', 'purchase']
        ELSE '{{}}'::text[]
    END,
    mod(g.n, 7) <> 0,
    %(epoch)s::timestamptz - interval '200 days' + g.n * interval '1 day',
    CASE WHEN mod(g.n, 4) <> 0 THEN %(epoch)s::timestamptz + g.n * interval '1 minute' END,
    CASE
        WHEN mod(g.n, 5) = 0 THEN %(epoch)s::timestamptz - interval '1 day'
        WHEN mod(g.n, 5) = 1 THEN %(epoch)s::timestamptz + interval '365 days'
    END
FROM generate_series(1, %(keys)s) AS g (n)
"""

# The hold placed on each on_hold diamond (active, its supplier hold id), and older holds on
# every 40th diamond: expired, released, or denied by the supplier (no hold id).
_HOLDS_SQL: Final = f"""
INSERT INTO hold_history (
    id, diamond_id, supplier, supplier_hold_id, offer_id, status, denied, hold_until, created_at
)
SELECT
    {_uuid("hold", "d.supplier_stone_id || '-' || h.k")},
    d.id,
    'nivoda',
    CASE h.status
        WHEN 'active' THEN d.hold_id
        WHEN 'denied' THEN NULL
        ELSE 'HOLD-' || d.supplier_stone_id || '-' || h.k
    END,
    d.offer_id,
    CASE WHEN h.status = 'denied' THEN 'released' ELSE h.status END,
    h.status = 'denied',
    d.created_at + (h.k + 2) * interval '1 day',
    d.created_at + h.k * interval '1 day'
FROM
    diamonds AS d,
    LATERAL (
        SELECT 3 AS k, 'active' AS status WHERE d.availability = 'on_hold'
        UNION ALL
        SELECT
            k,
            (ARRAY['expired', 'released', 'denied'])[1 + mod(k + (hashtext(d.offer_id) & 1023), 3)]
        FROM generate_series(0, 1) AS k
        WHERE mod(hashtext(d.supplier_stone_id), 40) = 0
    ) AS h
WHERE d.supplier = 'nivoda'
"""

# A purchase for each sold diamond, mostly confirmed; the idempotency key is the caller's.
_PURCHASES_SQL: Final = f"""
INSERT INTO purchase_history (
    id, diamond_id, supplier, supplier_order_id, offer_id, idempotency_key, status, reference,
    comments, created_at, updated_at
)
SELECT
    {_uuid("purchase", "d.supplier_stone_id")},
    d.id,
    d.supplier,
    CASE WHEN p.status <> 'failed' THEN 'ORD-' || d.supplier_stone_id END,
    d.offer_id,
    'checkout-' || md5(d.supplier_stone_id),
    p.status,
    CASE WHEN p.status = 'confirmed' THEN 'PO-' || d.supplier_stone_id END,
    CASE WHEN p.status = 'failed' THEN 'supplier rejected: stone sold elsewhere' END,
    d.updated_at,
    d.updated_at + interval '1 hour'
FROM
    diamonds AS d,
    LATERAL (
        SELECT
            CASE mod(length(d.supplier_stone_id) + ascii(right(d.supplier_stone_id, 1)), 10)
                WHEN 0 THEN 'pending'
                WHEN 1 THEN 'failed'
                ELSE 'confirmed'
            END AS status
    ) AS p
WHERE d.availability = 'sold'
"""


def fill_ts_data(
    conn: psycopg.Connection[Any],
    *,
    diamonds: int = 100_000,
    raw_rows: int | None = None,
    payload_bytes: int = 1_200,
    seed: int = 1,
    chunk: int = 250_000,
    defer_indexes: bool = True,
) -> dict[str, int]:
    """Fill a `create_ts_schema` database as the TypeScript package wrote it; return row counts.

    `diamonds` stones NIV-1 ... NIV-<diamonds>; `raw_rows` raw payloads (default: one per
    diamond) of about `payload_bytes` bytes of JSON each, the first 92 % consolidated; runs of
    10 workers (one run per 5,000 raw rows, at least 4), 6 pricing rules beside the seeded one,
    40 API keys, holds on on_hold diamonds (and older ones), purchases of sold diamonds.
    Inserts run in chunks of `chunk` rows, each committed (when not in autocommit mode). With
    `defer_indexes` the TypeScript indexes (not the constraints' indexes) are dropped before
    the bulk inserts and re-created after them, with the same names and definitions: the same
    catalog, built faster. Measured on a shared 2-core machine (load average 5-8): 100,000
    diamonds and raw rows cost the server 17.5 s of CPU (40-50 s of wall time there);
    1,000,000 of each 6-7 minutes and 2.3 GB of disk (1.3 GB of it the raw payloads).
    """
    raw_total = diamonds if raw_rows is None else raw_rows
    runs = max(4, raw_total // 5_000)
    params: dict[str, Any] = {
        "seed": seed,
        "epoch": EPOCH,
        "runs": runs,
        "workers": 10,
        "keys": 40,
        "consolidated_upto": raw_total * 92 // 100,
        "padding": max(0, (payload_bytes - 700) // 32),
    }
    deferred: list[str] = []
    if defer_indexes:
        deferred = [
            str(row[0])
            for row in conn.execute(
                "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index AS i "
                "JOIN pg_class AS c ON c.oid = i.indexrelid "
                "WHERE c.relnamespace = 'public'::regnamespace "
                "AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = i.indexrelid) "
                "ORDER BY c.relname"
            )
        ]
        for definition in deferred:
            name = definition.removeprefix("CREATE INDEX ").split(" ", 1)[0]
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))
    conn.execute(_RUNS_SQL.encode(), params)
    conn.execute(_WORKER_RUNS_SQL.encode(), params)
    conn.execute(_RUN_COUNTERS_SQL.encode(), params)
    conn.execute(_PRICING_RULES_SQL.encode(), params)
    conn.execute(_API_KEYS_SQL.encode(), params)
    _commit(conn)
    for table_sql, total in ((_DIAMONDS_SQL, diamonds), (_RAW_SQL, raw_total)):
        for first in range(1, total + 1, chunk):
            bounds = {"first": first, "last": min(total, first + chunk - 1)}
            conn.execute(table_sql.encode(), {**params, **bounds})
            _commit(conn)
    conn.execute(_HOLDS_SQL.encode(), params)
    conn.execute(_PURCHASES_SQL.encode(), params)
    _commit(conn)
    for definition in deferred:
        conn.execute(definition.encode())
    _commit(conn)
    for table in TS_COLUMNS:
        conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
    _commit(conn)
    return row_counts(conn)


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """The exact number of rows of each of the 8 tables."""
    counts: dict[str, int] = {}
    for table in TS_COLUMNS:
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
        row = conn.execute(query).fetchone()
        assert row is not None
        counts[table] = int(row[0])
    _commit(conn)
    return counts


def _insert(
    conn: psycopg.Connection[Any], table: str, values: Mapping[str, object], key: str = "id"
) -> str:
    """Insert one row as given (NULLs included); return its primary key as text."""
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}::text").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
        sql.Identifier(key),
    )
    row = conn.execute(query, list(values.values())).fetchone()
    assert row is not None
    return str(row[0])


_LEGACY_DIAMOND: Final[dict[str, object]] = {
    "supplier": "nivoda",
    "shape": "ROUND",
    "carats": Decimal("1.01"),
    "color": "G",
    "clarity": "VS1",
    "supplier_price_cents": 500_000,
    "price_per_carat_cents": 495_050,
    "availability": "available",
}


def _raw_values(stone: str, **changes: object) -> dict[str, object]:
    """A valid raw row for `stone` (payload and its lowercase SHA-256), with `changes`."""
    payload = json.dumps({"id": f"offer-{stone}", "diamond": {"id": stone}})
    return {
        "run_id": "00000000-0000-0000-0000-00000000000a",
        "supplier_stone_id": stone,
        "offer_id": f"offer-{stone}",
        "payload": payload,
        "payload_hash": hashlib.sha256(payload.encode()).hexdigest(),
        **changes,
    }


def insert_legacy_nulls(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str]]:
    """Rows written by hand or by old code, with NULL in nullable flags, counters and
    timestamps; return (table, primary key, column) for every such NULL.

    Apart from those NULLs every row satisfies the library's constraints, so after the
    adoption's conversions (NULL_CONVERSIONS) none of them is a violation.
    """
    nulls: list[tuple[str, str, str]] = []

    def add(table: str, values: dict[str, object], key: str = "id") -> str:
        row_id = _insert(conn, table, values, key)
        nulls.extend((table, row_id, c) for c, v in values.items() if v is None)
        return row_id

    all_null = {"lab_grown": None, "treated": None, "status": None}
    add(
        "diamonds",
        {**_LEGACY_DIAMOND, "supplier_stone_id": "LEGACY-1", "offer_id": "offer-LEGACY-1",
         **all_null, "created_at": None, "updated_at": None},
    )  # fmt: skip
    diamond_id = add(
        "diamonds",
        {**_LEGACY_DIAMOND, "supplier_stone_id": "LEGACY-2", "offer_id": "offer-LEGACY-2",
         "lab_grown": None, "status": "active"},
    )  # fmt: skip
    add(
        "diamonds",
        {**_LEGACY_DIAMOND, "supplier_stone_id": "LEGACY-3", "offer_id": "offer-LEGACY-3",
         "status": None, "availability": "sold", "updated_at": None},
    )  # fmt: skip
    add("raw_diamonds_nivoda", _raw_values("LEGACY-R1", consolidated=None))
    add(
        "raw_diamonds_nivoda",
        _raw_values(
            "LEGACY-R2",
            consolidated=None,
            consolidated_at=datetime.fromisoformat("2024-06-01T12:00:00+00:00"),
            created_at=None,
        ),
    )
    add("raw_diamonds_nivoda", _raw_values("LEGACY-R3", created_at=None, updated_at=None))
    add(
        "pricing_rules",
        {"priority": 5000, "markup_ratio": Decimal("1.05"), "active": None,
         "created_at": None, "updated_at": None},
    )  # fmt: skip
    run_id = add(
        "run_metadata",
        {"run_id": "00000000-0000-0000-0000-00000000000a", "run_type": "full",
         "expected_workers": 2, "completed_workers": None, "failed_workers": None,
         "started_at": None},
        key="run_id",
    )  # fmt: skip
    add(
        "worker_runs",
        {"run_id": run_id, "partition_id": "legacy-0", "worker_id": run_id,
         "status": "completed", "records_processed": None, "started_at": None},
    )  # fmt: skip
    add(
        "api_keys",
        {"key_hash": "0123456789abcdef" * 4, "client_name": "legacy", "permissions": None,
         "active": None, "created_at": None},
    )  # fmt: skip
    add(
        "hold_history",
        {"diamond_id": diamond_id, "supplier": "nivoda", "offer_id": "offer-LEGACY-2",
         "status": "expired", "denied": None, "created_at": None},
    )  # fmt: skip
    add(
        "purchase_history",
        {"diamond_id": diamond_id, "supplier": "nivoda", "offer_id": "offer-LEGACY-2",
         "idempotency_key": "legacy-purchase-1", "status": "failed", "created_at": None,
         "updated_at": None},
    )  # fmt: skip
    _commit(conn)
    return nulls


def insert_violations(conn: psycopg.Connection[Any]) -> list[Violation]:
    """Rows the TypeScript schema accepted but the library's CHECKs / foreign keys reject,
    each breaking exactly one constraint (VIOLATED_CONSTRAINTS names it per (table, column));
    return (table, primary key as text, column, value) for each.

    None of them holds a NULL the adoption converts, so they stay exactly as written.
    """
    found: list[Violation] = []

    def add(table: str, values: dict[str, object], column: str, key: str = "id") -> str:
        row_id = _insert(conn, table, values, key)
        found.append(Violation(table, row_id, column, values[column]))
        return row_id

    def diamond(stone: str, **changes: object) -> dict[str, object]:
        return {**_LEGACY_DIAMOND, "supplier_stone_id": stone, "offer_id": f"offer-{stone}",
                "lab_grown": False, "treated": False, "status": "active", **changes}  # fmt: skip

    add("diamonds", diamond("BAD-1", availability="reserved"), "availability")
    add("diamonds", diamond("BAD-2", carats=Decimal("0.00")), "carats")
    add("diamonds", diamond("BAD-3", supplier_price_cents=-100), "supplier_price_cents")
    add("diamonds", diamond("BAD-4", status="gone"), "status")
    add("diamonds", diamond("BAD-5", markup_ratio=Decimal("0.0000")), "markup_ratio")
    add("raw_diamonds_nivoda", _raw_values("BAD-R1", payload_hash="ABC"), "payload_hash")
    add("pricing_rules", {"priority": 900, "markup_ratio": Decimal("1.1"), "shapes": []}, "shapes")
    add("pricing_rules", {"priority": 901, "markup_ratio": Decimal("0.0000")}, "markup_ratio")
    run_id = add(
        "run_metadata",
        {"run_id": "00000000-0000-0000-0000-0000000000b1", "run_type": "weekly",
         "expected_workers": 1},
        "run_type",
        key="run_id",
    )  # fmt: skip
    add(
        "run_metadata",
        {"run_id": "00000000-0000-0000-0000-0000000000b2", "run_type": "full",
         "expected_workers": -1},
        "expected_workers",
        key="run_id",
    )  # fmt: skip
    worker = {"run_id": run_id, "worker_id": run_id, "status": "completed"}
    add("worker_runs", {**worker, "partition_id": "bad-0", "status": "paused"}, "status")
    add(
        "worker_runs",
        {**worker, "partition_id": "bad-1", "records_processed": -5},
        "records_processed",
    )
    orphan = "00000000-0000-0000-0000-0000000000b9"
    add("worker_runs", {**worker, "partition_id": "bad-2", "run_id": orphan}, "run_id")
    add("api_keys", {"key_hash": "ABCDEF0123456789" * 4, "client_name": "upper"}, "key_hash")
    add("api_keys", {"key_hash": "not-a-hash", "client_name": "short"}, "key_hash")
    diamond_id = _insert(conn, "diamonds", diamond("GOOD-FOR-BAD-HOLDS"))
    hold = {"diamond_id": diamond_id, "supplier": "nivoda", "offer_id": "offer-GOOD-FOR-BAD-HOLDS"}
    add("hold_history", {**hold, "status": "lost"}, "status")
    add("hold_history", {**hold, "diamond_id": None, "status": "expired"}, "diamond_id")
    purchase = {**hold, "status": "confirmed"}
    add("purchase_history", {**purchase, "idempotency_key": "bad-1", "status": "shipped"}, "status")
    add("purchase_history", {**purchase, "idempotency_key": "bad-2", "diamond_id": None},
        "diamond_id")  # fmt: skip
    _commit(conn)
    return found


def snapshot(
    conn: psycopg.Connection[Any], columns: Mapping[str, Sequence[str]] = TS_COLUMNS
) -> Snapshot:
    """Every row of every table (by default in its TypeScript-era columns), sorted by primary
    key (the first column). A JSONB column is read as the md5 of its (canonical) text."""
    result: Snapshot = {}
    for table, names in columns.items():
        fields = [
            sql.SQL("md5({}::text)").format(sql.Identifier(c))
            if c in JSONB_COLUMNS
            else sql.Identifier(c)
            for c in names
        ]
        query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
            sql.SQL(", ").join(fields), sql.Identifier(table), sql.Identifier(names[0])
        )
        result[table] = conn.execute(query).fetchall()
    _commit(conn)
    return result


def compare_snapshots(
    before: Snapshot,
    after: Snapshot,
    *,
    adopted_between: tuple[datetime, datetime] | None = None,
    columns: Mapping[str, Sequence[str]] = TS_COLUMNS,
    limit: int = 20,
) -> list[str]:
    """How `after` (a snapshot taken after adoption) differs from `before` once the stated
    NULL conversions are applied; [] when the data were kept. A NULL converted to
    ADOPTION_TIME must have become a timestamp (within `adopted_between` when given).
    At most `limit` differences are described."""
    problems: list[str] = []
    for table, names in columns.items():
        old = {row[0]: row for row in before[table]}
        new = {row[0]: row for row in after[table]}
        if old.keys() != new.keys():
            gone, added = old.keys() - new.keys(), new.keys() - old.keys()
            problems.append(f"{table}: {len(gone)} rows gone, {len(added)} rows added")
        for key in old.keys() & new.keys():
            if old[key] == new[key]:
                continue
            for column, was, now in zip(names, old[key], new[key], strict=True):
                if not _kept(table, column, was, now, adopted_between):
                    problems.append(f"{table} {key} {column}: {was!r} -> {now!r}")
        if len(problems) >= limit:
            break
    return problems[:limit]


def _kept(
    table: str,
    column: str,
    was: object,
    now: object,
    window: tuple[datetime, datetime] | None,
) -> bool:
    if was is not None or (table, column) not in NULL_CONVERSIONS:
        return was == now
    converted = NULL_CONVERSIONS[(table, column)]
    if converted is ADOPTION_TIME:
        if not isinstance(now, datetime):
            return False
        return window is None or window[0] <= now <= window[1]
    return now == converted


def _commit(conn: psycopg.Connection[Any]) -> None:
    if not conn.autocommit:
        conn.commit()
