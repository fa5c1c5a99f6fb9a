"""The storefront's catalogue reads: facets, related, recommended, quick lookup, on hold.

Statements in queries/catalogue.sql; search_facets is composed from the search
catalogue (diamond_db/facets.py). Each operation is one statement.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from psycopg.rows import RowMaker, tuple_row

from .._executor import Executor
from .._rows import column_names, record_maker
from ..errors import ValidationError
from ..facets import FACET_NAMES, check_count_mode, compose_facets, facet_names, make_facets
from ..records import Diamond, Facets, Recommendations
from ..search import MAX_LIMIT, PREDICATES, Page, build_search
from ..validation import INT4_MAX, decimal_arg, int_arg, text_arg, uuid_arg

# Fields get_related_diamonds can require equal to the anchor's (queries/catalogue.sql).
RELATED_MATCH: Final = (
    "shape",
    "lab_grown",
    "color",
    "clarity",
    "cut",
    "polish",
    "symmetry",
    "fluorescence",
    "certificate_lab",
    "fancy_color",
)
RELATED_MAX_LIMIT: Final = 50
QUICK_MAX_LIMIT: Final = 50
QUICK_TEXT_LENGTH: Final = (2, 100)
_FACET_OPTIONS: Final = frozenset(PREDICATES) | {"count", "count_cap"}


def _diamond_maker(names: tuple[str, ...]) -> RowMaker[Diamond | None]:
    """Diamonds by column name; None for the all-NULL row of a LEFT JOIN."""
    build, id_at = record_maker(Diamond, names), names.index("id")
    return lambda values: None if values[id_at] is None else build(values)


def _diamonds(cursor: Any) -> RowMaker[Diamond | None]:
    return _diamond_maker(column_names(cursor))


def _slots(cursor: Any) -> RowMaker[tuple[str | None, Diamond | None]]:
    names = column_names(cursor)
    slot_at, diamond = names.index("slot"), _diamond_maker(names)
    return lambda values: (values[slot_at], diamond(values))


def _match(match: object) -> dict[str, bool]:
    """The match_<field> flags of get_related_diamonds."""
    if isinstance(match, str) or not isinstance(match, Sequence | set | frozenset):
        raise ValidationError("match", "expected a list of field names")
    for i, name in enumerate(match):
        if name not in RELATED_MATCH:
            raise ValidationError(
                f"match[{i}]", f"unknown match field {name!r}; one of {', '.join(RELATED_MATCH)}"
            )
    return {f"match_{name}": name in match for name in RELATED_MATCH}


# -- the on-hold list's keyset cursor: base64url of {"u": updated_at, "i": id, "p": page}


def _encode_hold_cursor(last: Diamond, page: int) -> str:
    raw = json.dumps({"u": last.updated_at.isoformat(), "i": str(last.id), "p": page})
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _decode_hold_cursor(cursor: object) -> tuple[datetime, UUID, int]:
    text = text_arg("cursor", cursor)
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        moment = datetime.fromisoformat(data["u"])
        if moment.tzinfo is None or set(data) != {"u", "i", "p"}:
            raise ValueError("not a cursor")
        page = int_arg("cursor", data["p"], minimum=2, maximum=INT4_MAX)
        return moment, uuid_arg("cursor", data["i"]), page
    except (ValueError, TypeError, KeyError, binascii.Error, ValidationError):
        raise ValidationError("cursor", "malformed cursor") from None


class CatalogueOperations(Executor):
    """Operations of queries/catalogue.sql, and search_facets."""

    async def search_facets(self, facets: Sequence[str] = FACET_NAMES, **filters: Any) -> Facets:
        """{facet: {value: count}} of the live diamonds matching `filters`, disjunctively.

        Each facet's counts apply every filter except the facet's own; NULL is
        counted under None. `filters` are search_diamonds' filters, plus
        count="exact" (default) or "capped" (each count at most count_cap, the
        capped ones listed in `.capped`). One statement.
        """
        names = facet_names(facets)
        for name in filters:
            if name not in _FACET_OPTIONS:
                raise ValidationError(name, "not a search filter (nor count or count_cap)")
        search = build_search(None, filters)
        check_count_mode(search)
        if not names:
            return make_facets(search, names, [])
        query = compose_facets(search, names)
        rows = await self._composed("search_facets", "reader", query.sql, query.params, tuple_row)
        return make_facets(search, names, rows)

    async def get_related_diamonds(
        self,
        id: UUID | str,
        *,
        limit: int = 12,
        carat_tolerance: Decimal = Decimal("0.15"),
        price_tolerance_cents: int = 25_000,
        match: Sequence[str] = ("shape", "lab_grown", "color", "clarity", "cut"),
    ) -> list[Diamond] | None:
        """Available stones like the anchor, closest first; None for an unknown or deleted one.

        Same lab_grown, carats within +-carat_tolerance, retail price within
        +-price_tolerance_cents when the anchor has one, equal on each `match`
        field the anchor has a value for; ordered by carat difference, price
        difference (NULLs last), newest, id.
        """
        params = {
            "id": uuid_arg("id", id),
            "row_limit": int_arg("limit", limit, minimum=1, maximum=RELATED_MAX_LIMIT),
            "carat_tolerance": decimal_arg("carat_tolerance", carat_tolerance, minimum=Decimal(0)),
            "price_tolerance_cents": int_arg(
                "price_tolerance_cents", price_tolerance_cents, minimum=0
            ),
            **_match(match),
        }
        rows = await self._mapped(_diamonds, "get_related_diamonds", **params)
        return None if not rows else [d for d in rows if d is not None]

    async def get_recommended_diamonds(
        self, id: UUID | str, *, carat_tolerance: Decimal = Decimal("0.15")
    ) -> Recommendations | None:
        """Three distinct available stones for the anchor's page; None for an unknown anchor.

        The pool and the slots are described in queries/catalogue.sql and the
        README (relaxed from shape, clarity and cut to shape alone).
        """
        rows = await self._mapped(
            _slots,
            "get_recommended_diamonds",
            id=uuid_arg("id", id),
            carat_tolerance=decimal_arg("carat_tolerance", carat_tolerance, minimum=Decimal(0)),
        )
        if not rows:
            return None
        slots = dict(rows)
        return Recommendations(
            highest_rated=slots.get("highest_rated"),
            most_expensive=slots.get("most_expensive"),
            mid_rated=slots.get("mid_rated"),
        )

    async def quick_search_diamonds(
        self, text: str, *, limit: int = 10, supplier: str | None = None
    ) -> list[Diamond]:
        """Live diamonds whose stone id, offer id or certificate number starts with `text`.

        Case-insensitive, `%` and `_` literal, newest first; 2 to 100 characters.
        """
        text = text_arg("text", text, empty=True)
        shortest, longest = QUICK_TEXT_LENGTH
        if not shortest <= len(text) <= longest:
            raise ValidationError("text", f"must be {shortest} to {longest} characters long")
        return await self._all(
            Diamond,
            "quick_search_diamonds",
            prefix=text,
            supplier=text_arg("supplier", supplier, optional=True),
            row_limit=int_arg("limit", limit, minimum=1, maximum=QUICK_MAX_LIMIT),
        )

    async def get_diamonds_on_hold(
        self, *, supplier: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[Diamond]:
        """A page of live on-hold diamonds, most recently changed first (keyset-paged).

        `cursor` is the previous page's next_cursor; limit is capped at 100, as a
        search's; `total` is not counted (None).
        """
        row_limit = min(int_arg("limit", limit, minimum=1), MAX_LIMIT)
        after_updated_at, after_id, page = None, None, 1
        if cursor is not None:
            after_updated_at, after_id, page = _decode_hold_cursor(cursor)
        rows = await self._all(
            Diamond,
            "get_diamonds_on_hold",
            supplier=text_arg("supplier", supplier, optional=True),
            after_updated_at=after_updated_at,
            after_id=after_id,
            row_limit=row_limit + 1,
        )
        items = rows[:row_limit]
        more = len(rows) > row_limit
        return Page(
            items=items,
            total=None,
            total_is_exact=False,
            page=page,
            limit=row_limit,
            total_pages=None,
            next_cursor=_encode_hold_cursor(items[-1], page + 1) if more else None,
        )
