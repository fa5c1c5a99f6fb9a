-- Worker runs: one worker's attempt at one partition of a run.
-- The UNIQUE (run_id, partition_id) constraint lets one worker at a time own a
-- partition; a failed attempt is deleted (reset) before the partition is retried.

-- name: create_worker_run(run_id, partition_id, worker_id, work_item_payload)^
-- Record a worker starting on a partition (status running). A second worker for the
-- same (run_id, partition_id) fails with the unique violation (SQLSTATE 23505).
-- role: writer
-- record: WorkerRun
INSERT INTO worker_runs (run_id, partition_id, worker_id, work_item_payload)
VALUES (:run_id, :partition_id, :worker_id, :work_item_payload)
RETURNING *;

-- name: update_worker_run(id, status, records_processed, error_message)^
-- Record a worker's progress or outcome; completed_at is set once it has finished
-- (completed or failed) and cleared while it runs.
-- role: writer
-- record: WorkerRun
UPDATE worker_runs
SET
    status = :status,
    records_processed = :records_processed,
    error_message = :error_message,
    completed_at = CASE WHEN :status = 'running' THEN NULL ELSE now() END,
    updated_at = now()
WHERE id = :id
RETURNING *;

-- name: get_worker_runs_by_run_id(run_id)
-- Every worker run of a run, by partition (worker_runs_run_partition_key).
-- role: reader
-- record: WorkerRun
SELECT *
FROM worker_runs
WHERE run_id = :run_id
ORDER BY partition_id ASC;

-- name: get_failed_worker_runs(run_id)
-- The failed worker runs of a run, by partition, each with the work_item_payload
-- it was started with, so the partition can be retried.
-- role: reader
-- record: WorkerRun
SELECT *
FROM worker_runs
WHERE run_id = :run_id AND status = 'failed'
ORDER BY partition_id ASC;

-- name: reset_failed_workers(run_id, partition_id)$
-- Delete a run's failed worker runs (with :partition_id, only that partition's) and
-- take them off the run's failed_workers, in one statement, so one transaction: the
-- counter never disagrees with the rows, even if the process dies meanwhile. The
-- counter is kept >= 0 should a failed row never have been counted. Returns the
-- number of rows deleted; no row when none was (nor is the run then rewritten).
-- role: writer
WITH deleted AS (
    DELETE FROM worker_runs
    WHERE
        run_id = :run_id
        AND status = 'failed'
        AND (:partition_id::TEXT IS NULL OR partition_id = :partition_id)
    RETURNING id
)

UPDATE run_metadata
SET failed_workers = greatest(failed_workers - (SELECT count(*) FROM deleted), 0)
WHERE run_id = :run_id AND EXISTS (SELECT 1 FROM deleted)
RETURNING (SELECT count(*) FROM deleted) AS deleted;
