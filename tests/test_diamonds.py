"""Diamond inventory: lookups, upserts (single and batch), availability, soft delete."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from helpers import diamond, fetch

from diamond_db import Database, Diamond, DiamondInput, QueryEvent, ValidationError


def stone(n: int | str, **changes: Any) -> DiamondInput:
    """The shared test diamond as stone-<n> with offer offer-<n>; `changes` override any field."""
    return diamond(f"stone-{n}", **{"offer_id": f"offer-{n}", **changes})


def state(url: str, stone_id: str) -> tuple[Any, ...]:
    """(availability, hold_id, status, deleted_at) of a diamond by supplier stone id."""
    rows = fetch(
        url,
        "SELECT availability, hold_id, status, deleted_at FROM diamonds"
        " WHERE supplier_stone_id = %s",
        stone_id,
    )
    assert len(rows) == 1
    return rows[0]


class Recorder:
    """Collects the names of the statements a Database sends (its on_query hook)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def __call__(self, event: QueryEvent) -> None:
        self.names.append(event.name)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def recorded_db(diamond_db: Database, diamond_db_url: str, recorder: Recorder) -> Any:
    """A Database on the emptied test database that records every statement it sends."""
    async with Database(diamond_db_url, min_size=1, on_query=recorder) as db:
        yield db


# -- lookups -------------------------------------------------------------------


async def test_upsert_then_lookups(diamond_db: Database, diamond_db_url: str) -> None:
    stored = await diamond_db.upsert_diamond(stone(1, carats=1.1, markup_ratio="1.15"))
    assert isinstance(stored, Diamond)
    assert stored.carats == Decimal("1.10")
    assert stored.markup_ratio == Decimal("1.1500")
    assert stored.measurements == {"length": 6.4, "width": 6.41}
    assert stored.supplier == "nivoda"
    assert stored.availability == "available"
    assert stored.status == "active"
    assert stored.deleted_at is None
    assert stored.hold_id is None
    assert await diamond_db.get_diamond_by_id(stored.id) == stored
    assert await diamond_db.get_diamond_by_id(str(stored.id)) == stored
    assert await diamond_db.get_diamond_by_offer_id("offer-1") == stored
    assert await diamond_db.get_diamond_by_id(uuid4()) is None
    assert await diamond_db.get_diamond_by_offer_id("offer-unknown") is None
    assert fetch(diamond_db_url, "SELECT carats FROM diamonds")[0][0] == Decimal("1.10")


async def test_soft_delete_hides_and_is_idempotent(
    diamond_db: Database, diamond_db_url: str
) -> None:
    stored = await diamond_db.upsert_diamond(stone(1))
    assert await diamond_db.soft_delete_diamond(stored.id) is True
    _, _, status, deleted_at = state(diamond_db_url, "stone-1")
    assert status == "deleted"
    assert deleted_at is not None
    assert await diamond_db.soft_delete_diamond(stored.id) is False
    assert state(diamond_db_url, "stone-1")[3] == deleted_at  # the first date is kept
    assert await diamond_db.get_diamond_by_id(stored.id) is None
    assert await diamond_db.get_diamond_by_offer_id("offer-1") is None
    assert (await diamond_db.search_diamonds()).items == []
    assert await diamond_db.soft_delete_diamond(uuid4()) is False
    # a deleted diamond's availability is not changed either
    assert await diamond_db.update_diamond_availability(stored.id, "sold") is False


# -- upsert semantics ----------------------------------------------------------


async def test_reupsert_overwrites_attributes_and_keeps_identity(
    diamond_db: Database, diamond_db_url: str
) -> None:
    first = await diamond_db.upsert_diamond(stone(1))
    second = await diamond_db.upsert_diamond(
        stone(1, supplier_price_cents=600_000, color=None, measurements=None, rating=7)
    )
    assert second.id == first.id
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at
    assert second.supplier_price_cents == 600_000
    assert second.color is None
    assert second.measurements is None
    assert second.rating == 7
    assert fetch(diamond_db_url, "SELECT count(*) FROM diamonds")[0][0] == 1
    # same stone id, other supplier: another diamond
    other = await diamond_db.upsert_diamond(stone(1, supplier="other"))
    assert other.id != first.id


async def test_library_hold_survives_reupsert(diamond_db: Database, diamond_db_url: str) -> None:
    stored = await diamond_db.upsert_diamond(stone(1))
    assert await diamond_db.update_diamond_availability(stored.id, "on_hold", "H-1") is True
    for incoming in ("available", "on_hold"):
        kept = await diamond_db.upsert_diamond(stone(1, availability=incoming, shape="OVAL"))
        assert (kept.availability, kept.hold_id, kept.shape) == ("on_hold", "H-1", "OVAL")
    for incoming in ("sold", "unavailable"):
        await diamond_db.update_diamond_availability(stored.id, "on_hold", "H-2")
        gone = await diamond_db.upsert_diamond(stone(1, availability=incoming))
        assert (gone.availability, gone.hold_id) == (incoming, None)
        assert state(diamond_db_url, "stone-1")[:2] == (incoming, None)


async def test_supplier_on_hold_is_overwritten(diamond_db: Database) -> None:
    await diamond_db.upsert_diamond(stone(1, availability="on_hold"))  # no hold_id
    back = await diamond_db.upsert_diamond(stone(1, availability="available"))
    assert (back.availability, back.hold_id) == ("available", None)


async def test_active_upsert_revives_soft_deleted(
    diamond_db: Database, diamond_db_url: str
) -> None:
    stored = await diamond_db.upsert_diamond(stone(1))
    await diamond_db.soft_delete_diamond(stored.id)
    revived = await diamond_db.upsert_diamond(stone(1))
    assert revived.id == stored.id
    assert (revived.status, revived.deleted_at) == ("active", None)
    assert await diamond_db.get_diamond_by_id(stored.id) == revived
    deleted = await diamond_db.upsert_diamond(stone(1, status="deleted"))
    assert deleted.status == "deleted"
    assert deleted.deleted_at is not None
    assert await diamond_db.get_diamond_by_id(stored.id) is None
    fresh = await diamond_db.upsert_diamond(stone(2, status="deleted"))
    assert fresh.deleted_at is not None
    assert state(diamond_db_url, "stone-2")[2:3] == ("deleted",)


async def test_batch_upsert_counts_and_matches_single(
    diamond_db: Database, diamond_db_url: str
) -> None:
    batch = [stone(i, rating=1 + i % 10, carats=Decimal(i % 5 + 1) / 4) for i in range(300)]
    assert await diamond_db.upsert_diamonds(batch) == 300
    assert await diamond_db.upsert_diamonds(batch) == 300  # idempotent: same rows again
    rows = fetch(diamond_db_url, "SELECT supplier_stone_id, rating, carats FROM diamonds")
    assert len(rows) == 300
    assert {r[0]: (r[1], r[2]) for r in rows}["stone-7"] == (8, Decimal("0.75"))
    single = await diamond_db.upsert_diamond(stone(7, rating=8, carats=Decimal("0.75")))
    assert (single.rating, single.carats) == (8, Decimal("0.75"))


async def test_batch_duplicates_last_wins(diamond_db: Database, diamond_db_url: str) -> None:
    batch = [stone(1, rating=1), stone(2), stone(1, rating=2), stone(1, rating=3)]
    assert await diamond_db.upsert_diamonds(batch) == 2
    rows = fetch(diamond_db_url, "SELECT rating FROM diamonds WHERE supplier_stone_id = 'stone-1'")
    assert rows == [(3,)]


async def test_empty_batch_sends_nothing(recorded_db: Database, recorder: Recorder) -> None:
    assert await recorded_db.upsert_diamonds([]) == 0
    assert await recorded_db.upsert_diamonds(()) == 0
    assert recorder.names == []


async def test_batch_is_atomic(diamond_db: Database, diamond_db_url: str) -> None:
    """A row the database rejects (here through a test trigger) fails the whole batch."""
    await diamond_db.upsert_diamonds([stone(1, rating=1)])
    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION test_reject() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.supplier_stone_id = 'stone-bad' THEN"
            " RAISE EXCEPTION 'rejected'; END IF; RETURN NEW; END $$"
        )
        conn.execute(
            "CREATE TRIGGER test_reject BEFORE INSERT ON diamonds"
            " FOR EACH ROW EXECUTE FUNCTION test_reject()"
        )
    try:
        batch = [stone(1, rating=9), stone(2), stone("bad"), stone(3)]
        with pytest.raises(psycopg.errors.RaiseException):
            await diamond_db.upsert_diamonds(batch)
    finally:
        with psycopg.connect(diamond_db_url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER test_reject ON diamonds")
            conn.execute("DROP FUNCTION test_reject()")
    assert fetch(diamond_db_url, "SELECT supplier_stone_id, rating FROM diamonds") == [
        ("stone-1", 1)
    ]


async def test_decimals_in_json_are_stored_as_exact_json_numbers(
    diamond_db: Database, diamond_db_url: str
) -> None:
    """A Decimal in measurements/attributes keeps every digit: never through a binary float."""
    twenty_digits = Decimal("1234567890.1234567891")
    assert float(twenty_digits) != twenty_digits  # a float would lose the last digits
    measurements = {
        "depth": twenty_digits,
        "ratios": [Decimal("1E-20"), Decimal("1.10"), Decimal("-0.000")],
        "count": 2**70,  # integers beyond 64 bits stay exact too
    }
    attributes = {"table": {"pct": Decimal("57.00000000000000000001")}, "plain": 6.41}
    await diamond_db.upsert_diamond(stone(1, measurements=measurements))
    await diamond_db.upsert_diamonds([stone(2, attributes=attributes)])

    stored = fetch(
        diamond_db_url,
        "SELECT measurements->>'depth', jsonb_typeof(measurements->'depth'),"
        " (measurements->'depth')::numeric, (measurements->'ratios')::text,"
        " (measurements->'count')::numeric FROM diamonds WHERE supplier_stone_id = 'stone-1'",
    )
    assert stored == [
        (
            "1234567890.1234567891",
            "number",
            twenty_digits,
            "[0.00000000000000000001, 1.10, 0.000]",
            Decimal(2**70),
        )
    ]
    pct = fetch(
        diamond_db_url,
        "SELECT attributes#>>'{table,pct}', (attributes#>'{table,pct}')::numeric,"
        " attributes->>'plain' FROM diamonds WHERE supplier_stone_id = 'stone-2'",
    )
    assert pct == [("57.00000000000000000001", Decimal("57.00000000000000000001"), "6.41")]


async def test_random_decimals_in_json_round_trip_exactly(
    diamond_db: Database, diamond_db_url: str
) -> None:
    """300 Decimals of 1 to 40 digits, exponents -60 to 60, in one batch: each read back equal."""
    rng = random.Random(6)
    values = {
        f"stone-{n}": Decimal(
            f"{rng.choice('+-')}{rng.randint(0, 10 ** rng.randint(1, 40))}E{rng.randint(-60, 60)}"
        )
        for n in range(300)
    }
    written = await diamond_db.upsert_diamonds(
        [stone(key.removeprefix("stone-"), measurements={"v": v}) for key, v in values.items()]
    )
    assert written == len(values)
    stored = fetch(
        diamond_db_url, "SELECT supplier_stone_id, (measurements->'v')::numeric FROM diamonds"
    )
    assert dict(stored) == values


# -- validation ----------------------------------------------------------------

BAD_FIELDS: list[tuple[str, Any]] = [
    ("supplier_stone_id", ""),
    ("supplier_stone_id", 12),
    ("offer_id", None),
    ("shape", "RO\x00UND"),
    ("carats", 0),
    ("carats", float("nan")),
    ("carats", "abc"),
    ("carats", True),
    ("carats", Decimal("10000")),
    ("supplier_price_cents", -1),
    ("supplier_price_cents", 1.5),
    ("price_per_carat_cents", True),
    ("retail_price_cents", -5),
    ("markup_ratio", 0),
    ("markup_ratio", 10),
    ("rating", 0),
    ("rating", 11),
    ("availability", "reserved"),
    ("status", "gone"),
    ("lab_grown", 1),
    ("treated", "yes"),
    ("color", "D\x00"),
    ("measurements", {"x": float("inf")}),
    ("measurements", {"depth": Decimal("NaN")}),
    ("measurements", {"depth": Decimal("sNaN")}),
    ("attributes", {"ratios": [Decimal("1.5"), Decimal("-Infinity")]}),
    ("attributes", {"x": Decimal("1E+131072")}),  # more digits than a JSONB number holds
    ("measurements", {"x": Decimal("1.5E-16383")}),
    ("attributes", ["not", "a", "dict"]),
    ("source_updated_at", "2024-01-01"),
]


@pytest.mark.parametrize(("name", "value"), BAD_FIELDS)
async def test_bad_batch_row_names_index_and_key(
    recorded_db: Database, recorder: Recorder, name: str, value: Any
) -> None:
    batch = [stone(0), stone(1), stone(2, **{name: value})]
    with pytest.raises(ValidationError) as caught:
        await recorded_db.upsert_diamonds(batch)
    assert caught.value.argument.startswith(f"diamonds[2].{name}")  # JSON: the inner path
    assert "supplier='nivoda'" in str(caught.value)
    if name != "supplier_stone_id":
        assert "stone-2" in str(caught.value)
    with pytest.raises(ValidationError) as single:
        await recorded_db.upsert_diamond(stone(2, **{name: value}))
    assert single.value.argument.startswith(f"diamond.{name}")
    assert recorder.names == []  # nothing was sent


async def test_bad_batch_containers(recorded_db: Database, recorder: Recorder) -> None:
    with pytest.raises(ValidationError, match=r"diamonds\[1\]"):
        await recorded_db.upsert_diamonds([stone(0), {"supplier_stone_id": "x"}])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="diamonds"):
        await recorded_db.upsert_diamonds("stone")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="diamond"):
        await recorded_db.upsert_diamond(None)  # type: ignore[arg-type]
    assert recorder.names == []


async def test_bad_arguments(recorded_db: Database, recorder: Recorder) -> None:
    db = recorded_db
    cases: list[tuple[str, Any]] = [
        ("id", db.get_diamond_by_id("not-a-uuid")),
        ("offer_id", db.get_diamond_by_offer_id("")),
        ("id", db.soft_delete_diamond(123)),  # type: ignore[arg-type]
        ("availability", db.update_diamond_availability(uuid4(), "reserved")),  # type: ignore[arg-type]
        ("expected", db.update_diamond_availability(uuid4(), "sold", expected="gone")),  # type: ignore[arg-type]
        ("hold_id", db.update_diamond_availability(uuid4(), "on_hold", "h\x00")),
        ("id", db.update_diamond_availability("x", "sold")),
    ]
    for argument, call in cases:
        with pytest.raises(ValidationError) as caught:
            await call
        assert caught.value.argument == argument
    assert recorder.names == []


# -- availability --------------------------------------------------------------


async def test_update_availability(diamond_db: Database, diamond_db_url: str) -> None:
    stored = await diamond_db.upsert_diamond(stone(1))
    assert await diamond_db.update_diamond_availability(stored.id, "on_hold", "H-9") is True
    assert state(diamond_db_url, "stone-1")[:2] == ("on_hold", "H-9")
    assert (
        await diamond_db.update_diamond_availability(stored.id, "sold", expected="available")
        is False
    )
    assert state(diamond_db_url, "stone-1")[:2] == ("on_hold", "H-9")
    assert (
        await diamond_db.update_diamond_availability(stored.id, "sold", expected="on_hold") is True
    )
    assert state(diamond_db_url, "stone-1")[:2] == ("sold", None)
    assert await diamond_db.update_diamond_availability(uuid4(), "sold") is False


def _holders(n: int) -> Iterator[str]:
    return (f"hold-{i}" for i in range(n))


async def test_compare_and_set_race(diamond_db: Database, diamond_db_url: str) -> None:
    """50 concurrent holders of one available diamond: exactly one wins."""
    stored = await diamond_db.upsert_diamond(stone(1))
    holders = list(_holders(50))
    async with Database(diamond_db_url, min_size=25, max_size=25) as db:
        results = await asyncio.gather(
            *(
                db.update_diamond_availability(stored.id, "on_hold", h, expected="available")
                for h in holders
            )
        )
    assert results.count(True) == 1
    winner = holders[results.index(True)]
    assert state(diamond_db_url, "stone-1")[:2] == ("on_hold", winner)
    rows = fetch(diamond_db_url, "SELECT id FROM diamonds")
    assert [UUID(str(r[0])) for r in rows] == [stored.id]
