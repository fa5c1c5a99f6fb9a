-- Dataset versions: one number per supplier that the API puts in its cache keys.
--
-- A version changes when a supplier's data set changes as a whole: a
-- consolidation finished (finish_consolidation), a catalogue job, a purge of
-- raw payloads. Single availability changes (holds, sales) do not bump it:
-- they would invalidate every cached search many times a minute; the API
-- reads availability live instead (README, "Dataset versions").
-- Reads are `reader`: a replica's version is never ahead of its own data, as
-- the bump commits after (or with) the changes it announces.

-- name: get_dataset_version(supplier)$
-- The supplier's version; 0 when it was never bumped.
-- role: reader
SELECT coalesce(
    (
        SELECT d.version
        FROM dataset_versions AS d
        WHERE d.supplier = :supplier
    ),
    0
) AS dataset_version;

-- name: get_dataset_versions()
-- Every supplier's version, by supplier.
-- role: reader
-- record: DatasetVersion
SELECT
    d.supplier,
    d.version,
    d.updated_at
FROM dataset_versions AS d
ORDER BY d.supplier ASC;

-- name: bump_dataset_version(supplier)$
-- Add one to the supplier's version (1 on the first bump) and return it. One
-- statement; the row lock serialises concurrent bumps, so each gets a
-- distinct, strictly increasing value. Runs in the caller's transaction when
-- called on one (the bump then commits with the changes it announces).
-- role: writer
INSERT INTO dataset_versions AS d (supplier, version)
VALUES (:supplier, 1)
ON CONFLICT (supplier) DO UPDATE
    SET
        version = d.version + 1,
        updated_at = now()
RETURNING d.version;
