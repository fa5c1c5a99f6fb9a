"""Diamond inventory: lookups, upserts, availability, soft delete, search (queries/diamonds.sql)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final, Literal, overload
from uuid import UUID

import orjson

from .._executor import Executor
from ..errors import ValidationError
from ..records import Availability, Diamond, DiamondInput, DiamondSummary
from ..search import (
    SORT_KEYS,
    DiamondSearch,
    Page,
    Projection,
    R,
    build_search,
    compose,
    make_page,
    page_row,
    projection_arg,
)
from ..validation import (
    AVAILABILITIES,
    DIAMOND_STATUSES,
    bool_arg,
    choice_arg,
    datetime_arg,
    decimal_arg,
    int_arg,
    json_arg,
    text_arg,
    uuid_arg,
)

Check = Callable[[str, object], Any]


def _text(name: str, value: object) -> Any:
    return text_arg(name, value)


def _optional_text(name: str, value: object) -> Any:
    return text_arg(name, value, optional=True, empty=True)


def _carats(name: str, value: object) -> Any:
    carats = decimal_arg(name, value)
    if carats <= 0:
        raise ValidationError(name, f"must be positive, got {carats}")
    return str(carats)  # JSON text: NUMERIC stays exact, never a float


def _markup_ratio(name: str, value: object) -> Any:
    ratio = decimal_arg(name, value, places=4, digits=5, optional=True)
    if ratio is not None and ratio <= 0:
        raise ValidationError(name, f"must be positive, got {ratio}")
    return None if ratio is None else str(ratio)


def _cents(name: str, value: object) -> Any:
    return int_arg(name, value, minimum=0)


def _optional_cents(name: str, value: object) -> Any:
    return int_arg(name, value, minimum=0, optional=True)


def _moment(name: str, value: object) -> Any:
    moment = datetime_arg(name, value, optional=True)
    return None if moment is None else moment.isoformat()


def _measure(low: Decimal, high: Decimal | None, *, places: int = 2, digits: int = 5) -> Check:
    """A check of an optional NUMERIC(digits, places) within [low, high] (or > low when
    high is None), judged on the value as the column stores it (rounded to `places`)."""

    def check(name: str, value: object) -> Any:
        number = decimal_arg(name, value, places=places, digits=digits, optional=True)
        if number is None:
            return None
        stored = number.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
        if stored >= Decimal(10) ** (digits - places):
            raise ValidationError(name, f"does not fit NUMERIC({digits}, {places}): {number}")
        if high is None and stored <= low:
            raise ValidationError(name, f"must be greater than {low}, got {number}")
        if high is not None and not low <= stored <= high:
            raise ValidationError(name, f"must be between {low} and {high}, got {number}")
        return str(stored)  # JSON text: NUMERIC stays exact, never a float

    return check


_PERCENTAGE: Final = _measure(Decimal(0), Decimal(100))
_ANGLE: Final = _measure(Decimal(0), Decimal(90))
_MILLIMETRES: Final = _measure(Decimal(0), None, digits=6)


def _images(name: str, value: object) -> Any:
    """meta_images: None or a list of {"url": non-empty str, "display_index": int >= 0}."""
    if value is None:
        return None
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence):
        raise ValidationError(name, f"expected a list of images, got {type(value).__name__}")
    images = []
    for i, image in enumerate(value):
        if not isinstance(image, Mapping) or set(image) != {"url", "display_index"}:
            raise ValidationError(
                f"{name}[{i}]", 'expected {"url": ..., "display_index": ...} and no other key'
            )
        url = text_arg(f"{name}[{i}].url", image["url"])
        index = int_arg(f"{name}[{i}].display_index", image["display_index"], minimum=0)
        images.append({"url": url, "display_index": index})
    return images


# How each DiamondInput field is checked and turned into its JSON value for upsert_diamonds.
_INPUT_CHECKS: Final[dict[str, Check]] = {
    "supplier": _text,
    "supplier_stone_id": _text,
    "offer_id": _text,
    "shape": _text,
    "carats": _carats,
    "supplier_price_cents": _cents,
    "price_per_carat_cents": _cents,
    "color": _optional_text,
    "clarity": _optional_text,
    "cut": _optional_text,
    "polish": _optional_text,
    "symmetry": _optional_text,
    "fluorescence": _optional_text,
    "lab_grown": bool_arg,
    "treated": bool_arg,
    "retail_price_cents": _optional_cents,
    "markup_ratio": _markup_ratio,
    "rating": lambda n, v: int_arg(n, v, minimum=1, maximum=10, optional=True),
    "availability": lambda n, v: choice_arg(n, v, AVAILABILITIES),
    "raw_availability": _optional_text,
    "image_url": _optional_text,
    "video_url": _optional_text,
    "certificate_lab": _optional_text,
    "certificate_number": _optional_text,
    "certificate_pdf_url": _optional_text,
    "measurements": lambda n, v: json_arg(n, v, optional=True),
    "attributes": lambda n, v: json_arg(n, v, optional=True),
    "supplier_name": _optional_text,
    "supplier_legal_name": _optional_text,
    "status": lambda n, v: choice_arg(n, v, DIAMOND_STATUSES),
    "source_updated_at": _moment,
    "fancy_color": _optional_text,
    "fancy_intensity": _optional_text,
    "fancy_overtone": _optional_text,
    "fluorescence_intensity": _optional_text,
    "ratio": _measure(Decimal(0), None, places=3),
    "table_pct": _PERCENTAGE,
    "depth_pct": _PERCENTAGE,
    "crown_angle": _ANGLE,
    "crown_height": _PERCENTAGE,
    "pavilion_angle": _ANGLE,
    "pavilion_depth": _PERCENTAGE,
    "length_mm": _MILLIMETRES,
    "width_mm": _MILLIMETRES,
    "depth_mm": _MILLIMETRES,
    "girdle": _optional_text,
    "culet_size": _optional_text,
    "brown": _optional_text,
    "green": _optional_text,
    "milky": _optional_text,
    "eye_clean": lambda n, v: bool_arg(n, v, optional=True),
    "meta_images": _images,
}
assert set(_INPUT_CHECKS) == {f.name for f in fields(DiamondInput)}


def _input_row(argument: str, diamond: object) -> dict[str, Any]:
    """One DiamondInput as the JSON object upsert_diamonds reads, checked field by field."""
    if not isinstance(diamond, DiamondInput):
        raise ValidationError(argument, f"expected a DiamondInput, got {type(diamond).__name__}")
    row: dict[str, Any] = {}
    for name, check in _INPUT_CHECKS.items():
        try:
            row[name] = check(f"{argument}.{name}", getattr(diamond, name))
        except ValidationError as error:
            key = (
                f"(supplier={diamond.supplier!r}, supplier_stone_id={diamond.supplier_stone_id!r})"
            )
            message = str(error).removeprefix(f"{error.argument}: ")
            raise ValidationError(error.argument, f"{message} [key {key[:200]}]") from None
    return row


# Integers orjson writes itself; larger ones (valid JSON, exact in JSONB) go through _exact.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def _json_default(value: object) -> Any:
    """orjson's fallback for what json_arg accepts and orjson does not write natively.

    A Decimal becomes an exact JSON number, its own digits (never a binary
    float); json_arg has checked that it is finite and fits a JSONB number.
    """
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | list):
        return list(value)
    if isinstance(value, float):
        return float(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _exact(value: object) -> Any:
    """A copy orjson can write whole, as json.dumps would: integers beyond 64 bits become
    exact number fragments, keys of a str subclass plain str."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _INT_MIN <= value <= _INT_MAX else orjson.Fragment(int.__repr__(value))
    if isinstance(value, Mapping):
        return {str.__str__(key): _exact(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(item) for item in value]
    return value


def _batch(rows: Sequence[dict[str, Any]]) -> str:
    """The :diamonds parameter: last row per key wins, sorted by key (a stable lock order)."""
    latest = {(row["supplier"], row["supplier_stone_id"]): row for row in rows}
    ordered = [latest[key] for key in sorted(latest)]
    try:
        encoded = orjson.dumps(ordered, default=_json_default)
    except orjson.JSONEncodeError:  # an integer beyond 64 bits, a str subclass key (rare)
        encoded = orjson.dumps(_exact(ordered), default=_json_default)
    return encoded.decode()


class DiamondOperations(Executor):
    """Operations of queries/diamonds.sql."""

    async def get_diamond_by_id(self, id: UUID | str) -> Diamond | None:
        """The active diamond with this id, or None (soft-deleted ones are not found)."""
        return await self._one(Diamond, "get_diamond_by_id", id=uuid_arg("id", id))

    async def get_diamond_by_offer_id(self, offer_id: str) -> Diamond | None:
        """The active diamond sold under this offer id, or None."""
        offer = text_arg("offer_id", offer_id)
        return await self._one(Diamond, "get_diamond_by_offer_id", offer_id=offer)

    async def upsert_diamond(self, diamond: DiamondInput, *, apply_rules: bool = False) -> Diamond:
        """Insert or update one diamond on (supplier, supplier_stone_id); the stored row.

        Same statement and rules as upsert_diamonds; the stored row is read back
        in the same transaction, on the primary.
        """
        row = _input_row("diamond", diamond)
        rules = bool_arg("apply_rules", apply_rules)
        async with self._atomic() as tx:
            await tx._rowcount("upsert_diamonds", diamonds=_batch([row]), apply_rules=rules)
            stored = await tx._one(
                Diamond,
                "get_diamond_by_supplier_key",
                supplier=row["supplier"],
                supplier_stone_id=row["supplier_stone_id"],
            )
        assert stored is not None  # just written in this transaction
        return stored

    async def upsert_diamonds(
        self, diamonds: Sequence[DiamondInput], *, apply_rules: bool = False
    ) -> int:
        """Insert or update a batch in one statement, all or nothing; distinct diamonds written.

        Every row is checked before anything is sent (the error names its index
        and key); a key repeated in the batch counts once, its last row wins.
        With `apply_rules`, the active pricing and rating rules set markup_ratio,
        retail_price_cents, pricing_rating and rating in the same statement (the
        supplied ones are ignored); without, they are stored as given and the
        given rating is also the pricing_rating.
        """
        if isinstance(diamonds, str | bytes) or not isinstance(diamonds, Sequence):
            raise ValidationError("diamonds", "expected a sequence of DiamondInput")
        rules = bool_arg("apply_rules", apply_rules)
        rows = [_input_row(f"diamonds[{i}]", d) for i, d in enumerate(diamonds)]
        if not rows:
            return 0
        return await self._rowcount("upsert_diamonds", diamonds=_batch(rows), apply_rules=rules)

    async def update_diamond_availability(
        self,
        id: UUID | str,
        availability: Availability,
        hold_id: str | None = None,
        *,
        expected: Availability | None = None,
    ) -> bool:
        """Set a live diamond's availability and hold_id; whether a row changed.

        With `expected`, only if its availability still equals it (compare-and-set:
        of concurrent callers, exactly one wins).
        """
        params: dict[str, Any] = {
            "id": uuid_arg("id", id),
            "availability": choice_arg("availability", availability, AVAILABILITIES),
            "hold_id": text_arg("hold_id", hold_id, optional=True),
        }
        if expected is None:
            return await self._rowcount("update_diamond_availability", **params) > 0
        params["expected"] = choice_arg("expected", expected, AVAILABILITIES)
        return await self._rowcount("compare_and_set_diamond_availability", **params) > 0

    async def soft_delete_diamond(self, id: UUID | str) -> bool:
        """Soft-delete a live diamond; True if this call deleted it (idempotent)."""
        return await self._rowcount("soft_delete_diamond", id=uuid_arg("id", id)) > 0

    @overload
    async def search_diamonds(
        self,
        params: DiamondSearch | None = None,
        *,
        projection: Literal["full"] = "full",
        **filters: Any,
    ) -> Page[Diamond]: ...

    @overload
    async def search_diamonds(
        self, params: DiamondSearch | None = None, *, projection: Literal["list"], **filters: Any
    ) -> Page[DiamondSummary]: ...

    @overload
    async def search_diamonds(
        self, params: DiamondSearch | None = None, *, projection: Projection, **filters: Any
    ) -> Page[Diamond] | Page[DiamondSummary]: ...

    async def search_diamonds(
        self,
        params: DiamondSearch | None = None,
        *,
        projection: Projection = "full",
        **filters: Any,
    ) -> Page[Diamond] | Page[DiamondSummary]:
        """One page of live diamonds matching the filters (see diamond_db.search).

        projection="list" returns DiamondSummary records and reads only their columns.
        """
        search = build_search(params, filters)
        if projection_arg(projection) == "list":
            return await self._search(search, DiamondSummary, "list")
        return await self._search(search, Diamond, "full")

    async def _search(
        self, search: DiamondSearch, record: type[R], projection: Projection
    ) -> Page[R]:
        query = compose(search, projection)
        rows = await self._composed(
            "search_diamonds",
            "reader",
            query.sql,
            query.params,
            page_row(record, SORT_KEYS[search.sort_by].column),
        )
        return make_page(search, rows)
