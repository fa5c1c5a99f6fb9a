-- Purchases: the audit trail, idempotent on the caller's key.
-- Lookups by idempotency_key use the unique index of
-- purchase_history_idempotency_key_key.

-- name: insert_purchase_history(diamond_id, supplier, supplier_order_id, offer_id, idempotency_key, status, reference, comments)^
-- Record a purchase, unless its idempotency key is already stored: then
-- nothing is inserted and no row is returned (a concurrent insert of the same
-- key is waited for first). The caller then reads the stored row with
-- get_purchase_by_idempotency_key, in a second statement: this one's snapshot
-- cannot see a row committed by a concurrent transaction.
-- role: writer
-- record: PurchaseHistory
INSERT INTO purchase_history (
    diamond_id,
    supplier,
    supplier_order_id,
    offer_id,
    idempotency_key,
    status,
    reference,
    comments
)
VALUES (
    :diamond_id,
    :supplier,
    :supplier_order_id,
    :offer_id,
    :idempotency_key,
    :status,
    :reference,
    :comments
)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: get_purchase_by_idempotency_key(idempotency_key)^
-- The purchase stored under an idempotency key. Marked writer so it reads the
-- primary: a replay must find a purchase committed a moment ago, which a
-- lagging replica may not have yet.
-- role: writer
-- record: PurchaseHistory
SELECT *
FROM purchase_history
WHERE idempotency_key = :idempotency_key;

-- name: update_purchase_status(id, status, supplier_order_id)^
-- Set a purchase's status; supplier_order_id keeps its stored value when none
-- is given. A checkout order (one with an order number) is left alone: it
-- changes only through its transitions (queries/checkout.sql).
-- role: writer
-- record: PurchaseHistory
UPDATE purchase_history
SET
    status = :status,
    supplier_order_id = coalesce(:supplier_order_id, supplier_order_id),
    updated_at = now()
WHERE id = :id AND order_number IS NULL
RETURNING *;
