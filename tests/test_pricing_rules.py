"""Pricing rules: creation, partial updates, deactivation, and matching against a Python oracle."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from helpers import fetch_dicts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diamond_db import Database, PricingRule, ValidationError

SHAPES = ("ROUND", "OVAL", "PEAR", "EMERALD")
SUPPLIERS = ("nivoda", "other")
# Few carat values, so generated ranges often start or end exactly at a diamond's carats.
CARATS = tuple(Decimal(c) for c in ("0.30", "0.50", "0.99", "1.00", "1.01", "1.50", "2.00"))


def stored_rule(url: str, rule_id: UUID) -> dict[str, Any]:
    """A rule's row as a dict, read directly."""
    [row] = fetch_dicts(url, "SELECT * FROM pricing_rules WHERE id = %s", rule_id)
    return row


# -- the oracle -------------------------------------------------------------------


@dataclass(frozen=True)
class Stone:
    carats: Decimal
    shape: str
    lab_grown: bool
    supplier: str


def matches(rule: PricingRule, stone: Stone) -> bool:
    """The matching rules, restated in Python: a None criterion matches every stone."""
    return (
        rule.active
        and (rule.carat_min is None or rule.carat_min <= stone.carats)
        and (rule.carat_max is None or stone.carats <= rule.carat_max)
        and (rule.shapes is None or stone.shape in rule.shapes)
        and (rule.lab_grown is None or rule.lab_grown == stone.lab_grown)
        and (rule.supplier is None or rule.supplier == stone.supplier)
    )


def first_match(rules: list[PricingRule], stone: Stone) -> PricingRule | None:
    ordered = sorted(rules, key=lambda rule: (rule.priority, rule.id))
    return next((rule for rule in ordered if matches(rule, stone)), None)


def optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def rule_arguments(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of create_pricing_rule, plus whether to deactivate the rule."""
    low, high = draw(optional(st.sampled_from(CARATS))), draw(optional(st.sampled_from(CARATS)))
    if low is not None and high is not None and low > high:
        low, high = high, low
    return {
        "priority": draw(st.integers(0, 3)),  # narrow: many ties, broken by id
        "carat_min": low,
        "carat_max": high,
        "shapes": draw(optional(st.lists(st.sampled_from(SHAPES), min_size=1, unique=True))),
        "lab_grown": draw(optional(st.booleans())),
        "supplier": draw(optional(st.sampled_from(SUPPLIERS))),
        "markup_ratio": draw(st.decimals("1.0001", "3", places=4)),
        "active": draw(st.booleans()),
    }


stones = st.builds(
    Stone,
    st.sampled_from(CARATS),
    st.sampled_from(SHAPES),
    st.booleans(),
    st.sampled_from(SUPPLIERS),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    rules=st.lists(rule_arguments(), max_size=8),
    probes=st.lists(stones, min_size=1, max_size=8),
)
async def test_ordering_and_matching_agree_with_the_oracle(
    diamond_db: Database, rules: list[dict[str, Any]], probes: list[Stone]
) -> None:
    async with diamond_db.transaction() as tx:  # each example starts from no rules
        await tx.connection.execute(b"DELETE FROM pricing_rules")
    created = []
    for arguments in rules:
        active = arguments.pop("active")
        rule = await diamond_db.create_pricing_rule(**arguments)
        if not active:
            assert await diamond_db.deactivate_pricing_rule(rule.id)
            inactive = await diamond_db.get_pricing_rule(rule.id)
            assert inactive is not None
            assert not inactive.active
            rule = inactive
        created.append(rule)

    expected_order = sorted((r for r in created if r.active), key=lambda r: (r.priority, r.id))
    assert await diamond_db.get_active_pricing_rules() == expected_order
    for stone in probes:
        found = await diamond_db.match_pricing_rule(
            stone.carats, stone.shape, stone.lab_grown, stone.supplier
        )
        assert found == first_match(created, stone), stone


# -- get / create -----------------------------------------------------------------


async def test_the_seeded_default_rule_matches_every_diamond(diamond_db: Database) -> None:
    [default] = await diamond_db.get_active_pricing_rules()
    assert (default.priority, default.markup_ratio, default.rating) == (1000, Decimal("1.15"), 5)
    assert await diamond_db.match_pricing_rule("0.01", "HEART", True, "anyone") == default


async def test_create_stores_every_criterion(diamond_db: Database, diamond_db_url: str) -> None:
    rule = await diamond_db.create_pricing_rule(
        markup_ratio=Decimal("1.2500"),
        priority=10,
        carat_min="0.5",
        carat_max=2,
        shapes=["ROUND", "OVAL"],
        lab_grown=True,
        supplier="nivoda",
        rating=7,
    )
    stored = stored_rule(diamond_db_url, rule.id)
    assert stored["markup_ratio"] == Decimal("1.2500")
    assert stored["priority"] == 10
    assert (stored["carat_min"], stored["carat_max"]) == (Decimal("0.50"), Decimal("2.00"))
    assert (stored["shapes"], stored["lab_grown"], stored["supplier"]) == (
        ["ROUND", "OVAL"],
        True,
        "nivoda",
    )
    assert (stored["rating"], stored["active"]) == (7, True)
    plain = await diamond_db.create_pricing_rule(markup_ratio=2)
    assert (plain.priority, plain.shapes, plain.carat_min, plain.rating) == (100, None, None, None)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"markup_ratio": 0}, "markup_ratio"),
        ({"markup_ratio": "-1.5"}, "markup_ratio"),
        ({"markup_ratio": 10}, "markup_ratio"),  # NUMERIC(5, 4) holds < 10
        ({"markup_ratio": None}, "markup_ratio"),
        ({"markup_ratio": 1, "shapes": []}, "shapes"),
        ({"markup_ratio": 1, "shapes": [""]}, "shapes[0]"),
        ({"markup_ratio": 1, "rating": 0}, "rating"),
        ({"markup_ratio": 1, "rating": 11}, "rating"),
        ({"markup_ratio": 1, "carat_min": 2, "carat_max": 1}, "carat_min"),
        ({"markup_ratio": 1, "carat_min": -1}, "carat_min"),
        ({"markup_ratio": 1, "lab_grown": "yes"}, "lab_grown"),
        ({"markup_ratio": 1, "priority": 2**31}, "priority"),
        ({"markup_ratio": 1, "supplier": ""}, "supplier"),
    ],
)
async def test_create_rejects_bad_arguments(
    diamond_db: Database, arguments: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValidationError) as error:
        await diamond_db.create_pricing_rule(**arguments)
    assert error.value.argument == name
    assert len(await diamond_db.get_active_pricing_rules()) == 1  # the seeded rule only


# -- update / deactivate --------------------------------------------------------------


async def full_rule(db: Database) -> PricingRule:
    return await db.create_pricing_rule(
        markup_ratio="1.3",
        priority=5,
        carat_min=1,
        carat_max=2,
        shapes=["ROUND"],
        lab_grown=False,
        supplier="nivoda",
        rating=8,
    )


async def test_update_changes_only_the_given_fields(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rule = await full_rule(diamond_db)
    updated = await diamond_db.update_pricing_rule(rule.id, markup_ratio="1.45", priority=1)
    assert updated is not None
    assert (updated.markup_ratio, updated.priority) == (Decimal("1.4500"), 1)
    assert updated.updated_at >= rule.updated_at
    stored = stored_rule(diamond_db_url, rule.id)
    unchanged = ("carat_min", "carat_max", "shapes", "lab_grown", "supplier", "rating", "active")
    assert {k: stored[k] for k in unchanged} == {k: getattr(rule, k) for k in unchanged}
    assert stored["markup_ratio"] == Decimal("1.4500")
    assert stored["priority"] == 1


async def test_update_sets_criteria_back_to_null(diamond_db: Database, diamond_db_url: str) -> None:
    rule = await full_rule(diamond_db)
    criteria = ("carat_min", "carat_max", "shapes", "lab_grown", "supplier", "rating")
    updated = await diamond_db.update_pricing_rule(str(rule.id), **dict.fromkeys(criteria))
    assert updated is not None
    stored = stored_rule(diamond_db_url, rule.id)
    assert all(stored[k] is None for k in criteria), stored
    assert (stored["markup_ratio"], stored["priority"]) == (Decimal("1.3000"), 5)
    # Every criterion NULL: it now matches any diamond, ahead of the default rule.
    assert await diamond_db.match_pricing_rule(5, "PEAR", True, "x") == updated


async def test_update_with_no_changes_returns_the_rule_as_is(diamond_db: Database) -> None:
    rule = await full_rule(diamond_db)
    assert await diamond_db.update_pricing_rule(rule.id) == rule
    assert await diamond_db.update_pricing_rule(uuid4()) is None


async def test_update_of_an_unknown_rule_returns_none(diamond_db: Database) -> None:
    assert await diamond_db.update_pricing_rule(uuid4(), markup_ratio=2) is None


@pytest.mark.parametrize(
    ("changes", "name"),
    [
        ({"colour": "D"}, "colour"),
        ({"created_at": None}, "created_at"),
        ({"markup_ratio": None}, "markup_ratio"),
        ({"priority": None}, "priority"),
        ({"active": None}, "active"),
        ({"shapes": []}, "shapes"),
        ({"rating": 0}, "rating"),
        ({"carat_min": 3, "carat_max": 2}, "carat_min"),
    ],
)
async def test_update_rejects_unknown_fields_and_bad_values(
    diamond_db: Database, diamond_db_url: str, changes: dict[str, Any], name: str
) -> None:
    rule = await full_rule(diamond_db)
    with pytest.raises(ValidationError) as error:
        await diamond_db.update_pricing_rule(rule.id, **changes)
    assert error.value.argument == name
    assert stored_rule(diamond_db_url, rule.id)["updated_at"] == rule.updated_at


async def test_half_a_range_against_the_stored_other_end_is_checked_by_the_table(
    diamond_db: Database,
) -> None:
    rule = await full_rule(diamond_db)  # carats 1 .. 2
    with pytest.raises(psycopg.errors.CheckViolation):
        await diamond_db.update_pricing_rule(rule.id, carat_min=3)


async def test_deactivate_retires_a_rule_and_update_can_revive_it(diamond_db: Database) -> None:
    rule = await full_rule(diamond_db)
    assert await diamond_db.match_pricing_rule(1, "ROUND", False, "nivoda") == rule
    assert await diamond_db.deactivate_pricing_rule(rule.id) is True
    assert await diamond_db.deactivate_pricing_rule(rule.id) is False  # already inactive
    assert await diamond_db.deactivate_pricing_rule(uuid4()) is False
    assert rule.id not in [r.id for r in await diamond_db.get_active_pricing_rules()]
    matched = await diamond_db.match_pricing_rule(1, "ROUND", False, "nivoda")
    assert matched is not None
    assert matched.priority == 1000
    revived = await diamond_db.update_pricing_rule(rule.id, active=True)
    assert revived is not None
    assert revived.active
    assert await diamond_db.match_pricing_rule(1, "ROUND", False, "nivoda") == revived


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ((1.5, "ROUND", False, None), "supplier"),
        (("big", "ROUND", False, "nivoda"), "carats"),
        ((1, "", False, "nivoda"), "shape"),
        ((1, "ROUND", None, "nivoda"), "lab_grown"),
    ],
)
async def test_match_rejects_bad_arguments(
    diamond_db: Database, arguments: tuple[Any, ...], name: str
) -> None:
    with pytest.raises(ValidationError) as error:
        await diamond_db.match_pricing_rule(*arguments)
    assert error.value.argument == name
