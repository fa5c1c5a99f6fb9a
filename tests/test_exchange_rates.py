"""Exchange rates: history per day, lookups on a past date, and cent conversion that agrees
with Decimal arithmetic (rounded half-even)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from helpers import fetch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diamond_db import Database, NotFoundError, ValidationError

DAY = date(2026, 6, 1)


def rates(url: str) -> list[tuple[Any, ...]]:
    return fetch(
        url,
        "SELECT base_currency, target_currency, rate_date, rate FROM exchange_rates"
        " ORDER BY base_currency, target_currency, rate_date",
    )


async def test_a_second_upsert_for_the_same_day_replaces_that_day(
    diamond_db: Database, diamond_db_url: str
) -> None:
    first = await diamond_db.upsert_exchange_rate("USD", "EUR", Decimal("0.92"), DAY)
    assert (first.base_currency, first.target_currency, first.rate_date) == ("USD", "EUR", DAY)
    assert first.rate == Decimal("0.92")
    again = await diamond_db.upsert_exchange_rate("USD", "EUR", "0.93", DAY)
    assert again.rate == Decimal("0.93")
    assert again.created_at == first.created_at
    assert again.updated_at >= first.updated_at
    await diamond_db.upsert_exchange_rate("USD", "EUR", Decimal("0.95"), DAY + timedelta(days=1))
    assert rates(diamond_db_url) == [
        ("USD", "EUR", DAY, Decimal("0.9300000000")),
        ("USD", "EUR", DAY + timedelta(days=1), Decimal("0.9500000000")),
    ]


async def test_lookups_on_a_past_date_take_the_latest_rate_on_or_before_it(
    diamond_db: Database,
) -> None:
    for offset, rate in ((0, "0.90"), (10, "0.91"), (20, "0.92")):
        await diamond_db.upsert_exchange_rate("USD", "EUR", rate, DAY + timedelta(days=offset))
    await diamond_db.upsert_exchange_rate("USD", "GBP", "0.79", DAY + timedelta(days=5))

    async def rate_on(day: date) -> Decimal | None:
        found = await diamond_db.get_exchange_rate("USD", "EUR", on=day)
        return None if found is None else found.rate

    assert await rate_on(DAY - timedelta(days=1)) is None
    assert await rate_on(DAY) == Decimal("0.90")
    assert await rate_on(DAY + timedelta(days=9)) == Decimal("0.90")
    assert await rate_on(DAY + timedelta(days=10)) == Decimal("0.91")
    assert await rate_on(DAY + timedelta(days=15)) == Decimal("0.91")
    assert await rate_on(DAY + timedelta(days=400)) == Decimal("0.92")
    today = await diamond_db.get_exchange_rate("USD", "EUR")  # default: today (UTC)
    assert today is not None
    assert today.rate == Decimal("0.92")
    assert await diamond_db.get_exchange_rate("EUR", "USD") is None  # no implied inverse
    assert (
        await diamond_db.convert_cents(10_000, "USD", "EUR", on=DAY + timedelta(days=12)) == 9_100
    )


async def test_a_rate_dated_tomorrow_is_not_todays(diamond_db: Database) -> None:
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    await diamond_db.upsert_exchange_rate("USD", "CHF", "0.88", tomorrow)
    assert await diamond_db.get_exchange_rate("USD", "CHF") is None
    with pytest.raises(NotFoundError, match="USD to CHF"):
        await diamond_db.convert_cents(100, "USD", "CHF")


async def test_convert_identity_and_missing_pair(diamond_db: Database) -> None:
    assert await diamond_db.convert_cents(123_456, "USD", "USD") == 123_456
    with pytest.raises(NotFoundError) as error:
        await diamond_db.convert_cents(100, "USD", "JPY", on=DAY)
    assert "USD" in str(error.value)
    assert "JPY" in str(error.value)
    assert "2026-06-01" in str(error.value)


async def test_rounding_is_half_even_to_a_cent(diamond_db: Database) -> None:
    await diamond_db.upsert_exchange_rate("USD", "EUR", "0.5", DAY)
    assert [
        await diamond_db.convert_cents(amount, "USD", "EUR", on=DAY) for amount in (1, 3, 5, 7)
    ] == [0, 2, 2, 4]  # 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, 3.5 -> 4


AMOUNTS = st.integers(min_value=0, max_value=10**15)
RATES = st.decimals(
    min_value=Decimal("0.0000000001"),
    max_value=Decimal("9999999999.9999999999"),
    places=10,
    allow_nan=False,
    allow_infinity=False,
)


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(amount=AMOUNTS, rate=RATES)
async def test_conversion_agrees_with_decimal_arithmetic(
    diamond_db: Database, amount: int, rate: Decimal
) -> None:
    stored = await diamond_db.upsert_exchange_rate("USD", "EUR", rate, DAY)
    assert stored.rate == rate
    expected = (Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    assert await diamond_db.convert_cents(amount, "USD", "EUR", on=DAY) == int(expected)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        ({"base": "usd"}, "base"),
        ({"target": "EURO"}, "target"),
        ({"target": "USD"}, "target"),
        ({"rate": Decimal(0)}, "rate"),
        ({"rate": Decimal("-1")}, "rate"),
        ({"rate": 0.92}, "rate"),
        ({"rate": Decimal("NaN")}, "rate"),
        ({"rate": Decimal("0.00000000001")}, "rate"),
        ({"rate": Decimal("10000000000")}, "rate"),
        ({"rate_date": datetime(2026, 6, 1, tzinfo=UTC)}, "rate_date"),
    ],
)
async def test_bad_rates_are_rejected_before_any_sql(
    diamond_db: Database, diamond_db_url: str, call: dict[str, Any], name: str
) -> None:
    arguments: dict[str, Any] = {
        "base": "USD",
        "target": "EUR",
        "rate": Decimal("0.9"),
        "rate_date": DAY,
    } | call
    with pytest.raises(ValidationError) as error:
        await diamond_db.upsert_exchange_rate(**arguments)
    assert error.value.argument == name
    assert rates(diamond_db_url) == []
    with pytest.raises(ValidationError) as error:
        await diamond_db.convert_cents(-1, "USD", "EUR")
    assert error.value.argument == "amount_cents"
