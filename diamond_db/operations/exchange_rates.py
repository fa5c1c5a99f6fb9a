"""Exchange rates with history; converting cents between currencies (queries/exchange_rates.sql)."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal

from .._executor import Executor
from ..errors import NotFoundError, ValidationError
from ..records import ExchangeRate
from ..validation import currency_arg, date_arg, int_arg, rate_arg

# Enough digits for any BIGINT amount times any NUMERIC(20, 10) rate, exactly.
_EXACT = Context(prec=60)
_CENT = Decimal(1)


def convert_with(amount_cents: int, rate: Decimal) -> int:
    """amount_cents x rate, in Decimal arithmetic, rounded half-even to a whole cent."""
    return int(
        _EXACT.multiply(Decimal(amount_cents), rate).quantize(_CENT, ROUND_HALF_EVEN, _EXACT)
    )


class ExchangeRateOperations(Executor):
    """Operations of queries/exchange_rates.sql."""

    async def upsert_exchange_rate(
        self, base: str, target: str, rate: Decimal | int | str, rate_date: date
    ) -> ExchangeRate:
        """Store the rate of `rate_date` (1 base = rate target); the same day again replaces it."""
        base_currency = currency_arg("base", base)
        target_currency = currency_arg("target", target)
        if base_currency == target_currency:
            raise ValidationError("target", f"must differ from base ({base_currency})")
        row = await self._one(
            ExchangeRate,
            "upsert_exchange_rate",
            base_currency=base_currency,
            target_currency=target_currency,
            rate=rate_arg("rate", rate),
            rate_date=date_arg("rate_date", rate_date),
        )
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def get_exchange_rate(
        self, base: str, target: str, *, on: date | None = None
    ) -> ExchangeRate | None:
        """The latest rate on or before `on` (default: today, UTC); None when there is none."""
        return await self._one(
            ExchangeRate,
            "get_exchange_rate",
            base_currency=currency_arg("base", base),
            target_currency=currency_arg("target", target),
            on_date=date_arg("on", on, optional=True),
        )

    async def convert_cents(
        self, amount_cents: int, base: str, target: str, *, on: date | None = None
    ) -> int:
        """`amount_cents` of `base` in cents of `target`, at the rate of `on` (default today).

        Decimal arithmetic, rounded half-even to a cent; the amount itself when
        base == target. Raises NotFoundError naming the pair when no rate exists.
        """
        amount: int = int_arg("amount_cents", amount_cents, minimum=0)
        base_currency = currency_arg("base", base)
        target_currency = currency_arg("target", target)
        day = date_arg("on", on, optional=True)
        if base_currency == target_currency:
            return amount
        rate = await self.get_exchange_rate(base_currency, target_currency, on=day)
        if rate is None:
            when = f"on or before {day.isoformat()}" if day is not None else "today"
            raise NotFoundError(
                f"no exchange rate from {base_currency} to {target_currency} {when}"
            )
        return convert_with(amount, rate.rate)
