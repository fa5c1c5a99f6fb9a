"""Dataset versions: per-supplier cache keys for the API (queries/dataset_versions.sql)."""

from __future__ import annotations

from .._executor import Executor
from ..records import DatasetVersion
from ..validation import supplier_arg


class DatasetVersionOperations(Executor):
    """Operations of queries/dataset_versions.sql."""

    async def get_dataset_version(self, supplier: str) -> int:
        """The supplier's dataset version; 0 if it was never bumped."""
        version: int = await self._value(
            "get_dataset_version", supplier=supplier_arg("supplier", supplier)
        )
        return version

    async def get_dataset_versions(self) -> dict[str, int]:
        """Every supplier's dataset version (suppliers never bumped are absent)."""
        rows = await self._all(DatasetVersion, "get_dataset_versions")
        return {row.supplier: row.version for row in rows}

    async def bump_dataset_version(self, supplier: str) -> int:
        """Add one to the supplier's version and return it (1 the first time).

        One statement: concurrent bumps each get a distinct, strictly increasing
        value. Called on a transaction (`tx.bump_dataset_version(...)`) it
        commits, or rolls back, with the changes it announces.
        """
        version: int = await self._value(
            "bump_dataset_version", supplier=supplier_arg("supplier", supplier)
        )
        return version
