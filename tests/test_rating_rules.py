"""Rating rules (CRUD, case-insensitive lists, ranges); pricing rules' price band and fancy."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from diamond_db import Database, RatingRule, ValidationError

COLORS = ("D", "E", "F", "G")
GIRDLES = ("THIN", "MEDIUM", "THICK")
PCTS = tuple(Decimal(p) for p in ("55.00", "57.50", "60.00"))


def matches(rule: RatingRule, probe: dict[str, Any]) -> bool:
    """The rating-rule criteria used here, restated in Python."""

    def listed(values: list[str] | None, value: str | None) -> bool:
        return values is None or (value is not None and value.upper() in values)

    def within(low: Any, high: Any, value: Any) -> bool:
        if low is None and high is None:
            return True
        return (
            value is not None and (low is None or low <= value) and (high is None or value <= high)
        )

    return (
        (rule.supplier is None or rule.supplier == probe["supplier"])
        and listed(rule.colors, probe.get("color"))
        and listed(rule.girdles, probe.get("girdle"))
        and (rule.lab_grown is None or rule.lab_grown == probe["lab_grown"])
        and within(rule.table_pct_min, rule.table_pct_max, probe.get("table_pct"))
        and within(rule.price_min_cents, rule.price_max_cents, probe.get("supplier_price_cents"))
    )


async def test_matching_agrees_with_the_oracle(diamond_db: Database) -> None:
    rng = random.Random(4)

    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.4 else None

    created = []
    for _ in range(12):
        low, high = sorted(rng.sample(PCTS, 2))
        rule = await diamond_db.create_rating_rule(
            rating=rng.randrange(1, 11),
            priority=rng.randrange(0, 3),
            supplier=maybe(rng.choice(("nivoda", "other"))),
            colors=maybe([c.lower() for c in rng.sample(COLORS, 2)]),
            girdles=maybe(rng.sample(GIRDLES, 2)),
            lab_grown=maybe(rng.random() < 0.5),
            table_pct_min=maybe(low),
            table_pct_max=maybe(high),
            price_max_cents=maybe(rng.choice((100_000, 200_000))),
        )
        if rng.random() < 0.2:
            assert await diamond_db.deactivate_rating_rule(rule.id)
        else:
            created.append(rule)
    ordered = sorted(created, key=lambda r: (r.priority, r.id))
    assert await diamond_db.get_active_rating_rules() == ordered
    for _ in range(60):
        probe: dict[str, Any] = {
            "supplier": rng.choice(("nivoda", "other")),
            "color": rng.choice((None, *COLORS, "e")),
            "girdle": rng.choice((None, *GIRDLES)),
            "lab_grown": rng.random() < 0.5,
            "table_pct": rng.choice((None, *PCTS)),
            "supplier_price_cents": rng.choice((None, 100_000, 150_000, 200_000)),
        }
        expected = next((r for r in ordered if matches(r, probe)), None)
        assert await diamond_db.match_rating_rule(**probe) == expected, probe


async def test_create_update_clear_and_deactivate(diamond_db: Database) -> None:
    rule = await diamond_db.create_rating_rule(
        rating=8, colors=["d", "E"], carat_min="0.5", carat_max=2, culet_sizes="none"
    )
    assert (rule.colors, rule.culet_sizes, rule.carat_min) == (["D", "E"], ["NONE"], Decimal("0.5"))
    assert rule.active
    assert rule.priority == 100
    assert rule.shapes is None
    updated = await diamond_db.update_rating_rule(rule.id, colors=None, rating=3, ratio_min="1.2")
    assert updated is not None
    assert (updated.colors, updated.rating, updated.ratio_min) == (None, 3, Decimal("1.2"))
    assert updated.carat_max == Decimal("2")
    assert updated.culet_sizes == ["NONE"]
    assert await diamond_db.get_rating_rule(rule.id) == updated
    assert await diamond_db.deactivate_rating_rule(rule.id)
    assert not await diamond_db.deactivate_rating_rule(rule.id)
    assert await diamond_db.get_active_rating_rules() == []
    assert (
        await diamond_db.update_rating_rule("00000000-0000-0000-0000-000000000001", rating=2)
        is None
    )


async def test_bad_rules_are_refused_before_sql(diamond_db: Database) -> None:
    with pytest.raises(ValidationError, match="rating"):
        await diamond_db.create_rating_rule(rating=11)
    with pytest.raises(ValidationError, match="table_pct_min"):
        await diamond_db.create_rating_rule(rating=5, table_pct_min=60, table_pct_max=55)
    with pytest.raises(ValidationError, match="colors"):
        await diamond_db.create_rating_rule(rating=5, colors=[])
    with pytest.raises(ValidationError, match="sparkle"):
        await diamond_db.create_rating_rule(rating=5, sparkle=1)
    rule = await diamond_db.create_rating_rule(rating=5, depth_pct_max=60)
    with pytest.raises(ValidationError, match="rating"):
        await diamond_db.update_rating_rule(rule.id, rating=None)  # required: cannot be cleared
    with pytest.raises(psycopg.errors.CheckViolation):  # half a range, against the stored end
        await diamond_db.update_rating_rule(rule.id, depth_pct_min=61)


async def test_pricing_rules_match_a_price_band_and_fancy_colour(diamond_db: Database) -> None:
    band = await diamond_db.create_pricing_rule(
        priority=1, markup_ratio="1.3", price_min_cents=100_000, price_max_cents=200_000
    )
    fancy = await diamond_db.create_pricing_rule(priority=2, markup_ratio="1.6", fancy=True)
    [default] = [r for r in await diamond_db.get_active_pricing_rules() if r.priority == 1000]
    match = diamond_db.match_pricing_rule
    assert await match("1.00", "ROUND", False, "nivoda", 100_000) == band  # inclusive ends
    assert await match("1.00", "ROUND", False, "nivoda", 200_000) == band
    assert await match("1.00", "ROUND", False, "nivoda", 200_001, fancy=True) == fancy
    assert await match("1.00", "ROUND", False, "nivoda", 200_001) == default
    assert await match("1.00", "ROUND", False, "nivoda") == default  # no price: no band matches
    updated = await diamond_db.update_pricing_rule(band.id, price_max_cents=None, fancy=False)
    assert updated is not None
    assert (updated.price_max_cents, updated.fancy) == (None, False)
    with pytest.raises(ValidationError, match="price_min_cents"):
        await diamond_db.create_pricing_rule(
            markup_ratio="1.1", price_min_cents=5, price_max_cents=4
        )
