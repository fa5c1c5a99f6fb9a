-- diamond_db schema: the complete current schema in one file.
--
-- This file equals every migration in sql/migrations/ applied in order (a test
-- compares the two catalogs), and records those migrations as applied, with the
-- checksums `diamond-db migrate` computes, so `diamond-db migrate --status`
-- then reports everything applied. Tools apply it with psql.
--
-- - On an empty database: creates the schema, seeds the default pricing rule
--   and fills the schema_migrations ledger.
-- - On a database already at this version: changes nothing.
-- - On any other database (an older version, a newer one, or tables that are
--   not diamond_db's): stops with an error saying to run `diamond-db migrate`,
--   and changes nothing.
--
-- It runs in one transaction, serialised by an advisory lock, so two services
-- bootstrapping at once cannot race each other. When a migration is added,
-- add its objects below and its row to the ledger insert at the end.
--
-- Conventions: money is BIGINT cents, carats NUMERIC(6,2), ratios
-- NUMERIC(5,4), ids UUID, timestamps TIMESTAMPTZ. Enumerated values are
-- CHECK constraints; counters and flags are NOT NULL with defaults.

BEGIN;

-- Re-running on a current database is a no-op: keep its "already exists" notices quiet.
SET LOCAL client_min_messages = warning;

-- Any constant works as long as every bootstrap uses the same one.
SELECT pg_advisory_xact_lock(7263540011);

-- Go on only for an empty database or one at exactly this version.
DO $guard$
DECLARE
    expected TEXT[] := ARRAY[
        '0001 b1696a8278e469b0f729fbaf5e6613c42ee0055b1ff6ac6066d02df66338bc06',
        '0002 a9a8d98519d08fe4b433a83bf711666c079903cfaca0f1bb54731c42b7c033a1',
        '0003 3cee0657b0ba7c5e6949a085b3b8aa717e1ce2d6f42bab43d52e1d981f545131',
        '0004 51415c1aa36eda6d86dd452771a10a995bd89a4439412f20e1e5d8664a17e897',
        '0005 34395894d62e9d33e852aa9b028c4c389b692873be7dfbb9928cecdad3c6da23',
        '0006 8e7c858a6c52cdd17971ef672edc6fd81b65d4d29f2b9df30bf51f6b0b175edd',
        '0007 5f0c2e380552c00b3777a678f89876579451c9a5443caabfd0fbd1f1d801c354',
        '0008 7e6233940ff6d8a1c279bf5aed6ef58311e46cbf9da59a98a904cfbe2fb0f836',
        '0009 a02a3cc7ed9e606f41d4bd489a84cca95dc7526a08a14f8f8e8a604d74fcd5b9',
        '0010 473827a2ae156dfa1c641c99c9ea96e229f45a579c342e0f3759900ededc7016',
        '0011 d869f1568cb215f273e3cc17c92b2080d0bbc299a3e85d6ecad93407eb63eeb8',
        '0012 0a8049b44ffc8a7a098babcdc6b4440f5fa839636d0c80694831f2163770ba18'
    ];
    recorded TEXT[];
BEGIN
    IF to_regclass('schema_migrations') IS NULL THEN
        IF EXISTS (
            SELECT 1
            FROM pg_class
            WHERE
                relnamespace = current_schema()::REGNAMESPACE
                AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        ) THEN
            RAISE EXCEPTION 'diamond_db: this database has tables but no schema_migrations ledger'
            USING HINT = 'run `diamond-db migrate` to adopt it; bootstrap.sql only creates'
            ' the schema in an empty database';
        END IF;
        RETURN;
    END IF;
    SELECT coalesce(array_agg(version || ' ' || checksum ORDER BY version), '{}')
    INTO recorded
    FROM schema_migrations;
    IF recorded IS DISTINCT FROM expected THEN
        RAISE EXCEPTION 'diamond_db: this database is not at the version of bootstrap.sql'
        USING HINT = 'run `diamond-db migrate` (see `diamond-db migrate --status`)';
    END IF;
END
$guard$;

-- The migrations ledger: one row per applied file of sql/migrations/.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,  -- noqa: RF04
    name TEXT NOT NULL,  -- noqa: RF04
    checksum TEXT NOT NULL,  -- noqa: RF04
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_ms BIGINT NOT NULL,
    applied_by TEXT NOT NULL DEFAULT current_user,
    applied_with TEXT NOT NULL,
    CONSTRAINT schema_migrations_version_check CHECK (version ~ '^[0-9]{4}$'),
    CONSTRAINT schema_migrations_checksum_check CHECK (checksum ~ '^[0-9a-f]{64}$')
);

-- The lease one `diamond-db migrate` holds while it runs (a single row).
CREATE TABLE IF NOT EXISTS schema_migrations_lock (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE,
    holder TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT schema_migrations_lock_singleton_check CHECK (singleton)
);

-- Canonical inventory: what the API searches, holds and sells.
CREATE TABLE IF NOT EXISTS diamonds (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    supplier TEXT NOT NULL DEFAULT 'nivoda',
    supplier_stone_id TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    shape TEXT NOT NULL,
    carats NUMERIC(6, 2) NOT NULL,
    color TEXT,
    clarity TEXT,
    cut TEXT,
    polish TEXT,
    symmetry TEXT,
    fluorescence TEXT,
    lab_grown BOOLEAN NOT NULL DEFAULT FALSE,
    treated BOOLEAN NOT NULL DEFAULT FALSE,
    supplier_price_cents BIGINT NOT NULL,
    price_per_carat_cents BIGINT NOT NULL,
    retail_price_cents BIGINT,
    markup_ratio NUMERIC(5, 4),
    rating INTEGER,
    availability TEXT NOT NULL DEFAULT 'available',
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
    status TEXT NOT NULL DEFAULT 'active',
    source_updated_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    deleted_at TIMESTAMPTZ,
    -- Grading data (0005), typed; measurements/attributes keep everything else.
    fancy_color TEXT,
    fancy_intensity TEXT,
    fancy_overtone TEXT,
    fluorescence_intensity TEXT,
    ratio NUMERIC(5, 3),  -- length / width
    table_pct NUMERIC(5, 2),
    depth_pct NUMERIC(5, 2),
    crown_angle NUMERIC(5, 2),
    crown_height NUMERIC(5, 2),
    pavilion_angle NUMERIC(5, 2),
    pavilion_depth NUMERIC(5, 2),
    length_mm NUMERIC(6, 2),
    width_mm NUMERIC(6, 2),
    depth_mm NUMERIC(6, 2),
    girdle TEXT,
    culet_size TEXT,
    brown TEXT,
    green TEXT,
    milky TEXT,
    eye_clean BOOLEAN,
    meta_images JSONB,  -- [{"url": ..., "display_index": ...}, ...]
    pricing_rating INTEGER,
    CONSTRAINT diamonds_supplier_stone_key UNIQUE (supplier, supplier_stone_id),
    CONSTRAINT diamonds_carats_check CHECK (carats > 0),
    CONSTRAINT diamonds_prices_check CHECK (
        supplier_price_cents >= 0
        AND price_per_carat_cents >= 0
        AND retail_price_cents >= 0
    ),
    CONSTRAINT diamonds_markup_ratio_check CHECK (markup_ratio > 0),
    CONSTRAINT diamonds_rating_check CHECK (rating BETWEEN 1 AND 10),
    CONSTRAINT diamonds_pricing_rating_check CHECK (pricing_rating BETWEEN 1 AND 10),
    CONSTRAINT diamonds_availability_check CHECK (
        availability IN ('available', 'on_hold', 'sold', 'unavailable')
    ),
    CONSTRAINT diamonds_status_check CHECK (status IN ('active', 'deleted')),
    -- Physical ranges of the grading data: percentages 0-100, angles 0-90, sizes > 0.
    CONSTRAINT diamonds_ratio_check CHECK (ratio > 0),
    CONSTRAINT diamonds_table_pct_check CHECK (table_pct BETWEEN 0 AND 100),
    CONSTRAINT diamonds_depth_pct_check CHECK (depth_pct BETWEEN 0 AND 100),
    CONSTRAINT diamonds_crown_angle_check CHECK (crown_angle BETWEEN 0 AND 90),
    CONSTRAINT diamonds_crown_height_check CHECK (crown_height BETWEEN 0 AND 100),
    CONSTRAINT diamonds_pavilion_angle_check CHECK (pavilion_angle BETWEEN 0 AND 90),
    CONSTRAINT diamonds_pavilion_depth_check CHECK (pavilion_depth BETWEEN 0 AND 100),
    CONSTRAINT diamonds_length_mm_check CHECK (length_mm > 0),
    CONSTRAINT diamonds_width_mm_check CHECK (width_mm > 0),
    CONSTRAINT diamonds_depth_mm_check CHECK (depth_mm > 0),
    CONSTRAINT diamonds_meta_images_check CHECK (jsonb_typeof(meta_images) = 'array')
);

-- get_diamond_by_offer_id: only live diamonds are ever looked up by offer.
CREATE INDEX IF NOT EXISTS diamonds_offer_id_active_idx
ON diamonds (offer_id) WHERE status = 'active';

-- Clarity grades best first (FL ... I3 = 1 ... 12), any other grade 13, NULL stays
-- NULL; immutable, so it is indexable. The search reads (diamond_clarity_rank(clarity),
-- clarity, id) as three index ranges: the grades in grade order, then unknown grades
-- (13) alphabetically, then NULL, so in both directions unknown grades come after the
-- twelve grades and before NULLs (diamond_db/search.py, CLARITY_GRADES).
CREATE OR REPLACE FUNCTION diamond_clarity_rank(clarity TEXT) RETURNS SMALLINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN clarity IS NULL THEN NULL
    WHEN clarity = 'FL' THEN 1
    WHEN clarity = 'IF' THEN 2
    WHEN clarity = 'VVS1' THEN 3
    WHEN clarity = 'VVS2' THEN 4
    WHEN clarity = 'VS1' THEN 5
    WHEN clarity = 'VS2' THEN 6
    WHEN clarity = 'SI1' THEN 7
    WHEN clarity = 'SI2' THEN 8
    WHEN clarity = 'SI3' THEN 9
    WHEN clarity = 'I1' THEN 10
    WHEN clarity = 'I2' THEN 11
    WHEN clarity = 'I3' THEN 12
    ELSE 13
END;

-- search_diamonds (diamond_db/search.py). Every index is partial on live diamonds,
-- the only ones a search sees. One (sort key, id) index per sort key serves that
-- sort in both directions, including keyset (cursor) pages, which start with an
-- index condition (key, id) > (last key, last id) instead of an OFFSET; a nullable
-- key is read in two index ranges, non-NULL then NULL, so NULLs come last both ways
-- (clarity in three: grades, unknown grades, NULL).
-- The price of these eleven indexes is paid by writes: measured on 1M diamonds,
-- batch upserts went from ~5,100 to ~2,900 rows/s (new rows), ~3,500 to ~2,200
-- (updates), while every search page takes under 5 ms from an index.

-- sort_by created_at (the default sort, newest first).
CREATE INDEX IF NOT EXISTS diamonds_search_created_at_idx
ON diamonds (created_at, id) WHERE status = 'active';

-- sort_by supplier_price_cents; also price_min/price_max ranges without lab_grown.
CREATE INDEX IF NOT EXISTS diamonds_search_price_idx
ON diamonds (supplier_price_cents, id) WHERE status = 'active';

-- sort_by carats; also carat_min/carat_max ranges.
CREATE INDEX IF NOT EXISTS diamonds_search_carats_idx
ON diamonds (carats, id) WHERE status = 'active';

-- sort_by price_per_carat_cents.
CREATE INDEX IF NOT EXISTS diamonds_search_price_per_carat_idx
ON diamonds (price_per_carat_cents, id) WHERE status = 'active';

-- sort_by color (alphabetical, D first).
CREATE INDEX IF NOT EXISTS diamonds_search_color_idx
ON diamonds (color, id) WHERE status = 'active';

-- sort_by clarity (by grade, see diamond_clarity_rank).
CREATE INDEX IF NOT EXISTS diamonds_search_clarity_idx
ON diamonds (diamond_clarity_rank(clarity), clarity, id) WHERE status = 'active';

-- sort_by retail_price_cents.
CREATE INDEX IF NOT EXISTS diamonds_search_retail_price_idx
ON diamonds (retail_price_cents, id) WHERE status = 'active';

-- sort_by rating; also rating_min.
CREATE INDEX IF NOT EXISTS diamonds_search_rating_idx
ON diamonds (rating, id) WHERE status = 'active';

-- lab_grown with a price range, sorted by price or counted (an index-only scan).
CREATE INDEX IF NOT EXISTS diamonds_search_lab_grown_price_idx
ON diamonds (lab_grown, supplier_price_cents, id) WHERE status = 'active';

-- The storefront's grade searches (colors, clarities, shape, lab_grown, carat and
-- price ranges, as in the README example): matches and counts from the index alone.
CREATE INDEX IF NOT EXISTS diamonds_search_grade_idx
ON diamonds (color, clarity, shape, lab_grown, carats, supplier_price_cents)
WHERE status = 'active';

-- Shape-first searches without colours (shape, lab_grown, a carat range): measured
-- on 1M diamonds, OVAL lab-grown >= 2 ct went from 138 ms to 5-11 ms (count included).
CREATE INDEX IF NOT EXISTS diamonds_search_shape_idx
ON diamonds (shape, lab_grown, carats, color, clarity, supplier_price_cents)
WHERE status = 'active';

-- Issue 13's sorts and filters on the grading columns (0007): four more (key, id)
-- indexes, for sort_by ratio, table_pct, depth_pct and fancy_color (each also serves
-- its range or list filter). Measured with tests/measure_search_indexes.py (write
-- cost: 0007's header). Sorted without an index, a page reads and sorts every live
-- stone: 0.2-0.5 s at 50,000 diamonds, 1.3-1.9 s at 200,000 (a 2-core machine under
-- load), against 17-37 ms from these indexes at 50,000.
-- No index, by choice:
-- - sort_by certificate_lab and fluorescence_intensity: a handful of values each, a
--   secondary sort of a filtered list. Under a storefront's grade filters (shape,
--   carats, colours, clarities, origin) their page 1 took 16-39 ms at 50,000 without
--   an index, as the indexed sorts did: the filter's index narrows first. Unfiltered
--   they cost a full read (above); an index each would cost every upsert and
--   re-pricing what each of the four does. If the storefront offers them unfiltered,
--   add one in a migration.
-- - the other new filters (supplier, fancy_intensities, fluorescence_intensities,
--   crown and pavilion angles, length, width, depth_mm, eye_clean, no_bgm): checked
--   on the rows the search's own index finds: added to the benchmark's searches,
--   the page still comes from an index (tests/test_search.py). rating_max and the
--   retail price range use the rating and retail price indexes, supplier the
--   dashboard's (supplier, availability) index.
-- Issue 13's sorts and filters on the grading columns (0007). SEARCH_CHOICES

-- sort_by ratio; also ratio_min/ratio_max ranges.
CREATE INDEX IF NOT EXISTS diamonds_search_ratio_idx
ON diamonds (ratio, id) WHERE status = 'active';

-- sort_by table_pct; also table_min/table_max ranges.
CREATE INDEX IF NOT EXISTS diamonds_search_table_pct_idx
ON diamonds (table_pct, id) WHERE status = 'active';

-- sort_by depth_pct; also depth_pct_min/depth_pct_max ranges.
CREATE INDEX IF NOT EXISTS diamonds_search_depth_pct_idx
ON diamonds (depth_pct, id) WHERE status = 'active';

-- sort_by fancy_color; also fancy_colors and fancy_color=True. Not partial on
-- fancy_color IS NOT NULL: the sort's NULL range (98% of stones) must be read
-- in (fancy_color, id) order too, or every page sorts all of them.
CREATE INDEX IF NOT EXISTS diamonds_search_fancy_color_idx
ON diamonds (fancy_color, id) WHERE status = 'active';

-- no_bgm: statistics on each tint as the filter reads it. Without them the planner
-- guesses 2% per tint (0.0008% for all three) and reads a whole no_bgm search by a
-- sequential scan and a sort; with them it knows ~90% match and reads the page from
-- the sort's index (tests/test_search.py, Q1 with the new filters). Costs no write.
CREATE STATISTICS IF NOT EXISTS diamonds_tints_stats
ON (coalesce(lower(brown), '')), (coalesce(lower(green), '')), (coalesce(lower(milky), ''))
FROM diamonds;

-- quick_search_diamonds (0008): a prefix of the stone id, offer id or certificate
-- number, case-insensitively, as one range of each index (text_pattern_ops compares
-- byte-wise). Not partial: the planner uses an expression index's statistics only
-- when the index is not partial, and needs them to prefer these over created_at.
CREATE INDEX IF NOT EXISTS diamonds_quick_stone_idx
ON diamonds (lower(supplier_stone_id) text_pattern_ops);

CREATE INDEX IF NOT EXISTS diamonds_quick_offer_idx
ON diamonds (lower(offer_id) text_pattern_ops);

CREATE INDEX IF NOT EXISTS diamonds_quick_certificate_idx
ON diamonds (lower(certificate_number) text_pattern_ops);

-- get_diamonds_on_hold (0008): the live on-hold stones, most recently changed first.
CREATE INDEX IF NOT EXISTS diamonds_on_hold_idx
ON diamonds (updated_at, id)
WHERE status = 'active' AND availability = 'on_hold';

-- get_dashboard_summary: live diamonds counted by supplier and availability
-- from this index alone (an index-only scan).
CREATE INDEX IF NOT EXISTS diamonds_live_supplier_availability_idx
ON diamonds (supplier, availability) WHERE status = 'active';

-- Raw supplier payloads of every feed, one row per (supplier, supplier stone),
-- waiting to be consolidated; partitioned by supplier (the feed), so a
-- consolidator of one feed reads only its feed's partition.
CREATE TABLE IF NOT EXISTS raw_diamonds (
    id UUID NOT NULL DEFAULT gen_random_uuid(),
    supplier TEXT NOT NULL DEFAULT 'nivoda',
    run_id UUID NOT NULL,
    supplier_stone_id TEXT NOT NULL,
    offer_id TEXT NOT NULL,
    source_updated_at TIMESTAMPTZ,
    payload JSONB NOT NULL,
    payload_hash TEXT NOT NULL,
    consolidated BOOLEAN NOT NULL DEFAULT FALSE,
    consolidated_at TIMESTAMPTZ,
    consolidation_status TEXT NOT NULL DEFAULT 'pending',
    claimed_by TEXT,
    claimed_at TIMESTAMPTZ,
    consolidation_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A partitioned table's keys include the partition key.
    CONSTRAINT raw_diamonds_pkey PRIMARY KEY (id, supplier),
    CONSTRAINT raw_diamonds_supplier_stone_key UNIQUE (supplier, supplier_stone_id),
    CONSTRAINT raw_diamonds_payload_hash_check CHECK (
        payload_hash ~ '^[0-9a-f]{64}$'
    ),
    CONSTRAINT raw_diamonds_consolidation_status_check CHECK (
        consolidation_status IN ('pending', 'processing', 'done', 'failed')
    ),
    -- The legacy flag and the status can never disagree.
    CONSTRAINT raw_diamonds_consolidated_check CHECK (
        consolidated = (consolidation_status = 'done')
    )
) PARTITION BY LIST (supplier);

-- The consolidation queue: claim_unconsolidated_raw_diamonds and
-- get_unconsolidated_raw_diamonds read one feed's pending rows oldest first, and
-- get_unconsolidated_count counts them. Partial: only waiting rows are indexed.
-- Led by supplier, so feeds sharing the default partition each read only theirs.
CREATE INDEX IF NOT EXISTS raw_diamonds_pending_idx
ON raw_diamonds (supplier, created_at, id) WHERE consolidation_status = 'pending';

-- reset_stuck_claims and purge_raw_payloads: a feed's few claimed rows.
CREATE INDEX IF NOT EXISTS raw_diamonds_processing_idx
ON raw_diamonds (supplier, claimed_at) WHERE consolidation_status = 'processing';

-- get_consolidation_progress: a run's raw rows by consolidation status.
CREATE INDEX IF NOT EXISTS raw_diamonds_run_idx
ON raw_diamonds (run_id, consolidation_status);

-- The first feed's partition keeps the seed's table name. Giving another feed
-- a partition of its own is a migration (docs/schema-changes.md).
CREATE TABLE IF NOT EXISTS raw_diamonds_nivoda
PARTITION OF raw_diamonds FOR VALUES IN ('nivoda');

-- Kept (0004) for code of before 0004 still running during a deploy: it writes
-- this partition directly with ON CONFLICT (supplier_stone_id). Within the
-- partition it means the per-feed key; a later migration drops it.
DO $legacy$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'raw_diamonds_nivoda_supplier_stone_id_key'
    ) THEN
        ALTER TABLE raw_diamonds_nivoda
        ADD CONSTRAINT raw_diamonds_nivoda_supplier_stone_id_key UNIQUE (supplier_stone_id);
    END IF;
END
$legacy$;

-- Every feed without a partition of its own.
CREATE TABLE IF NOT EXISTS raw_diamonds_default
PARTITION OF raw_diamonds DEFAULT;

-- Pricing: the first active rule by priority whose criteria match applies.
-- A NULL criterion matches every diamond.
CREATE TABLE IF NOT EXISTS pricing_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    priority INTEGER NOT NULL DEFAULT 100,
    carat_min NUMERIC(6, 2),
    carat_max NUMERIC(6, 2),
    shapes TEXT[],
    lab_grown BOOLEAN,
    supplier TEXT,
    markup_ratio NUMERIC(5, 4) NOT NULL,
    rating INTEGER,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    price_min_cents BIGINT,
    price_max_cents BIGINT,
    fancy BOOLEAN,
    CONSTRAINT pricing_rules_carat_range_check CHECK (carat_min <= carat_max),
    CONSTRAINT pricing_rules_shapes_check CHECK (cardinality(shapes) > 0),
    CONSTRAINT pricing_rules_markup_ratio_check CHECK (markup_ratio > 0),
    CONSTRAINT pricing_rules_rating_check CHECK (rating BETWEEN 1 AND 10),
    CONSTRAINT pricing_rules_price_range_check CHECK (
        price_min_cents >= 0
        AND price_max_cents >= 0
        AND price_min_cents <= price_max_cents
    )
);

-- The platform's default rule, seeded only when this file creates the schema
-- (the ledger is still empty), so an operator's later changes are never undone.
INSERT INTO pricing_rules (priority, markup_ratio, rating)
SELECT
    1000 AS priority,
    1.15 AS markup_ratio,
    5 AS rating
WHERE NOT EXISTS (SELECT 1 FROM schema_migrations);

-- One row per batch run; workers bump the counters atomically.
CREATE TABLE IF NOT EXISTS run_metadata (
    run_id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    run_type TEXT NOT NULL,
    expected_workers INTEGER NOT NULL,
    completed_workers INTEGER NOT NULL DEFAULT 0,
    failed_workers INTEGER NOT NULL DEFAULT 0,
    watermark_before TIMESTAMPTZ,
    watermark_after TIMESTAMPTZ,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    -- The feed the run ingests (0004).
    supplier TEXT NOT NULL DEFAULT 'nivoda',
    cancelled_at TIMESTAMPTZ,
    cancel_reason TEXT,
    consolidation_started_at TIMESTAMPTZ,
    consolidation_finished_at TIMESTAMPTZ,
    consolidation_updated_at TIMESTAMPTZ,
    consolidation_processed BIGINT NOT NULL DEFAULT 0,
    consolidation_errors BIGINT NOT NULL DEFAULT 0,
    CONSTRAINT run_metadata_run_type_check CHECK (run_type IN ('full', 'incremental')),
    CONSTRAINT run_metadata_counters_check CHECK (
        expected_workers >= 0
        AND completed_workers >= 0
        AND failed_workers >= 0
    ),
    CONSTRAINT run_metadata_consolidation_stats_check CHECK (
        consolidation_processed >= 0 AND consolidation_errors >= 0
    )
);

-- list_runs: newest first, keyset-paged by (started_at, run_id).
CREATE INDEX IF NOT EXISTS run_metadata_started_at_idx
ON run_metadata (started_at, run_id);

-- list_runs(supplier=...) and the summary's last completed run per supplier.
CREATE INDEX IF NOT EXISTS run_metadata_supplier_started_at_idx
ON run_metadata (supplier, started_at, run_id);

-- One row per (run, partition): a partition is worked by one worker at a time.
CREATE TABLE IF NOT EXISTS worker_runs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id UUID NOT NULL REFERENCES run_metadata (run_id) ON DELETE CASCADE,
    partition_id TEXT NOT NULL,
    worker_id UUID NOT NULL,
    status TEXT NOT NULL DEFAULT 'running',
    records_processed INTEGER NOT NULL DEFAULT 0,
    error_message TEXT,
    work_item_payload JSONB,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ,
    CONSTRAINT worker_runs_run_partition_key UNIQUE (run_id, partition_id),
    CONSTRAINT worker_runs_status_check CHECK (
        status IN ('running', 'completed', 'failed')
    ),
    CONSTRAINT worker_runs_records_processed_check CHECK (records_processed >= 0)
);

-- Resumable workers: where each partition of a run stands. A worker fetches
-- the page at next_offset, stores it, then advances next_offset by compare-
-- and-set (record_page), so a redelivered page message finds the offset
-- already moved and a crash resumes exactly where the last page ended.
CREATE TABLE IF NOT EXISTS partition_progress (
    run_id UUID NOT NULL REFERENCES run_metadata (run_id) ON DELETE CASCADE,
    partition_id TEXT NOT NULL,
    next_offset BIGINT NOT NULL DEFAULT 0,
    completed BOOLEAN NOT NULL DEFAULT FALSE,
    failed BOOLEAN NOT NULL DEFAULT FALSE,
    attempts BIGINT NOT NULL DEFAULT 1,
    last_error TEXT,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT partition_progress_pkey PRIMARY KEY (run_id, partition_id),
    CONSTRAINT partition_progress_next_offset_check CHECK (next_offset >= 0),
    CONSTRAINT partition_progress_attempts_check CHECK (attempts >= 1),
    CONSTRAINT partition_progress_outcome_check CHECK (NOT (completed AND failed))
);

-- get_stalled_partitions: the partitions still in progress, by last update.
CREATE INDEX IF NOT EXISTS partition_progress_in_progress_idx
ON partition_progress (updated_at) WHERE NOT completed AND NOT failed;

-- The API's cache keys: one version per supplier, bumped when its data set
-- changes as a whole (a consolidation finished, a catalogue job, a purge).
CREATE TABLE IF NOT EXISTS dataset_versions (
    supplier TEXT PRIMARY KEY,
    version BIGINT NOT NULL,  -- noqa: RF04
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT dataset_versions_version_check CHECK (version > 0)
);

-- The services' error log: one row per group of like errors (same service,
-- same message once numbers, ids and quoted values are normalised), counted.
CREATE TABLE IF NOT EXISTS error_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    fingerprint TEXT NOT NULL,
    service TEXT NOT NULL,
    pattern TEXT NOT NULL,
    message TEXT NOT NULL,
    error_type TEXT,
    stack TEXT,
    context JSONB,
    run_id UUID,
    occurrences BIGINT NOT NULL DEFAULT 1,
    first_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT error_log_fingerprint_key UNIQUE (fingerprint),
    CONSTRAINT error_log_fingerprint_check CHECK (fingerprint ~ '^[0-9a-f]{64}$'),
    CONSTRAINT error_log_occurrences_check CHECK (occurrences > 0)
);

-- No index but the fingerprint's: groups are few (like errors are counted,
-- not stored one by one), so list_errors and purge_errors read them all, and
-- counting an occurrence stays a HOT update (last_seen changes every time:
-- an index on it would add an index entry per occurrence, and a burst of
-- 10,000 would make each upsert step over thousands of dead index entries).

-- A run with its worker counts (from its partitions when it has any, else
-- from the run's counters), its rows and its last activity. Every read of a
-- run's progress goes through this view, and its status through run_status.
CREATE OR REPLACE VIEW run_progress AS
SELECT
    r.run_id,
    r.supplier,
    r.run_type,
    r.started_at,
    r.completed_at,
    r.cancelled_at,
    r.cancel_reason,
    r.expected_workers,
    p.partitions,
    CASE WHEN p.partitions > 0 THEN p.completed ELSE r.completed_workers END
        AS workers_completed,
    CASE WHEN p.partitions > 0 THEN p.failed ELSE r.failed_workers END
        AS workers_failed,
    CASE
        WHEN p.partitions > 0 THEN p.pending
        ELSE greatest(r.expected_workers - r.completed_workers - r.failed_workers, 0)
    END AS workers_pending,
    w.worker_runs,
    w.workers_running,
    w.rows_processed,
    w.estimated_rows,
    r.consolidation_started_at,
    r.consolidation_finished_at,
    r.consolidation_processed,
    r.consolidation_errors,
    greatest(
        r.started_at,
        r.completed_at,
        r.cancelled_at,
        r.consolidation_updated_at,
        p.last_update,
        w.last_update
    ) AS last_activity_at
FROM run_metadata AS r
LEFT JOIN LATERAL (
    SELECT
        count(*) AS partitions,
        count(*) FILTER (WHERE pp.completed) AS completed,
        count(*) FILTER (WHERE pp.failed) AS failed,
        count(*) FILTER (WHERE NOT pp.completed AND NOT pp.failed) AS pending,
        max(pp.updated_at) AS last_update
    FROM partition_progress AS pp
    WHERE pp.run_id = r.run_id
) AS p ON TRUE
LEFT JOIN LATERAL (
    SELECT
        count(*) AS worker_runs,
        count(*) FILTER (WHERE wr.status = 'running') AS workers_running,
        coalesce(sum(wr.records_processed), 0) AS rows_processed,
        -- A work item may say how many rows it expects: {"estimated_records": N}.
        sum(
            CASE
                WHEN jsonb_typeof(wr.work_item_payload -> 'estimated_records') = 'number'
                    THEN (wr.work_item_payload ->> 'estimated_records')::NUMERIC
            END
        )::BIGINT AS estimated_rows,
        max(greatest(wr.started_at, wr.updated_at, wr.completed_at)) AS last_update
    FROM worker_runs AS wr
    WHERE wr.run_id = r.run_id
) AS w ON TRUE;

-- A run's status, the one definition (README, "Run status"):
--   cancelled  cancel_run was called;
--   completed / partial / failed  finished: complete_run or finish_consolidation
--     was called, or every worker is done and none completed; then failed
--     when no worker completed, partial when some failed, completed otherwise;
--   stalled    not finished and no activity for stalled_after;
--   running    otherwise.
CREATE OR REPLACE FUNCTION run_status(run run_progress, stalled_after INTERVAL) RETURNS TEXT  -- noqa: CP05
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
    WHEN run.cancelled_at IS NOT NULL THEN 'cancelled'
    WHEN
        run.completed_at IS NOT NULL
        OR run.consolidation_finished_at IS NOT NULL
        OR (run.workers_pending = 0 AND run.workers_completed = 0 AND run.workers_failed > 0)
        THEN CASE
            WHEN run.workers_failed = 0 THEN 'completed'
            WHEN run.workers_completed = 0 THEN 'failed'
            ELSE 'partial'
        END
    WHEN run.last_activity_at < now() - stalled_after THEN 'stalled'
    ELSE 'running'
END;

-- API clients. Only SHA-256 hashes of keys are stored, never a raw key.
CREATE TABLE IF NOT EXISTS api_keys (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash TEXT NOT NULL,
    client_name TEXT NOT NULL,
    permissions TEXT[] NOT NULL DEFAULT '{}',
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_used_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ,
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_key_hash_check CHECK (key_hash ~ '^[0-9a-f]{64}$')
);

-- Audit trail of supplier holds, granted or denied.
CREATE TABLE IF NOT EXISTS hold_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    diamond_id UUID NOT NULL REFERENCES diamonds (id),
    supplier TEXT NOT NULL,
    supplier_hold_id TEXT,
    offer_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    denied BOOLEAN NOT NULL DEFAULT FALSE,
    hold_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT hold_history_status_check CHECK (
        status IN ('active', 'expired', 'released')
    )
);

-- get_hold_history_by_diamond_id: newest first.
CREATE INDEX IF NOT EXISTS hold_history_diamond_created_idx
ON hold_history (diamond_id, created_at DESC);

-- Audit trail of purchases; the idempotency key makes a retried purchase safe.
CREATE TABLE IF NOT EXISTS purchase_history (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    diamond_id UUID NOT NULL REFERENCES diamonds (id),
    supplier TEXT NOT NULL,
    supplier_order_id TEXT,
    offer_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    reference TEXT,  -- noqa: RF04
    comments TEXT,  -- noqa: RF04
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The checkout (0002): NULL for purchases made by create_purchase_history.
    order_number TEXT,
    payment_status TEXT,
    order_status TEXT,
    checkout_session_id TEXT,
    payment_intent_id TEXT,
    amount_cents BIGINT,
    currency TEXT,
    order_error TEXT,
    paid_at TIMESTAMPTZ,
    expired_at TIMESTAMPTZ,
    CONSTRAINT purchase_history_idempotency_key_key UNIQUE (idempotency_key),
    CONSTRAINT purchase_history_status_values_check CHECK (
        status IN (
            'pending', 'confirmed', 'failed', 'pending_payment', 'paid', 'expired'
        )
    ),
    CONSTRAINT purchase_history_payment_status_check CHECK (
        payment_status IN ('pending', 'paid', 'expired')
    ),
    CONSTRAINT purchase_history_order_status_check CHECK (
        order_status IN ('not_attempted', 'pending', 'placed', 'failed', 'conflict')
    ),
    CONSTRAINT purchase_history_amount_cents_check CHECK (amount_cents > 0),
    CONSTRAINT purchase_history_currency_check CHECK (currency ~ '^[A-Z]{3}$'),
    -- A checkout order (one with an order number) has every checkout field.
    CONSTRAINT purchase_history_checkout_check CHECK (
        order_number IS NULL
        OR (
            payment_status IS NOT NULL
            AND order_status IS NOT NULL
            AND amount_cents IS NOT NULL
            AND currency IS NOT NULL
        )
    )
);

-- Foreign keys are not indexed by PostgreSQL itself.
CREATE INDEX IF NOT EXISTS purchase_history_diamond_idx
ON purchase_history (diamond_id);

-- Order numbers and checkout sessions are unique (NULL for plain purchases).
CREATE UNIQUE INDEX IF NOT EXISTS purchase_history_order_number_key
ON purchase_history (order_number);

CREATE UNIQUE INDEX IF NOT EXISTS purchase_history_checkout_session_key
ON purchase_history (checkout_session_id);

-- list_orders: newest first, keyset-paged by (created_at, id).
CREATE INDEX IF NOT EXISTS purchase_history_created_idx
ON purchase_history (created_at, id);

-- list_holds: newest first, keyset-paged by (created_at, id).
CREATE INDEX IF NOT EXISTS hold_history_created_idx
ON hold_history (created_at, id);

-- get_orders_needing_attention: paid orders only (a transient state: a paid
-- order becomes confirmed once its supplier order is placed), so it stays small.
CREATE INDEX IF NOT EXISTS purchase_history_paid_idx
ON purchase_history (created_at, id) WHERE status = 'paid';

-- Order numbers: the last number given out each UTC day. create_checkout bumps
-- its day's row (INSERT ... ON CONFLICT DO UPDATE), so two checkouts never
-- get the same number; a rolled-back checkout leaves a gap.
CREATE TABLE IF NOT EXISTS order_number_counters (
    order_day DATE PRIMARY KEY,
    last_value BIGINT NOT NULL,
    CONSTRAINT order_number_counters_last_value_check CHECK (last_value > 0)
);

-- Exchange rates, with history: one rate per (base, target, day).
CREATE TABLE IF NOT EXISTS exchange_rates (
    base_currency TEXT NOT NULL,
    target_currency TEXT NOT NULL,
    rate_date DATE NOT NULL,
    rate NUMERIC(20, 10) NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT exchange_rates_pkey PRIMARY KEY (base_currency, target_currency, rate_date),
    CONSTRAINT exchange_rates_rate_check CHECK (rate > 0),
    CONSTRAINT exchange_rates_currencies_check CHECK (
        base_currency ~ '^[A-Z]{3}$'
        AND target_currency ~ '^[A-Z]{3}$'
        AND base_currency <> target_currency
    )
);

-- Rating rules: the first active rule by priority, then id, whose criteria all
-- match gives a diamond its rating. A NULL criterion matches every diamond; a
-- NULL diamond value never matches a non-NULL range. List criteria are stored
-- upper-cased and compared with the diamond's value upper-cased
-- (case-insensitive equality).
CREATE TABLE IF NOT EXISTS rating_rules (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    priority INTEGER NOT NULL DEFAULT 100,
    rating INTEGER NOT NULL,
    supplier TEXT,
    shapes TEXT[],
    colors TEXT[],
    clarities TEXT[],
    cuts TEXT[],
    polishes TEXT[],
    symmetries TEXT[],
    fluorescences TEXT[],
    certificate_labs TEXT[],
    girdles TEXT[],
    culet_sizes TEXT[],
    lab_grown BOOLEAN,
    carat_min NUMERIC(6, 2),
    carat_max NUMERIC(6, 2),
    price_min_cents BIGINT,
    price_max_cents BIGINT,
    table_pct_min NUMERIC,
    table_pct_max NUMERIC,
    depth_pct_min NUMERIC,
    depth_pct_max NUMERIC,
    crown_angle_min NUMERIC,
    crown_angle_max NUMERIC,
    crown_height_min NUMERIC,
    crown_height_max NUMERIC,
    pavilion_angle_min NUMERIC,
    pavilion_angle_max NUMERIC,
    pavilion_depth_min NUMERIC,
    pavilion_depth_max NUMERIC,
    ratio_min NUMERIC,
    ratio_max NUMERIC,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT rating_rules_rating_check CHECK (rating BETWEEN 1 AND 10),
    CONSTRAINT rating_rules_lists_check CHECK (
        cardinality(shapes) > 0
        AND cardinality(colors) > 0
        AND cardinality(clarities) > 0
        AND cardinality(cuts) > 0
        AND cardinality(polishes) > 0
        AND cardinality(symmetries) > 0
        AND cardinality(fluorescences) > 0
        AND cardinality(certificate_labs) > 0
        AND cardinality(girdles) > 0
        AND cardinality(culet_sizes) > 0
    ),
    CONSTRAINT rating_rules_ranges_check CHECK (
        carat_min <= carat_max
        AND price_min_cents <= price_max_cents
        AND table_pct_min <= table_pct_max
        AND depth_pct_min <= depth_pct_max
        AND crown_angle_min <= crown_angle_max
        AND crown_height_min <= crown_height_max
        AND pavilion_angle_min <= pavilion_angle_max
        AND pavilion_depth_min <= pavilion_depth_max
        AND ratio_min <= ratio_max
    )
);

-- Catalogue jobs: one table for both kinds. Every status change is a
-- compare-and-set; the lease (holder, expiry) lets one worker at a time work a
-- job and the next one take over when it expires. `phase` says what the job
-- does when worked: 'run' (re-price or re-rate) or 'revert', so a failed revert
-- retried resumes as a revert. `checkpoint` is the last diamond id done in the
-- current phase; `suppliers` the suppliers whose diamonds the job changed.
CREATE TABLE IF NOT EXISTS catalogue_jobs (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    kind TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    phase TEXT NOT NULL DEFAULT 'run',
    filters JSONB,
    reason TEXT NOT NULL,
    triggered_by_rule_id UUID,
    total BIGINT,
    processed BIGINT NOT NULL DEFAULT 0,
    changed BIGINT NOT NULL DEFAULT 0,
    restored BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    retry_count INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    checkpoint UUID,  -- noqa: RF04
    suppliers TEXT[] NOT NULL DEFAULT '{}',
    lease_holder TEXT,
    lease_expires_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    reverted_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT catalogue_jobs_kind_check CHECK (kind IN ('pricing', 'rating')),
    CONSTRAINT catalogue_jobs_status_check CHECK (
        status IN (
            'pending', 'running', 'cancelling', 'cancelled', 'completed', 'failed',
            'reverting', 'reverted'
        )
    ),
    CONSTRAINT catalogue_jobs_phase_check CHECK (phase IN ('run', 'revert')),
    CONSTRAINT catalogue_jobs_counts_check CHECK (
        processed >= 0 AND changed >= 0 AND restored >= 0 AND skipped >= 0
        AND retry_count >= 0
    )
);

-- At most one active job per kind, decided by the database: a second
-- start_catalogue_job (or a revert or retry while another job of the kind is
-- active) violates it (JobConflict).
CREATE UNIQUE INDEX IF NOT EXISTS catalogue_jobs_one_active_key
ON catalogue_jobs (kind)
WHERE status IN ('pending', 'running', 'cancelling', 'reverting');

-- list_catalogue_jobs: newest first.
CREATE INDEX IF NOT EXISTS catalogue_jobs_created_idx
ON catalogue_jobs (created_at, id);

-- One row per diamond a job changed: the values before and after. The first
-- snapshot of a diamond in a job wins (INSERT ... ON CONFLICT DO NOTHING). No
-- foreign key to diamonds (never hard-deleted): each would cost a lookup per
-- changed row. Columns a job's kind does not compute stay NULL.
CREATE TABLE IF NOT EXISTS catalogue_job_snapshots (
    job_id UUID NOT NULL REFERENCES catalogue_jobs (id) ON DELETE CASCADE,
    diamond_id UUID NOT NULL,
    old_markup_ratio NUMERIC(5, 4),
    new_markup_ratio NUMERIC(5, 4),
    old_retail_price_cents BIGINT,
    new_retail_price_cents BIGINT,
    old_pricing_rating INTEGER,
    new_pricing_rating INTEGER,
    old_rating INTEGER,
    new_rating INTEGER,
    CONSTRAINT catalogue_job_snapshots_pkey PRIMARY KEY (job_id, diamond_id)
);

-- retail_price_cents = supplier price x markup, rounded half to even (as
-- Python's Decimal rounds); NULL without a markup.
CREATE OR REPLACE FUNCTION diamond_retail_cents(price_cents BIGINT, markup NUMERIC)
RETURNS BIGINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN
        price_cents * markup - floor(price_cents * markup) = 0.5
        AND floor(price_cents * markup) % 2 = 0
        THEN floor(price_cents * markup)
    ELSE round(price_cents * markup)
END::BIGINT;

-- The pricing rule of a diamond: the first active rule, by priority then id,
-- whose every criterion is NULL or matches (ranges inclusive). A set-returning
-- SQL function, so the planner inlines it as a LATERAL subquery.
CREATE OR REPLACE FUNCTION pricing_rule_for(
    p_carats NUMERIC,
    p_shape TEXT,
    p_lab_grown BOOLEAN,
    p_supplier TEXT,
    p_supplier_price_cents BIGINT,
    p_fancy BOOLEAN
)
RETURNS SETOF pricing_rules  -- noqa: CP05
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT r.*
FROM pricing_rules AS r
WHERE
    r.active
    AND (r.carat_min IS NULL OR r.carat_min <= p_carats)
    AND (r.carat_max IS NULL OR r.carat_max >= p_carats)
    AND (r.shapes IS NULL OR p_shape = any(r.shapes))
    AND (r.lab_grown IS NULL OR r.lab_grown = p_lab_grown)
    AND (r.supplier IS NULL OR r.supplier = p_supplier)
    AND (r.price_min_cents IS NULL OR r.price_min_cents <= p_supplier_price_cents)
    AND (r.price_max_cents IS NULL OR r.price_max_cents >= p_supplier_price_cents)
    AND (r.fancy IS NULL OR r.fancy = p_fancy)
ORDER BY r.priority ASC, r.id ASC
LIMIT 1
$$;

-- The rating rule of a diamond, matched like pricing_rule_for; list criteria
-- compare upper-cased (the lists are stored upper-cased).
CREATE OR REPLACE FUNCTION rating_rule_for(
    p_supplier TEXT,
    p_shape TEXT,
    p_color TEXT,
    p_clarity TEXT,
    p_cut TEXT,
    p_polish TEXT,
    p_symmetry TEXT,
    p_fluorescence TEXT,
    p_certificate_lab TEXT,
    p_girdle TEXT,
    p_culet_size TEXT,
    p_lab_grown BOOLEAN,
    p_carats NUMERIC,
    p_supplier_price_cents BIGINT,
    p_table_pct NUMERIC,
    p_depth_pct NUMERIC,
    p_crown_angle NUMERIC,
    p_crown_height NUMERIC,
    p_pavilion_angle NUMERIC,
    p_pavilion_depth NUMERIC,
    p_ratio NUMERIC
)
RETURNS SETOF rating_rules  -- noqa: CP05
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT r.*
FROM rating_rules AS r
WHERE
    r.active
    AND (r.supplier IS NULL OR r.supplier = p_supplier)
    AND (r.shapes IS NULL OR upper(p_shape) = any(r.shapes))
    AND (r.colors IS NULL OR upper(p_color) = any(r.colors))
    AND (r.clarities IS NULL OR upper(p_clarity) = any(r.clarities))
    AND (r.cuts IS NULL OR upper(p_cut) = any(r.cuts))
    AND (r.polishes IS NULL OR upper(p_polish) = any(r.polishes))
    AND (r.symmetries IS NULL OR upper(p_symmetry) = any(r.symmetries))
    AND (r.fluorescences IS NULL OR upper(p_fluorescence) = any(r.fluorescences))
    AND (r.certificate_labs IS NULL OR upper(p_certificate_lab) = any(r.certificate_labs))
    AND (r.girdles IS NULL OR upper(p_girdle) = any(r.girdles))
    AND (r.culet_sizes IS NULL OR upper(p_culet_size) = any(r.culet_sizes))
    AND (r.lab_grown IS NULL OR r.lab_grown = p_lab_grown)
    AND (r.carat_min IS NULL OR r.carat_min <= p_carats)
    AND (r.carat_max IS NULL OR r.carat_max >= p_carats)
    AND (r.price_min_cents IS NULL OR r.price_min_cents <= p_supplier_price_cents)
    AND (r.price_max_cents IS NULL OR r.price_max_cents >= p_supplier_price_cents)
    AND (r.table_pct_min IS NULL OR r.table_pct_min <= p_table_pct)
    AND (r.table_pct_max IS NULL OR r.table_pct_max >= p_table_pct)
    AND (r.depth_pct_min IS NULL OR r.depth_pct_min <= p_depth_pct)
    AND (r.depth_pct_max IS NULL OR r.depth_pct_max >= p_depth_pct)
    AND (r.crown_angle_min IS NULL OR r.crown_angle_min <= p_crown_angle)
    AND (r.crown_angle_max IS NULL OR r.crown_angle_max >= p_crown_angle)
    AND (r.crown_height_min IS NULL OR r.crown_height_min <= p_crown_height)
    AND (r.crown_height_max IS NULL OR r.crown_height_max >= p_crown_height)
    AND (r.pavilion_angle_min IS NULL OR r.pavilion_angle_min <= p_pavilion_angle)
    AND (r.pavilion_angle_max IS NULL OR r.pavilion_angle_max >= p_pavilion_angle)
    AND (r.pavilion_depth_min IS NULL OR r.pavilion_depth_min <= p_pavilion_depth)
    AND (r.pavilion_depth_max IS NULL OR r.pavilion_depth_max >= p_pavilion_depth)
    AND (r.ratio_min IS NULL OR r.ratio_min <= p_ratio)
    AND (r.ratio_max IS NULL OR r.ratio_max >= p_ratio)
ORDER BY r.priority ASC, r.id ASC
LIMIT 1
$$;

-- What a catalogue job writes to a diamond: (markup_ratio, retail_price_cents,
-- pricing_rating, rating) from the active rules. With `pricing` all four are
-- computed; without (a rating job) only rating, falling back to the diamond's
-- pricing_rating, and the others stay as they are.
CREATE OR REPLACE FUNCTION diamond_rule_values(d diamonds, pricing BOOLEAN)  -- noqa: CP05
RETURNS TABLE (
    markup_ratio NUMERIC,
    retail_price_cents BIGINT,
    pricing_rating INTEGER,
    rating INTEGER
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
SELECT
    CASE WHEN pricing THEN pr.markup_ratio ELSE d.markup_ratio END,
    CASE
        WHEN pricing THEN diamond_retail_cents(d.supplier_price_cents, pr.markup_ratio)
        ELSE d.retail_price_cents
    END,
    CASE WHEN pricing THEN pr.rating ELSE d.pricing_rating END,
    coalesce(rr.rating, CASE WHEN pricing THEN pr.rating ELSE d.pricing_rating END)
FROM (SELECT pricing) AS job (pricing)
LEFT JOIN LATERAL pricing_rule_for(
    d.carats,
    d.shape,
    d.lab_grown,
    d.supplier,
    d.supplier_price_cents,
    d.fancy_color IS NOT NULL
) AS pr ON job.pricing
LEFT JOIN LATERAL rating_rule_for(
    d.supplier, d.shape, d.color, d.clarity, d.cut, d.polish, d.symmetry,
    d.fluorescence, d.certificate_lab, d.girdle, d.culet_size, d.lab_grown,
    d.carats, d.supplier_price_cents, d.table_pct, d.depth_pct, d.crown_angle,
    d.crown_height, d.pavilion_angle, d.pavilion_depth, d.ratio
) AS rr ON TRUE
$$;

-- Every migration this file contains, as `diamond-db migrate` records it.
INSERT INTO schema_migrations (version, name, checksum, duration_ms, applied_with)
VALUES
(
    '0001',
    'initial_schema',
    'b1696a8278e469b0f729fbaf5e6613c42ee0055b1ff6ac6066d02df66338bc06',
    0,
    'sql/bootstrap.sql'
),
(
    '0002',
    'checkout',
    'a9a8d98519d08fe4b433a83bf711666c079903cfaca0f1bb54731c42b7c033a1',
    0,
    'sql/bootstrap.sql'
),
(
    '0003',
    'checkout_indexes',
    '3cee0657b0ba7c5e6949a085b3b8aa717e1ce2d6f42bab43d52e1d981f545131',
    0,
    'sql/bootstrap.sql'
),
(
    '0004',
    'raw_diamonds_by_supplier',
    '51415c1aa36eda6d86dd452771a10a995bd89a4439412f20e1e5d8664a17e897',
    0,
    'sql/bootstrap.sql'
),
(
    '0005',
    'grading_columns',
    '34395894d62e9d33e852aa9b028c4c389b692873be7dfbb9928cecdad3c6da23',
    0,
    'sql/bootstrap.sql'
),
(
    '0006',
    'grading_backfill',
    '8e7c858a6c52cdd17971ef672edc6fd81b65d4d29f2b9df30bf51f6b0b175edd',
    0,
    'sql/bootstrap.sql'
),
(
    '0007',
    'search_indexes',
    '5f0c2e380552c00b3777a678f89876579451c9a5443caabfd0fbd1f1d801c354',
    0,
    'sql/bootstrap.sql'
),
(
    '0008',
    'catalogue_indexes',
    '7e6233940ff6d8a1c279bf5aed6ef58311e46cbf9da59a98a904cfbe2fb0f836',
    0,
    'sql/bootstrap.sql'
),
(
    '0009',
    'pipeline_operations',
    'a02a3cc7ed9e606f41d4bd489a84cca95dc7526a08a14f8f8e8a604d74fcd5b9',
    0,
    'sql/bootstrap.sql'
),
(
    '0010',
    'pipeline_indexes',
    '473827a2ae156dfa1c641c99c9ea96e229f45a579c342e0f3759900ededc7016',
    0,
    'sql/bootstrap.sql'
),
(
    '0011',
    'catalogue_jobs',
    'd869f1568cb215f273e3cc17c92b2080d0bbc299a3e85d6ecad93407eb63eeb8',
    0,
    'sql/bootstrap.sql'
),
(
    '0012',
    'pricing_rating_backfill',
    '0a8049b44ffc8a7a098babcdc6b4440f5fa839636d0c80694831f2163770ba18',
    0,
    'sql/bootstrap.sql'
)
ON CONFLICT (version) DO NOTHING;

COMMIT;
