-- Catalogue jobs: re-pricing and re-rating the live diamonds after a rule change,
-- in keyset batches, resumable, cancellable and revertible.
--
-- Every status change is a compare-and-set (the WHERE names the statuses it
-- moves from, and the lease holder where a worker acts). A worker's batch is one
-- transaction that starts with lock_catalogue_job (the job row stays locked to
-- commit, so a cancel or a takeover waits for the batch and then sees it done),
-- reads the batch's ids (composed by diamond_db/search.py from the job's stored
-- filters), then runs apply_catalogue_job_batch (and, when it met a diamond
-- written meanwhile, apply_catalogue_job_batch_locked) or
-- revert_catalogue_job_batch.
-- The new values come from pricing_rule_for() / rating_rule_for() /
-- diamond_retail_cents() (sql/bootstrap.sql), the one definition of the rules.

-- name: create_catalogue_job(kind, filters, reason, triggered_by_rule_id, total)^
-- A new pending job. The partial unique index catalogue_jobs_one_active_key
-- refuses a second active job of the same kind (SQLSTATE 23505 -> JobConflict).
-- role: writer
-- record: CatalogueJob
INSERT INTO catalogue_jobs (kind, filters, reason, triggered_by_rule_id, total)
VALUES (:kind, :filters, :reason, :triggered_by_rule_id, :total)
RETURNING *;

-- name: get_catalogue_job(id)^
-- One job by id, read on the primary (workers read what they just wrote).
-- role: writer
-- record: CatalogueJob
SELECT *
FROM catalogue_jobs
WHERE id = :id;

-- name: list_catalogue_jobs(kind, row_limit)
-- The newest jobs first, of one kind or (kind NULL) of both.
-- role: reader
-- record: CatalogueJob
SELECT *
FROM catalogue_jobs
WHERE :kind::TEXT IS NULL OR kind = :kind
ORDER BY created_at DESC, id DESC
LIMIT :row_limit;

-- name: get_stalled_catalogue_jobs()
-- Jobs left running (or cancelling, reverting) by a worker whose lease has
-- expired: crashed or stalled. The next run_catalogue_job takes them over.
-- role: writer
-- record: CatalogueJob
SELECT *
FROM catalogue_jobs
WHERE
    status IN ('running', 'cancelling', 'reverting')
    AND lease_expires_at < now()
ORDER BY created_at ASC, id ASC;

-- name: take_catalogue_job(id, worker_id, lease_seconds)^
-- Take the job's lease: when nobody holds it, this worker already does, or the
-- holder's lease has expired. A pending job starts (running, or reverting in
-- the revert phase). No row: another worker holds a live lease, or the job is
-- not active.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    status = CASE
        WHEN status <> 'pending' THEN status
        WHEN phase = 'run' THEN 'running'
        ELSE 'reverting'
    END,
    lease_holder = :worker_id,
    lease_expires_at = now() + make_interval(secs => :lease_seconds),
    started_at = coalesce(started_at, now()),
    updated_at = now()
WHERE
    id = :id
    AND status IN ('pending', 'running', 'cancelling', 'reverting')
    AND (
        lease_holder IS NULL
        OR lease_holder = :worker_id
        OR lease_expires_at <= now()
    )
RETURNING *;

-- name: lock_catalogue_job(id, worker_id, lease_seconds)^
-- The first statement of every batch: renew the lease, only while this worker
-- holds it and the job is running or reverting. It locks the job row to the
-- end of the batch's transaction. No row: the lease was lost or the job was
-- cancelled; the batch then writes nothing.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    lease_expires_at = now() + make_interval(secs => :lease_seconds),
    updated_at = now()
WHERE
    id = :id
    AND lease_holder = :worker_id
    AND status IN ('running', 'reverting')
RETURNING *;

-- name: apply_catalogue_job_batch(job_id, worker_id, ids, last_id)^
-- One batch of a run, in one statement: compute each diamond's new values from
-- the active rules once (diamond_rule_values: the kind selects the columns;
-- 'pricing' sets markup_ratio, retail_price_cents, pricing_rating and rating,
-- 'rating' sets rating, falling back to pricing_rating), write only the rows
-- whose values change, snapshot their old and new values (the first snapshot
-- per diamond per job wins) and add them to the job's counters. :ids are the
-- batch's live diamonds (read in this transaction). Runs after
-- lock_catalogue_job in the same transaction; `job` repeats its condition, so
-- a job that is not this worker's, or not running, writes nothing.
--
-- Optimistic: the UPDATE writes a diamond only while it is still the row
-- version the values were computed from (same ctid). A diamond written since
-- (a concurrent upsert) is left to apply_catalogue_job_batch_locked, which the
-- worker runs next in the same transaction when the checkpoint did not
-- advance; so the checkpoint and `processed` advance only when every changing
-- diamond was written here.
-- role: writer
-- record: CatalogueJob
WITH job AS (
    SELECT j.kind = 'pricing' AS pricing
    FROM catalogue_jobs AS j
    WHERE
        j.id = :job_id
        AND j.lease_holder = :worker_id
        AND j.status = 'running'
),

-- Which diamonds of the batch change, their old and new values, and the row
-- version those were read from; read without a lock, so a diamond whose
-- values stay is neither locked nor written (a job with nothing to change
-- writes nothing).
changed AS (
    SELECT
        d.id,
        d.ctid AS row_version,
        job.pricing,
        d.markup_ratio AS old_markup_ratio,
        d.retail_price_cents AS old_retail_price_cents,
        d.pricing_rating AS old_pricing_rating,
        d.rating AS old_rating,
        v.markup_ratio AS new_markup_ratio,
        v.retail_price_cents AS new_retail_price_cents,
        v.pricing_rating AS new_pricing_rating,
        v.rating AS new_rating
    FROM job
    CROSS JOIN diamonds AS d
    CROSS JOIN LATERAL diamond_rule_values(d, job.pricing) AS v
    WHERE
        d.id = any(:ids)  -- noqa: RF02
        AND d.status = 'active'
        AND (v.markup_ratio, v.retail_price_cents, v.pricing_rating, v.rating)
        IS DISTINCT FROM
        (d.markup_ratio, d.retail_price_cents, d.pricing_rating, d.rating)
),

-- The UPDATE locks each row; one written meanwhile fails the version check
-- when re-read after the lock, and is skipped.
updated AS (
    UPDATE diamonds AS d
    SET
        markup_ratio = c.new_markup_ratio,
        retail_price_cents = c.new_retail_price_cents,
        pricing_rating = c.new_pricing_rating,
        rating = c.new_rating,
        updated_at = now()
    FROM changed AS c
    WHERE
        d.id = c.id
        AND d.ctid = c.row_version
    RETURNING
        c.*,
        d.supplier
),

-- Columns the kind does not compute stay NULL: a revert leaves them alone.
snapshots AS (
    INSERT INTO catalogue_job_snapshots (
        job_id, diamond_id, old_markup_ratio, new_markup_ratio,
        old_retail_price_cents, new_retail_price_cents, old_pricing_rating,
        new_pricing_rating, old_rating, new_rating
    )
    SELECT
        cast(:job_id AS UUID) AS job_id,
        u.id AS diamond_id,
        CASE WHEN u.pricing THEN u.old_markup_ratio END AS old_markup_ratio,
        CASE WHEN u.pricing THEN u.new_markup_ratio END AS new_markup_ratio,
        CASE WHEN u.pricing THEN u.old_retail_price_cents END AS old_retail_price_cents,
        CASE WHEN u.pricing THEN u.new_retail_price_cents END AS new_retail_price_cents,
        CASE WHEN u.pricing THEN u.old_pricing_rating END AS old_pricing_rating,
        CASE WHEN u.pricing THEN u.new_pricing_rating END AS new_pricing_rating,
        u.old_rating,
        u.new_rating
    FROM updated AS u
    ON CONFLICT (job_id, diamond_id) DO NOTHING
),

-- Whether every changing diamond was written here (no version check failed).
outcome AS (
    SELECT
        count(*) AS written,
        count(*) = (SELECT count(*) FROM changed) AS whole
    FROM updated
)

UPDATE catalogue_jobs AS j
SET
    checkpoint = CASE WHEN o.whole THEN :last_id ELSE j.checkpoint END,
    processed = j.processed + CASE WHEN o.whole THEN cardinality(:ids) ELSE 0 END,  -- noqa: RF02
    changed = j.changed + o.written,
    suppliers = array(
        SELECT s.supplier FROM unnest(j.suppliers) AS s (supplier)
        UNION
        SELECT u.supplier FROM updated AS u
        ORDER BY supplier
    ),
    updated_at = now()
FROM outcome AS o
WHERE
    j.id = :job_id
    AND j.lease_holder = :worker_id
    AND j.status = 'running'
RETURNING j.*;

-- name: apply_catalogue_job_batch_locked(job_id, worker_id, ids, last_id)^
-- The batch again, after apply_catalogue_job_batch met a diamond written
-- since it read it (rare: a concurrent upsert). In one statement: compute each diamond's new values from
-- the active rules (diamond_rule_values: the kind selects the columns; 'pricing'
-- sets markup_ratio, retail_price_cents, pricing_rating and rating, 'rating'
-- sets rating, falling back to pricing_rating), write only the rows whose
-- values change, snapshot their old and new values (the first snapshot per
-- diamond per job wins), and advance the checkpoint and counters. :ids are the
-- batch's live diamonds (read in this transaction). Runs after lock_catalogue_job in the same
-- transaction; `job` repeats its condition, so a job that is not this
-- worker's, or not running, writes nothing.
-- role: writer
-- record: CatalogueJob
WITH job AS (
    SELECT j.kind = 'pricing' AS pricing
    FROM catalogue_jobs AS j
    WHERE
        j.id = :job_id
        AND j.lease_holder = :worker_id
        AND j.status = 'running'
),

-- Which diamonds of the batch change, read without a lock: a diamond whose
-- values stay is neither locked nor written (a job with nothing to change
-- writes nothing).
candidates AS (
    SELECT d.id
    FROM job
    CROSS JOIN diamonds AS d
    CROSS JOIN LATERAL diamond_rule_values(d, job.pricing) AS v
    WHERE
        d.id = any(:ids)  -- noqa: RF02
        AND d.status = 'active'
        AND (v.markup_ratio, v.retail_price_cents, v.pricing_rating, v.rating)
        IS DISTINCT FROM
        (d.markup_ratio, d.retail_price_cents, d.pricing_rating, d.rating)
),

-- Those diamonds locked in id order, their values computed again on the row
-- versions the lock returns (a concurrent upsert is wholly before the batch).
computed AS (
    SELECT
        d.id,
        d.supplier,
        job.pricing,
        d.markup_ratio AS old_markup_ratio,
        d.retail_price_cents AS old_retail_price_cents,
        d.pricing_rating AS old_pricing_rating,
        d.rating AS old_rating,
        v.markup_ratio AS new_markup_ratio,
        v.retail_price_cents AS new_retail_price_cents,
        v.pricing_rating AS new_pricing_rating,
        v.rating AS new_rating
    FROM job
    CROSS JOIN diamonds AS d
    CROSS JOIN LATERAL diamond_rule_values(d, job.pricing) AS v
    WHERE
        d.id IN (SELECT c.id FROM candidates AS c)
        AND d.status = 'active'
    ORDER BY d.id
    FOR UPDATE OF d
),

changed AS (
    SELECT *
    FROM computed
    WHERE
        (new_markup_ratio, new_retail_price_cents, new_pricing_rating, new_rating)
        IS DISTINCT FROM
        (old_markup_ratio, old_retail_price_cents, old_pricing_rating, old_rating)
),

updated AS (
    UPDATE diamonds AS d
    SET
        markup_ratio = c.new_markup_ratio,
        retail_price_cents = c.new_retail_price_cents,
        pricing_rating = c.new_pricing_rating,
        rating = c.new_rating,
        updated_at = now()
    FROM changed AS c
    WHERE d.id = c.id
    RETURNING d.id, d.supplier
),

-- Columns the kind does not compute stay NULL: a revert leaves them alone.
snapshots AS (
    INSERT INTO catalogue_job_snapshots (
        job_id, diamond_id, old_markup_ratio, new_markup_ratio,
        old_retail_price_cents, new_retail_price_cents, old_pricing_rating,
        new_pricing_rating, old_rating, new_rating
    )
    SELECT
        cast(:job_id AS UUID) AS job_id,
        c.id AS diamond_id,
        CASE WHEN c.pricing THEN c.old_markup_ratio END AS old_markup_ratio,
        CASE WHEN c.pricing THEN c.new_markup_ratio END AS new_markup_ratio,
        CASE WHEN c.pricing THEN c.old_retail_price_cents END AS old_retail_price_cents,
        CASE WHEN c.pricing THEN c.new_retail_price_cents END AS new_retail_price_cents,
        CASE WHEN c.pricing THEN c.old_pricing_rating END AS old_pricing_rating,
        CASE WHEN c.pricing THEN c.new_pricing_rating END AS new_pricing_rating,
        c.old_rating,
        c.new_rating
    FROM changed AS c
    ON CONFLICT (job_id, diamond_id) DO NOTHING
)

UPDATE catalogue_jobs AS j
SET
    checkpoint = :last_id,
    processed = j.processed + cardinality(:ids),  -- noqa: RF02
    changed = j.changed + (SELECT count(*) FROM updated),
    suppliers = array(
        SELECT s.supplier FROM unnest(j.suppliers) AS s (supplier)
        UNION
        SELECT u.supplier FROM updated AS u
        ORDER BY supplier
    ),
    updated_at = now()
WHERE
    j.id = :job_id
    AND j.lease_holder = :worker_id
    AND j.status = 'running'
RETURNING j.*;

-- name: revert_catalogue_job_batch(job_id, worker_id, after_id, batch_size)^
-- One batch of a revert: the next snapshots after the checkpoint, by diamond
-- id; each diamond whose current values still equal what the job wrote (only
-- the kind's columns) gets its old values back, the others are left alone and
-- counted as skipped. The checkpoint stays where it is when no snapshot is left.
-- role: writer
-- record: CatalogueJob
WITH job AS (
    SELECT j.kind = 'pricing' AS pricing
    FROM catalogue_jobs AS j
    WHERE
        j.id = :job_id
        AND j.lease_holder = :worker_id
        AND j.status = 'reverting'
),

batch AS (
    SELECT
        s.*,
        job.pricing
    FROM job
    CROSS JOIN catalogue_job_snapshots AS s
    WHERE s.job_id = :job_id AND s.diamond_id > :after_id  -- noqa: RF02
    ORDER BY s.diamond_id
    LIMIT :batch_size
),

unchanged_since AS (
    SELECT b.*
    FROM batch AS b
    INNER JOIN diamonds AS d ON b.diamond_id = d.id
    WHERE
        CASE
            WHEN b.pricing
                THEN
                    (d.markup_ratio, d.retail_price_cents, d.pricing_rating, d.rating)
                    IS NOT DISTINCT FROM
                    (
                        b.new_markup_ratio,
                        b.new_retail_price_cents,
                        b.new_pricing_rating,
                        b.new_rating
                    )
            ELSE d.rating IS NOT DISTINCT FROM b.new_rating
        END
    ORDER BY b.diamond_id
    FOR UPDATE OF d
),

restored AS (
    UPDATE diamonds AS d
    SET
        markup_ratio = CASE
            WHEN u.pricing THEN u.old_markup_ratio ELSE d.markup_ratio
        END,
        retail_price_cents = CASE
            WHEN u.pricing THEN u.old_retail_price_cents ELSE d.retail_price_cents
        END,
        pricing_rating = CASE
            WHEN u.pricing THEN u.old_pricing_rating ELSE d.pricing_rating
        END,
        rating = u.old_rating,
        updated_at = now()
    FROM unchanged_since AS u
    WHERE d.id = u.diamond_id
    RETURNING d.id
)

UPDATE catalogue_jobs AS j
SET
    checkpoint = coalesce(
        (
            SELECT b.diamond_id
            FROM batch AS b
            ORDER BY b.diamond_id DESC
            LIMIT 1
        ),
        j.checkpoint
    ),
    restored = j.restored + (SELECT count(*) FROM restored),
    skipped = j.skipped
    + (SELECT count(*) FROM batch)
    - (SELECT count(*) FROM restored),
    updated_at = now()
WHERE
    j.id = :job_id
    AND j.lease_holder = :worker_id
    AND j.status = 'reverting'
RETURNING j.*;

-- name: finish_catalogue_job(id, worker_id)^
-- The worker ends its job: running -> completed (no batch left), cancelling ->
-- cancelled (at the batch boundary after a cancel), reverting -> reverted. The
-- lease is released.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    status = CASE status
        WHEN 'running' THEN 'completed'
        WHEN 'cancelling' THEN 'cancelled'
        ELSE 'reverted'
    END,
    finished_at = CASE WHEN phase = 'run' THEN now() ELSE finished_at END,
    reverted_at = CASE WHEN phase = 'revert' THEN now() ELSE reverted_at END,
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE
    id = :id
    AND lease_holder = :worker_id
    AND status IN ('running', 'cancelling', 'reverting')
RETURNING *;

-- name: fail_catalogue_job(id, worker_id, error)^
-- The worker's batch failed: the job is failed (retry_catalogue_job resumes it
-- from its checkpoint, in its phase) and the lease released.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    status = 'failed',
    error = :error,
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE
    id = :id
    AND lease_holder = :worker_id
    AND status IN ('running', 'cancelling', 'reverting')
RETURNING *;

-- name: release_catalogue_job_lease(id, worker_id)!
-- A worker that lost its connection mid-batch gives its lease up (the batch
-- rolled back), so the next worker resumes at once instead of at expiry.
-- role: writer
UPDATE catalogue_jobs
SET
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE id = :id AND lease_holder = :worker_id;

-- name: cancel_catalogue_job(id)^
-- pending -> cancelled; running -> cancelling, which the worker ends as
-- cancelled at its next batch boundary (a running job whose lease has expired,
-- with no worker left to end it, is cancelled at once). A cancel during a
-- batch waits for the batch's lock on the job row.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    status = CASE
        WHEN
            status = 'pending'
            OR lease_holder IS NULL
            OR lease_expires_at <= now()
            THEN 'cancelled'
        ELSE 'cancelling'
    END,
    finished_at = CASE
        WHEN
            status = 'pending'
            OR lease_holder IS NULL
            OR lease_expires_at <= now()
            THEN now()
    END,
    lease_holder = CASE WHEN lease_expires_at > now() THEN lease_holder END,
    lease_expires_at = CASE WHEN lease_expires_at > now() THEN lease_expires_at END,
    updated_at = now()
WHERE id = :id AND phase = 'run' AND status IN ('pending', 'running')
RETURNING *;

-- name: begin_catalogue_job_revert(id)^
-- A completed or cancelled job enters its revert phase, pending: a worker then
-- takes it (reverting) and restores its snapshots from the first one. Violates
-- catalogue_jobs_one_active_key while another job of the kind is active.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    status = 'pending',
    phase = 'revert',
    checkpoint = NULL,
    restored = 0,
    skipped = 0,
    error = NULL,
    updated_at = now()
WHERE id = :id AND phase = 'run' AND status IN ('completed', 'cancelled')
RETURNING *;

-- name: retry_catalogue_job(id, max_retries)^
-- failed -> pending, retry_count + 1, only below max_retries. The phase and the
-- checkpoint stay: the job resumes where it failed, a failed revert as a revert.
-- role: writer
-- record: CatalogueJob
UPDATE catalogue_jobs
SET
    status = 'pending',
    retry_count = retry_count + 1,
    lease_holder = NULL,
    lease_expires_at = NULL,
    updated_at = now()
WHERE id = :id AND status = 'failed' AND retry_count < :max_retries
RETURNING *;
