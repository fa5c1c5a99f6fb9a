-- Maintenance statements for throw-away databases (the pytest plugin, the demo).
-- Never run by any operation on a real database.

-- name: truncate_all_tables#
-- Empty every table between tests; sql/bootstrap.sql then re-seeds the default rule.
-- role: writer
TRUNCATE
diamonds,
raw_diamonds_nivoda,
pricing_rules,
run_metadata,
worker_runs,
api_keys,
hold_history,
purchase_history;
