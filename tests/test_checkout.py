"""The checkout: order numbers, the payment state machine (every state x event, replays,
out-of-order and concurrent deliveries), payment racing a hold, and the order views."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest
from helpers import fetch, insert_diamond, scalar

from diamond_db import (
    Database,
    IdempotencyConflict,
    PurchaseHistory,
    ValidationError,
)
from diamond_db.operations import Operations

ORDER_NUMBER = re.compile(r"^DO-(\d{8})-(\d{4,})$")


@pytest.fixture
def diamond(diamond_db: Database, diamond_db_url: str) -> UUID:
    """An active, available diamond in the freshly emptied database."""
    return insert_diamond(diamond_db_url)


_keys = itertools.count()


async def checkout(
    db: Operations,
    diamond: UUID,
    key: str | None = None,
    *,
    amount_cents: int = 650_000,
    currency: str = "USD",
    offer_id: str = "offer-1",
    day: date | None = None,
) -> PurchaseHistory | None:
    return await db.create_checkout(
        diamond,
        supplier="nivoda",
        offer_id=offer_id,
        amount_cents=amount_cents,
        currency=currency,
        idempotency_key=key or f"key-{next(_keys)}",
        _order_day=day,
    )


async def open_order(db: Operations, diamond: UUID, session: str | None = None) -> PurchaseHistory:
    """A checkout with a session attached (pending_payment)."""
    order = await checkout(db, diamond)
    assert order is not None
    attached = await db.attach_checkout_session(order.id, session or f"cs_{order.id}")
    assert attached is not None
    return attached


def stored(url: str, order_id: UUID) -> dict[str, Any]:
    """The order's row, read directly."""
    with_names = fetch(
        url,
        "SELECT status, payment_status, order_status, checkout_session_id, payment_intent_id,"
        " supplier_order_id, order_error, paid_at, expired_at, updated_at, amount_cents, currency,"
        " order_number FROM purchase_history WHERE id = %s",
        order_id,
    )
    names = [
        "status",
        "payment_status",
        "order_status",
        "checkout_session_id",
        "payment_intent_id",
        "supplier_order_id",
        "order_error",
        "paid_at",
        "expired_at",
        "updated_at",
        "amount_cents",
        "currency",
        "order_number",
    ]
    return dict(zip(names, with_names[0], strict=True))


def availability(url: str, diamond: UUID) -> str:
    return str(scalar(url, "SELECT availability FROM diamonds WHERE id = %s", diamond))


def orders_count(url: str) -> int:
    return int(scalar(url, "SELECT count(*) FROM purchase_history"))


# -- create_checkout ------------------------------------------------------------


async def test_create_checkout_records_an_order_awaiting_payment(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    order = await checkout(diamond_db, diamond, "key-1", amount_cents=612_345, currency="EUR")
    assert order is not None
    today = scalar(diamond_db_url, "SELECT cast(timezone('UTC', now()) AS DATE)")
    assert order.order_number == f"DO-{today:%Y%m%d}-0001"
    row = stored(diamond_db_url, order.id)
    assert (row["status"], row["payment_status"], row["order_status"]) == (
        "pending_payment",
        "pending",
        "not_attempted",
    )
    assert (row["amount_cents"], row["currency"], row["order_number"]) == (
        612_345,
        "EUR",
        order.order_number,
    )
    assert row["checkout_session_id"] is None
    assert row["paid_at"] is None
    assert availability(diamond_db_url, diamond) == "available"  # a checkout reserves nothing
    assert await diamond_db.get_order(order.id) == order
    assert await diamond_db.get_order_by_number(order.order_number) == order


async def test_the_same_key_returns_the_same_order(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    first = await checkout(diamond_db, diamond, "key-1")
    again = await checkout(diamond_db, diamond, "key-1")
    assert again == first
    assert orders_count(diamond_db_url) == 1


async def test_a_replay_is_answered_even_once_the_diamond_is_sold(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    order = await open_order(diamond_db, diamond, "cs_1")
    await diamond_db.record_payment("cs_1", payment_intent_id="pi_1")
    assert availability(diamond_db_url, diamond) == "sold"
    replay = await checkout(diamond_db, diamond, order.idempotency_key)
    assert replay is not None
    assert replay.id == order.id
    assert replay.status == "paid"


@pytest.mark.parametrize(
    "changed",
    [
        {"amount_cents": 1},
        {"currency": "EUR"},
        {"offer_id": "offer-2"},
        {"diamond": True},
    ],
)
async def test_a_replay_asking_for_something_else_is_a_conflict(
    diamond_db: Database, diamond_db_url: str, diamond: UUID, changed: dict[str, Any]
) -> None:
    order = await checkout(diamond_db, diamond, "key-1")
    assert order is not None
    other = insert_diamond(diamond_db_url) if changed.pop("diamond", False) else diamond
    with pytest.raises(IdempotencyConflict) as error:
        await checkout(diamond_db, other, "key-1", **changed)
    assert error.value.idempotency_key == "key-1"
    assert orders_count(diamond_db_url) == 1


async def test_a_purchase_key_is_not_a_checkout(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    await diamond_db.create_purchase_history(
        diamond_id=diamond, supplier="nivoda", offer_id="offer-1", idempotency_key="key-1"
    )
    with pytest.raises(IdempotencyConflict):
        await checkout(diamond_db, diamond, "key-1")
    assert orders_count(diamond_db_url) == 1


@pytest.mark.parametrize(
    ("availability_", "status"),
    [
        ("on_hold", "active"),
        ("sold", "active"),
        ("unavailable", "active"),
        ("available", "deleted"),
    ],
)
async def test_an_unavailable_diamond_gets_no_order_and_nothing_is_written(
    diamond_db: Database, diamond_db_url: str, availability_: str, status: str
) -> None:
    diamond = insert_diamond(diamond_db_url, availability=availability_, status=status)
    assert await checkout(diamond_db, diamond) is None
    assert await checkout(diamond_db, uuid4()) is None
    assert orders_count(diamond_db_url) == 0
    assert scalar(diamond_db_url, "SELECT count(*) FROM order_number_counters") == 0


async def test_twenty_racing_checkouts_with_one_key_store_one_order(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        results = await asyncio.gather(*(checkout(db, diamond, "key-race") for _ in range(20)))
    rows = fetch(diamond_db_url, "SELECT id, order_number FROM purchase_history")
    assert len(rows) == 1
    assert {r.id for r in results if r is not None} == {rows[0][0]}
    assert {r.order_number for r in results if r is not None} == {rows[0][1]}


async def test_order_numbers_are_unique_under_200_concurrent_checkouts(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        results = await asyncio.gather(*(checkout(db, diamond) for _ in range(200)))
    numbers = [r.order_number for r in results if r is not None and r.order_number is not None]
    stored_numbers = [
        row[0] for row in fetch(diamond_db_url, "SELECT order_number FROM purchase_history")
    ]
    assert len(numbers) == len(set(stored_numbers)) == len(stored_numbers) == 200
    assert sorted(numbers) == sorted(stored_numbers)
    matches = [ORDER_NUMBER.match(n) for n in numbers]
    sequence = sorted(int(m[2]) for m in matches if m is not None)
    assert sequence == list(range(1, 201))  # no idempotency race here: no gap either


async def test_the_counter_restarts_each_utc_day(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    numbers = [
        (await checkout(diamond_db, diamond, day=day)).order_number  # type: ignore[union-attr]
        for day in (date(2026, 12, 31), date(2026, 12, 31), date(2027, 1, 1), date(2026, 12, 31))
    ]
    assert numbers == [
        "DO-20261231-0001",
        "DO-20261231-0002",
        "DO-20270101-0001",
        "DO-20261231-0003",
    ]
    # The default day is the UTC date, whatever the session's time zone (at any hour,
    # one of these two zones is on another calendar day than UTC).
    for n, zone in enumerate(("Etc/GMT+12", "Pacific/Kiritimati"), start=1):
        async with Database(f"{diamond_db_url} options='-c TimeZone={zone}'") as db:
            order = await checkout(db, diamond)
        assert order is not None
        assert order.order_number == f"DO-{datetime.now(UTC):%Y%m%d}-{n:04d}"


async def test_a_number_past_9999_keeps_all_its_digits(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    fetch(
        diamond_db_url, "INSERT INTO order_number_counters VALUES ('2027-01-01', 9999) RETURNING 1"
    )
    order = await checkout(diamond_db, diamond, day=date(2027, 1, 1))
    assert order is not None
    assert order.order_number == "DO-20270101-10000"


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"amount_cents": 0}, "amount_cents"),
        ({"amount_cents": -5}, "amount_cents"),
        ({"currency": "usd"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"currency": "USDX"}, "currency"),
        ({"offer_id": ""}, "offer_id"),
    ],
)
async def test_bad_checkout_arguments_are_rejected_before_any_sql(
    diamond_db: Database, diamond_db_url: str, diamond: UUID, changes: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValidationError) as error:
        await checkout(diamond_db, diamond, **changes)
    assert error.value.argument == name
    assert orders_count(diamond_db_url) == 0


# -- the state machine: a model, and every sequence of events checked against it ----------


@dataclass(frozen=True)
class Model:
    """What an order should look like after a sequence of events (diamond available)."""

    status: str = "pending_payment"
    payment_status: str = "pending"
    order_status: str = "not_attempted"
    session: bool = False
    paid: bool = False
    expired: bool = False
    error: bool = False
    supplier_order: bool = False

    def after(self, event: str) -> Model | None:
        """The state after `event`; None when the event finds no order (no session yet)."""
        if event == "attach":
            if self.status == "pending_payment" and not self.session:
                return replace(self, session=True)
            return self
        if event in ("pay", "expire") and not self.session:
            return None
        if event == "pay":
            if self.status in ("pending_payment", "expired"):
                return replace(
                    self, status="paid", payment_status="paid", order_status="pending", paid=True
                )
            return self
        if event == "expire":
            if self.status == "pending_payment":
                return replace(self, status="expired", payment_status="expired", expired=True)
            return self
        if event == "placed":
            if self.status == "paid" and self.order_status in ("pending", "failed"):
                return replace(self, status="confirmed", order_status="placed", supplier_order=True)
            return self
        assert event == "failed"
        if self.status == "paid" and self.order_status == "pending":
            return replace(self, order_status="failed", error=True)
        return self

    @property
    def needs_attention(self) -> bool:
        return self.status == "paid" and (self.order_status == "failed" or self.expired)


EVENTS = ("attach", "pay", "expire", "placed", "failed")


async def deliver(db: Operations, order: PurchaseHistory, event: str) -> PurchaseHistory | None:
    session = f"cs_{order.id}"
    if event == "attach":
        return await db.attach_checkout_session(order.id, session)
    if event == "pay":
        return await db.record_payment(session, payment_intent_id="pi_1")
    if event == "expire":
        return await db.record_checkout_expired(session)
    if event == "placed":
        return await db.record_supplier_order(order.id, supplier_order_id="so_1")
    return await db.record_supplier_order_failed(order.id, error="out of stock")


def observed(row: dict[str, Any]) -> Model:
    return Model(
        status=row["status"],
        payment_status=row["payment_status"],
        order_status=row["order_status"],
        session=row["checkout_session_id"] is not None,
        paid=row["paid_at"] is not None,
        expired=row["expired_at"] is not None,
        error=row["order_error"] is not None,
        supplier_order=row["supplier_order_id"] is not None,
    )


def reachable_states() -> dict[Model, tuple[str, ...]]:
    """Every state the model reaches from a new order, with a shortest path of events to it."""
    paths: dict[Model, tuple[str, ...]] = {Model(): ()}
    frontier = [Model()]
    while frontier:
        following = []
        for state in frontier:
            for event in EVENTS:
                reached = state.after(event)
                if reached is not None and reached not in paths:
                    paths[reached] = (*paths[state], event)
                    following.append(reached)
        frontier = following
    return paths


STATES = reachable_states()


@pytest.mark.parametrize("event", EVENTS)
async def test_every_state_and_event_follows_the_state_table(
    diamond_db: Database, diamond_db_url: str, event: str
) -> None:
    """The README table, row by row: each of the 11 reachable states (a fresh order and
    diamond brought there), then `event`. A state reached by e1 then given e2 is every
    out-of-order pair; a state given the event that made it is every replay."""
    assert len(STATES) == 11
    for state, path in STATES.items():
        diamond = insert_diamond(diamond_db_url)
        order = await checkout(diamond_db, diamond)
        assert order is not None
        for earlier in path:
            await deliver(diamond_db, order, earlier)
        before = stored(diamond_db_url, order.id)
        assert observed(before) == state, path
        expected = state.after(event)
        returned = await deliver(diamond_db, order, event)
        after = stored(diamond_db_url, order.id)
        case = (*path, event)
        if expected is None:
            assert returned is None, case
            assert after == before, case
            continue
        assert observed(after) == expected, case
        assert returned == await diamond_db.get_order(order.id), case
        if expected == state:
            assert after == before, ("a refused event changed the row", case)
        assert (availability(diamond_db_url, diamond) == "sold") == expected.paid, case
        attention = {o.id for o in await diamond_db.get_orders_needing_attention()}
        assert (order.id in attention) == expected.needs_attention, case


async def test_payment_of_an_order_whose_diamond_is_gone_is_a_conflict(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    first = await open_order(diamond_db, diamond)
    second = await open_order(diamond_db, diamond)
    await _pay(diamond_db, first)
    conflict = await _pay(diamond_db, second)
    assert conflict is not None
    assert (conflict.status, conflict.payment_status, conflict.order_status) == (
        "paid",
        "paid",
        "conflict",
    )
    assert stored(diamond_db_url, second.id)["order_status"] == "conflict"
    assert stored(diamond_db_url, first.id)["order_status"] == "pending"
    assert [o.id for o in await diamond_db.get_orders_needing_attention()] == [second.id]
    # A conflict is a refund case: every later event leaves it as it is.
    before = stored(diamond_db_url, second.id)
    for event in EVENTS:
        assert await deliver(diamond_db, second, event) == conflict, event
    assert stored(diamond_db_url, second.id) == before


async def test_unknown_orders_and_sessions_get_none(diamond_db: Database, diamond: UUID) -> None:
    assert await diamond_db.record_payment("cs_nope", payment_intent_id="pi") is None
    assert await diamond_db.record_checkout_expired("cs_nope") is None
    assert await diamond_db.attach_checkout_session(uuid4(), "cs") is None
    assert await diamond_db.record_supplier_order(uuid4(), supplier_order_id="so") is None
    assert await diamond_db.record_supplier_order_failed(uuid4(), error="e") is None
    purchase = await diamond_db.create_purchase_history(
        diamond_id=diamond, supplier="nivoda", offer_id="o", idempotency_key="k"
    )
    # A plain purchase is no checkout order.
    assert await diamond_db.get_order(purchase.id) is None
    assert await diamond_db.attach_checkout_session(purchase.id, "cs") is None
    assert await diamond_db.record_supplier_order(purchase.id, supplier_order_id="so") is None


async def test_update_purchase_status_leaves_a_checkout_order_alone(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    order = await open_order(diamond_db, diamond)
    before = stored(diamond_db_url, order.id)
    assert await diamond_db.update_purchase_status(order.id, "confirmed", "so_1") is None
    assert stored(diamond_db_url, order.id) == before


async def test_a_second_session_is_not_attached(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    order = await open_order(diamond_db, diamond, "cs_1")
    again = await diamond_db.attach_checkout_session(order.id, "cs_2")
    assert again == order
    assert stored(diamond_db_url, order.id)["checkout_session_id"] == "cs_1"
    assert await diamond_db.get_order_by_session("cs_1") == order
    assert await diamond_db.get_order_by_session("cs_2") is None


# -- concurrency ------------------------------------------------------------------------

Step = Callable[[Operations, PurchaseHistory], Awaitable[PurchaseHistory | None]]


async def _pay(db: Operations, order: PurchaseHistory) -> PurchaseHistory | None:
    return await db.record_payment(f"cs_{order.id}", payment_intent_id="pi_1")


async def _expire(db: Operations, order: PurchaseHistory) -> PurchaseHistory | None:
    return await db.record_checkout_expired(f"cs_{order.id}")


async def _placed(db: Operations, order: PurchaseHistory) -> PurchaseHistory | None:
    return await db.record_supplier_order(order.id, supplier_order_id="so_1")


async def _failed(db: Operations, order: PurchaseHistory) -> PurchaseHistory | None:
    return await db.record_supplier_order_failed(order.id, error="out of stock")


# (event, the events that bring the order to the state it applies to, expected (status, order))
CONCURRENT: list[tuple[str, Step, list[Step], tuple[str, str]]] = [
    ("pay", _pay, [], ("paid", "pending")),
    ("expire", _expire, [], ("expired", "not_attempted")),
    ("pay after expiry", _pay, [_expire], ("paid", "pending")),
    ("placed", _placed, [_pay], ("confirmed", "placed")),
    ("failed", _failed, [_pay], ("paid", "failed")),
    ("placed after failure", _placed, [_pay, _failed], ("confirmed", "placed")),
]


@pytest.mark.parametrize(
    ("event", "step", "setup", "expected"), CONCURRENT, ids=[c[0] for c in CONCURRENT]
)
async def test_twenty_concurrent_deliveries_of_one_event_have_one_effect(
    diamond_db_url: str,
    diamond: UUID,
    event: str,
    step: Step,
    setup: list[Step],
    expected: tuple[str, str],
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        order = await open_order(db, diamond)
        for earlier in setup:
            await earlier(db, order)
        before = stored(diamond_db_url, order.id)
        results = await asyncio.gather(*(step(db, order) for _ in range(20)))
    row = stored(diamond_db_url, order.id)
    assert (row["status"], row["order_status"]) == expected
    # One effect: the row was written once (its updated_at is that write's time), and
    # every delivery got the order as it is now, not a stale copy.
    assert row["updated_at"] > before["updated_at"]
    assert len({r.updated_at for r in results if r is not None}) == 1
    assert all(r is not None and r.status == row["status"] for r in results)
    assert {r.updated_at for r in results if r is not None} == {row["updated_at"]}
    assert availability(diamond_db_url, diamond) == ("available" if event == "expire" else "sold")


async def test_twenty_concurrent_different_sessions_attach_one(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        order = await checkout(db, diamond)
        assert order is not None
        results = await asyncio.gather(
            *(db.attach_checkout_session(order.id, f"cs_{i}") for i in range(20))
        )
    session = stored(diamond_db_url, order.id)["checkout_session_id"]
    assert session is not None
    assert {r.checkout_session_id for r in results if r is not None} == {session}


async def test_payment_and_expiry_racing_always_end_paid(
    diamond_db_url: str,
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        for _ in range(5):
            diamond = insert_diamond(diamond_db_url)
            order = await open_order(db, diamond)
            steps = [_pay, _expire] * 10
            await asyncio.gather(*(step(db, order) for step in steps))
            row = stored(diamond_db_url, order.id)
            assert (row["status"], row["payment_status"], row["order_status"]) == (
                "paid",
                "paid",
                "pending",
            )
            assert availability(diamond_db_url, diamond) == "sold"
            attention = {o.id for o in await db.get_orders_needing_attention()}
            assert (order.id in attention) == (row["expired_at"] is not None)


async def test_supplier_success_and_failure_racing_always_end_confirmed(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        order = await open_order(db, diamond)
        await _pay(db, order)
        await asyncio.gather(*(step(db, order) for step in [_failed, _placed] * 10))
    row = stored(diamond_db_url, order.id)
    assert (row["status"], row["order_status"], row["supplier_order_id"]) == (
        "confirmed",
        "placed",
        "so_1",
    )


async def test_a_payment_racing_a_hold_by_another_customer(diamond_db_url: str) -> None:
    """Exactly one of them gets the diamond; a payment that loses is a conflict (refund)."""
    outcomes: set[str] = set()
    async with Database(diamond_db_url, max_size=25) as db:
        for trial in range(20):
            diamond = insert_diamond(diamond_db_url)
            order = await open_order(db, diamond)
            paid, hold = await asyncio.gather(
                _pay(db, order),
                db.place_hold(
                    diamond_id=diamond,
                    supplier="nivoda",
                    offer_id="offer-1",
                    supplier_hold_id=f"hold-{trial}",
                ),
            )
            assert paid is not None
            row = stored(diamond_db_url, order.id)
            holds = fetch(
                diamond_db_url, "SELECT count(*) FROM hold_history WHERE diamond_id = %s", diamond
            )[0][0]
            if hold is None:
                outcomes.add("payment first")
                assert (row["status"], row["order_status"]) == ("paid", "pending")
                assert availability(diamond_db_url, diamond) == "sold"
                assert holds == 0
            else:
                outcomes.add("hold first")
                assert (row["status"], row["order_status"]) == ("paid", "conflict")
                assert availability(diamond_db_url, diamond) == "on_hold"
                assert holds == 1
                assert order.id in {o.id for o in await db.get_orders_needing_attention()}
    assert outcomes  # which one wins is up to the scheduler; each trial was consistent


async def test_two_orders_of_one_diamond_paid_at_once_sell_it_once(diamond_db_url: str) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        for _ in range(5):
            diamond = insert_diamond(diamond_db_url)
            orders = [await open_order(db, diamond) for _ in range(2)]
            results = await asyncio.gather(*(_pay(db, order) for order in orders))
            assert sorted(str(r.order_status) for r in results if r is not None) == [
                "conflict",
                "pending",
            ]
            assert availability(diamond_db_url, diamond) == "sold"


# -- the views --------------------------------------------------------------------------


async def test_list_orders_pages_newest_first_with_filters(
    diamond_db: Database, diamond_db_url: str
) -> None:
    created = []
    for _ in range(7):
        created.append(await open_order(diamond_db, insert_diamond(diamond_db_url)))
    for order in created[:3]:
        await _pay(diamond_db, order)
    await diamond_db.create_purchase_history(
        diamond_id=insert_diamond(diamond_db_url),
        supplier="nivoda",
        offer_id="o",
        idempotency_key="plain",
    )
    newest_first = [o.id for o in reversed(created)]
    seen: list[UUID] = []
    cursor = None
    while True:
        page = await diamond_db.list_orders(limit=3, cursor=cursor)
        seen += [o.id for o in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == newest_first  # the plain purchase is no order
    paid = await diamond_db.list_orders(status="paid")
    assert [o.id for o in paid.items] == [o.id for o in reversed(created[:3])]
    pending = await diamond_db.list_orders(payment_status="pending", order_status="not_attempted")
    assert [o.id for o in pending.items] == [o.id for o in reversed(created[3:])]
    future = await diamond_db.list_orders(since=datetime(2999, 1, 1, tzinfo=UTC))
    assert future.items == []
    assert future.next_cursor is None
    with pytest.raises(ValidationError) as error:
        await diamond_db.list_orders(cursor="not a cursor")
    assert error.value.argument == "cursor"
    with pytest.raises(ValidationError) as error:
        await diamond_db.list_orders(status="shipped")  # type: ignore[arg-type]
    assert error.value.argument == "status"


async def test_list_holds_pages_newest_first_with_filters(
    diamond_db: Database, diamond_db_url: str
) -> None:
    holds = []
    for i in range(5):
        diamond = insert_diamond(diamond_db_url)
        hold = await diamond_db.place_hold(
            diamond_id=diamond,
            supplier="nivoda" if i % 2 else "other",
            offer_id="o",
            supplier_hold_id=f"h{i}",
        )
        assert hold is not None
        holds.append(hold)
    await diamond_db.release_hold(diamond_id=holds[0].diamond_id, supplier_hold_id="h0")
    first = await diamond_db.list_holds(limit=2)
    assert [h.supplier_hold_id for h in first.items] == ["h4", "h3"]
    rest = await diamond_db.list_holds(limit=10, cursor=first.next_cursor)
    assert [h.supplier_hold_id for h in rest.items] == ["h2", "h1", "h0"]
    assert rest.next_cursor is None
    nivoda = await diamond_db.list_holds(supplier="nivoda")
    assert [h.supplier_hold_id for h in nivoda.items] == ["h3", "h1"]
    released = await diamond_db.list_holds(status="released")
    assert [h.supplier_hold_id for h in released.items] == ["h0"]
