-- 0010 pipeline indexes: the reads of the operations dashboard (0009).
--
-- What: diamonds_live_supplier_availability_idx, (supplier, availability) of
-- live diamonds, which get_dashboard_summary counts with an index-only scan;
-- run_metadata_started_at_idx and run_metadata_supplier_started_at_idx, the
-- newest-first keyset order of list_runs (and per supplier);
-- raw_diamonds_run_idx, (run_id, consolidation_status) of raw payloads, for
-- get_consolidation_progress: created ON ONLY the partitioned table, built
-- CONCURRENTLY on each of its two partitions (raw_diamonds_nivoda,
-- raw_diamonds_default, from 0004) and attached, which makes it valid.
-- Why: issue 14 (the summary within 2x of a COUNT(*) of live diamonds, the
-- runs list page within 1x).
-- Write cost: the diamonds index adds one small entry per written row version,
-- and an availability change (a hold, a sale) is no longer a HOT update.
-- Measured on 100,000 diamonds (2-core machine shared with other jobs,
-- PostgreSQL 15), upsert_diamonds of batches of 1,000 new diamonds, median of
-- 9 batches, two alternating measurements each: without the index 681 and
-- 945 rows/s, with it 653 and 767 rows/s (4-19% slower; the load of the
-- machine made the spread wide).
-- Locks: every build is CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and writes
-- go on); CREATE INDEX ON ONLY is catalog only, and ATTACH PARTITION of an
-- index takes SHARE UPDATE EXCLUSIVE on the parent index's table briefly.
-- Measured on 100,000 diamonds: the diamonds build took 1.6 s (reads and
-- writes went on); on empty raw and run tables the whole file took 0.7 s.
-- Transaction: none (CREATE INDEX CONCURRENTLY); every statement re-runnable
-- (IF NOT EXISTS; ATTACH in a DO block that checks the catalog first). A
-- partition of raw_diamonds added by hand before this migration would keep
-- raw_diamonds_run_idx invalid: the runner then names it; build and attach
-- that partition's index the same way.
-- transaction: none
-- squawk-disable-assume-in-transaction
--

-- get_dashboard_summary: live diamonds by supplier and availability.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds 60000
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_live_supplier_availability_idx
ON diamonds (supplier, availability) WHERE status = 'active';

-- list_runs: newest first, keyset-paged by (started_at, run_id).
-- locks: SHARE UPDATE EXCLUSIVE on run_metadata (reads and writes go on).
-- cost: run_metadata 400000
CREATE INDEX CONCURRENTLY IF NOT EXISTS run_metadata_started_at_idx
ON run_metadata (started_at, run_id);

-- list_runs(supplier=...) and the summary's last completed run per supplier.
-- locks: SHARE UPDATE EXCLUSIVE on run_metadata (reads and writes go on).
-- cost: run_metadata 400000
CREATE INDEX CONCURRENTLY IF NOT EXISTS run_metadata_supplier_started_at_idx
ON run_metadata (supplier, started_at, run_id);

-- get_consolidation_progress: the parent index, invalid until both partitions'
-- indexes are attached below; partitions created later get theirs with it.
-- locks: SHARE on raw_diamonds only (catalog only, no build: ON ONLY).
-- cost: none
-- (ON ONLY builds nothing and cannot be CONCURRENTLY; the builds below are.)
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS raw_diamonds_run_idx
ON ONLY raw_diamonds (run_id, consolidation_status);

-- locks: SHARE UPDATE EXCLUSIVE on raw_diamonds_nivoda (reads and writes go on).
-- cost: raw_diamonds_nivoda 60000
CREATE INDEX CONCURRENTLY IF NOT EXISTS raw_diamonds_nivoda_run_id_consolidation_status_idx
ON raw_diamonds_nivoda (run_id, consolidation_status);

-- locks: SHARE UPDATE EXCLUSIVE on raw_diamonds_default (reads and writes go on).
-- cost: raw_diamonds_default 60000
CREATE INDEX CONCURRENTLY IF NOT EXISTS raw_diamonds_default_run_id_consolidation_status_idx
ON raw_diamonds_default (run_id, consolidation_status);

-- Attach both (each once: a re-run skips an attached one).
-- locks: SHARE UPDATE EXCLUSIVE on raw_diamonds, briefly (catalog only).
-- cost: none
DO $attach$
DECLARE
    partition_index TEXT;
BEGIN
    FOREACH partition_index IN ARRAY ARRAY[
        'raw_diamonds_nivoda_run_id_consolidation_status_idx',
        'raw_diamonds_default_run_id_consolidation_status_idx'
    ] LOOP
        IF NOT EXISTS (
            SELECT 1
            FROM pg_inherits
            WHERE
                inhrelid = to_regclass(partition_index)
                AND inhparent = 'raw_diamonds_run_idx'::REGCLASS
        ) THEN
            EXECUTE format(
                'ALTER INDEX raw_diamonds_run_idx ATTACH PARTITION %I', partition_index
            );
        END IF;
    END LOOP;
END
$attach$;
