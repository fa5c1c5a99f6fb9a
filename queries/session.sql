-- Session settings applied by the library itself, not by any domain.

-- name: set_statement_timeout(timeout)$
-- Bound every statement of the current transaction (milliseconds, as text).
-- Transaction-local (is_local = true), so it is safe behind a transaction-mode
-- pooler such as PgBouncer or Supabase's, where a session SET would leak.
-- role: reader
SELECT set_config('statement_timeout', :timeout, TRUE);
