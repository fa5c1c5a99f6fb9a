"""diamond_db: the SQL-first async PostgreSQL data layer of the diamond-inventory platform.

Every statement lives, named and commented, in the queries/ folder; this
package validates arguments, runs those statements through a psycopg pool and
returns typed records. Use a `Database` explicitly, or the module-level
coroutines, which share one process-wide database built from DATABASE_URL.
"""

from __future__ import annotations

from ._default import (
    close_pool,
    create_api_key,
    create_hold_history,
    create_pricing_rule,
    create_purchase_history,
    create_run_metadata,
    deactivate_api_key,
    deactivate_pricing_rule,
    get_active_pricing_rules,
    get_diamond_by_id,
    get_hold_history_by_diamond_id,
    get_pool,
    get_pricing_rule,
    get_purchase_by_idempotency_key,
    get_run_metadata,
    match_pricing_rule,
    place_hold,
    release_hold,
    transaction,
    update_api_key_last_used,
    update_hold_status,
    update_pricing_rule,
    update_purchase_status,
    validate_api_key,
)
from .config import Settings
from .database import Database, Transaction
from .errors import (
    DatabaseUnavailable,
    DiamondDBError,
    IdempotencyConflict,
    NotFoundError,
    ValidationError,
)
from .operations.api_keys import hash_api_key
from .records import (
    ApiKey,
    Diamond,
    DiamondInput,
    HoldHistory,
    PricingRule,
    PurchaseHistory,
    QueryEvent,
    RawDiamond,
    RawDiamondInput,
    RunMetadata,
    WorkerCounters,
    WorkerRun,
)
from .registry import Registry, Statement, default_registry

__all__ = [
    "ApiKey",
    "Database",
    "DatabaseUnavailable",
    "Diamond",
    "DiamondDBError",
    "DiamondInput",
    "HoldHistory",
    "IdempotencyConflict",
    "NotFoundError",
    "PricingRule",
    "PurchaseHistory",
    "QueryEvent",
    "RawDiamond",
    "RawDiamondInput",
    "Registry",
    "RunMetadata",
    "Settings",
    "Statement",
    "Transaction",
    "ValidationError",
    "WorkerCounters",
    "WorkerRun",
    "close_pool",
    "create_api_key",
    "create_hold_history",
    "create_pricing_rule",
    "create_purchase_history",
    "create_run_metadata",
    "deactivate_api_key",
    "deactivate_pricing_rule",
    "default_registry",
    "get_active_pricing_rules",
    "get_diamond_by_id",
    "get_hold_history_by_diamond_id",
    "get_pool",
    "get_pricing_rule",
    "get_purchase_by_idempotency_key",
    "get_run_metadata",
    "hash_api_key",
    "match_pricing_rule",
    "place_hold",
    "release_hold",
    "transaction",
    "update_api_key_last_used",
    "update_hold_status",
    "update_pricing_rule",
    "update_purchase_status",
    "validate_api_key",
]
