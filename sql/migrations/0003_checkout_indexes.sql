-- 0003 checkout indexes: the unique and keyset indexes of the checkout (0002).
--
-- What: unique indexes on purchase_history.order_number and
-- purchase_history.checkout_session_id (several NULLs are allowed: purchases
-- created by create_purchase_history have neither), the newest-first keyset
-- indexes of list_orders (purchase_history) and list_holds (hold_history),
-- and the partial index of get_orders_needing_attention.
-- Why: the checkout issue; order numbers and sessions are unique, and the
-- order and hold views page by (created_at, id).
-- Locks: each index is built CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and
-- writes go on): measured 0.12 s (unique) to 0.23 s (created_at, id) each on
-- 100,000 purchases, a 2-core machine; the whole file with the runner ~0.8 s.
-- Transaction: none (CREATE INDEX CONCURRENTLY); every statement re-runnable
-- (IF NOT EXISTS; an INVALID index left by a failed build is dropped by the
-- runner before it runs again).
-- transaction: none
-- squawk-disable-assume-in-transaction
--

-- Order numbers are unique.
-- locks: SHARE UPDATE EXCLUSIVE on purchase_history (reads and writes go on).
-- cost: purchase_history 800000
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS purchase_history_order_number_key
ON purchase_history (order_number);

-- A checkout session belongs to one order.
-- locks: SHARE UPDATE EXCLUSIVE on purchase_history (reads and writes go on).
-- cost: purchase_history 800000
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS purchase_history_checkout_session_key
ON purchase_history (checkout_session_id);

-- list_orders: newest first, keyset-paged by (created_at, id).
-- locks: SHARE UPDATE EXCLUSIVE on purchase_history (reads and writes go on).
-- cost: purchase_history 430000
CREATE INDEX CONCURRENTLY IF NOT EXISTS purchase_history_created_idx
ON purchase_history (created_at, id);

-- list_holds: newest first, keyset-paged by (created_at, id).
-- locks: SHARE UPDATE EXCLUSIVE on hold_history (reads and writes go on).
-- cost: hold_history 430000
CREATE INDEX CONCURRENTLY IF NOT EXISTS hold_history_created_idx
ON hold_history (created_at, id);

-- get_orders_needing_attention: paid orders only (a transient state: a paid
-- order becomes confirmed once its supplier order is placed), so it stays small.
-- locks: SHARE UPDATE EXCLUSIVE on purchase_history (reads and writes go on).
-- cost: purchase_history 800000
CREATE INDEX CONCURRENTLY IF NOT EXISTS purchase_history_paid_idx
ON purchase_history (created_at, id) WHERE status = 'paid';
