-- 0009 pipeline operations: resumable partitions, run control, dataset
-- versions, the error log and the run status definition.
--
-- What: creates partition_progress (one row per partition of a run: the next
-- offset to fetch, completed / failed, attempts), dataset_versions (one cache
-- version per supplier) and error_log (error groups by fingerprint, with
-- their first/last occurrence and count); adds to run_metadata the
-- cancellation (cancelled_at, cancel_reason) and consolidation columns
-- (consolidation_started_at, consolidation_finished_at,
-- consolidation_updated_at, consolidation_processed, consolidation_errors)
-- and to worker_runs updated_at; creates the view run_progress (a run with
-- its worker counts, rows and last activity) and the function
-- run_status(run_progress, interval), the one definition of a run's status.
-- Why: issue 14 (pipeline operations), every operation one statement or one
-- transaction, the status defined once for display and filters.
-- Locks: ADD COLUMN (nullable, or a constant default: catalog only, no
-- rewrite, no scan) and ADD CONSTRAINT ... NOT VALID take ACCESS EXCLUSIVE on
-- run_metadata and worker_runs; the foreign key of partition_progress takes
-- SHARE ROW EXCLUSIVE on run_metadata; the ALTERs come after the new tables,
-- so the exclusive locks are held only from them to commit. Measured on 1,000
-- runs and 24,000 worker runs (2-core machine shared with other jobs,
-- PostgreSQL 15): 0.75 s for the whole migration through the runner,
-- validating the NOT VALID check included; only ingestion workers and the
-- dashboard touch these tables, never the API's searches. diamonds is not
-- touched (its index is in 0010).
-- Transaction: runs inside one transaction (all or nothing).
--

-- Resumable workers: where each partition of a run stands. A worker fetches
-- the page at next_offset, stores it, then advances next_offset by compare-
-- and-set (record_page), so a redelivered page message finds the offset
-- already moved and a crash resumes exactly where the last page ended.
CREATE TABLE partition_progress (
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
CREATE INDEX partition_progress_in_progress_idx
ON partition_progress (updated_at) WHERE NOT completed AND NOT failed;

-- The API's cache keys: one version per supplier, bumped when its data set
-- changes as a whole (a consolidation finished, a catalogue job, a purge).
CREATE TABLE dataset_versions (
    supplier TEXT PRIMARY KEY,
    version BIGINT NOT NULL,  -- noqa: RF04
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT dataset_versions_version_check CHECK (version > 0)
);

-- The services' error log: one row per group of like errors (same service,
-- same message once numbers, ids and quoted values are normalised), counted.
CREATE TABLE error_log (
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

-- Run control: a cancelled run keeps when and why; consolidators report
-- their start, additive statistics and end.
ALTER TABLE run_metadata
ADD COLUMN cancelled_at TIMESTAMPTZ,
ADD COLUMN cancel_reason TEXT,
ADD COLUMN consolidation_started_at TIMESTAMPTZ,
ADD COLUMN consolidation_finished_at TIMESTAMPTZ,
ADD COLUMN consolidation_updated_at TIMESTAMPTZ,
ADD COLUMN consolidation_processed BIGINT NOT NULL DEFAULT 0,
ADD COLUMN consolidation_errors BIGINT NOT NULL DEFAULT 0;

ALTER TABLE run_metadata
ADD CONSTRAINT run_metadata_consolidation_stats_check CHECK (
    consolidation_processed >= 0 AND consolidation_errors >= 0
) NOT VALID;

-- A worker run's last progress (NULL until it reports any): its activity.
ALTER TABLE worker_runs
ADD COLUMN updated_at TIMESTAMPTZ;

-- A run with its worker counts (from its partitions when it has any, else
-- from the run's counters), its rows and its last activity. Every read of a
-- run's progress goes through this view, and its status through run_status.
CREATE VIEW run_progress AS
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
CREATE FUNCTION run_status(run run_progress, stalled_after INTERVAL) RETURNS TEXT  -- noqa: CP05
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
