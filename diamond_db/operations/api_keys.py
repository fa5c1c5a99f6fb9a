"""API keys: validation of hashed keys, creation, deactivation (queries/api_keys.sql)."""

from __future__ import annotations

from .._executor import Executor


class ApiKeyOperations(Executor):
    """Operations of queries/api_keys.sql."""
