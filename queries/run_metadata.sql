-- Batch runs: one row per ingestion run, with the workers' atomic counters.

-- name: create_run_metadata(run_type, expected_workers, watermark_before, supplier)^
-- Start a run of one feed (supplier) that expects a number of workers to report.
-- role: writer
-- record: RunMetadata
INSERT INTO run_metadata (run_type, expected_workers, watermark_before, supplier)
VALUES (:run_type, :expected_workers, :watermark_before, :supplier)
RETURNING *;

-- name: get_run_metadata(run_id)^
-- Fetch one run by id.
-- role: reader
-- record: RunMetadata
SELECT *
FROM run_metadata
WHERE run_id = :run_id;

-- name: increment_completed_workers(run_id)^
-- Count one more worker as completed, atomically (the row lock serialises callers),
-- and return the counters as they are right after this increment, so exactly one
-- caller sees completed + failed reach expected: the last worker.
-- role: writer
-- record: WorkerCounters
UPDATE run_metadata
SET completed_workers = completed_workers + 1
WHERE run_id = :run_id
RETURNING completed_workers, expected_workers, failed_workers;

-- name: increment_failed_workers(run_id)^
-- Count one more worker as failed, atomically; returns the counters right after.
-- role: writer
-- record: WorkerCounters
UPDATE run_metadata
SET failed_workers = failed_workers + 1
WHERE run_id = :run_id
RETURNING completed_workers, expected_workers, failed_workers;

-- name: complete_run(run_id, watermark_after)^
-- Mark a run completed now, with the watermark the next incremental run starts from.
-- role: writer
-- record: RunMetadata
UPDATE run_metadata
SET
    completed_at = now(),
    watermark_after = :watermark_after
WHERE run_id = :run_id
RETURNING *;
