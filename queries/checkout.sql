-- The checkout: card-payment orders (rows of purchase_history with an order
-- number) and their payment state machine. Every transition is ONE statement
-- that changes the order only from the states it allows (compare-and-set) and
-- returns the order as it is afterwards, changed or not: a replayed, late or
-- concurrent webhook changes nothing and gets the current order back.
--
-- The transitions share one shape, for a DBA reading them:
--   current_order  SELECT ... FOR UPDATE: waits for a concurrent transition of
--                  the same order to commit, then reads its latest version
--                  (under READ COMMITTED, FOR UPDATE returns the newest row).
--   changed        the UPDATE, guarded by current_order's state.
--   final SELECT   the changed row, or current_order when the guard refused.
-- Statuses: see README ("Checkout: the state table").

-- name: create_checkout(diamond_id, supplier, offer_id, amount_cents, currency, idempotency_key, order_day)^
-- Create an order awaiting payment, with the next order number of its UTC day
-- (order_day, or today in UTC when NULL), unless the idempotency key is
-- already stored or the diamond is not active and available: then nothing is
-- written (not even the day's counter) and no row is returned; the caller
-- reads the stored order by key. The counter row is bumped with INSERT ... ON
-- CONFLICT DO UPDATE: concurrent checkouts of one day queue on it for the
-- length of this statement and never share a number; a checkout that loses an
-- idempotency race leaves a gap.
-- role: writer
-- record: PurchaseHistory
WITH available AS (
    SELECT diamonds.id
    FROM diamonds
    WHERE
        diamonds.id = :diamond_id
        AND diamonds.status = 'active'
        AND diamonds.availability = 'available'
        AND NOT EXISTS (
            SELECT 1
            FROM purchase_history
            WHERE purchase_history.idempotency_key = :idempotency_key  -- noqa: RF02
        )
),

counter AS (
    INSERT INTO order_number_counters AS c (order_day, last_value)
    SELECT
        coalesce(
            cast(:order_day AS DATE), cast(timezone('UTC', now()) AS DATE)
        ) AS order_day,
        1 AS last_value
    FROM available
    ON CONFLICT (order_day) DO UPDATE
        SET last_value = c.last_value + 1
    RETURNING c.order_day, cast(c.last_value AS TEXT) AS last_value
)

INSERT INTO purchase_history (
    diamond_id,
    supplier,
    offer_id,
    idempotency_key,
    status,
    order_number,
    payment_status,
    order_status,
    amount_cents,
    currency
)
SELECT
    available.id AS diamond_id,
    :supplier AS supplier,  -- noqa: AL09, RF02
    :offer_id AS offer_id,  -- noqa: AL09, RF02
    :idempotency_key AS idempotency_key,  -- noqa: AL09, RF02
    'pending_payment' AS status,
    'DO-'
    || to_char(counter.order_day, 'YYYYMMDD')
    || '-'
    || lpad(counter.last_value, greatest(4, length(counter.last_value)), '0')
        AS order_number,
    'pending' AS payment_status,
    'not_attempted' AS order_status,
    cast(:amount_cents AS BIGINT) AS amount_cents,  -- noqa: RF02
    :currency AS currency  -- noqa: AL09, RF02
FROM available
CROSS JOIN counter
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING *;

-- name: attach_checkout_session(order_id, session_id)^
-- Attach the payment provider's checkout session to an order, only while it
-- awaits payment and has none; otherwise the order is returned unchanged.
-- No row: no such order.
-- role: writer
-- record: PurchaseHistory
WITH current_order AS (
    SELECT *
    FROM purchase_history
    WHERE id = :order_id AND order_number IS NOT NULL
    FOR UPDATE
),

changed AS (
    UPDATE purchase_history AS p
    SET
        checkout_session_id = :session_id,
        updated_at = now()
    FROM current_order AS c
    WHERE
        p.id = c.id
        AND c.status = 'pending_payment'
        AND c.checkout_session_id IS NULL
    RETURNING p.*
)

SELECT * FROM changed
UNION ALL
SELECT * FROM current_order
WHERE NOT EXISTS (SELECT 1 FROM changed);

-- name: record_payment(session_id, payment_intent_id)^
-- The provider reports the session paid: pending_payment (or expired: the
-- money was taken, the payment wins) -> paid, payment_status paid, paid_at
-- set; in the same statement the diamond becomes sold. `sold` runs only for an
-- order this payment moves to paid; if the diamond is no longer active and
-- available (sold or held for someone else), the order is paid with
-- order_status conflict (a refund case) instead of pending. Any other state
-- (already paid, confirmed): unchanged. No row: unknown session.
-- role: writer
-- record: PurchaseHistory
WITH current_order AS (
    SELECT *
    FROM purchase_history
    WHERE checkout_session_id = :session_id
    FOR UPDATE
),

sold AS (
    UPDATE diamonds AS d
    SET
        availability = 'sold',
        updated_at = now()
    FROM current_order AS c
    WHERE
        d.id = c.diamond_id
        AND c.status IN ('pending_payment', 'expired')
        AND d.status = 'active'
        AND d.availability = 'available'
    RETURNING d.id
),

changed AS (
    UPDATE purchase_history AS p
    SET
        status = 'paid',
        payment_status = 'paid',
        order_status = CASE
            WHEN EXISTS (SELECT 1 FROM sold) THEN 'pending' ELSE 'conflict'
        END,
        payment_intent_id = :payment_intent_id,
        paid_at = now(),
        updated_at = now()
    FROM current_order AS c
    WHERE
        p.id = c.id
        AND c.status IN ('pending_payment', 'expired')
    RETURNING p.*
)

SELECT * FROM changed
UNION ALL
SELECT * FROM current_order
WHERE NOT EXISTS (SELECT 1 FROM changed);

-- name: record_checkout_expired(session_id)^
-- The provider reports the session expired: pending_payment -> expired
-- (payment_status expired, expired_at set). Any other state (paid, confirmed,
-- already expired): unchanged. No row: unknown session.
-- role: writer
-- record: PurchaseHistory
WITH current_order AS (
    SELECT *
    FROM purchase_history
    WHERE checkout_session_id = :session_id
    FOR UPDATE
),

changed AS (
    UPDATE purchase_history AS p
    SET
        status = 'expired',
        payment_status = 'expired',
        expired_at = now(),
        updated_at = now()
    FROM current_order AS c
    WHERE
        p.id = c.id
        AND c.status = 'pending_payment'
    RETURNING p.*
)

SELECT * FROM changed
UNION ALL
SELECT * FROM current_order
WHERE NOT EXISTS (SELECT 1 FROM changed);

-- name: record_supplier_order(order_id, supplier_order_id)^
-- The supplier accepted the order: paid with order_status pending or failed
-- (a retry) -> confirmed, order_status placed. Any other state: unchanged.
-- No row: no such order.
-- role: writer
-- record: PurchaseHistory
WITH current_order AS (
    SELECT *
    FROM purchase_history
    WHERE id = :order_id AND order_number IS NOT NULL
    FOR UPDATE
),

changed AS (
    UPDATE purchase_history AS p
    SET
        status = 'confirmed',
        order_status = 'placed',
        supplier_order_id = :supplier_order_id,
        updated_at = now()
    FROM current_order AS c
    WHERE
        p.id = c.id
        AND c.status = 'paid'
        AND c.order_status IN ('pending', 'failed')
    RETURNING p.*
)

SELECT * FROM changed
UNION ALL
SELECT * FROM current_order
WHERE NOT EXISTS (SELECT 1 FROM changed);

-- name: record_supplier_order_failed(order_id, order_error)^
-- Placing the supplier order failed: paid with order_status pending -> failed,
-- the error kept in order_error (status stays paid). Any other state
-- (confirmed, already failed, conflict): unchanged. No row: no such order.
-- role: writer
-- record: PurchaseHistory
WITH current_order AS (
    SELECT *
    FROM purchase_history
    WHERE id = :order_id AND order_number IS NOT NULL
    FOR UPDATE
),

changed AS (
    UPDATE purchase_history AS p
    SET
        order_status = 'failed',
        order_error = :order_error,
        updated_at = now()
    FROM current_order AS c
    WHERE
        p.id = c.id
        AND c.status = 'paid'
        AND c.order_status = 'pending'
    RETURNING p.*
)

SELECT * FROM changed
UNION ALL
SELECT * FROM current_order
WHERE NOT EXISTS (SELECT 1 FROM changed);

-- name: get_order(order_id)^
-- One checkout order by id (a purchase without an order number is none).
-- role: reader
-- record: PurchaseHistory
SELECT *
FROM purchase_history
WHERE id = :order_id AND order_number IS NOT NULL;

-- name: get_order_by_number(order_number)^
-- One checkout order by its order number (purchase_history_order_number_key).
-- role: reader
-- record: PurchaseHistory
SELECT *
FROM purchase_history
WHERE order_number = :order_number;

-- name: get_order_by_session(session_id)^
-- One checkout order by its checkout session (purchase_history_checkout_session_key).
-- role: reader
-- record: PurchaseHistory
SELECT *
FROM purchase_history
WHERE checkout_session_id = :session_id;

-- name: list_orders(status, payment_status, order_status, since, after_created_at, after_id, row_limit)
-- Checkout orders, newest first, each filter ignored when NULL; keyset-paged:
-- a page starts after (after_created_at, after_id), the previous page's last
-- order. Served backwards by purchase_history_created_idx.
-- role: reader
-- record: PurchaseHistory
SELECT *
FROM purchase_history
WHERE
    order_number IS NOT NULL
    AND (cast(:status AS TEXT) IS NULL OR status = :status)
    AND (cast(:payment_status AS TEXT) IS NULL OR payment_status = :payment_status)
    AND (cast(:order_status AS TEXT) IS NULL OR order_status = :order_status)
    AND (cast(:since AS TIMESTAMPTZ) IS NULL OR created_at >= :since)
    AND (
        cast(:after_created_at AS TIMESTAMPTZ) IS NULL
        OR (created_at, id) < (:after_created_at, cast(:after_id AS UUID))
    )
ORDER BY created_at DESC, id DESC
LIMIT :row_limit;

-- name: get_orders_needing_attention()
-- Paid orders someone must look at, newest first: the supplier order failed,
-- the diamond was gone when the payment came (conflict: refund), or the
-- payment came after the session had expired. Served by purchase_history_paid_idx.
-- role: reader
-- record: PurchaseHistory
SELECT *
FROM purchase_history
WHERE
    status = 'paid'
    AND (order_status IN ('failed', 'conflict') OR expired_at IS NOT NULL)
ORDER BY created_at DESC, id DESC;

-- name: list_holds(status, supplier, after_created_at, after_id, row_limit)
-- Holds, newest first, each filter ignored when NULL; keyset-paged like
-- list_orders. Served backwards by hold_history_created_idx.
-- role: reader
-- record: HoldHistory
SELECT *
FROM hold_history
WHERE
    (cast(:status AS TEXT) IS NULL OR status = :status)
    AND (cast(:supplier AS TEXT) IS NULL OR supplier = :supplier)
    AND (
        cast(:after_created_at AS TIMESTAMPTZ) IS NULL
        OR (created_at, id) < (:after_created_at, cast(:after_id AS UUID))
    )
ORDER BY created_at DESC, id DESC
LIMIT :row_limit;
