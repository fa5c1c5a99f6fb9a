-- Raw supplier payloads (raw_diamonds_nivoda): ingestion and claim-based consolidation.
--
-- A row moves pending -> processing (claimed by one consolidator) -> done or
-- failed; a changed payload sends it back to pending. `consolidated` is the
-- legacy flag, kept equal to (consolidation_status = 'done') by a CHECK.
-- updated_at records the last change of the payload, not of the status.

-- name: upsert_raw_diamonds(run_id, stone_ids, offer_ids, updated_ats, payloads, payload_hashes)
-- Insert or update a batch of raw payloads in one statement; returns the stone of
-- each row inserted or changed. The arrays are parallel, one element per stone, keys
-- distinct and sorted by the facade (so concurrent batches lock rows in the same
-- order); :payloads holds the canonical JSON text the hash was computed from. A large
-- batch is several of these statements in one transaction, pipelined (the client
-- encodes the next while the server writes this one): measured faster than one
-- statement of all rows and than COPY into a staging table plus one merge.
-- A row whose stored payload_hash equals the incoming one is left untouched (no
-- rewrite, no re-consolidation): the WHERE skips it before its JSON is even parsed
-- (one index probe per row), and ON CONFLICT ... WHERE covers a concurrent writer. A changed
-- payload replaces the row and sends it back to pending, its claim and error cleared.
-- role: writer
INSERT INTO raw_diamonds_nivoda AS r (
    run_id, supplier_stone_id, offer_id, source_updated_at, payload, payload_hash
)
SELECT
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
        FROM raw_diamonds_nivoda AS current_row
        WHERE current_row.supplier_stone_id = incoming.supplier_stone_id
    )
ON CONFLICT (supplier_stone_id) DO UPDATE
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

-- name: get_unconsolidated_raw_diamonds(row_limit, row_offset)
-- Rows waiting for consolidation (pending), oldest first (raw_diamonds_nivoda_pending_idx).
-- Runs on the primary: a work-queue read must not lag behind the claims.
-- role: writer
-- record: RawDiamond
SELECT *
FROM raw_diamonds_nivoda
WHERE consolidation_status = 'pending'
ORDER BY created_at ASC, id ASC
LIMIT :row_limit OFFSET :row_offset;

-- name: get_unconsolidated_count()$
-- How many rows wait for consolidation (pending; claimed rows are not counted).
-- Runs on the primary, like the queue it counts.
-- role: writer
SELECT count(*)
FROM raw_diamonds_nivoda
WHERE consolidation_status = 'pending';

-- name: claim_unconsolidated_raw_diamonds(row_limit, claimed_by)
-- Move up to :row_limit pending rows, oldest first, to processing for one consolidator.
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
    FROM raw_diamonds_nivoda
    WHERE consolidation_status = 'pending'
    ORDER BY created_at ASC, id ASC
    LIMIT :row_limit
    FOR UPDATE SKIP LOCKED
),

claimed AS (
    UPDATE raw_diamonds_nivoda AS claim
    SET
        consolidation_status = 'processing',
        claimed_by = :claimed_by,
        claimed_at = now()
    FROM picked
    WHERE claim.id = picked.id
    RETURNING claim.*
)

SELECT *
FROM claimed
ORDER BY created_at ASC, id ASC;

-- name: mark_as_consolidated(ids)!
-- Record a batch as consolidated (done). Only pending or claimed rows change, so a
-- repeated call keeps the first consolidated_at and a failed row stays failed.
-- role: writer
UPDATE raw_diamonds_nivoda
SET
    consolidation_status = 'done',
    consolidated = TRUE,
    consolidated_at = now(),
    consolidation_error = NULL
WHERE
    id = any(:ids)
    AND consolidation_status IN ('pending', 'processing');

-- name: mark_as_failed(ids, error)!
-- Record a batch as failed, with the consolidator's error text (may be NULL).
-- Only pending or claimed rows change; reset_failed_raw_diamonds retries them.
-- role: writer
UPDATE raw_diamonds_nivoda
SET
    consolidation_status = 'failed',
    consolidation_error = :error
WHERE
    id = any(:ids)
    AND consolidation_status IN ('pending', 'processing');

-- name: mark_claimed_as_consolidated(ids, claimed_by)!
-- mark_as_consolidated for a claim-based consolidator: only rows it still holds
-- change. A row whose payload changed meanwhile (back to pending) or whose claim
-- was reset and taken by another consolidator is left for the next claim.
-- role: writer
UPDATE raw_diamonds_nivoda
SET
    consolidation_status = 'done',
    consolidated = TRUE,
    consolidated_at = now(),
    consolidation_error = NULL
WHERE
    id = any(:ids)
    AND consolidation_status = 'processing'
    AND claimed_by = :claimed_by;

-- name: mark_claimed_as_failed(ids, error, claimed_by)!
-- mark_as_failed for a claim-based consolidator: only rows it still holds change.
-- role: writer
UPDATE raw_diamonds_nivoda
SET
    consolidation_status = 'failed',
    consolidation_error = :error
WHERE
    id = any(:ids)
    AND consolidation_status = 'processing'
    AND claimed_by = :claimed_by;

-- name: reset_stuck_claims(older_than)!
-- Return claims held longer than :older_than (an interval) to pending, so rows
-- claimed by a consolidator that crashed are claimed again
-- (raw_diamonds_nivoda_processing_idx).
-- role: writer
UPDATE raw_diamonds_nivoda
SET
    consolidation_status = 'pending',
    claimed_by = NULL,
    claimed_at = NULL
WHERE
    consolidation_status = 'processing'
    AND claimed_at < now() - :older_than::INTERVAL;

-- name: reset_failed_raw_diamonds(run_id)!
-- Send failed rows back to pending for another consolidation attempt: all of them,
-- or with :run_id only those last written by that run. Failed rows are few: a scan
-- is cheaper than keeping another index, so the optional filter costs nothing.
-- role: writer
UPDATE raw_diamonds_nivoda
SET
    consolidation_status = 'pending',
    claimed_by = NULL,
    claimed_at = NULL,
    consolidation_error = NULL
WHERE
    consolidation_status = 'failed'
    AND (:run_id::UUID IS NULL OR run_id = :run_id);
