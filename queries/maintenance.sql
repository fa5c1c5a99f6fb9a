-- Maintenance statements for throw-away databases (the pytest plugin, the demo).
-- Never run by any operation on a real database.

-- name: reset_all_tables#
-- Empty every table but the migrations ledger between tests, and seed the
-- default pricing rule again, as migration 0001 and sql/bootstrap.sql do.
-- role: writer
TRUNCATE
diamonds,
raw_diamonds,
pricing_rules,
run_metadata,
worker_runs,
api_keys,
hold_history,
purchase_history,
order_number_counters,
exchange_rates,
rating_rules,
catalogue_job_snapshots,
catalogue_jobs,
partition_progress,
dataset_versions,
error_log;

INSERT INTO pricing_rules (priority, markup_ratio, rating)
VALUES (1000, 1.15, 5);
