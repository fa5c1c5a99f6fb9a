"""diamond_db: the SQL-first async PostgreSQL data layer of the diamond-inventory platform.

Every statement lives, named and commented, in the queries/ folder; this
package validates arguments, runs those statements through a psycopg pool and
returns typed records. Use a `Database` explicitly, or the module-level
coroutines, which share one process-wide database built from DATABASE_URL.
"""

from __future__ import annotations

from ._default import (
    close_pool,
    create_run_metadata,
    get_diamond_by_id,
    get_pool,
    get_run_metadata,
    transaction,
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
    "create_run_metadata",
    "default_registry",
    "get_diamond_by_id",
    "get_pool",
    "get_run_metadata",
    "transaction",
]
