"""Pricing rules: priority-ordered markup rules and matching (queries/pricing_rules.sql)."""

from __future__ import annotations

from .._executor import Executor


class PricingRuleOperations(Executor):
    """Operations of queries/pricing_rules.sql."""
