"""Diamond inventory: lookups, upserts, availability, soft delete, search (queries/diamonds.sql)."""

from __future__ import annotations

from uuid import UUID

from .._executor import Executor
from ..records import Diamond
from ..validation import uuid_arg


class DiamondOperations(Executor):
    """Operations of queries/diamonds.sql."""

    async def get_diamond_by_id(self, id: UUID | str) -> Diamond | None:
        """The active diamond with this id, or None (soft-deleted ones are not found)."""
        return await self._one(Diamond, "get_diamond_by_id", id=uuid_arg("id", id))
