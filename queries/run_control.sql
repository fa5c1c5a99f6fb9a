-- Run control: cancelling and deleting runs, worker progress, consolidation reports.
--
-- Statements that change several tables lock them in one order: partitions,
-- then worker runs, then the run (as queries/partition_progress.sql does), so
-- a cancel and the workers it races never deadlock.

-- name: cancel_partitions(run_id, reason)!
-- cancel_run, step 1: fail every partition of the run that is neither
-- completed nor failed, keeping the reason. A worker's offset advance on such
-- a partition is refused from then on (record_page, advance_partition).
-- role: writer
UPDATE partition_progress
SET
    failed = TRUE,
    last_error = :reason,
    updated_at = now()
WHERE
    run_id = :run_id
    AND NOT completed
    AND NOT failed;

-- name: cancel_worker_runs(run_id, reason)!
-- cancel_run, step 2: fail the run's running worker runs with the reason as
-- their error message.
-- role: writer
UPDATE worker_runs
SET
    status = 'failed',
    error_message = :reason,
    completed_at = now(),
    updated_at = now()
WHERE
    run_id = :run_id
    AND status = 'running';

-- name: cancel_run_row(run_id, reason)^
-- cancel_run, step 3: mark the run cancelled and finished (both kept if set:
-- a repeated cancel changes nothing). A run that had already finished
-- (completed_at set) is not marked cancelled. Returns the run's cancelled_at
-- (NULL when not cancelled); no row for an unknown run.
-- role: writer
UPDATE run_metadata
SET
    cancelled_at = coalesce(
        cancelled_at, CASE WHEN completed_at IS NULL THEN now() END
    ),
    cancel_reason = coalesce(
        cancel_reason, CASE WHEN completed_at IS NULL THEN :reason END
    ),
    completed_at = coalesce(completed_at, now())
WHERE run_id = :run_id
RETURNING cancelled_at;

-- name: delete_run(run_id, stalled_after)^
-- Delete a finished run (status completed, partial, failed or cancelled, as
-- run_status says within this statement) with its partitions and worker runs
-- (their foreign keys cascade). Raw payloads the run wrote stay. Returns the
-- run's status and whether it was deleted; no row for an unknown run.
-- role: writer
WITH target AS (
    SELECT
        p.run_id,
        run_status(p, :stalled_after) AS status
    FROM run_progress AS p
    WHERE p.run_id = :run_id
),

deleted AS (
    DELETE FROM run_metadata AS r
    USING target
    WHERE
        r.run_id = target.run_id
        AND target.status IN ('completed', 'partial', 'failed', 'cancelled')
    RETURNING r.run_id
)

SELECT
    target.status,
    (SELECT count(*) FROM deleted) > 0 AS deleted
FROM target;

-- name: update_worker_progress(worker_run_id, row_count)$
-- Add :row_count to a running worker run's records_processed, atomically (the
-- row lock serialises concurrent reports). Returns TRUE when it did, no row
-- when the worker run is unknown or no longer running (cancelled).
-- role: writer
UPDATE worker_runs
SET
    records_processed = records_processed + :row_count,
    updated_at = now()
WHERE
    id = :worker_run_id
    AND status = 'running'
RETURNING TRUE AS updated;

-- name: mark_consolidation_started(run_id)$
-- Record that the run's consolidation started (compare-and-set: the first
-- call only). Returns TRUE for that call, no row otherwise.
-- role: writer
UPDATE run_metadata
SET
    consolidation_started_at = now(),
    consolidation_updated_at = now()
WHERE
    run_id = :run_id
    AND consolidation_started_at IS NULL
RETURNING TRUE AS started;

-- name: add_consolidation_stats(run_id, processed, errors)^
-- Add a consolidator's counts to the run's (additive: concurrent consolidators
-- add up, the row lock serialises them, nobody overwrites another's).
-- role: writer
-- record: RunMetadata
UPDATE run_metadata
SET
    consolidation_processed = consolidation_processed + :processed,
    consolidation_errors = consolidation_errors + :errors,
    consolidation_updated_at = now()
WHERE run_id = :run_id
RETURNING *;

-- name: finish_consolidation(run_id)^
-- Record the end of the run's consolidation (compare-and-set: the first call
-- only) and return the run; finish_consolidation bumps the supplier's dataset
-- version in the same transaction. No row when already finished or unknown.
-- role: writer
-- record: RunMetadata
UPDATE run_metadata
SET
    consolidation_finished_at = now(),
    consolidation_updated_at = now()
WHERE
    run_id = :run_id
    AND consolidation_finished_at IS NULL
RETURNING *;
