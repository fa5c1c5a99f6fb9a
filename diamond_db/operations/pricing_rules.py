"""Pricing rules: priority-ordered markup rules and matching (queries/pricing_rules.sql)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from decimal import Decimal
from typing import Any
from uuid import UUID

from .._executor import Executor
from ..errors import ValidationError
from ..records import PricingRule
from ..validation import (
    INT4_MAX,
    bool_arg,
    check_ranges,
    decimal_arg,
    int_arg,
    text_arg,
    text_list_arg,
    uuid_arg,
)


def _carats(name: str, value: object, *, optional: bool = True) -> Any:
    """Carats as NUMERIC(6, 2) takes them."""
    return decimal_arg(name, value, places=2, digits=6, minimum=Decimal(0), optional=optional)


def _shapes(value: object) -> list[str] | None:
    """A non-empty list of shapes; None means every shape."""
    shapes = text_list_arg("shapes", value, optional=True)
    if shapes == []:
        raise ValidationError("shapes", "must not be empty (None means every shape)")
    return shapes


# Each column a rule's creator or updater may set, with its check. None is
# accepted exactly where the column is nullable (a criterion that matches all).
_FIELDS: dict[str, Callable[[object], Any]] = {
    "priority": lambda v: int_arg("priority", v, minimum=-INT4_MAX - 1, maximum=INT4_MAX),
    "carat_min": lambda v: _carats("carat_min", v),
    "carat_max": lambda v: _carats("carat_max", v),
    "shapes": _shapes,
    "lab_grown": lambda v: bool_arg("lab_grown", v, optional=True),
    "supplier": lambda v: text_arg("supplier", v, optional=True),
    # NUMERIC(5, 4) and > 0: 0.0001 is the smallest ratio the column can hold.
    "markup_ratio": lambda v: decimal_arg(
        "markup_ratio", v, places=4, digits=5, minimum=Decimal("0.0001")
    ),
    "rating": lambda v: int_arg("rating", v, minimum=1, maximum=10, optional=True),
    "active": lambda v: bool_arg("active", v),
    "price_min_cents": lambda v: int_arg("price_min_cents", v, minimum=0, optional=True),
    "price_max_cents": lambda v: int_arg("price_max_cents", v, minimum=0, optional=True),
    "fancy": lambda v: bool_arg("fancy", v, optional=True),
}


def _checked(values: dict[str, object]) -> dict[str, Any]:
    """Validate the given columns; the carat range too when both ends are given."""
    checked = {name: _FIELDS[name](value) for name, value in values.items()}
    check_ranges(checked, [("carat_min", "carat_max"), ("price_min_cents", "price_max_cents")])
    return checked


class PricingRuleOperations(Executor):
    """Operations of queries/pricing_rules.sql."""

    async def get_active_pricing_rules(self) -> list[PricingRule]:
        """Every active rule by priority ascending, ties by id (the order rules apply in)."""
        return await self._all(PricingRule, "get_active_pricing_rules")

    async def get_pricing_rule(self, id: UUID | str) -> PricingRule | None:
        """The rule with this id, active or not; None when unknown."""
        return await self._one(PricingRule, "get_pricing_rule", id=uuid_arg("id", id))

    async def create_pricing_rule(
        self,
        *,
        markup_ratio: Decimal | int | str,
        priority: int = 100,
        carat_min: Decimal | int | str | None = None,
        carat_max: Decimal | int | str | None = None,
        shapes: Collection[str] | None = None,
        lab_grown: bool | None = None,
        supplier: str | None = None,
        rating: int | None = None,
        price_min_cents: int | None = None,
        price_max_cents: int | None = None,
        fancy: bool | None = None,
    ) -> PricingRule:
        """Add an active rule; a criterion left None matches every diamond.

        `price_min_cents`/`price_max_cents` bound supplier_price_cents (inclusive);
        `fancy` matches stones with (True) or without (False) a fancy colour.
        """
        params = _checked(
            {
                "markup_ratio": markup_ratio,
                "priority": priority,
                "carat_min": carat_min,
                "carat_max": carat_max,
                "shapes": shapes,
                "lab_grown": lab_grown,
                "supplier": supplier,
                "rating": rating,
                "price_min_cents": price_min_cents,
                "price_max_cents": price_max_cents,
                "fancy": fancy,
            }
        )
        row = await self._one(PricingRule, "create_pricing_rule", **params)
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def update_pricing_rule(self, id: UUID | str, **changes: Any) -> PricingRule | None:
        """Change only the given columns (None resets a criterion); None when the id is unknown.

        Accepts the arguments of create_pricing_rule, and `active`. A carat range
        given whole is checked here; half of one, against the stored other end,
        by the table's CHECK (a psycopg CheckViolation).
        """
        rule_id = uuid_arg("id", id)
        for name in changes:
            if name not in _FIELDS:
                raise ValidationError(
                    name, f"not a pricing rule field; one of {', '.join(_FIELDS)}"
                )
        params = _checked(changes)
        if not params:
            return await self.get_pricing_rule(rule_id)
        return await self._one(
            PricingRule,
            "update_pricing_rule",
            **(dict.fromkeys(_FIELDS) | params),
            id=rule_id,
            changed=list(params),
        )

    async def deactivate_pricing_rule(self, id: UUID | str) -> bool:
        """Retire a rule: True when this call deactivated it, False when unknown or inactive."""
        return await self._rowcount("deactivate_pricing_rule", id=uuid_arg("id", id)) == 1

    async def match_pricing_rule(
        self,
        carats: Decimal | int | str,
        shape: str,
        lab_grown: bool,
        supplier: str,
        supplier_price_cents: int | None = None,
        fancy: bool = False,
    ) -> PricingRule | None:
        """The rule that prices such a diamond: first active match by priority, or None.

        A NULL criterion matches everything; ranges are inclusive; without
        `supplier_price_cents` no rule with a price band matches. `fancy`: the
        stone has a fancy colour.
        """
        return await self._one(
            PricingRule,
            "match_pricing_rule",
            carats=_carats("carats", carats, optional=False),
            shape=text_arg("shape", shape),
            lab_grown=bool_arg("lab_grown", lab_grown),
            supplier=text_arg("supplier", supplier),
            supplier_price_cents=int_arg(
                "supplier_price_cents", supplier_price_cents, minimum=0, optional=True
            ),
            fancy=bool_arg("fancy", fancy),
        )
