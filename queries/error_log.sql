-- The services' error log (error_log): like errors grouped and counted.
--
-- A group is keyed by its fingerprint: the SHA-256 of the service and the
-- message with numbers, ids and quoted values normalised (the pattern; the
-- facade computes both, diamond_db/operations/error_log.py). Messages,
-- stacks and context are stored as given: callers keep secrets out of them.

-- name: log_error(fingerprint, service, pattern, message, error_type, stack, context, run_id, occurrences)!
-- Count :occurrences occurrences of one error: a new group, or more for an
-- existing one, whose latest message, error type, stack, context and run
-- replace the previous ones. One statement: concurrent writers of one group
-- queue on its row lock and each adds its count (no lost update); last_seen
-- never moves back.
-- role: writer
INSERT INTO error_log AS e (
    fingerprint, service, pattern, message, error_type, stack, context, run_id, occurrences
)
VALUES (
    :fingerprint,
    :service,
    :pattern,
    :message,
    :error_type,
    :stack,
    :context,
    :run_id,
    :occurrences
)
ON CONFLICT (fingerprint) DO UPDATE
    SET
        occurrences = e.occurrences + excluded.occurrences,
        last_seen = greatest(e.last_seen, excluded.last_seen),
        message = excluded.message,
        error_type = excluded.error_type,
        stack = excluded.stack,
        context = excluded.context,
        run_id = excluded.run_id;

-- name: list_errors(service, run_id, since, until, after_last_seen, after_id, row_limit)
-- Error groups, most recently seen first, each filter ignored when NULL: a
-- service, the run of the latest occurrence, groups seen at or after :since
-- (last_seen) and first seen before :until. Keyset-paged: a page starts after
-- (after_last_seen, after_id), the previous page's last group
-- (a scan of the groups, which are few).
-- role: reader
-- record: ErrorGroup
SELECT *
FROM error_log
WHERE
    (cast(:service AS TEXT) IS NULL OR service = :service)
    AND (cast(:run_id AS UUID) IS NULL OR run_id = :run_id)
    AND (cast(:since AS TIMESTAMPTZ) IS NULL OR last_seen >= :since)
    AND (cast(:until AS TIMESTAMPTZ) IS NULL OR first_seen < :until)
    AND (
        cast(:after_last_seen AS TIMESTAMPTZ) IS NULL
        OR (last_seen, id) < (:after_last_seen, cast(:after_id AS UUID))
    )
ORDER BY last_seen DESC, id DESC
LIMIT :row_limit;

-- name: error_services()
-- The services that have logged errors, by name.
-- role: reader
SELECT DISTINCT service
FROM error_log
ORDER BY service ASC;

-- name: purge_errors(older_than, service)!
-- Retention: delete the groups not seen for :older_than (an interval), of one
-- service when :service is given; returns how many.
-- role: writer
DELETE FROM error_log
WHERE
    last_seen < now() - :older_than::INTERVAL
    AND (cast(:service AS TEXT) IS NULL OR service = :service);
