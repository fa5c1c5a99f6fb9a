"""Raw supplier payloads: ingestion and claim-based consolidation (queries/raw_diamonds.sql)."""

from __future__ import annotations

from .._executor import Executor


class RawDiamondOperations(Executor):
    """Operations of queries/raw_diamonds.sql."""
