"""Purchase history: idempotent creation (also under racing replays), lookups, status updates."""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID, uuid4

import pytest
from helpers import fetch, insert_diamond

from diamond_db import Database, IdempotencyConflict, PurchaseHistory, ValidationError


@pytest.fixture
def diamond(diamond_db: Database, diamond_db_url: str) -> UUID:
    """An active, available diamond in the freshly emptied database."""
    return insert_diamond(diamond_db_url)


def purchases(url: str) -> list[tuple[Any, ...]]:
    """(id, idempotency_key, diamond_id, offer_id, status, supplier_order_id), read directly."""
    sql = (
        "SELECT id, idempotency_key, diamond_id, offer_id, status, supplier_order_id"
        " FROM purchase_history ORDER BY created_at, id"
    )
    return fetch(url, sql)


async def buy(db: Database, diamond: UUID, key: str, **extra: Any) -> PurchaseHistory:
    arguments: dict[str, Any] = {"offer_id": "offer-1", "supplier": "nivoda"} | extra
    return await db.create_purchase_history(diamond_id=diamond, idempotency_key=key, **arguments)


async def test_create_records_a_pending_purchase(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    purchase = await buy(diamond_db, diamond, "key-1", reference="PO-7", comments="rush")
    assert (purchase.diamond_id, purchase.offer_id, purchase.idempotency_key) == (
        diamond,
        "offer-1",
        "key-1",
    )
    assert (purchase.status, purchase.reference, purchase.comments) == ("pending", "PO-7", "rush")
    assert purchases(diamond_db_url) == [
        (purchase.id, "key-1", diamond, "offer-1", "pending", None)
    ]
    assert await diamond_db.get_purchase_by_idempotency_key("key-1") == purchase
    assert await diamond_db.get_purchase_by_idempotency_key("other") is None


async def test_a_replay_returns_the_stored_purchase_and_creates_nothing(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    first = await buy(diamond_db, diamond, "key-1")
    replay = await buy(diamond_db, str(diamond), "key-1", status="confirmed", comments="again")  # type: ignore[arg-type]
    assert replay == first  # the stored row, not the replay's content
    assert len(purchases(diamond_db_url)) == 1


async def test_twenty_racing_replays_store_one_purchase_and_all_get_its_id(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        results = await asyncio.gather(*(buy(db, diamond, "key-race") for _ in range(20)))
    rows = purchases(diamond_db_url)
    assert len(rows) == 1
    assert {purchase.id for purchase in results} == {rows[0][0]}


@pytest.mark.parametrize("changed", ["diamond", "offer"])
async def test_a_replay_for_another_diamond_or_offer_is_a_conflict(
    diamond_db: Database, diamond_db_url: str, diamond: UUID, changed: str
) -> None:
    stored = await buy(diamond_db, diamond, "key-1")
    other = insert_diamond(diamond_db_url) if changed == "diamond" else diamond
    offer = "offer-2" if changed == "offer" else "offer-1"
    with pytest.raises(IdempotencyConflict) as error:
        await buy(diamond_db, other, "key-1", offer_id=offer)
    assert error.value.idempotency_key == "key-1"
    assert "key-1" in str(error.value)
    assert str(stored.id) not in str(error.value)
    assert str(diamond) not in str(error.value)
    assert purchases(diamond_db_url) == [(stored.id, "key-1", diamond, "offer-1", "pending", None)]


async def test_a_conflicting_replay_of_an_unknown_diamond_is_still_a_conflict(
    diamond_db: Database, diamond: UUID
) -> None:
    await buy(diamond_db, diamond, "key-1")
    with pytest.raises(IdempotencyConflict):
        await buy(diamond_db, uuid4(), "key-1")


async def test_update_status_keeps_the_supplier_order_id_unless_given(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    purchase = await buy(diamond_db, diamond, "key-1")
    confirmed = await diamond_db.update_purchase_status(purchase.id, "confirmed", "order-456")
    assert confirmed is not None
    assert (confirmed.status, confirmed.supplier_order_id) == ("confirmed", "order-456")
    assert confirmed.updated_at >= purchase.updated_at
    failed = await diamond_db.update_purchase_status(str(purchase.id), "failed")
    assert failed is not None
    assert failed.supplier_order_id == "order-456"
    assert purchases(diamond_db_url)[0][4:] == ("failed", "order-456")
    assert await diamond_db.update_purchase_status(uuid4(), "failed") is None


@pytest.mark.parametrize(
    ("key", "extra", "name"),
    [
        ("", {}, "idempotency_key"),
        ("k", {"status": "shipped"}, "status"),
        ("k", {"offer_id": None}, "offer_id"),
        ("k", {"comments": "a\x00b"}, "comments"),
    ],
)
async def test_bad_arguments_are_rejected_before_any_sql(
    diamond_db: Database,
    diamond_db_url: str,
    diamond: UUID,
    key: str,
    extra: dict[str, Any],
    name: str,
) -> None:
    with pytest.raises(ValidationError) as error:
        await buy(diamond_db, diamond, key, **extra)
    assert error.value.argument == name
    with pytest.raises(ValidationError) as error:
        await diamond_db.update_purchase_status(uuid4(), "done")  # type: ignore[arg-type]
    assert error.value.argument == "status"
    with pytest.raises(ValidationError) as error:
        await diamond_db.get_purchase_by_idempotency_key(None)  # type: ignore[arg-type]
    assert error.value.argument == "key"
    assert purchases(diamond_db_url) == []
