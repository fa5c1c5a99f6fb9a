-- Exchange rates, with history: one row per (base, target, day), the primary
-- key exchange_rates_pkey serving both statements.

-- name: upsert_exchange_rate(base_currency, target_currency, rate, rate_date)^
-- Store a day's rate; a second upsert for the same day replaces that day's rate.
-- role: writer
-- record: ExchangeRate
INSERT INTO exchange_rates (base_currency, target_currency, rate, rate_date)
VALUES (:base_currency, :target_currency, :rate, :rate_date)
ON CONFLICT (base_currency, target_currency, rate_date) DO UPDATE
    SET
        rate = excluded.rate,
        updated_at = now()
RETURNING *;

-- name: get_exchange_rate(base_currency, target_currency, on_date)^
-- The latest rate on or before on_date (today in UTC when NULL); no row when
-- there is none. A backward scan of exchange_rates_pkey, one row read.
-- role: reader
-- record: ExchangeRate
SELECT *
FROM exchange_rates
WHERE
    base_currency = :base_currency
    AND target_currency = :target_currency
    AND rate_date <= coalesce(
        cast(:on_date AS DATE), cast(timezone('UTC', now()) AS DATE)
    )
ORDER BY rate_date DESC
LIMIT 1;
