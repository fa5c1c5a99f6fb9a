"""The process-wide default database behind the module-level functions.

Configured from the environment (DATABASE_URL and the PG_* variables) the
first time it is needed, not at import, so importing diamond_db never fails.
"""

from __future__ import annotations

from .config import Settings, settings_from_env
from .database import Database, Pool


class _DefaultDatabase(Database):
    """A Database whose settings come from the environment, lazily."""

    def __init__(self) -> None:
        self._given = None
        self._setup(None)

    @property
    def settings(self) -> Settings:
        if self._given is None:
            self._given = settings_from_env()
            self._observer.slow_threshold = self._given.slow_query_threshold
        return self._given

    async def close(self) -> None:
        await super().close()
        self._given = None  # the next use reads the environment again


default_database = _DefaultDatabase()


def get_pool() -> Pool:
    """The process-wide pool, built from DATABASE_URL (opened by the first operation).

    Raises ValidationError naming DATABASE_URL when it is not set.
    """
    return default_database.pool


async def close_pool() -> None:
    """Close the process-wide pool (on shutdown); a later call opens a new one."""
    await default_database.close()


transaction = default_database.transaction

# -- diamonds ----------------------------------------------------------------
get_diamond_by_id = default_database.get_diamond_by_id
get_diamond_by_offer_id = default_database.get_diamond_by_offer_id
search_diamonds = default_database.search_diamonds
soft_delete_diamond = default_database.soft_delete_diamond
update_diamond_availability = default_database.update_diamond_availability
upsert_diamond = default_database.upsert_diamond
upsert_diamonds = default_database.upsert_diamonds

# -- catalogue ---------------------------------------------------------------
get_diamonds_on_hold = default_database.get_diamonds_on_hold
get_recommended_diamonds = default_database.get_recommended_diamonds
get_related_diamonds = default_database.get_related_diamonds
quick_search_diamonds = default_database.quick_search_diamonds
search_facets = default_database.search_facets

# -- raw diamonds ------------------------------------------------------------
claim_unconsolidated_raw_diamonds = default_database.claim_unconsolidated_raw_diamonds
get_unconsolidated_count = default_database.get_unconsolidated_count
get_unconsolidated_raw_diamonds = default_database.get_unconsolidated_raw_diamonds
mark_as_consolidated = default_database.mark_as_consolidated
mark_as_failed = default_database.mark_as_failed
purge_raw_payloads = default_database.purge_raw_payloads
reset_failed_raw_diamonds = default_database.reset_failed_raw_diamonds
reset_stuck_claims = default_database.reset_stuck_claims
upsert_raw_diamond = default_database.upsert_raw_diamond
upsert_raw_diamonds = default_database.upsert_raw_diamonds

# -- run metadata ------------------------------------------------------------
complete_run = default_database.complete_run
create_run_metadata = default_database.create_run_metadata
get_run_metadata = default_database.get_run_metadata
increment_completed_workers = default_database.increment_completed_workers
increment_failed_workers = default_database.increment_failed_workers

# -- worker runs -------------------------------------------------------------
create_worker_run = default_database.create_worker_run
get_failed_worker_runs = default_database.get_failed_worker_runs
get_worker_runs_by_run_id = default_database.get_worker_runs_by_run_id
reset_all_failed_workers = default_database.reset_all_failed_workers
reset_failed_worker = default_database.reset_failed_worker
update_worker_run = default_database.update_worker_run

# -- partition progress -----------------------------------------------------
advance_partition = default_database.advance_partition
complete_partition = default_database.complete_partition
fail_partition = default_database.fail_partition
get_partition = default_database.get_partition
get_stalled_partitions = default_database.get_stalled_partitions
init_partition = default_database.init_partition
list_partitions = default_database.list_partitions
record_page = default_database.record_page
retry_partition = default_database.retry_partition

# -- run control -------------------------------------------------------------
add_consolidation_stats = default_database.add_consolidation_stats
cancel_run = default_database.cancel_run
delete_run = default_database.delete_run
finish_consolidation = default_database.finish_consolidation
mark_consolidation_started = default_database.mark_consolidation_started
update_worker_progress = default_database.update_worker_progress

# -- dataset versions --------------------------------------------------------
bump_dataset_version = default_database.bump_dataset_version
get_dataset_version = default_database.get_dataset_version
get_dataset_versions = default_database.get_dataset_versions

# -- error log ---------------------------------------------------------------
error_services = default_database.error_services
list_errors = default_database.list_errors
log_error = default_database.log_error
purge_errors = default_database.purge_errors

# -- dashboard ---------------------------------------------------------------
get_consolidation_progress = default_database.get_consolidation_progress
get_dashboard_summary = default_database.get_dashboard_summary
get_run_details = default_database.get_run_details
get_supplier_stats = default_database.get_supplier_stats
list_runs = default_database.list_runs

# -- pricing rules -----------------------------------------------------------
create_pricing_rule = default_database.create_pricing_rule
deactivate_pricing_rule = default_database.deactivate_pricing_rule
get_active_pricing_rules = default_database.get_active_pricing_rules
get_pricing_rule = default_database.get_pricing_rule
match_pricing_rule = default_database.match_pricing_rule
update_pricing_rule = default_database.update_pricing_rule

# -- rating rules ------------------------------------------------------------
create_rating_rule = default_database.create_rating_rule
deactivate_rating_rule = default_database.deactivate_rating_rule
get_active_rating_rules = default_database.get_active_rating_rules
get_rating_rule = default_database.get_rating_rule
match_rating_rule = default_database.match_rating_rule
update_rating_rule = default_database.update_rating_rule

# -- catalogue jobs ----------------------------------------------------------
cancel_catalogue_job = default_database.cancel_catalogue_job
get_catalogue_job = default_database.get_catalogue_job
get_stalled_catalogue_jobs = default_database.get_stalled_catalogue_jobs
list_catalogue_jobs = default_database.list_catalogue_jobs
retry_catalogue_job = default_database.retry_catalogue_job
revert_catalogue_job = default_database.revert_catalogue_job
run_catalogue_job = default_database.run_catalogue_job
start_catalogue_job = default_database.start_catalogue_job

# -- api keys ----------------------------------------------------------------
create_api_key = default_database.create_api_key
deactivate_api_key = default_database.deactivate_api_key
update_api_key_last_used = default_database.update_api_key_last_used
validate_api_key = default_database.validate_api_key

# -- hold history ------------------------------------------------------------
create_hold_history = default_database.create_hold_history
get_hold_history_by_diamond_id = default_database.get_hold_history_by_diamond_id
place_hold = default_database.place_hold
release_hold = default_database.release_hold
update_hold_status = default_database.update_hold_status

# -- purchase history --------------------------------------------------------
create_purchase_history = default_database.create_purchase_history
get_purchase_by_idempotency_key = default_database.get_purchase_by_idempotency_key
update_purchase_status = default_database.update_purchase_status

# -- checkout ----------------------------------------------------------------
attach_checkout_session = default_database.attach_checkout_session
create_checkout = default_database.create_checkout
get_order = default_database.get_order
get_order_by_number = default_database.get_order_by_number
get_order_by_session = default_database.get_order_by_session
get_orders_needing_attention = default_database.get_orders_needing_attention
list_holds = default_database.list_holds
list_orders = default_database.list_orders
record_checkout_expired = default_database.record_checkout_expired
record_payment = default_database.record_payment
record_supplier_order = default_database.record_supplier_order
record_supplier_order_failed = default_database.record_supplier_order_failed

# -- exchange rates ----------------------------------------------------------
convert_cents = default_database.convert_cents
get_exchange_rate = default_database.get_exchange_rate
upsert_exchange_rate = default_database.upsert_exchange_rate
