"""The diamond search: DiamondSearch -> the predicate catalogue -> one composed statement.

Filters, sort keys and the SQL each one adds are listed once, in CATALOGUE
below, for review. The statement starts from `search_diamonds_base` in
queries/diamonds.sql (the live diamonds) and appends only catalogue text: values
are always bound parameters, identifiers never come from the caller. Deep pages
use an opaque keyset cursor instead of OFFSET, so page 10,000 costs what page 1
costs.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import hashlib
import json
import math
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Generic, Literal, TypeVar, cast
from uuid import UUID

from psycopg.rows import RowMaker

from ._rows import column_names, record_maker
from .errors import ValidationError
from .records import Availability, Diamond, DiamondSummary
from .registry import default_registry
from .validation import (
    AVAILABILITIES,
    INT4_MAX,
    bool_arg,
    choice_arg,
    decimal_arg,
    int_arg,
    text_arg,
    text_list_arg,
    uuid_arg,
)

T = TypeVar("T")

SortBy = Literal[
    "created_at",
    "supplier_price_cents",
    "carats",
    "color",
    "clarity",
    "price_per_carat_cents",
    "retail_price_cents",
    "rating",
    "ratio",
    "certificate_lab",
    "fluorescence_intensity",
    "fancy_color",
    "table_pct",
    "depth_pct",
]
SortOrder = Literal["asc", "desc"]
CountMode = Literal["exact", "capped", "none"]
Projection = Literal["full", "list"]
Values = str | Sequence[str]
Number = Decimal | int | float | str

MAX_LIMIT: Final = 100  # the platform's cap on a page
DEFAULT_COUNT_CAP: Final = 10_000
COUNT_MODES: Final = ("exact", "capped", "none")
SORT_ORDERS: Final = ("asc", "desc")
PROJECTIONS: Final = ("full", "list")
SUMMARY_FIELDS: Final = tuple(f.name for f in dataclasses.fields(DiamondSummary))


# -- THE CATALOGUE -------------------------------------------------------------
# Every predicate and sort key a search can send, in one place. `d` is a live
# diamond (`FROM (search_diamonds_base) AS d`); %(name)s is a bound parameter.
# Present filters are joined with AND; absent ones (None, or an empty list) add
# nothing. A Switch is a boolean filter whose value picks its SQL (nothing is
# bound). Indexes serving them: sql/bootstrap.sql, "search_diamonds".

Switch = Mapping[bool, str]

# no_bgm: a tint (brown, green, milky) is absent when NULL or a "none" value.
_NO_TINT: Final = "coalesce(lower(d.{}), '') IN ('', 'none', 'no', 'n/a')"

PREDICATES: Final[Mapping[str, str | Switch]] = MappingProxyType(
    {
        "supplier": "d.supplier = ANY(%(supplier)s)",
        "shape": "d.shape = ANY(%(shape)s)",
        "carat_min": "d.carats >= %(carat_min)s",
        "carat_max": "d.carats <= %(carat_max)s",
        "colors": "d.color = ANY(%(colors)s)",
        "clarities": "d.clarity = ANY(%(clarities)s)",
        "cuts": "d.cut = ANY(%(cuts)s)",
        "polishes": "d.polish = ANY(%(polishes)s)",
        "symmetries": "d.symmetry = ANY(%(symmetries)s)",
        "fluorescences": "d.fluorescence = ANY(%(fluorescences)s)",
        "certificate_labs": "d.certificate_lab = ANY(%(certificate_labs)s)",
        "lab_grown": "d.lab_grown = %(lab_grown)s",
        "treated": "d.treated = %(treated)s",
        "price_min": "d.supplier_price_cents >= %(price_min)s",
        "price_max": "d.supplier_price_cents <= %(price_max)s",
        "rating_min": "d.rating >= %(rating_min)s",
        "rating_max": "d.rating <= %(rating_max)s",
        "availability": "d.availability = ANY(%(availability)s)",
        "retail_price_min": "d.retail_price_cents >= %(retail_price_min)s",
        "retail_price_max": "d.retail_price_cents <= %(retail_price_max)s",
        "fancy_color": {True: "d.fancy_color IS NOT NULL", False: "d.fancy_color IS NULL"},
        "fancy_colors": "d.fancy_color = ANY(%(fancy_colors)s)",
        "fancy_intensities": "d.fancy_intensity = ANY(%(fancy_intensities)s)",
        "fluorescence_intensities": (
            "d.fluorescence_intensity = ANY(%(fluorescence_intensities)s)"
        ),
        "ratio_min": "d.ratio >= %(ratio_min)s",
        "ratio_max": "d.ratio <= %(ratio_max)s",
        "table_min": "d.table_pct >= %(table_min)s",
        "table_max": "d.table_pct <= %(table_max)s",
        "depth_pct_min": "d.depth_pct >= %(depth_pct_min)s",
        "depth_pct_max": "d.depth_pct <= %(depth_pct_max)s",
        "crown_angle_min": "d.crown_angle >= %(crown_angle_min)s",
        "crown_angle_max": "d.crown_angle <= %(crown_angle_max)s",
        "pavilion_angle_min": "d.pavilion_angle >= %(pavilion_angle_min)s",
        "pavilion_angle_max": "d.pavilion_angle <= %(pavilion_angle_max)s",
        "length_min": "d.length_mm >= %(length_min)s",
        "length_max": "d.length_mm <= %(length_max)s",
        "width_min": "d.width_mm >= %(width_min)s",
        "width_max": "d.width_mm <= %(width_max)s",
        "depth_mm_min": "d.depth_mm >= %(depth_mm_min)s",
        "depth_mm_max": "d.depth_mm <= %(depth_mm_max)s",
        "eye_clean": "d.eye_clean = %(eye_clean)s",
        # True only: no_bgm=False is no filter (normalised to None), as an unticked box.
        "no_bgm": {
            True: "\n    AND ".join(_NO_TINT.format(c) for c in ("brown", "green", "milky"))
        },
    }
)


# `diamond-db search --explain` prefixes a composed search with this. ANALYZE runs the
# statement (a read) to report actual rows and timings; BUFFERS shows what it touched.
EXPLAIN_ANALYZE: Final = "EXPLAIN (ANALYZE, BUFFERS) "


# The twelve clarity grades, best first: diamond_clarity_rank() in sql/bootstrap.sql
# ranks them 1 ... 12 and any other grade 13 (a test holds the two to each other).
CLARITY_GRADES: Final = (
    "FL", "IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2", "SI3", "I1", "I2", "I3"
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tier:
    """One index range of a tiered sort key: its rows, and the keyset inside it.

    `where` selects the range's rows; `exprs` and `after` are the terms before
    `d.id` of its keyset condition (none: the range is ordered by id alone);
    `holds(value)` says whether a cursor's last sort value lies in this range.
    """

    where: tuple[str, ...]
    exprs: tuple[str, ...]
    after: tuple[str, ...]
    holds: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class SortKey:
    """How one sort_by value orders rows: SQL expressions, then `d.id` as the tie-break.

    `after` are the same expressions over the cursor's value (%(after_value)s),
    for the keyset condition (exprs..., d.id) > (after..., %(after_id)s).
    `column` is the Diamond field the cursor carries. A key with `tiers` is read
    as that many index ranges, each in key order, the tiers in the same order in
    both directions (a nullable key: non-NULL, then NULL). The rows read from them
    are put back in that order by `tier_order` ASC NULLS LAST, then `exprs` NULLS
    LAST (enough alone for a nullable key).
    """

    column: str
    exprs: tuple[str, ...]
    after: tuple[str, ...]
    kind: type[Any]
    tiers: tuple[Tier, ...] = ()
    tier_order: tuple[str, ...] = ()

    def tier_of(self, value: Any) -> int:
        """The tier a cursor's last sort value lies in (the first that holds it)."""
        return next(i for i, tier in enumerate(self.tiers) if tier.holds(value))


def _is_none(value: Any) -> bool:
    return value is None


def _is_not_none(value: Any) -> bool:
    return value is not None


def _is_grade(value: Any) -> bool:
    return value in CLARITY_GRADES


def _plain(column: str, kind: type[Any], *, nullable: bool = False) -> SortKey:
    """A column sorted as it is; nullable: its non-NULL values, then its NULLs by id."""
    expr, after = f"d.{column}", "%(after_value)s"
    if not nullable:
        return SortKey(column, (expr,), (after,), kind)
    tiers = (
        Tier((f"{expr} IS NOT NULL",), (expr,), (after,), _is_not_none),
        Tier((f"{expr} IS NULL",), (), (), _is_none),
    )
    return SortKey(column, (expr,), (after,), kind, tiers)


# sort_by clarity: the grades FL (best) ... I3 in grade order, then unknown grades
# (rank 13) alphabetically, then NULL. Unknown grades are missing data, not grades
# worse than I3: they come after the grades in both directions, as NULLs do. Three
# ranges of diamonds_search_clarity_idx, on (diamond_clarity_rank(clarity), clarity,
# id); `rank = 13` ascending, NULLS LAST, is false, true, NULL: the tiers in order.
_RANK: Final = "diamond_clarity_rank(d.clarity)"
_AFTER_CLARITY: Final = "%(after_value)s::TEXT"
_AFTER_RANK: Final = f"diamond_clarity_rank({_AFTER_CLARITY})"
_CLARITY: Final = SortKey(
    "clarity",
    (_RANK, "d.clarity"),
    (_AFTER_RANK, _AFTER_CLARITY),
    str,
    tiers=(
        Tier((f"{_RANK} < 13",), (_RANK, "d.clarity"), (_AFTER_RANK, _AFTER_CLARITY), _is_grade),
        Tier((f"{_RANK} = 13",), ("d.clarity",), (_AFTER_CLARITY,), _is_not_none),
        Tier((f"{_RANK} IS NULL",), (), (), _is_none),
    ),
    tier_order=(f"{_RANK} = 13",),
)

SORT_KEYS: Final[Mapping[str, SortKey]] = MappingProxyType(
    {
        "created_at": _plain("created_at", datetime),
        "supplier_price_cents": _plain("supplier_price_cents", int),
        "carats": _plain("carats", Decimal),
        "color": _plain("color", str, nullable=True),
        "clarity": _CLARITY,
        "price_per_carat_cents": _plain("price_per_carat_cents", int),
        "retail_price_cents": _plain("retail_price_cents", int, nullable=True),
        "rating": _plain("rating", int, nullable=True),
        "ratio": _plain("ratio", Decimal, nullable=True),
        "certificate_lab": _plain("certificate_lab", str, nullable=True),
        "fluorescence_intensity": _plain("fluorescence_intensity", str, nullable=True),
        "fancy_color": _plain("fancy_color", str, nullable=True),
        "table_pct": _plain("table_pct", Decimal, nullable=True),
        "depth_pct": _plain("depth_pct", Decimal, nullable=True),
    }
)

# -- the search record ---------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DiamondSearch:
    """One search: every filter plus paging, sorting, cursor and count mode.

    Validated and normalised on construction (lists become tuples, carats
    Decimals, limit capped at 100), so a bad value fails here, naming its field.
    """

    supplier: Values | None = None
    shape: Values | None = None
    carat_min: Number | None = None
    carat_max: Number | None = None
    colors: Values | None = None
    clarities: Values | None = None
    cuts: Values | None = None
    polishes: Values | None = None
    symmetries: Values | None = None
    fluorescences: Values | None = None
    certificate_labs: Values | None = None
    lab_grown: bool | None = None
    treated: bool | None = None
    price_min: int | None = None
    price_max: int | None = None
    rating_min: int | None = None
    rating_max: int | None = None
    availability: Availability | Sequence[Availability] | None = None
    retail_price_min: int | None = None
    retail_price_max: int | None = None
    fancy_color: bool | None = None
    fancy_colors: Values | None = None
    fancy_intensities: Values | None = None
    fluorescence_intensities: Values | None = None
    ratio_min: Number | None = None
    ratio_max: Number | None = None
    table_min: Number | None = None
    table_max: Number | None = None
    depth_pct_min: Number | None = None
    depth_pct_max: Number | None = None
    crown_angle_min: Number | None = None
    crown_angle_max: Number | None = None
    pavilion_angle_min: Number | None = None
    pavilion_angle_max: Number | None = None
    length_min: Number | None = None
    length_max: Number | None = None
    width_min: Number | None = None
    width_max: Number | None = None
    depth_mm_min: Number | None = None
    depth_mm_max: Number | None = None
    eye_clean: bool | None = None
    no_bgm: bool | None = None
    page: int = 1
    limit: int = 50
    sort_by: SortBy = "created_at"
    sort_order: SortOrder = "desc"
    cursor: str | None = None
    count: CountMode = "exact"
    count_cap: int = DEFAULT_COUNT_CAP
    _after: _After | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name, value in _normalised(self).items():
            object.__setattr__(self, name, value)
        if self.cursor is not None:
            object.__setattr__(self, "_after", _decode_cursor(self, self.cursor))

    def filters(self) -> dict[str, Any]:
        """The present filters, by name, as they are bound."""
        values = {name: getattr(self, name) for name in PREDICATES}
        return {name: _bindable(value) for name, value in values.items() if value is not None}


FIELDS: Final = frozenset(f.name for f in dataclasses.fields(DiamondSearch) if f.init)


def compile_filters(filters: Mapping[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The conditions (to AND) and bound parameters of a set of present filters.

    `filters` is DiamondSearch.filters() or part of it (facets drop a facet's own
    filter); the search and the facets compile filters only here.
    """
    conditions: list[str] = []
    params: dict[str, Any] = {}
    for name, value in filters.items():
        predicate = PREDICATES[name]
        if isinstance(predicate, str):
            conditions.append(predicate)
            params[name] = value
        else:
            conditions.append(predicate[value])
    return conditions, params


# How filters are validated, by kind. Decimal ranges: (NUMERIC digits, places) of the column.
LIST_FILTERS: Final = (
    "supplier", "shape", "colors", "clarities", "cuts", "polishes", "symmetries", "fluorescences",
    "certificate_labs", "fancy_colors", "fancy_intensities", "fluorescence_intensities",
    "availability",
)  # fmt: skip
_BOOL_FILTERS: Final = ("lab_grown", "treated", "fancy_color", "eye_clean", "no_bgm")
_DECIMAL_RANGES: Final = {
    "carat": (6, 2),
    "ratio": (5, 3),
    "table": (5, 2),
    "depth_pct": (5, 2),
    "crown_angle": (5, 2),
    "pavilion_angle": (5, 2),
    "length": (6, 2),
    "width": (6, 2),
    "depth_mm": (6, 2),
}
_CENTS_RANGES: Final = ("price", "retail_price")


def _normalised(s: DiamondSearch) -> dict[str, Any]:
    values = _normalised_filters(s)
    values["page"] = int_arg("page", s.page, minimum=1, maximum=INT4_MAX)
    values["limit"] = min(int_arg("limit", s.limit, minimum=1), MAX_LIMIT)
    values["sort_by"] = choice_arg("sort_by", s.sort_by, tuple(SORT_KEYS))
    values["sort_order"] = choice_arg("sort_order", s.sort_order, SORT_ORDERS)
    values["count"] = choice_arg("count", s.count, COUNT_MODES)
    values["count_cap"] = int_arg("count_cap", s.count_cap, minimum=1, maximum=INT4_MAX - 1)
    values["cursor"] = text_arg("cursor", s.cursor, optional=True)
    return values


def _normalised_filters(s: DiamondSearch) -> dict[str, Any]:
    values: dict[str, Any] = {name: _values(name, getattr(s, name)) for name in LIST_FILTERS}
    for i, value in enumerate(values["availability"] or ()):
        choice_arg(f"availability[{i}]", value, AVAILABILITIES)
    for name in _BOOL_FILTERS:
        values[name] = bool_arg(name, getattr(s, name), optional=True)
    values["no_bgm"] = values["no_bgm"] or None  # False: no filter, as None
    for prefix, (digits, places) in _DECIMAL_RANGES.items():
        low, high = (f"{prefix}_min", f"{prefix}_max")
        for name in (low, high):
            number = getattr(s, name)
            values[name] = decimal_arg(name, number, digits=digits, places=places, optional=True)
        _check_range(prefix, values[low], values[high])
    for prefix in _CENTS_RANGES:
        for name in (f"{prefix}_min", f"{prefix}_max"):
            values[name] = int_arg(name, getattr(s, name), minimum=0, optional=True)
        _check_range(prefix, values[f"{prefix}_min"], values[f"{prefix}_max"])
    for name in ("rating_min", "rating_max"):
        values[name] = int_arg(name, getattr(s, name), minimum=1, maximum=10, optional=True)
    _check_range("rating", values["rating_min"], values["rating_max"])
    return values


def _values(name: str, value: object) -> tuple[str, ...] | None:
    """A tuple of strings (one string is one value); None when empty or absent."""
    values = text_list_arg(name, value, optional=True)
    return tuple(values) if values else None


def _check_range(name: str, low: Any, high: Any) -> None:
    if low is not None and high is not None and low > high:
        raise ValidationError(f"{name}_min", f"must not exceed {name}_max ({low} > {high})")


def _bindable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def build_search(params: DiamondSearch | None, filters: Mapping[str, Any]) -> DiamondSearch:
    """The DiamondSearch of `search_diamonds(params, **filters)`; filters override params."""
    for name in filters:
        if name not in FIELDS:
            raise ValidationError(name, "unknown search filter or option")
    if params is None:
        return DiamondSearch(**filters)
    if not isinstance(params, DiamondSearch):
        raise ValidationError("params", f"expected a DiamondSearch, got {type(params).__name__}")
    return dataclasses.replace(params, **filters) if filters else params


# -- pages ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of results.

    `total` is None with count="none", and the cap (total_is_exact False) when a
    capped count reaches it. `next_cursor` continues after the last item (None on
    the last page); `page` is this page's number, also for a cursor page.
    """

    items: list[T]
    total: int | None
    total_is_exact: bool
    page: int
    limit: int
    total_pages: int | None
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RenderedQuery:
    """A composed search statement in psycopg's %(name)s style, and its parameters."""

    sql: str
    params: dict[str, Any]


# -- keyset cursors ------------------------------------------------------------
# A cursor is base64url (unpadded) of compact JSON: {"f": fingerprint, "p": page,
# "v": last sort value, "i": last id}. The fingerprint pins it to one search
# (filters, sort, limit, count mode); it is opaque, not secret: forging one only
# moves the start of a page, whose values are still bound parameters.

_CURSOR_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class _After:
    """Where a cursor page starts: after (value, id) of the previous page's last row."""

    value: Any
    id: UUID
    page: int


def _fingerprint(search: DiamondSearch) -> str:
    shape = {name: _jsonable(value) for name, value in search.filters().items()}
    shape.update(
        v=_CURSOR_VERSION,
        sort_by=search.sort_by,
        sort_order=search.sort_order,
        limit=search.limit,
        count=search.count,
        count_cap=search.count_cap,
    )
    text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value.normalize())
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def encode_cursor(search: DiamondSearch, value: Any, last_id: UUID, next_page: int) -> str:
    """The cursor of the page after the one ending with the row (sort `value`, `last_id`).

    It does not depend on the projection: a page of either continues the same way.
    """
    data = {"f": _fingerprint(search), "p": next_page, "v": _jsonable(value), "i": str(last_id)}
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(search: DiamondSearch, cursor: str) -> _After:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise ValidationError("cursor", "malformed cursor") from None
    if not isinstance(data, dict) or set(data) != {"f", "p", "v", "i"}:
        raise ValidationError("cursor", "malformed cursor")
    if data["f"] != _fingerprint(search):
        raise ValidationError("cursor", "the cursor belongs to a different search")
    try:
        page = int_arg("cursor", data["p"], minimum=2, maximum=INT4_MAX)
        value = _cursor_value(SORT_KEYS[search.sort_by], data["v"])
        return _After(value, uuid_arg("cursor", data["i"]), page)
    except ValidationError:
        raise ValidationError("cursor", "malformed cursor") from None


def _cursor_value(key: SortKey, value: object) -> Any:
    if value is None:
        if not key.tiers:
            raise ValidationError("cursor", "malformed cursor")
        return None
    if key.kind is datetime:
        if not isinstance(value, str):
            raise ValidationError("cursor", "malformed cursor")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError("cursor", "malformed cursor") from None
        if moment.tzinfo is None:
            raise ValidationError("cursor", "malformed cursor")
        return moment
    if key.kind is Decimal:
        return decimal_arg("cursor", value if isinstance(value, str) else None)
    if key.kind is int:
        return int_arg("cursor", value, minimum=-(2**63))
    return text_arg("cursor", value, empty=True)


# -- composition ---------------------------------------------------------------


def _base_sql() -> str:
    return default_registry()["search_diamonds_base"].sql.strip().rstrip(";").strip()


@functools.cache
def _from_live() -> str:
    return "FROM (\n" + _indent(_base_sql()) + "\n) AS d"


def _indent(text: str) -> str:
    """`text` indented by four spaces, blank lines left empty (as textwrap.indent, which
    costs more than the rest of a search's composition)."""
    lines = text.split("\n")
    return "\n".join("    " + line if line.strip() else line for line in lines)


def _where(conditions: Sequence[str]) -> str:
    return "WHERE " + "\n    AND ".join(conditions) if conditions else ""


def _order_by(key: SortKey, direction: str, *, merged: bool = False) -> str:
    """ORDER BY the key, then id: as its index reads it, or `merged` from its tiers' ranges."""
    terms = [f"{term} ASC NULLS LAST" for term in key.tier_order] if merged else []
    nulls = " NULLS LAST" if merged else ""
    terms += [f"{expr} {direction}{nulls}" for expr in key.exprs]
    return "ORDER BY " + ", ".join([*terms, f"d.id {direction}"])


def _columns(projection: Projection, key: SortKey) -> str:
    """The select list of a page: every column, or a summary's and the sort key's."""
    if projection == "full":
        return "d.*"
    names = [*SUMMARY_FIELDS, *([] if key.column in SUMMARY_FIELDS else [key.column])]
    return "\n    ".join(textwrap.wrap(", ".join(f"d.{name}" for name in names), 80))


def _select(
    columns: str, conditions: Sequence[str], key: SortKey, direction: str, limit: str
) -> str:
    order = _order_by(key, direction)
    # columns: a projection's fixed column list; every value is bound by name.
    parts = [f"SELECT {columns}", _from_live(), _where(conditions), order, limit]
    return "\n".join(part for part in parts if part)


def _keyset(exprs: Sequence[str], after: Sequence[str], direction: str) -> str:
    """The keyset condition: (exprs..., d.id) past (after..., the cursor's id)."""
    op = ">" if direction == "ASC" else "<"
    if not exprs:
        return f"d.id {op} %(after_id)s"
    left = ", ".join([*exprs, "d.id"])
    right = ", ".join([*after, "%(after_id)s"])
    return f"({left}) {op} ({right})"


def _page_sql(
    search: DiamondSearch, where: list[str], params: dict[str, Any], projection: Projection
) -> str:
    """The statement fetching limit + 1 rows (the extra one says a next page exists)."""
    key = SORT_KEYS[search.sort_by]
    columns = _columns(projection, key)
    direction = search.sort_order.upper()
    after = search._after
    offset = 0 if after is not None else (search.page - 1) * search.limit
    if after is not None:
        params.update(after_value=after.value, after_id=after.id)
    params["limit"] = search.limit + 1
    tail = "LIMIT %(limit)s" + (" OFFSET %(offset)s" if offset else "")
    if offset:
        params["offset"] = offset
    if not key.tiers:
        keyset = [_keyset(key.exprs, key.after, direction)] if after else []
        return _select(columns, where + keyset, key, direction, tail)
    params["range_limit"] = search.limit + 1 + offset
    return _tiered_page(columns, key, direction, where, after, tail)


def _tiered_page(
    columns: str, key: SortKey, direction: str, where: list[str], after: _After | None, tail: str
) -> str:
    """A tiered key's page: each tier's rows in key order, tier after tier.

    Each tier is one range of the key's index (read backwards for DESC), cut at
    limit + offset rows; the outer ORDER BY puts the short lists in tier order.
    A cursor page starts with the keyset inside the cursor's own tier and skips
    the tiers before it.
    """
    first = 0 if after is None else key.tier_of(after.value)
    ranges = []
    for number, tier in enumerate(key.tiers[first:], start=first):
        starts_here = after is not None and number == first
        keyset = [_keyset(tier.exprs, tier.after, direction)] if starts_here else []
        ranges.append([*where, *tier.where, *keyset])
    range_limit = "LIMIT %(range_limit)s"
    selects = [
        "(\n" + _indent(_select(columns, r, key, direction, range_limit)) + "\n)" for r in ranges
    ]
    union = "\n    UNION ALL\n".join(_indent(s) for s in selects)
    order = _order_by(key, direction, merged=True)
    return "\n".join(["SELECT d.*", "FROM (", union, ") AS d", order, tail])


def _count_sql(search: DiamondSearch, where: list[str], params: dict[str, Any]) -> str:
    counted = "\n".join(part for part in ("SELECT 1", _from_live(), _where(where)) if part)
    if search.count == "capped":
        # Stop after cap + 1 matches: enough to tell "exactly n" from "more than cap".
        params["count_limit"] = search.count_cap + 1
        counted += "\nLIMIT %(count_limit)s"
    return "SELECT count(*) AS n\nFROM (\n" + _indent(counted) + "\n) AS matched"


def compose(search: DiamondSearch, projection: Projection = "full") -> RenderedQuery:
    """The one statement that fetches a page of `search` (and its count, unless "none").

    `projection` "full" selects every column (a Diamond), "list" the columns of a
    DiamondSummary, plus the sort key's column when it is not one of them (the
    next page's cursor carries its value).

    Why this form: the count is a separate scalar subquery joined to the page, so
    the page keeps its index-ordered LIMIT plan and the count its own plan (often
    an index-only scan), in one round trip. Measured on 1M diamonds (970k live):
    the joined form costs what the two statements cost apart (README search 3.0 ms
    vs 2.1 + 1.1 ms, no filter 84 ms vs 0.6 + 83 ms) minus a round trip, while
    count(*) OVER () over the page query must read every match before the LIMIT
    (no filter: 964 ms). An empty page still returns one row carrying the count.
    """
    where, params = compile_filters(search.filters())
    page = _page_sql(search, where, params, projection)
    if search.count == "none":
        return RenderedQuery(page, params)
    key = SORT_KEYS[search.sort_by]
    count = _count_sql(search, where, params)
    order = _order_by(key, search.sort_order.upper(), merged=True)
    sql = (
        "SELECT d.*, total.n AS search_total\n"
        f"FROM (\n{_indent(count)}\n) AS total\n"
        f"LEFT JOIN (\n{_indent(page)}\n) AS d ON TRUE\n"
        f"{order}"
    )
    return RenderedQuery(sql, params)


def render_live_count(search: DiamondSearch) -> RenderedQuery:
    """How many live diamonds match the search's filters (a catalogue job's total)."""
    where, params = compile_filters(search.filters())
    counted = [part for part in ("SELECT count(*) AS n", _from_live(), _where(where)) if part]
    return RenderedQuery("\n".join(counted), params)


def render_id_batch(search: DiamondSearch) -> RenderedQuery:
    """Ids of the live diamonds matching the filters after %(after_id)s, in id order.

    At most %(batch_size)s of them: one keyset batch of a catalogue job, read
    along the primary key.
    """
    where, params = compile_filters(search.filters())
    parts = [
        "SELECT d.id",
        _from_live(),
        _where([*where, "d.id > %(after_id)s"]),
        "ORDER BY d.id",
        "LIMIT %(batch_size)s",
    ]
    return RenderedQuery("\n".join(parts), params)


def render_search(
    params: DiamondSearch | None = None, *, projection: Projection = "full", **filters: Any
) -> RenderedQuery:
    """The statement search_diamonds would run, and its parameters, without running it.

    For review, logging and EXPLAIN; executing it with plain psycopg returns the
    same rows (the projection's columns, plus search_total unless count="none").
    """
    return compose(build_search(params, filters), projection_arg(projection))


def projection_arg(projection: object) -> Projection:
    """A valid projection ("full" or "list"), else ValidationError."""
    return cast(Projection, choice_arg("projection", projection, PROJECTIONS))


# -- results -------------------------------------------------------------------

R = TypeVar("R", Diamond, DiamondSummary)
# A row of the composed statement: the record (None: the count's row of an empty
# page), the count (None with count="none"), and the sort key's value.
Row = tuple[R | None, int | None, Any]


def page_row(record: type[R], sort_column: str) -> Callable[[Any], RowMaker[Row[R]]]:
    """Row factory of the composed statement, building `record`s (Diamond or DiamondSummary)."""
    first_field = dataclasses.fields(record)[0].name

    def factory(cursor: Any) -> RowMaker[Row[R]]:
        names = column_names(cursor)
        total_at = names.index("search_total") if "search_total" in names else None
        first_at = names.index(first_field)
        sort_at = names.index(sort_column)
        build = record_maker(record, names)

        def make(values: Sequence[Any]) -> Row[R]:
            total = None if total_at is None else values[total_at]
            if values[first_at] is None:  # the count's row when the page is empty
                return None, total, None
            return build(values), total, values[sort_at]

        return make

    return factory


def make_page(search: DiamondSearch, rows: Sequence[Row[R]]) -> Page[R]:
    """The Page for the rows of compose(search)."""
    found = [(item, value) for item, _, value in rows if item is not None]
    items = [item for item, _ in found]
    number = search._after.page if search._after is not None else search.page
    next_cursor = None
    if len(items) > search.limit:
        items = items[: search.limit]
        last, value = found[search.limit - 1]
        next_cursor = encode_cursor(search, value, last.id, number + 1)
    counted = rows[0][1] if rows else None
    total, exact = _total(search, counted)
    pages = None if total is None else math.ceil(total / search.limit)
    return Page(
        items=items,
        total=total,
        total_is_exact=exact,
        page=number,
        limit=search.limit,
        total_pages=pages,
        next_cursor=next_cursor,
    )


def _total(search: DiamondSearch, counted: int | None) -> tuple[int | None, bool]:
    if search.count == "none" or counted is None:
        return None, False
    if search.count == "capped" and counted > search.count_cap:
        return search.count_cap, False
    return counted, True
