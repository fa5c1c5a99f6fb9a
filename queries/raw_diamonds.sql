-- Raw supplier payloads (raw_diamonds): ingestion and claim-based consolidation.
--
-- raw_diamonds is partitioned by supplier (the feed): 'nivoda' in
-- raw_diamonds_nivoda, feeds without a partition of their own in
-- raw_diamonds_default. Every statement names its feed (supplier = :supplier),
-- so the planner reads that feed's partition only, and a consolidator of one
-- feed never sees another's rows.
--
-- A row moves pending -> processing (claimed by one consolidator) -> done or
-- failed; a changed payload sends it back to pending. `consolidated` is the
-- legacy flag, kept equal to (consolidation_status = 'done') by a CHECK.
-- updated_at records the last change of the payload, not of the status.

-- name: upsert_raw_diamonds(supplier, run_id, stone_ids, offer_ids, updated_ats, payloads, payload_hashes)
-- Insert or update a batch of one feed's raw payloads in one statement; returns the
-- stone of each row inserted or changed. The arrays are parallel, one element per
-- stone, keys distinct and sorted by the facade (so concurrent batches lock rows in
-- the same order); :payloads holds the canonical JSON text the hash was computed from. A large
-- batch is several of these statements in one transaction, pipelined (the client
-- encodes the next while the server writes this one): measured faster than one
-- statement of all rows and than COPY into a staging table plus one merge.
-- A row whose stored payload_hash equals the incoming one is left untouched (no
-- rewrite, no re-consolidation): the WHERE skips it before its JSON is even parsed
-- (one index probe per row), and ON CONFLICT ... WHERE covers a concurrent writer. A changed
-- payload replaces the row and sends it back to pending, its claim and error cleared.
-- role: writer
INSERT INTO raw_diamonds AS r (
    supplier, run_id, supplier_stone_id, offer_id, source_updated_at, payload, payload_hash
)
SELECT
    :supplier,
    :run_id,
    incoming.supplier_stone_id,
    incoming.offer_id,
    incoming.source_updated_at,
    incoming.payload::JSONB AS payload,
    incoming.payload_hash
FROM
    unnest(
        :stone_ids::TEXT[],
        :offer_ids::TEXT[],
        :updated_ats::TIMESTAMPTZ[],
        :payloads::TEXT[],
        :payload_hashes::TEXT[]
    ) AS incoming (supplier_stone_id, offer_id, source_updated_at, payload, payload_hash)
WHERE
    incoming.payload_hash IS DISTINCT FROM (
        SELECT current_row.payload_hash
        FROM raw_diamonds AS current_row
        WHERE
            current_row.supplier = :supplier
            AND current_row.supplier_stone_id = incoming.supplier_stone_id
    )
ON CONFLICT (supplier, supplier_stone_id) DO UPDATE
    SET
        run_id = excluded.run_id,
        offer_id = excluded.offer_id,
        source_updated_at = excluded.source_updated_at,
        payload = excluded.payload,
        payload_hash = excluded.payload_hash,
        consolidated = FALSE,
        consolidated_at = NULL,
        consolidation_status = 'pending',
        claimed_by = NULL,
        claimed_at = NULL,
        consolidation_error = NULL,
        updated_at = now()
    WHERE r.payload_hash IS DISTINCT FROM excluded.payload_hash
RETURNING r.supplier_stone_id;

-- name: get_unconsolidated_raw_diamonds(supplier, row_limit, row_offset)
-- A feed's rows waiting for consolidation (pending), oldest first (raw_diamonds_pending_idx).
-- Runs on the primary: a work-queue read must not lag behind the claims.
-- role: writer
-- record: RawDiamond
SELECT *
FROM raw_diamonds
WHERE supplier = :supplier AND consolidation_status = 'pending'
ORDER BY created_at ASC, id ASC
LIMIT :row_limit OFFSET :row_offset;

-- name: get_unconsolidated_count(supplier)$
-- How many of a feed's rows wait for consolidation (pending; claimed rows are not counted).
-- Runs on the primary, like the queue it counts.
-- role: writer
SELECT count(*)
FROM raw_diamonds
WHERE supplier = :supplier AND consolidation_status = 'pending';

-- name: claim_unconsolidated_raw_diamonds(supplier, row_limit, claimed_by)
-- Move up to :row_limit of a feed's pending rows, oldest first, to processing for one consolidator.
-- FOR UPDATE SKIP LOCKED: concurrent consolidators never receive the same row and
-- never wait for each other. The picked ids are MATERIALIZED, so they are locked
-- once: inlined as `id IN (subquery)`, a plan made before the table had statistics
-- could re-run the locking subquery for every row it scans (seen: 4 consolidators
-- over 20,000 fresh rows still running after 20 minutes).
-- The rows are returned oldest first.
-- role: writer
-- record: RawDiamond
WITH picked AS MATERIALIZED (
    SELECT id
    FROM raw_diamonds
    WHERE supplier = :supplier AND consolidation_status = 'pending'
    ORDER BY created_at ASC, id ASC
    LIMIT :row_limit
    FOR UPDATE SKIP LOCKED
),

claimed AS (
    UPDATE raw_diamonds AS claim
    SET
        consolidation_status = 'processing',
        claimed_by = :claimed_by,
        claimed_at = now()
    FROM picked
    WHERE claim.supplier = :supplier AND claim.id = picked.id
    RETURNING claim.*
)

SELECT *
FROM claimed
ORDER BY created_at ASC, id ASC;

-- name: mark_as_consolidated(supplier, ids)!
-- Record a batch as consolidated (done). Only pending or claimed rows change, so a
-- repeated call keeps the first consolidated_at and a failed row stays failed.
-- role: writer
UPDATE raw_diamonds
SET
    consolidation_status = 'done',
    consolidated = TRUE,
    consolidated_at = now(),
    consolidation_error = NULL
WHERE
    supplier = :supplier
    AND id = any(:ids)
    AND consolidation_status IN ('pending', 'processing');

-- name: mark_as_failed(supplier, ids, error)!
-- Record a batch as failed, with the consolidator's error text (may be NULL).
-- Only pending or claimed rows change; reset_failed_raw_diamonds retries them.
-- role: writer
UPDATE raw_diamonds
SET
    consolidation_status = 'failed',
    consolidation_error = :error
WHERE
    supplier = :supplier
    AND id = any(:ids)
    AND consolidation_status IN ('pending', 'processing');

-- name: mark_claimed_as_consolidated(supplier, ids, claimed_by)!
-- mark_as_consolidated for a claim-based consolidator: only rows it still holds
-- change. A row whose payload changed meanwhile (back to pending) or whose claim
-- was reset and taken by another consolidator is left for the next claim.
-- role: writer
UPDATE raw_diamonds
SET
    consolidation_status = 'done',
    consolidated = TRUE,
    consolidated_at = now(),
    consolidation_error = NULL
WHERE
    supplier = :supplier
    AND id = any(:ids)
    AND consolidation_status = 'processing'
    AND claimed_by = :claimed_by;

-- name: mark_claimed_as_failed(supplier, ids, error, claimed_by)!
-- mark_as_failed for a claim-based consolidator: only rows it still holds change.
-- role: writer
UPDATE raw_diamonds
SET
    consolidation_status = 'failed',
    consolidation_error = :error
WHERE
    supplier = :supplier
    AND id = any(:ids)
    AND consolidation_status = 'processing'
    AND claimed_by = :claimed_by;

-- name: reset_stuck_claims(supplier, older_than)!
-- Return a feed's claims held longer than :older_than (an interval) to pending,
-- so rows claimed by a consolidator that crashed are claimed again
-- (raw_diamonds_processing_idx).
-- role: writer
UPDATE raw_diamonds
SET
    consolidation_status = 'pending',
    claimed_by = NULL,
    claimed_at = NULL
WHERE
    supplier = :supplier
    AND consolidation_status = 'processing'
    AND claimed_at < now() - :older_than::INTERVAL;

-- name: reset_failed_raw_diamonds(supplier, run_id)!
-- Send a feed's failed rows back to pending for another consolidation attempt: all of them,
-- or with :run_id only those last written by that run. Failed rows are few: a scan
-- is cheaper than keeping another index, so the optional filter costs nothing.
-- role: writer
UPDATE raw_diamonds
SET
    consolidation_status = 'pending',
    claimed_by = NULL,
    claimed_at = NULL,
    consolidation_error = NULL
WHERE
    supplier = :supplier
    AND consolidation_status = 'failed'
    AND (:run_id::UUID IS NULL OR run_id = :run_id);

-- name: get_raw_partition(supplier)^
-- purge_raw_payloads: the partition holding a feed's rows (the tableoid of any
-- one of them), and whether its bound (pg_class.relpartbound) is this feed
-- alone: then it can be truncated; otherwise, as for the default partition,
-- the feed's rows are deleted. No row: the feed has nothing to purge.
-- role: writer
-- record: RawPartition
WITH feed AS (
    SELECT
        one_row.tableoid AS partition_oid,
        'FOR VALUES IN (' || quote_literal(one_row.supplier) || ')' AS own_bound
    FROM raw_diamonds AS one_row
    WHERE one_row.supplier = :supplier
    -- Any one of the feed's rows names its partition.
    LIMIT 1  -- noqa: AM09
)

SELECT
    part.relnamespace::REGNAMESPACE::TEXT AS schema_name,
    part.relname::TEXT AS table_name,
    coalesce(pg_get_expr(part.relpartbound, part.oid) = feed.own_bound, FALSE)
        AS own_partition
FROM feed
INNER JOIN pg_class AS part ON feed.partition_oid = part.oid;

-- name: get_raw_claims(supplier)
-- purge_raw_payloads: a feed's claims in progress, per consolidator
-- (raw_diamonds_processing_idx). Run after locking the feed's partition.
-- role: writer
-- record: RawClaims
SELECT
    claimed_by,
    count(*) AS claimed
FROM raw_diamonds
WHERE supplier = :supplier AND consolidation_status = 'processing'
GROUP BY claimed_by
ORDER BY claimed_by;

-- name: count_raw_payloads(supplier)$
-- purge_raw_payloads: how many rows a feed has (what a TRUNCATE removes).
-- role: writer
SELECT count(*)
FROM raw_diamonds
WHERE supplier = :supplier;

-- name: delete_raw_payloads(supplier)!
-- purge_raw_payloads for a feed sharing its partition (the default one):
-- delete its rows, after the partition was locked against writes.
-- role: writer
DELETE FROM raw_diamonds
WHERE supplier = :supplier;
