-- Resumable workers: where each partition of a run stands (partition_progress).
--
-- A worker processes one page of a partition per message: it reads the
-- partition, fetches the page at next_offset, stores the raw rows
-- (upsert_raw_diamonds, idempotent), then advances next_offset by
-- compare-and-set. Every change below is one statement that changes the row
-- only from the state it expects, so of concurrent callers (a redelivered
-- message, a second worker) exactly one wins. The statements lock the
-- partition row before the worker run and the run row (cancel_run does the
-- same), so they never deadlock with each other.

-- name: init_partition(run_id, partition_id)^
-- Create the partition's row (offset 0, attempt 1) unless it exists; returns
-- it when created, no row when it already existed (the facade then reads it).
-- A partition created after its run was cancelled starts failed, so its
-- worker stops. No row either for an unknown run.
-- role: writer
-- record: PartitionProgress
INSERT INTO partition_progress (run_id, partition_id, failed, last_error)
SELECT
    r.run_id,
    :partition_id,
    r.cancelled_at IS NOT NULL AS failed,
    r.cancel_reason AS last_error
FROM run_metadata AS r
WHERE r.run_id = :run_id
ON CONFLICT (run_id, partition_id) DO NOTHING
RETURNING *;

-- name: get_partition(run_id, partition_id)^
-- One partition's progress. Runs on the primary: a worker resumes from it.
-- role: writer
-- record: PartitionProgress
SELECT *
FROM partition_progress
WHERE run_id = :run_id AND partition_id = :partition_id;

-- name: advance_partition(run_id, partition_id, expected_offset, new_offset)$
-- Move next_offset from :expected_offset to :new_offset (compare-and-set): only
-- while the partition is in progress and still at the expected offset, so of
-- concurrent callers with the same expected offset exactly one wins. Returns
-- TRUE when it moved, no row otherwise.
-- role: writer
UPDATE partition_progress
SET
    next_offset = :new_offset,
    updated_at = now()
WHERE
    run_id = :run_id
    AND partition_id = :partition_id
    AND next_offset = :expected_offset
    AND NOT completed
    AND NOT failed
RETURNING TRUE AS advanced;

-- name: record_page(run_id, partition_id, worker_run_id, expected_offset, new_offset, row_count)$
-- What a worker does after storing a page, in one statement (one transaction):
-- advance the offset as advance_partition does, and add the page's rows to the
-- worker run's records_processed. Both happen or neither: the advance also
-- requires the worker run to be running (a cancelled one is failed), and the
-- count is added only when the offset moved. Returns TRUE when it did, no row
-- otherwise (a redelivered page, a finished partition, a cancelled run).
-- role: writer
WITH advanced AS (
    UPDATE partition_progress AS p
    SET
        next_offset = :new_offset,
        updated_at = now()
    WHERE
        p.run_id = :run_id
        AND p.partition_id = :partition_id
        AND p.next_offset = :expected_offset
        AND NOT p.completed
        AND NOT p.failed
        AND EXISTS (
            SELECT 1
            FROM worker_runs AS w
            WHERE
                w.id = :worker_run_id
                AND w.run_id = :run_id
                AND w.status = 'running'
        )
    RETURNING p.run_id
),

counted AS (
    UPDATE worker_runs AS w
    SET
        records_processed = w.records_processed + :row_count,
        updated_at = now()
    FROM advanced
    WHERE w.id = :worker_run_id AND w.run_id = advanced.run_id
    RETURNING w.id
)

SELECT TRUE AS advanced
FROM counted;

-- name: complete_partition(run_id, partition_id, expected_offset)$
-- Mark a partition completed if it is in progress at :expected_offset
-- (compare-and-set), and count the run's completed worker in the same
-- statement. Returns TRUE when it did, no row otherwise.
-- role: writer
WITH completed AS (
    UPDATE partition_progress
    SET
        completed = TRUE,
        updated_at = now()
    WHERE
        run_id = :run_id
        AND partition_id = :partition_id
        AND next_offset = :expected_offset
        AND NOT completed
        AND NOT failed
    RETURNING run_id
)

UPDATE run_metadata AS r
SET completed_workers = r.completed_workers + 1
FROM completed
WHERE r.run_id = completed.run_id
RETURNING TRUE AS completed;

-- name: fail_partition(run_id, partition_id, error)$
-- Mark a partition in progress failed, keeping :error, and count the run's
-- failed worker in the same statement. A partition already failed (or
-- completed) is left alone, so only the first failure of an episode counts.
-- Returns TRUE when it failed the partition, no row otherwise.
-- role: writer
WITH failed AS (
    UPDATE partition_progress
    SET
        failed = TRUE,
        last_error = :error,
        updated_at = now()
    WHERE
        run_id = :run_id
        AND partition_id = :partition_id
        AND NOT completed
        AND NOT failed
    RETURNING run_id
)

UPDATE run_metadata AS r
SET failed_workers = r.failed_workers + 1
FROM failed
WHERE r.run_id = failed.run_id
RETURNING TRUE AS failed;

-- name: retry_partition(run_id, partition_id)$
-- Send a failed partition back to in progress, keeping next_offset (the retry
-- resumes where it stopped), counting one more attempt, and take it off the
-- run's failed_workers (kept >= 0) in the same statement. Not for a cancelled
-- run. Returns TRUE when it did, no row otherwise.
-- role: writer
WITH retried AS (
    UPDATE partition_progress AS p
    SET
        failed = FALSE,
        attempts = p.attempts + 1,
        updated_at = now()
    FROM run_metadata AS r
    WHERE
        p.run_id = :run_id
        AND p.partition_id = :partition_id
        AND p.failed
        AND r.run_id = p.run_id
        AND r.cancelled_at IS NULL
    RETURNING p.run_id
)

UPDATE run_metadata AS r
SET failed_workers = greatest(r.failed_workers - 1, 0)
FROM retried
WHERE r.run_id = retried.run_id
RETURNING TRUE AS retried;

-- name: list_partitions(run_id)
-- Every partition of a run, by partition_id (the primary key).
-- role: reader
-- record: PartitionProgress
SELECT *
FROM partition_progress
WHERE run_id = :run_id
ORDER BY partition_id ASC;

-- name: get_stalled_partitions(older_than)
-- Partitions neither completed nor failed whose row has not changed for
-- :older_than, oldest first, in runs that are not cancelled: what a scheduler
-- re-drives (enqueues a page message at next_offset) when a worker died
-- between advancing the offset and enqueueing the next page
-- (partition_progress_in_progress_idx). Runs on the primary, as the workers do.
-- role: writer
-- record: PartitionProgress
SELECT p.*
FROM partition_progress AS p
INNER JOIN run_metadata AS r ON p.run_id = r.run_id
WHERE
    NOT p.completed
    AND NOT p.failed
    AND p.updated_at < now() - :older_than::INTERVAL  -- noqa: RF02
    AND r.cancelled_at IS NULL
ORDER BY p.updated_at ASC, p.run_id ASC, p.partition_id ASC;
