"""Purchases: the idempotent audit trail (queries/purchase_history.sql)."""

from __future__ import annotations

from uuid import UUID

from .._executor import Executor
from ..errors import IdempotencyConflict
from ..records import PurchaseHistory, PurchaseStatus
from ..validation import PURCHASE_STATUSES, choice_arg, text_arg, uuid_arg


def _replayed(stored: PurchaseHistory, diamond_id: UUID, offer_id: str) -> PurchaseHistory:
    """The stored purchase for a replay, unless the replay is for another diamond or offer."""
    if stored.diamond_id != diamond_id or stored.offer_id != offer_id:
        raise IdempotencyConflict(
            stored.idempotency_key, "already used for another diamond or offer"
        )
    return stored


class PurchaseHistoryOperations(Executor):
    """Operations of queries/purchase_history.sql."""

    async def create_purchase_history(
        self,
        *,
        diamond_id: UUID | str,
        supplier: str,
        offer_id: str,
        idempotency_key: str,
        status: PurchaseStatus = "pending",
        supplier_order_id: str | None = None,
        reference: str | None = None,
        comments: str | None = None,
    ) -> PurchaseHistory:
        """Record a purchase once per idempotency key; a replay returns the stored row.

        A replay for another diamond or offer raises IdempotencyConflict.
        Safe under concurrent replays: exactly one row is ever inserted.
        """
        params = {
            "diamond_id": uuid_arg("diamond_id", diamond_id),
            "supplier": text_arg("supplier", supplier),
            "offer_id": text_arg("offer_id", offer_id),
            "idempotency_key": text_arg("idempotency_key", idempotency_key),
            "status": choice_arg("status", status, PURCHASE_STATUSES),
            "supplier_order_id": text_arg("supplier_order_id", supplier_order_id, optional=True),
            "reference": text_arg("reference", reference, optional=True, empty=True),
            "comments": text_arg("comments", comments, optional=True, empty=True),
        }
        # Two statements, not one: the INSERT's snapshot cannot see a row that a
        # concurrent caller committed, the next statement's can. Should that row
        # vanish in between (never in practice), the key is free: insert again.
        while True:
            row = await self._one(PurchaseHistory, "insert_purchase_history", **params)
            if row is not None:
                return row
            stored = await self.get_purchase_by_idempotency_key(params["idempotency_key"])
            if stored is not None:
                return _replayed(stored, params["diamond_id"], params["offer_id"])

    async def get_purchase_by_idempotency_key(self, key: str) -> PurchaseHistory | None:
        """The purchase stored under this idempotency key (read on the primary), or None."""
        return await self._one(
            PurchaseHistory,
            "get_purchase_by_idempotency_key",
            idempotency_key=text_arg("key", key),
        )

    async def update_purchase_status(
        self,
        id: UUID | str,
        status: PurchaseStatus,
        supplier_order_id: str | None = None,
    ) -> PurchaseHistory | None:
        """Set a purchase's status (and supplier order id, kept when None); None when unknown.

        A checkout order is not a purchase to set: None, unchanged (it moves
        only through its transitions, such as record_supplier_order).
        """
        return await self._one(
            PurchaseHistory,
            "update_purchase_status",
            id=uuid_arg("id", id),
            status=choice_arg("status", status, PURCHASE_STATUSES),
            supplier_order_id=text_arg("supplier_order_id", supplier_order_id, optional=True),
        )
