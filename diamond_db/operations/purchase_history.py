"""Purchases: the idempotent audit trail (queries/purchase_history.sql)."""

from __future__ import annotations

from .._executor import Executor


class PurchaseHistoryOperations(Executor):
    """Operations of queries/purchase_history.sql."""
