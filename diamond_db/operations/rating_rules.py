"""Rating rules: priority-ordered quality ratings and matching (queries/rating_rules.sql)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from .._executor import Executor
from ..errors import ValidationError
from ..records import RatingRule
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

# List criteria: case-insensitive equality with the diamond's column of that name.
LISTS: Final = {
    "shapes": "shape",
    "colors": "color",
    "clarities": "clarity",
    "cuts": "cut",
    "polishes": "polish",
    "symmetries": "symmetry",
    "fluorescences": "fluorescence",
    "certificate_labs": "certificate_lab",
    "girdles": "girdle",
    "culet_sizes": "culet_size",
}
# Inclusive range criteria: (low, high) on the diamond's column of that name.
RANGES: Final = {
    "carats": ("carat_min", "carat_max"),
    "supplier_price_cents": ("price_min_cents", "price_max_cents"),
    "table_pct": ("table_pct_min", "table_pct_max"),
    "depth_pct": ("depth_pct_min", "depth_pct_max"),
    "crown_angle": ("crown_angle_min", "crown_angle_max"),
    "crown_height": ("crown_height_min", "crown_height_max"),
    "pavilion_angle": ("pavilion_angle_min", "pavilion_angle_max"),
    "pavilion_depth": ("pavilion_depth_min", "pavilion_depth_max"),
    "ratio": ("ratio_min", "ratio_max"),
}


def _list(name: str) -> Callable[[object], Any]:
    def check(value: object) -> list[str] | None:
        values = text_list_arg(name, value, optional=True)
        if values == []:
            raise ValidationError(name, "must not be empty (None matches every diamond)")
        return None if values is None else [v.upper() for v in values]

    return check


def _bound(name: str) -> Callable[[object], Any]:
    if name.startswith("price_"):
        return lambda v: int_arg(name, v, minimum=0, optional=True)
    if name.startswith("carat_"):
        return lambda v: decimal_arg(name, v, minimum=Decimal(0), optional=True)
    return lambda v: decimal_arg(name, v, places=4, digits=9, optional=True)


# Each column a rule's creator or updater may set, with its check. None is
# accepted exactly where the column is nullable (a criterion that matches all).
_FIELDS: Final[dict[str, Callable[[object], Any]]] = {
    "priority": lambda v: int_arg("priority", v, minimum=-INT4_MAX - 1, maximum=INT4_MAX),
    "rating": lambda v: int_arg("rating", v, minimum=1, maximum=10),
    "supplier": lambda v: text_arg("supplier", v, optional=True),
    **{name: _list(name) for name in LISTS},
    "lab_grown": lambda v: bool_arg("lab_grown", v, optional=True),
    **{bound: _bound(bound) for pair in RANGES.values() for bound in pair},
    "active": lambda v: bool_arg("active", v),
}


def _checked(values: dict[str, object]) -> dict[str, Any]:
    """Validate the given columns; each range too when both its ends are given."""
    checked = {name: _FIELDS[name](value) for name, value in values.items()}
    check_ranges(checked, RANGES.values())
    return checked


def diamond_values(values: dict[str, object]) -> dict[str, Any]:
    """match_rating_rule's diamond values, checked; a missing value is None (matches no range)."""
    checked: dict[str, Any] = {
        "supplier": text_arg("supplier", values.get("supplier")),
        "lab_grown": bool_arg("lab_grown", values.get("lab_grown", False)),
    }
    for column in LISTS.values():
        checked[column] = text_arg(column, values.get(column), optional=True, empty=True)
    for column in RANGES:
        value = values.get(column)
        if column == "supplier_price_cents":
            checked[column] = int_arg(column, value, minimum=0, optional=True)
        else:
            checked[column] = decimal_arg(column, value, places=4, digits=9, optional=True)
    return checked


class RatingRuleOperations(Executor):
    """Operations of queries/rating_rules.sql."""

    async def get_active_rating_rules(self) -> list[RatingRule]:
        """Every active rule by priority ascending, ties by id (the order rules apply in)."""
        return await self._all(RatingRule, "get_active_rating_rules")

    async def get_rating_rule(self, id: UUID | str) -> RatingRule | None:
        """The rule with this id, active or not; None when unknown."""
        return await self._one(RatingRule, "get_rating_rule", id=uuid_arg("id", id))

    async def create_rating_rule(
        self, *, rating: int, priority: int = 100, **criteria: Any
    ) -> RatingRule:
        """Add an active rule; a criterion left None matches every diamond.

        Criteria: supplier; the lists shapes, colors, clarities, cuts, polishes,
        symmetries, fluorescences, certificate_labs, girdles, culet_sizes; lab_grown;
        the inclusive ranges carat_min/max, price_min/max_cents, table_pct_min/max,
        depth_pct_min/max, crown_angle_min/max, crown_height_min/max,
        pavilion_angle_min/max, pavilion_depth_min/max, ratio_min/max.
        """
        _known(criteria, exclude=("active",))
        values = dict.fromkeys(_FIELDS) | criteria | {"rating": rating, "priority": priority}
        del values["active"]
        row = await self._one(RatingRule, "create_rating_rule", **_checked(values))
        assert row is not None  # INSERT ... RETURNING always returns the row
        return row

    async def update_rating_rule(self, id: UUID | str, **changes: Any) -> RatingRule | None:
        """Change only the given fields (None clears a criterion); None when the id is unknown.

        Accepts the arguments of create_rating_rule, and `active`. A range given
        whole is checked here; half of one, against the stored other end, by the
        table's CHECK (a psycopg CheckViolation).
        """
        rule_id = uuid_arg("id", id)
        _known(changes)
        params = _checked(changes)
        if not params:
            return await self.get_rating_rule(rule_id)
        return await self._one(
            RatingRule,
            "update_rating_rule",
            **(dict.fromkeys(_FIELDS) | params),
            id=rule_id,
            changed=list(params),
        )

    async def deactivate_rating_rule(self, id: UUID | str) -> bool:
        """Retire a rule: True when this call deactivated it, False when unknown or inactive."""
        return await self._rowcount("deactivate_rating_rule", id=uuid_arg("id", id)) == 1

    async def match_rating_rule(self, *, supplier: str, **diamond: Any) -> RatingRule | None:
        """The rule that rates a diamond with these values: first active match, or None.

        Takes the diamond's columns by name (shape, color, clarity, cut, polish,
        symmetry, fluorescence, certificate_lab, girdle, culet_size, lab_grown,
        carats, supplier_price_cents, table_pct, depth_pct, crown_angle,
        crown_height, pavilion_angle, pavilion_depth, ratio); one left out is
        NULL, which matches only rules without that criterion.
        """
        allowed = {"lab_grown", *LISTS.values(), *RANGES}
        for name in diamond:
            if name not in allowed:
                raise ValidationError(name, "not a diamond value rating rules match on")
        values = diamond_values({**diamond, "supplier": supplier})
        return await self._one(RatingRule, "match_rating_rule", **values)


def _known(names: dict[str, Any], exclude: tuple[str, ...] = ()) -> None:
    for name in names:
        if name not in _FIELDS or name in exclude:
            raise ValidationError(name, f"not a rating rule field; one of {', '.join(_FIELDS)}")
