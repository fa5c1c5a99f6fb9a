"""Argument checks: bad input becomes a ValidationError naming the argument, before any SQL.

Pure functions, no I/O. Each returns the value in the type that is bound to
the statement (a UUID, a Decimal for NUMERIC columns, ...), so operations
bind exactly what they validated.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar
from uuid import UUID

from .errors import ValidationError

T = TypeVar("T")

AVAILABILITIES: Final = ("available", "on_hold", "sold", "unavailable")
DIAMOND_STATUSES: Final = ("active", "deleted")
CONSOLIDATION_STATUSES: Final = ("pending", "processing", "done", "failed")
RUN_TYPES: Final = ("full", "incremental")
WORKER_STATUSES: Final = ("running", "completed", "failed")
RUN_STATUSES: Final = ("running", "completed", "partial", "failed", "cancelled", "stalled")
HOLD_STATUSES: Final = ("active", "expired", "released")
PURCHASE_STATUSES: Final = ("pending", "confirmed", "failed")
CHECKOUT_STATUSES: Final = ("pending_payment", "paid", "confirmed", "expired")
PAYMENT_STATUSES: Final = ("pending", "paid", "expired")
SUPPLIER_ORDER_STATUSES: Final = ("not_attempted", "pending", "placed", "failed", "conflict")
# exchange_rates.rate is NUMERIC(20, 10).
RATE_PLACES: Final = 10
RATE_LIMIT: Final = Decimal(10) ** 10

INT4_MAX: Final = 2**31 - 1
INT8_MAX: Final = 2**63 - 1
# The numbers JSONB can store (PostgreSQL's NUMERIC input): at most 131072 digits
# before the decimal point and 16383 after it.
JSON_NUMBER_MAX_ADJUSTED: Final = 131_071
JSON_NUMBER_MIN_EXPONENT: Final = -16_383


def uuid_arg(name: str, value: object) -> UUID:
    """A UUID, from a uuid.UUID or its string form."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValidationError(name, f"expected a UUID, got {_show(value)}")


def uuid_list_arg(name: str, values: object) -> list[UUID]:
    """A list of UUIDs (a bare string is not a list)."""
    if isinstance(values, str | bytes) or not isinstance(values, Collection):
        raise ValidationError(name, f"expected a list of UUIDs, got {_show(values)}")
    return [uuid_arg(f"{name}[{i}]", v) for i, v in enumerate(values)]


def text_arg(name: str, value: object, *, optional: bool = False, empty: bool = False) -> Any:
    """A str without NUL bytes (PostgreSQL cannot store them); None when optional."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValidationError(name, f"expected a string, got {_show(value)}")
    if "\x00" in value:
        raise ValidationError(name, "contains a NUL byte, which PostgreSQL cannot store")
    check_encodable(name, value)
    if not empty and not value.strip():
        raise ValidationError(name, "must not be empty")
    return value


SUPPLIER_MAX_LENGTH = 100


def supplier_arg(name: str, value: object) -> Any:
    """A feed name: non-empty text of at most SUPPLIER_MAX_LENGTH characters."""
    checked = text_arg(name, value)
    if len(checked) > SUPPLIER_MAX_LENGTH:
        raise ValidationError(name, f"longer than {SUPPLIER_MAX_LENGTH} characters")
    return checked


def text_list_arg(name: str, values: object, *, optional: bool = False) -> list[str] | None:
    """A list of strings; a single string counts as one value, never as its characters."""
    if values is None and optional:
        return None
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, Sequence | set | frozenset) or isinstance(values, bytes):
        raise ValidationError(name, f"expected a list of strings, got {_show(values)}")
    return [text_arg(f"{name}[{i}]", v) for i, v in enumerate(values)]


def choice_arg(name: str, value: object, choices: Sequence[str]) -> Any:
    """One of a closed set of strings."""
    if not isinstance(value, str) or value not in choices:
        raise ValidationError(name, f"expected one of {', '.join(choices)}; got {_show(value)}")
    return value


def bool_arg(name: str, value: object, *, optional: bool = False) -> Any:
    """A real bool (not 0/1, not 'true')."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise ValidationError(name, f"expected True or False, got {_show(value)}")
    return value


def int_arg(
    name: str,
    value: object,
    *,
    minimum: int | None = None,
    maximum: int = INT8_MAX,
    optional: bool = False,
) -> Any:
    """An int (not a bool, not a float) within bounds; BIGINT range by default."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, f"expected an integer, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ValidationError(name, f"must be at least {minimum}, got {value}")
    if value > maximum:
        raise ValidationError(name, f"must be at most {maximum}, got {value}")
    return value


def decimal_arg(
    name: str,
    value: object,
    *,
    places: int = 2,
    digits: int = 6,
    minimum: Decimal | None = None,
    optional: bool = False,
) -> Any:
    """A Decimal fitting NUMERIC(digits, places), bound as NUMERIC (never as float8).

    Accepts Decimal, int, float (through its shortest repr, so 1.1 is 1.10)
    and numeric strings; rejects NaN, infinities and what does not fit.
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float | str):
        raise ValidationError(name, f"expected a number, got {_show(value)}")
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValidationError(name, f"expected a number, got {_show(value)}") from None
    if not number.is_finite():
        raise ValidationError(name, f"must be a finite number, got {_show(value)}")
    if minimum is not None and number < minimum:
        raise ValidationError(name, f"must be at least {minimum}, got {number}")
    limit = Decimal(10) ** (digits - places)
    if abs(number) >= limit:
        raise ValidationError(name, f"must be less than {limit} in magnitude, got {number}")
    return number


def datetime_arg(name: str, value: object, *, optional: bool = False) -> Any:
    """A datetime (a naive one is read in the server's time zone)."""
    if value is None and optional:
        return None
    if not isinstance(value, datetime):
        raise ValidationError(name, f"expected a datetime, got {_show(value)}")
    return value


def json_arg(name: str, value: object, *, optional: bool = False) -> Any:
    """A JSON object (dict) that PostgreSQL's JSONB can store: no NUL, no NaN/inf, str keys.

    A Decimal passes when finite and within the range of a JSONB number
    (upsert_diamonds writes it as an exact JSON number).
    """
    if value is None and optional:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(name, f"expected a JSON object (dict), got {_show(value)}")
    _check_json(name, value, depth=0)
    return value


def _check_json(path: str, value: object, depth: int) -> None:
    if depth > 200:
        raise ValidationError(path, "JSON nesting is too deep")
    if isinstance(value, str):
        if "\x00" in value:
            raise ValidationError(path, "contains a NUL byte, which JSONB cannot store")
        check_encodable(path, value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(path, "NaN and infinities are not valid JSON")
    elif isinstance(value, Decimal):
        _check_json_decimal(path, value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(path, f"JSON object keys must be strings, got {_show(key)}")
            if "\x00" in key:
                raise ValidationError(path, "a key contains a NUL byte")
            check_encodable(f"{path} key", key)
            _check_json(f"{path}.{key}", item, depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_json(f"{path}[{i}]", item, depth + 1)
    elif value is not None and not isinstance(value, bool | int | Decimal):
        raise ValidationError(path, f"not a JSON value: {_show(value)}")


def _check_json_decimal(name: str, value: Decimal) -> None:
    """Reject a Decimal that is no JSON number (NaN, infinities) or too large or fine for JSONB."""
    if not value.is_finite():
        raise ValidationError(name, f"NaN and infinities are not valid JSON, got {_show(value)}")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < JSON_NUMBER_MIN_EXPONENT or (
        value and value.adjusted() > JSON_NUMBER_MAX_ADJUSTED
    ):
        raise ValidationError(
            name,
            "out of the range of a JSONB number (at most 131072 digits before the "
            f"decimal point and 16383 after it), got {_show(value)}",
        )


def _show(value: object) -> str:
    """A short description of a bad value for a message (type, and a clipped repr)."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


_HEX_DIGITS: Final = frozenset("0123456789abcdef")


def key_hash_arg(name: str, value: object) -> str:
    """A SHA-256 hex digest (64 lowercase hex characters), such as an API key's hash.

    The message never echoes the value: a rejected one may be a raw secret.
    """
    if not isinstance(value, str) or len(value) != 64 or not _HEX_DIGITS.issuperset(value):
        raise ValidationError(
            name,
            "expected a SHA-256 hex digest (64 lowercase hex characters); "
            f"got a {type(value).__name__} that is not one (value not shown)",
        )
    return value


def timedelta_arg(name: str, value: object, *, minimum: timedelta | None = None) -> Any:
    """A datetime.timedelta (bound as an INTERVAL), at least `minimum` when given."""
    if not isinstance(value, timedelta):
        raise ValidationError(name, f"expected a timedelta, got {_show(value)}")
    if minimum is not None and value < minimum:
        raise ValidationError(name, f"must be at least {minimum}, got {value}")
    return value


def check_encodable(name: str, value: str) -> None:
    """Reject a str that is not valid Unicode (a lone surrogate, as json.loads can produce).

    It cannot be encoded as UTF-8, so the driver would fail mid-batch.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError(
            name, "contains a lone surrogate (invalid Unicode), which PostgreSQL cannot store"
        ) from None


def currency_arg(name: str, value: object) -> str:
    """An ISO 4217 currency code: three upper-case letters (USD, EUR)."""
    if not isinstance(value, str) or len(value) != 3 or not all("A" <= c <= "Z" for c in value):
        raise ValidationError(
            name, f"expected three upper-case letters (ISO 4217), got {_show(value)}"
        )
    return value


def date_arg(name: str, value: object, *, optional: bool = False) -> Any:
    """A datetime.date (not a datetime, whose time and zone would be dropped silently)."""
    if value is None and optional:
        return None
    if not isinstance(value, date) or isinstance(value, datetime):
        raise ValidationError(name, f"expected a date, got {_show(value)}")
    return value


def rate_arg(name: str, value: object) -> Decimal:
    """An exchange rate: a Decimal (or int, or numeric string) > 0 fitting NUMERIC(20, 10).

    A float is refused: its binary value is not the rate the caller read.
    """
    if isinstance(value, bool) or not isinstance(value, Decimal | int | str):
        raise ValidationError(name, f"expected a Decimal, got {_show(value)}")
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValidationError(name, f"expected a number, got {_show(value)}") from None
    if not number.is_finite() or number <= 0:
        raise ValidationError(name, f"must be a finite number > 0, got {_show(value)}")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -RATE_PLACES and number != round(number, RATE_PLACES):
        raise ValidationError(name, f"at most {RATE_PLACES} decimal places, got {number}")
    if number >= RATE_LIMIT:
        raise ValidationError(name, f"must be less than {RATE_LIMIT}, got {number}")
    return number


def check_ranges(values: Mapping[str, Any], ranges: Iterable[tuple[str, str]]) -> None:
    """Each (low, high) pair of names given together must not be reversed."""
    for low_name, high_name in ranges:
        low, high = values.get(low_name), values.get(high_name)
        if low is not None and high is not None and low > high:
            raise ValidationError(low_name, f"must not exceed {high_name} ({low} > {high})")
