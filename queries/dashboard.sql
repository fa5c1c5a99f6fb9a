-- The operations dashboard: read models, each one statement (one snapshot).
--
-- A run's counts come from the view run_progress and its status from the
-- function run_status (sql/migrations/0009), the one definition used for
-- display and for filters alike; :stalled_after is the stall threshold.

-- name: get_dashboard_summary(stalled_after)^
-- The dashboard's front page in one statement (one snapshot), one JSON object
-- per panel: live diamonds by availability and by supplier (one grouped read
-- of diamonds_live_supplier_availability_idx, an index-only scan), each
-- supplier's last completed run (its runs read newest first along
-- run_metadata_supplier_started_at_idx until one is completed), and how many
-- runs started in the last 7 days are in each status (run_metadata_started_at_idx).
-- role: reader
WITH live AS (
    SELECT
        supplier,
        availability,
        count(*) AS diamonds
    FROM diamonds
    WHERE status = 'active'
    GROUP BY supplier, availability
),

recent AS (
    SELECT run_status(p, :stalled_after) AS status
    FROM run_progress AS p
    WHERE p.started_at >= now() - INTERVAL '7 days'
),

suppliers AS (
    SELECT DISTINCT supplier
    FROM run_metadata
),

last_completed AS (
    SELECT
        s.supplier,
        last_run.run_id,
        last_run.started_at,
        last_run.completed_at
    FROM suppliers AS s
    INNER JOIN LATERAL (
        SELECT
            p.run_id,
            p.started_at,
            p.completed_at
        FROM run_progress AS p
        WHERE
            p.supplier = s.supplier
            AND run_status(p, :stalled_after) = 'completed'
        ORDER BY p.started_at DESC, p.run_id DESC
        LIMIT 1
    ) AS last_run ON TRUE
)

SELECT
    (SELECT coalesce(sum(diamonds), 0) FROM live)::BIGINT AS live_diamonds,
    (
        SELECT
            coalesce(
                jsonb_object_agg(by_availability.availability, by_availability.diamonds), '{}'
            )
        FROM (
            SELECT
                availability,
                sum(diamonds) AS diamonds
            FROM live
            GROUP BY availability
        ) AS by_availability
    ) AS by_availability,
    (
        SELECT coalesce(jsonb_object_agg(by_supplier.supplier, by_supplier.diamonds), '{}')
        FROM (
            SELECT
                supplier,
                sum(diamonds) AS diamonds
            FROM live
            GROUP BY supplier
        ) AS by_supplier
    ) AS by_supplier,
    (
        SELECT
            coalesce(
                jsonb_object_agg(
                    supplier,
                    jsonb_build_object(
                        'run_id', run_id, 'started_at', started_at, 'completed_at', completed_at
                    )
                ),
                '{}'
            )
        FROM last_completed
    ) AS last_successful_runs,
    (
        SELECT coalesce(jsonb_object_agg(by_status.status, by_status.runs), '{}')
        FROM (
            SELECT
                status,
                count(*) AS runs
            FROM recent
            GROUP BY status
        ) AS by_status
    ) AS run_statuses;

-- name: list_runs(supplier, status, started_after, started_before, after_started_at, after_run_id, row_limit, stalled_after)
-- Runs, newest first, each filter ignored when NULL; keyset-paged: a page
-- starts after (after_started_at, after_run_id), the previous page's last run.
-- Read backwards along run_metadata_started_at_idx, so a page computes the
-- counts of the runs it returns (and of those a status filter skips) only.
-- role: reader
-- record: RunOverview
SELECT
    p.*,
    run_status(p, :stalled_after) AS status
FROM run_progress AS p
WHERE
    (cast(:supplier AS TEXT) IS NULL OR p.supplier = :supplier)
    AND (cast(:status AS TEXT) IS NULL OR run_status(p, :stalled_after) = :status)
    AND (cast(:started_after AS TIMESTAMPTZ) IS NULL OR p.started_at >= :started_after)
    AND (cast(:started_before AS TIMESTAMPTZ) IS NULL OR p.started_at < :started_before)
    AND (
        cast(:after_started_at AS TIMESTAMPTZ) IS NULL
        OR (p.started_at, p.run_id) < (:after_started_at, cast(:after_run_id AS UUID))
    )
ORDER BY p.started_at DESC, p.run_id DESC
LIMIT :row_limit;

-- name: get_run_details(run_id, stalled_after)^
-- One run as list_runs shows it.
-- role: reader
-- record: RunOverview
SELECT
    p.*,
    run_status(p, :stalled_after) AS status
FROM run_progress AS p
WHERE p.run_id = :run_id;

-- name: get_supplier_stats()
-- Per supplier, its live diamonds: how many in each availability, the
-- minimum, average (rounded to the cent) and maximum supplier price, and the
-- last update of any of them.
-- role: reader
-- record: SupplierStats
SELECT
    supplier,
    count(*) AS live,
    count(*) FILTER (WHERE availability = 'available') AS available,
    count(*) FILTER (WHERE availability = 'on_hold') AS on_hold,
    count(*) FILTER (WHERE availability = 'sold') AS sold,
    count(*) FILTER (WHERE availability = 'unavailable') AS unavailable,
    min(supplier_price_cents) AS min_price_cents,
    round(avg(supplier_price_cents))::BIGINT AS avg_price_cents,
    max(supplier_price_cents) AS max_price_cents,
    max(updated_at) AS last_updated_at
FROM diamonds
WHERE status = 'active'
GROUP BY supplier
ORDER BY supplier ASC;

-- name: get_consolidation_progress(run_id)^
-- The raw rows last written by a run, by consolidation status, and when the
-- oldest still pending was stored. Only the run's feed's partition is read
-- (pruned at run time by the supplier), through raw_diamonds_run_idx.
-- role: reader
-- record: ConsolidationProgress
SELECT
    cast(:run_id AS UUID) AS run_id,
    count(*) AS total,
    count(*) FILTER (WHERE payload.consolidation_status = 'done') AS done,
    count(*) FILTER (WHERE payload.consolidation_status = 'pending') AS pending,
    count(*) FILTER (WHERE payload.consolidation_status = 'processing') AS processing,
    count(*) FILTER (WHERE payload.consolidation_status = 'failed') AS failed,
    min(payload.created_at) FILTER (
        WHERE payload.consolidation_status = 'pending'
    ) AS oldest_pending_at
FROM raw_diamonds AS payload
WHERE
    payload.run_id = :run_id
    AND payload.supplier = (
        SELECT r.supplier
        FROM run_metadata AS r
        WHERE r.run_id = :run_id  -- noqa: RF02
    );
