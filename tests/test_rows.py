"""The record row factory: the same records as their __init__ builds, without running it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest

from diamond_db._rows import record_maker
from diamond_db.records import Diamond


@dataclass(frozen=True, slots=True, kw_only=True)
class _Summary:
    id: int
    note: str | None = None
    tags: list[str] = field(default_factory=list)


def _diamond_values() -> dict[str, object]:
    values: dict[str, object] = {f.name: None for f in dataclasses.fields(Diamond)}
    now = datetime(2024, 1, 2, tzinfo=UTC)
    values.update(
        id=uuid4(), supplier="nivoda", supplier_stone_id="s", offer_id="o", shape="ROUND",
        carats=Decimal("1.01"), lab_grown=False, treated=False, supplier_price_cents=1,
        price_per_carat_cents=1, availability="available", status="active",
        created_at=now, updated_at=now,
    )  # fmt: skip
    return values


def test_a_made_record_equals_the_one_its_init_builds_and_stays_frozen() -> None:
    values = _diamond_values()
    columns = ("search_total", *reversed(values))  # another order, and an extra column
    row = (7, *reversed(values.values()))
    made = record_maker(Diamond, columns)(row)
    assert made == Diamond(**values)  # type: ignore[arg-type]
    assert hash(made) == hash(Diamond(**values))  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.shape = "OVAL"  # type: ignore[misc]
    assert record_maker(Diamond, columns) is record_maker(Diamond, columns)  # worked out once


def test_a_field_without_a_column_takes_its_default_or_fails_on_every_row() -> None:
    first = record_maker(_Summary, ("id",))((1,))
    second = record_maker(_Summary, ("id",))((2,))
    assert (first, second) == (_Summary(id=1), _Summary(id=2))
    assert first.tags is not second.tags  # a fresh default per record
    make = record_maker(_Summary, ("note",))  # an empty result still builds nothing
    with pytest.raises(TypeError, match="id has no column"):
        make(("a note",))
