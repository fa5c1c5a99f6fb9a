-- Supplier holds: the audit trail, and placing or releasing a hold on a diamond.
-- place_hold and release_hold also change the diamond's availability and
-- hold_id: the hold domain owns those two columns' hold transitions.

-- name: create_hold_history(diamond_id, supplier, supplier_hold_id, offer_id, status, denied, hold_until)^
-- Record a supplier hold as given; touches no diamond (a denied hold, for one).
-- role: writer
-- record: HoldHistory
INSERT INTO hold_history (
    diamond_id, supplier, supplier_hold_id, offer_id, status, denied, hold_until
)
VALUES (
    :diamond_id, :supplier, :supplier_hold_id, :offer_id, :status, :denied, :hold_until
)
RETURNING *;

-- name: get_hold_history_by_diamond_id(diamond_id)
-- A diamond's holds, newest first (ties by id, for a stable order).
-- Served by hold_history_diamond_created_idx.
-- role: reader
-- record: HoldHistory
SELECT *
FROM hold_history
WHERE diamond_id = :diamond_id
ORDER BY created_at DESC, id DESC;

-- name: update_hold_status(id, status)^
-- Set one hold's status (active, expired or released).
-- role: writer
-- record: HoldHistory
UPDATE hold_history
SET status = :status
WHERE id = :id
RETURNING *;

-- name: place_hold(diamond_id, supplier, supplier_hold_id, offer_id, hold_until)^
-- Put an active, available diamond on hold and record the hold, atomically
-- (one statement). `held` is a compare-and-set: of racing callers, the first
-- to lock the row wins; the others re-check the row after it commits, find it
-- no longer available, update nothing, and so insert no history either.
-- Returns the new history row, or no row when the diamond was not available.
-- role: writer
-- record: HoldHistory
WITH held AS (
    UPDATE diamonds
    SET
        availability = 'on_hold',
        hold_id = :supplier_hold_id,
        updated_at = now()
    WHERE
        id = :diamond_id
        AND status = 'active'
        AND availability = 'available'
    RETURNING id
)

INSERT INTO hold_history (
    diamond_id, supplier, supplier_hold_id, offer_id, status, denied, hold_until
)
SELECT
    held.id AS diamond_id,
    :supplier AS supplier,  -- noqa: AL09
    :supplier_hold_id AS supplier_hold_id,  -- noqa: AL09
    :offer_id AS offer_id,  -- noqa: AL09
    'active' AS status,
    FALSE AS denied,
    cast(:hold_until AS TIMESTAMPTZ) AS hold_until
FROM held
RETURNING *;

-- name: release_hold(diamond_id, supplier_hold_id)$
-- Undo place_hold, atomically (one statement), only while this hold is the
-- diamond's current one: the diamond goes back to available with no hold_id,
-- and the hold's active history row becomes released. `released` is the
-- compare-and-set; `history` runs only for the diamond it released.
-- Returns whether the hold was released (false: nothing changed).
-- role: writer
WITH released AS (
    UPDATE diamonds
    SET
        availability = 'available',
        hold_id = NULL,
        updated_at = now()
    WHERE
        id = :diamond_id
        AND availability = 'on_hold'
        AND hold_id = :supplier_hold_id
    RETURNING id
),

history AS (
    UPDATE hold_history
    SET status = 'released'
    WHERE
        diamond_id IN (SELECT released.id FROM released)
        AND supplier_hold_id = :supplier_hold_id
        AND status = 'active'
    RETURNING id
)

SELECT exists(SELECT 1 FROM released) AS released;
