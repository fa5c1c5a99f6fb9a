"""The operations, one module per queries/ file, combined into `Operations`.

Each module is a mixin over `Executor`: it validates arguments, then runs the
named statements of its domain. Database, Transaction and `db.primary` all
inherit `Operations`, so every operation is available on each.
"""

from __future__ import annotations

from .api_keys import ApiKeyOperations
from .catalogue import CatalogueOperations
from .checkout import CheckoutOperations
from .diamonds import DiamondOperations
from .exchange_rates import ExchangeRateOperations
from .hold_history import HoldHistoryOperations
from .pricing_rules import PricingRuleOperations
from .purchase_history import PurchaseHistoryOperations
from .raw_diamonds import RawDiamondOperations
from .run_metadata import RunMetadataOperations
from .worker_runs import WorkerRunOperations


class Operations(
    DiamondOperations,
    RawDiamondOperations,
    RunMetadataOperations,
    WorkerRunOperations,
    PricingRuleOperations,
    ApiKeyOperations,
    HoldHistoryOperations,
    PurchaseHistoryOperations,
    CheckoutOperations,
    ExchangeRateOperations,
    CatalogueOperations,
):
    """Every operation of the library; see the domain modules."""


__all__ = ["Operations"]
