-- Schema migrations: what `diamond-db migrate` (diamond_db/migrations.py) sends
-- besides the migration files themselves. The ledger tables are also created
-- by sql/bootstrap.sql; a test keeps the two definitions equal.
--
-- Identifiers cannot be parameters, so four statements of the runner are
-- composed in diamond_db/migrations.py from the catalog's own names (never
-- from input): VALIDATE CONSTRAINT, SET NOT NULL, DROP CONSTRAINT, DROP INDEX
-- CONCURRENTLY, and the reads that list a failed constraint's violating rows.

-- name: lock_ledger()$
-- Serialise the ledger's creation between runners (transaction-scoped, so it is
-- safe behind a transaction-mode pooler).
-- role: writer
SELECT pg_advisory_xact_lock(7263540012) IS NULL AS waited;

-- name: create_ledger#
-- The ledger of applied migrations and the one-row lease of the running migrate.
-- role: writer
CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,  -- noqa: RF04
    name TEXT NOT NULL,  -- noqa: RF04
    checksum TEXT NOT NULL,  -- noqa: RF04
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    duration_ms BIGINT NOT NULL,
    applied_by TEXT NOT NULL DEFAULT current_user,
    applied_with TEXT NOT NULL,
    CONSTRAINT schema_migrations_version_check CHECK (version ~ '^[0-9]{4}$'),
    CONSTRAINT schema_migrations_checksum_check CHECK (checksum ~ '^[0-9a-f]{64}$')
);

CREATE TABLE IF NOT EXISTS schema_migrations_lock (
    singleton BOOLEAN PRIMARY KEY DEFAULT TRUE,
    holder TEXT NOT NULL,
    acquired_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT schema_migrations_lock_singleton_check CHECK (singleton)
);

-- name: ledger_exists()$
-- Whether this database has a migrations ledger.
-- role: writer
SELECT to_regclass('schema_migrations') IS NOT NULL AS ledger_exists;

-- name: get_ledger()
-- Every recorded migration, in version order.
-- role: writer
-- record: LedgerEntry
SELECT
    version,
    name,
    checksum,
    applied_at
FROM schema_migrations
ORDER BY version;

-- name: get_applied_versions()$
-- The recorded versions: the one cheap query a Database runs when it opens.
-- role: writer
SELECT coalesce(array_agg(version ORDER BY version), '{}') AS versions
FROM schema_migrations;

-- name: record_migration(version, name, checksum, duration_ms, applied_with)$
-- Record one applied migration (in the migration's own transaction when it has
-- one); its applied_at.
-- role: writer
INSERT INTO schema_migrations (version, name, checksum, duration_ms, applied_with)
VALUES (:version, :name, :checksum, :duration_ms, :applied_with)
RETURNING applied_at;

-- name: acquire_migration_lock(holder, lease_ms)$
-- Take the migrate lease if it is free, expired, or already ours; the holder on
-- success, NULL while another live runner holds it. One autocommit statement:
-- a waiting runner holds no transaction open (a concurrent index build would
-- otherwise wait for it while it waits for the lease: a deadlock).
-- role: writer
INSERT INTO schema_migrations_lock AS current_lock (holder, acquired_at, expires_at)
VALUES (:holder, now(), now() + make_interval(secs => :lease_ms / 1000.0))
ON CONFLICT (singleton) DO UPDATE
    SET
        holder = excluded.holder,
        acquired_at = CASE
            WHEN current_lock.holder = excluded.holder THEN current_lock.acquired_at ELSE now()
        END,
        expires_at = excluded.expires_at
    WHERE current_lock.holder = excluded.holder OR current_lock.expires_at < now()
RETURNING holder;

-- name: get_migration_lock()^
-- Who holds the migrate lease, until when (for the "waiting for" message).
-- role: writer
-- record: MigrationLock
SELECT
    holder,
    acquired_at,
    expires_at
FROM schema_migrations_lock;

-- name: renew_migration_lock(holder, lease_ms)!
-- Extend our lease (the heartbeat); 0 rows means another runner took it over.
-- role: writer
UPDATE schema_migrations_lock
SET expires_at = now() + make_interval(secs => :lease_ms / 1000.0)
WHERE holder = :holder;

-- name: release_migration_lock(holder)!
-- Give the lease back.
-- role: writer
DELETE FROM schema_migrations_lock
WHERE holder = :holder;

-- name: set_lock_timeout(timeout)$
-- Bound every lock wait of the current transaction (milliseconds, as text);
-- transaction-local, so nothing leaks behind a transaction-mode pooler.
-- role: writer
SELECT set_config('lock_timeout', :timeout, TRUE);

-- name: get_lock_waits(application_name)
-- The locks a runner's session (found by its application_name, which works
-- through a pooler too) is waiting for, with who holds them and for how long.
-- role: writer
-- record: LockWait
SELECT
    waiting.pid,
    waiting.locktype AS lock_type,
    waiting.mode,
    coalesce(waiting.relation::REGCLASS::TEXT, waiting.locktype) AS waiting_for,
    extract(EPOCH FROM clock_timestamp() - waiting.waitstart)::FLOAT8 AS waited,
    coalesce(
        (
            SELECT
                string_agg(
                    'pid ' || blocker.pid
                    || ' (' || coalesce(nullif(blocker.application_name, ''), 'no application_name')
                    || ', ' || blocker.state
                    || ', transaction open '
                    || round(extract(EPOCH FROM clock_timestamp() - blocker.xact_start))
                    || ' s)',
                    '; '
                )
            FROM pg_stat_activity AS blocker
            WHERE blocker.pid = any(pg_blocking_pids(waiting.pid))
        ),
        'unknown'
    ) AS blockers
FROM pg_locks AS waiting
INNER JOIN pg_stat_activity AS runner ON waiting.pid = runner.pid
WHERE
    runner.application_name = :application_name  -- noqa: RF02
    AND NOT waiting.granted;

-- name: cancel_backend(pid)$
-- Cancel the statement of one of the runner's own sessions (a lock wait past
-- the lock timeout, outside a transaction where SET LOCAL cannot apply).
-- role: writer
SELECT pg_cancel_backend(:pid) AS cancelled;

-- name: get_relations()
-- The tables, views and sequences of the current schema, but the ledger's: tells
-- an empty database, one the TypeScript package created, and a foreign schema apart.
-- role: writer
SELECT relname
FROM pg_class
WHERE
    relnamespace = current_schema()::REGNAMESPACE
    AND relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    AND relname NOT IN ('schema_migrations', 'schema_migrations_lock')
ORDER BY relname;

-- name: get_row_estimates()
-- The planner's row count of every table of the current schema (plan estimates).
-- role: writer
-- record: TableRows
SELECT
    relname AS table_name,
    greatest(reltuples, 0)::BIGINT AS estimated_rows
FROM pg_class
WHERE
    relnamespace = current_schema()::REGNAMESPACE
    AND relkind IN ('r', 'p');

-- name: get_invalid_indexes(names)
-- Which of these indexes exist but are INVALID (a concurrent build that failed).
-- role: writer
SELECT index_class.relname
FROM pg_index
INNER JOIN pg_class AS index_class ON pg_index.indexrelid = index_class.oid
WHERE
    index_class.relnamespace = current_schema()::REGNAMESPACE
    AND index_class.relname = any(:names)  -- noqa: RF02
    AND NOT pg_index.indisvalid;

-- name: get_unfinished_constraints()
-- Constraints a migration added NOT VALID and not yet validated, and validated
-- `<table>_<column>_not_null` helper checks (exactly `CHECK ((column IS NOT NULL))`)
-- still waiting to become SET NOT NULL. Not yet validated ones come first.
-- role: writer
-- record: UnfinishedConstraint
WITH candidate AS (
    SELECT
        con.oid,
        con.conrelid,
        con.conname,
        con.contype,
        con.convalidated,
        con.conkey,
        con.confrelid,
        con.confkey,
        pg_get_constraintdef(con.oid) AS definition,
        rel.relname AS table_name,
        (
            SELECT array_agg(att.attname::TEXT ORDER BY att.attnum)
            FROM pg_attribute AS att
            WHERE att.attrelid = con.conrelid AND att.attnum = any(con.conkey)
        ) AS column_names
    FROM pg_constraint AS con
    INNER JOIN pg_class AS rel ON con.conrelid = rel.oid
    WHERE
        con.connamespace = current_schema()::REGNAMESPACE
        AND con.contype IN ('c', 'f')
        -- A partition's copy of its parent's constraint is validated with it.
        AND con.conislocal
),

classified AS (
    SELECT
        candidate.*,
        (
            candidate.contype = 'c'
            AND cardinality(candidate.column_names) = 1
            AND candidate.conname
            = candidate.table_name || '_' || candidate.column_names[1] || '_not_null'
            AND regexp_replace(candidate.definition, ' NOT VALID$', '')
            = 'CHECK ((' || quote_ident(candidate.column_names[1]) || ' IS NOT NULL))'
        ) AS not_null_helper
    FROM candidate
)

SELECT
    classified.table_name::TEXT AS table_name,
    classified.conname::TEXT AS constraint_name,
    classified.definition,
    classified.contype = 'f' AS is_foreign_key,
    classified.convalidated AS validated,
    classified.column_names,
    (
        SELECT att.attname::TEXT
        FROM pg_constraint AS pk
        INNER JOIN pg_attribute AS att
            ON pk.conrelid = att.attrelid AND pk.conkey[1] = att.attnum
        WHERE pk.conrelid = classified.conrelid AND pk.contype = 'p'
    ) AS key_column,
    nullif(classified.confrelid, 0)::REGCLASS::TEXT AS referenced_table,
    (
        SELECT array_agg(att.attname::TEXT ORDER BY referenced.position)
        FROM unnest(classified.confkey) WITH ORDINALITY AS referenced (attnum, position)
        INNER JOIN pg_attribute AS att
            ON classified.confrelid = att.attrelid AND referenced.attnum = att.attnum
    ) AS referenced_columns,
    classified.not_null_helper
FROM classified
WHERE NOT classified.convalidated OR classified.not_null_helper
ORDER BY classified.convalidated, classified.table_name, classified.conname;
