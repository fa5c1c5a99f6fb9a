"""The operations, one module per queries/ file, combined into `Operations`.

Each module is a mixin over `Executor`: it validates arguments, then runs the
named statements of its domain. Database, Transaction and `db.primary` all
inherit `Operations`, so every operation is available on each.
"""

from __future__ import annotations

from .api_keys import ApiKeyOperations
from .catalogue import CatalogueOperations
from .catalogue_jobs import CatalogueJobOperations
from .checkout import CheckoutOperations
from .dashboard import DashboardOperations
from .dataset_versions import DatasetVersionOperations
from .diamonds import DiamondOperations
from .error_log import ErrorLogOperations
from .exchange_rates import ExchangeRateOperations
from .hold_history import HoldHistoryOperations
from .partition_progress import PartitionProgressOperations
from .pricing_rules import PricingRuleOperations
from .purchase_history import PurchaseHistoryOperations
from .rating_rules import RatingRuleOperations
from .raw_diamonds import RawDiamondOperations
from .run_control import RunControlOperations
from .run_metadata import RunMetadataOperations
from .worker_runs import WorkerRunOperations


class Operations(
    DiamondOperations,
    RawDiamondOperations,
    RunMetadataOperations,
    WorkerRunOperations,
    PricingRuleOperations,
    RatingRuleOperations,
    CatalogueJobOperations,
    ApiKeyOperations,
    HoldHistoryOperations,
    PurchaseHistoryOperations,
    CheckoutOperations,
    ExchangeRateOperations,
    CatalogueOperations,
    PartitionProgressOperations,
    RunControlOperations,
    DatasetVersionOperations,
    ErrorLogOperations,
    DashboardOperations,
):
    """Every operation of the library; see the domain modules."""


__all__ = ["Operations"]
