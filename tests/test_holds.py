"""Hold history: the audit trail, and placing / releasing holds on a diamond atomically."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from helpers import fetch, insert_diamond

from diamond_db import Database, HoldHistory, ValidationError
from diamond_db.operations import Operations


def diamond_state(url: str, diamond_id: UUID) -> tuple[str, str | None]:
    """(availability, hold_id) of a diamond, read directly."""
    rows = fetch(url, "SELECT availability, hold_id FROM diamonds WHERE id = %s", diamond_id)
    return rows[0][0], rows[0][1]


def holds(url: str, diamond_id: UUID) -> list[tuple[Any, ...]]:
    """(supplier_hold_id, status, denied) of a diamond's history rows, read directly."""
    sql = (
        "SELECT supplier_hold_id, status, denied FROM hold_history"
        " WHERE diamond_id = %s ORDER BY supplier_hold_id"
    )
    return fetch(url, sql, diamond_id)


@pytest.fixture
def diamond(diamond_db: Database, diamond_db_url: str) -> UUID:
    """An active, available diamond in the freshly emptied database."""
    return insert_diamond(diamond_db_url)


async def place(db: Operations, diamond: UUID, hold: str) -> HoldHistory | None:
    return await db.place_hold(
        diamond_id=diamond, supplier="nivoda", offer_id="offer", supplier_hold_id=hold
    )


# -- place_hold -----------------------------------------------------------------


async def test_place_hold_puts_the_diamond_on_hold_and_records_an_active_hold(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    until = datetime.now(UTC) + timedelta(hours=2)
    hold = await diamond_db.place_hold(
        diamond_id=str(diamond),
        supplier="nivoda",
        offer_id="offer-1",
        supplier_hold_id="hold-1",
        hold_until=until,
    )
    assert hold is not None
    assert (hold.diamond_id, hold.supplier, hold.offer_id) == (diamond, "nivoda", "offer-1")
    assert (hold.supplier_hold_id, hold.status, hold.denied) == ("hold-1", "active", False)
    assert hold.hold_until == until
    assert diamond_state(diamond_db_url, diamond) == ("on_hold", "hold-1")
    assert holds(diamond_db_url, diamond) == [("hold-1", "active", False)]
    assert await diamond_db.get_hold_history_by_diamond_id(diamond) == [hold]


@pytest.mark.parametrize(
    ("availability", "status"),
    [
        ("on_hold", "active"),
        ("sold", "active"),
        ("unavailable", "active"),
        ("available", "deleted"),
    ],
)
async def test_place_hold_on_a_diamond_that_is_not_available_writes_nothing(
    diamond_db: Database, diamond_db_url: str, availability: str, status: str
) -> None:
    diamond = insert_diamond(diamond_db_url, availability=availability, status=status)
    assert await place(diamond_db, diamond, "hold-1") is None
    assert diamond_state(diamond_db_url, diamond) == (availability, None)
    assert holds(diamond_db_url, diamond) == []


async def test_place_hold_on_an_unknown_diamond_returns_none(diamond_db: Database) -> None:
    assert await place(diamond_db, uuid4(), "hold-1") is None


async def test_second_hold_loses_while_the_first_is_current(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    assert await place(diamond_db, diamond, "hold-1") is not None
    assert await place(diamond_db, diamond, "hold-2") is None
    assert diamond_state(diamond_db_url, diamond) == ("on_hold", "hold-1")
    assert holds(diamond_db_url, diamond) == [("hold-1", "active", False)]


async def test_twenty_concurrent_holds_on_one_diamond_yield_exactly_one(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        results = await asyncio.gather(*(place(db, diamond, f"hold-{i:02}") for i in range(20)))
    winners = [hold for hold in results if hold is not None]
    assert len(winners) == 1
    winner = winners[0].supplier_hold_id
    assert diamond_state(diamond_db_url, diamond) == ("on_hold", winner)
    assert holds(diamond_db_url, diamond) == [(winner, "active", False)]


# -- release_hold ---------------------------------------------------------------


async def test_release_hold_frees_the_diamond_and_marks_the_hold_released(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    await place(diamond_db, diamond, "hold-1")
    assert await diamond_db.release_hold(diamond_id=diamond, supplier_hold_id="hold-1") is True
    assert diamond_state(diamond_db_url, diamond) == ("available", None)
    assert holds(diamond_db_url, diamond) == [("hold-1", "released", False)]
    # Released once: a second release changes nothing; the diamond can be held again.
    assert await diamond_db.release_hold(diamond_id=diamond, supplier_hold_id="hold-1") is False
    assert await place(diamond_db, diamond, "hold-2") is not None
    assert diamond_state(diamond_db_url, diamond) == ("on_hold", "hold-2")
    assert holds(diamond_db_url, diamond) == [
        ("hold-1", "released", False),
        ("hold-2", "active", False),
    ]


async def test_release_of_a_hold_that_is_not_current_changes_nothing(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    await place(diamond_db, diamond, "hold-1")
    assert await diamond_db.release_hold(diamond_id=diamond, supplier_hold_id="other") is False
    assert await diamond_db.release_hold(diamond_id=uuid4(), supplier_hold_id="hold-1") is False
    assert diamond_state(diamond_db_url, diamond) == ("on_hold", "hold-1")
    assert holds(diamond_db_url, diamond) == [("hold-1", "active", False)]


async def test_release_does_not_make_a_sold_diamond_available(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    await place(diamond_db, diamond, "hold-1")
    fetch(
        diamond_db_url,
        "UPDATE diamonds SET availability = 'sold' WHERE id = %s RETURNING id",
        diamond,
    )
    assert await diamond_db.release_hold(diamond_id=diamond, supplier_hold_id="hold-1") is False
    assert diamond_state(diamond_db_url, diamond) == ("sold", "hold-1")
    assert holds(diamond_db_url, diamond) == [("hold-1", "active", False)]


async def test_concurrent_releases_of_one_hold_succeed_once(
    diamond_db_url: str, diamond: UUID
) -> None:
    async with Database(diamond_db_url, max_size=25) as db:
        await place(db, diamond, "hold-1")
        results = await asyncio.gather(
            *(db.release_hold(diamond_id=diamond, supplier_hold_id="hold-1") for _ in range(10))
        )
    assert sorted(results) == [False] * 9 + [True]
    assert diamond_state(diamond_db_url, diamond) == ("available", None)


async def test_place_and_release_join_an_outer_transaction(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    with pytest.raises(RuntimeError):
        async with diamond_db.transaction() as tx:
            assert await place(tx, diamond, "hold-1") is not None
            raise RuntimeError("roll back")
    assert diamond_state(diamond_db_url, diamond) == ("available", None)
    assert holds(diamond_db_url, diamond) == []


# -- the audit trail ------------------------------------------------------------


async def test_a_denied_hold_is_recorded_and_touches_no_diamond(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    denied = await diamond_db.create_hold_history(
        diamond_id=diamond, supplier="nivoda", offer_id="offer-1", denied=True, status="expired"
    )
    assert (denied.denied, denied.status, denied.supplier_hold_id) == (True, "expired", None)
    assert denied.hold_until is None
    assert holds(diamond_db_url, diamond) == [(None, "expired", True)]
    assert diamond_state(diamond_db_url, diamond) == ("available", None)


async def test_history_is_newest_first_and_statuses_update(
    diamond_db: Database, diamond_db_url: str, diamond: UUID
) -> None:
    created = [
        await diamond_db.create_hold_history(
            diamond_id=diamond, supplier="nivoda", offer_id="o", supplier_hold_id=f"h{i}"
        )
        for i in range(3)
    ]
    history = await diamond_db.get_hold_history_by_diamond_id(diamond)
    assert [h.id for h in history] == [h.id for h in reversed(created)]
    assert await diamond_db.get_hold_history_by_diamond_id(uuid4()) == []

    updated = await diamond_db.update_hold_status(created[0].id, "expired")
    assert updated is not None
    assert updated.status == "expired"
    assert holds(diamond_db_url, diamond)[0] == ("h0", "expired", False)
    assert await diamond_db.update_hold_status(uuid4(), "expired") is None


async def test_bad_arguments_are_rejected_before_any_sql(diamond_db: Database) -> None:
    with pytest.raises(ValidationError) as error:
        await diamond_db.update_hold_status(uuid4(), "cancelled")  # type: ignore[arg-type]
    assert error.value.argument == "status"
    with pytest.raises(ValidationError) as error:
        await diamond_db.place_hold(
            diamond_id="not-a-uuid", supplier="nivoda", offer_id="o", supplier_hold_id="h"
        )
    assert error.value.argument == "diamond_id"
    with pytest.raises(ValidationError) as error:
        await diamond_db.release_hold(diamond_id=uuid4(), supplier_hold_id="")
    assert error.value.argument == "supplier_hold_id"
    with pytest.raises(ValidationError) as error:
        await diamond_db.create_hold_history(
            diamond_id=uuid4(),
            supplier="nivoda",
            offer_id="o",
            denied="yes",  # type: ignore[arg-type]
        )
    assert error.value.argument == "denied"
