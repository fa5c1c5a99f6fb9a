"""Supplier holds: the audit trail; placing and releasing holds (queries/hold_history.sql).

The flow: ask the supplier for a hold; if granted, `place_hold` (which may
still return None when another caller won the diamond: then release the
supplier's hold); if denied, `create_hold_history(denied=True,
status="expired")`. `release_hold` undoes a placed hold.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from .._executor import Executor
from ..records import HoldHistory, HoldStatus
from ..validation import HOLD_STATUSES, bool_arg, choice_arg, datetime_arg, text_arg, uuid_arg


class HoldHistoryOperations(Executor):
    """Operations of queries/hold_history.sql."""

    async def create_hold_history(
        self,
        *,
        diamond_id: UUID | str,
        supplier: str,
        offer_id: str,
        supplier_hold_id: str | None = None,
        status: HoldStatus = "active",
        denied: bool = False,
        hold_until: datetime | None = None,
    ) -> HoldHistory:
        """Record a supplier hold as given, touching no diamond (e.g. a denied hold)."""
        row = await self._one(
            HoldHistory,
            "create_hold_history",
            diamond_id=uuid_arg("diamond_id", diamond_id),
            supplier=text_arg("supplier", supplier),
            supplier_hold_id=text_arg("supplier_hold_id", supplier_hold_id, optional=True),
            offer_id=text_arg("offer_id", offer_id),
            status=choice_arg("status", status, HOLD_STATUSES),
            denied=bool_arg("denied", denied),
            hold_until=datetime_arg("hold_until", hold_until, optional=True),
        )
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def get_hold_history_by_diamond_id(self, diamond_id: UUID | str) -> list[HoldHistory]:
        """A diamond's holds, newest first."""
        return await self._all(
            HoldHistory,
            "get_hold_history_by_diamond_id",
            diamond_id=uuid_arg("diamond_id", diamond_id),
        )

    async def update_hold_status(self, id: UUID | str, status: HoldStatus) -> HoldHistory | None:
        """Set a hold's status; the updated hold, or None when the id is unknown.

        Only the history row changes: use release_hold to free the diamond.
        """
        return await self._one(
            HoldHistory,
            "update_hold_status",
            id=uuid_arg("id", id),
            status=choice_arg("status", status, HOLD_STATUSES),
        )

    async def place_hold(
        self,
        *,
        diamond_id: UUID | str,
        supplier: str,
        offer_id: str,
        supplier_hold_id: str,
        hold_until: datetime | None = None,
    ) -> HoldHistory | None:
        """Put an active, available diamond on hold and record the hold, atomically.

        Returns the 'active' history row; None when the diamond is unknown, not
        active or not available (nothing is written: release the supplier's hold).
        """
        return await self._one(
            HoldHistory,
            "place_hold",
            diamond_id=uuid_arg("diamond_id", diamond_id),
            supplier=text_arg("supplier", supplier),
            supplier_hold_id=text_arg("supplier_hold_id", supplier_hold_id),
            offer_id=text_arg("offer_id", offer_id),
            hold_until=datetime_arg("hold_until", hold_until, optional=True),
        )

    async def release_hold(self, *, diamond_id: UUID | str, supplier_hold_id: str) -> bool:
        """Free a diamond held under this hold id and mark that hold released, atomically.

        False, with nothing changed, unless it is the diamond's current hold.
        """
        released: bool = await self._value(
            "release_hold",
            diamond_id=uuid_arg("diamond_id", diamond_id),
            supplier_hold_id=text_arg("supplier_hold_id", supplier_hold_id),
        )
        return released
