"""Supplier holds: the audit trail; placing and releasing holds (queries/hold_history.sql)."""

from __future__ import annotations

from .._executor import Executor


class HoldHistoryOperations(Executor):
    """Operations of queries/hold_history.sql."""
