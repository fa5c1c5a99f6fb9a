"""The checkout: orders, their payment state machine and the order views (queries/checkout.sql).

An order is a purchase_history row with an order number. Its life (README,
"Checkout: the state table"): `create_checkout` (pending_payment) ->
`attach_checkout_session` -> the provider's webhooks `record_payment` (paid,
the diamond sold in the same statement) or `record_checkout_expired` ->
`record_supplier_order` (confirmed) or `record_supplier_order_failed`. Each
transition is one compare-and-set statement that returns the order as it is
afterwards, so a replayed, late or concurrent webhook changes nothing and
gets the current order back.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID

from .._executor import Executor
from ..errors import IdempotencyConflict
from ..keyset import MAX_PAGE, decode_keyset_cursor, keyset_page
from ..records import (
    CheckoutStatus,
    HoldHistory,
    HoldStatus,
    KeysetPage,
    PaymentStatus,
    PurchaseHistory,
    SupplierOrderStatus,
)
from ..validation import (
    CHECKOUT_STATUSES,
    HOLD_STATUSES,
    PAYMENT_STATUSES,
    SUPPLIER_ORDER_STATUSES,
    choice_arg,
    currency_arg,
    date_arg,
    datetime_arg,
    int_arg,
    text_arg,
    uuid_arg,
)


def _page(rows: list[Any], limit: int) -> KeysetPage[Any]:
    return keyset_page(rows, limit, lambda row: (row.created_at, row.id))


def _replayed(
    stored: PurchaseHistory, diamond_id: UUID, offer_id: str, amount_cents: int, currency: str
) -> PurchaseHistory:
    """The stored order for a replayed create_checkout, unless the replay asks for another."""
    if stored.order_number is None:
        raise IdempotencyConflict(
            stored.idempotency_key, "already used for a purchase, not a checkout"
        )
    if (stored.diamond_id, stored.offer_id, stored.amount_cents, stored.currency) != (
        diamond_id,
        offer_id,
        amount_cents,
        currency,
    ):
        raise IdempotencyConflict(
            stored.idempotency_key, "already used for another diamond, offer, amount or currency"
        )
    return stored


class CheckoutOperations(Executor):
    """Operations of queries/checkout.sql."""

    async def create_checkout(
        self,
        diamond_id: UUID | str,
        *,
        supplier: str,
        offer_id: str,
        amount_cents: int,
        currency: str,
        idempotency_key: str,
        _order_day: date | None = None,
    ) -> PurchaseHistory | None:
        """Create an order awaiting payment (status pending_payment) with the next order number.

        `amount_cents` is what the customer pays, in `currency` (convert a USD
        price first with `convert_cents`). The same idempotency key returns the
        same order; under that key another diamond, offer, amount or currency
        raises IdempotencyConflict. None, with nothing written, when the
        diamond is not active and available (sold, on hold). `_order_day`
        (tests only) stands for today's UTC date in the order number.
        """
        params = {
            "diamond_id": uuid_arg("diamond_id", diamond_id),
            "supplier": text_arg("supplier", supplier),
            "offer_id": text_arg("offer_id", offer_id),
            "amount_cents": int_arg("amount_cents", amount_cents, minimum=1),
            "currency": currency_arg("currency", currency),
            "idempotency_key": text_arg("idempotency_key", idempotency_key),
            "order_day": date_arg("_order_day", _order_day, optional=True),
        }
        row = await self._one(PurchaseHistory, "create_checkout", **params)
        if row is not None:
            return row
        # Nothing inserted: the key is taken (read the stored row, which this
        # second statement's snapshot can see), or the diamond is not available.
        stored = await self._one(
            PurchaseHistory,
            "get_purchase_by_idempotency_key",  # reads the primary
            idempotency_key=params["idempotency_key"],
        )
        if stored is None:
            return None
        return _replayed(
            stored,
            params["diamond_id"],
            params["offer_id"],
            params["amount_cents"],
            params["currency"],
        )

    async def attach_checkout_session(
        self, order_id: UUID | str, session_id: str
    ) -> PurchaseHistory | None:
        """Attach the provider's session while the order awaits payment and has none.

        Returns the order afterwards (unchanged otherwise); None for no such order.
        """
        return await self._one(
            PurchaseHistory,
            "attach_checkout_session",
            order_id=uuid_arg("order_id", order_id),
            session_id=text_arg("session_id", session_id),
        )

    async def record_payment(
        self, session_id: str, *, payment_intent_id: str
    ) -> PurchaseHistory | None:
        """The session was paid: pending_payment or expired -> paid, the diamond sold, atomically.

        order_status becomes pending, or conflict when the diamond was no longer
        available (a refund case, listed by get_orders_needing_attention). A
        replay, or a payment of a paid or confirmed order, changes nothing.
        Returns the order afterwards; None for an unknown session.
        """
        return await self._one(
            PurchaseHistory,
            "record_payment",
            session_id=text_arg("session_id", session_id),
            payment_intent_id=text_arg("payment_intent_id", payment_intent_id),
        )

    async def record_checkout_expired(self, session_id: str) -> PurchaseHistory | None:
        """The session expired: pending_payment -> expired; any other state is kept.

        Returns the order afterwards (a paid order stays paid); None for an unknown session.
        """
        return await self._one(
            PurchaseHistory,
            "record_checkout_expired",
            session_id=text_arg("session_id", session_id),
        )

    async def record_supplier_order(
        self, order_id: UUID | str, *, supplier_order_id: str
    ) -> PurchaseHistory | None:
        """The supplier order was placed: paid (order pending or failed) -> confirmed, placed.

        Returns the order afterwards (unchanged from any other state); None for no such order.
        """
        return await self._one(
            PurchaseHistory,
            "record_supplier_order",
            order_id=uuid_arg("order_id", order_id),
            supplier_order_id=text_arg("supplier_order_id", supplier_order_id),
        )

    async def record_supplier_order_failed(
        self, order_id: UUID | str, *, error: str
    ) -> PurchaseHistory | None:
        """Placing the supplier order failed: paid with order pending -> order failed, `error` kept.

        A confirmed order is never downgraded. Returns the order afterwards;
        None for no such order.
        """
        return await self._one(
            PurchaseHistory,
            "record_supplier_order_failed",
            order_id=uuid_arg("order_id", order_id),
            order_error=text_arg("error", error),
        )

    async def get_order(self, order_id: UUID | str) -> PurchaseHistory | None:
        """One checkout order by id, or None."""
        return await self._one(
            PurchaseHistory, "get_order", order_id=uuid_arg("order_id", order_id)
        )

    async def get_order_by_number(self, order_number: str) -> PurchaseHistory | None:
        """One checkout order by its order number (DO-YYYYMMDD-NNNN), or None."""
        return await self._one(
            PurchaseHistory,
            "get_order_by_number",
            order_number=text_arg("order_number", order_number),
        )

    async def get_order_by_session(self, session_id: str) -> PurchaseHistory | None:
        """One checkout order by its provider session, or None."""
        return await self._one(
            PurchaseHistory, "get_order_by_session", session_id=text_arg("session_id", session_id)
        )

    async def list_orders(
        self,
        status: CheckoutStatus | None = None,
        payment_status: PaymentStatus | None = None,
        order_status: SupplierOrderStatus | None = None,
        since: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> KeysetPage[PurchaseHistory]:
        """Checkout orders, newest first, filtered; `cursor` is the previous page's next_cursor."""
        after_created_at, after_id = decode_keyset_cursor(cursor)
        row_limit = int_arg("limit", limit, minimum=1, maximum=MAX_PAGE)
        rows = await self._all(
            PurchaseHistory,
            "list_orders",
            status=None if status is None else choice_arg("status", status, CHECKOUT_STATUSES),
            payment_status=None
            if payment_status is None
            else choice_arg("payment_status", payment_status, PAYMENT_STATUSES),
            order_status=None
            if order_status is None
            else choice_arg("order_status", order_status, SUPPLIER_ORDER_STATUSES),
            since=datetime_arg("since", since, optional=True),
            after_created_at=after_created_at,
            after_id=after_id,
            row_limit=row_limit + 1,
        )
        return _page(rows, row_limit)

    async def get_orders_needing_attention(self) -> list[PurchaseHistory]:
        """Paid orders with a failed or conflicting supplier order, or paid after expiry."""
        return await self._all(PurchaseHistory, "get_orders_needing_attention")

    async def list_holds(
        self,
        status: HoldStatus | None = None,
        supplier: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> KeysetPage[HoldHistory]:
        """Holds, newest first, filtered; `cursor` is the previous page's next_cursor."""
        after_created_at, after_id = decode_keyset_cursor(cursor)
        row_limit = int_arg("limit", limit, minimum=1, maximum=MAX_PAGE)
        rows = await self._all(
            HoldHistory,
            "list_holds",
            status=None if status is None else choice_arg("status", status, HOLD_STATUSES),
            supplier=text_arg("supplier", supplier, optional=True),
            after_created_at=after_created_at,
            after_id=after_id,
            row_limit=row_limit + 1,
        )
        return _page(rows, row_limit)
