-- Batch runs: one row per ingestion run, with the workers' atomic counters.

-- name: create_run_metadata(run_type, expected_workers, watermark_before)^
-- Start a run that expects a number of workers to report.
-- role: writer
-- record: RunMetadata
INSERT INTO run_metadata (run_type, expected_workers, watermark_before)
VALUES (:run_type, :expected_workers, :watermark_before)
RETURNING *;

-- name: get_run_metadata(run_id)^
-- Fetch one run by id.
-- role: reader
-- record: RunMetadata
SELECT *
FROM run_metadata
WHERE run_id = :run_id;
