"""Row factories that build the frozen records without running their __init__.

A frozen dataclass's __init__ sets every field through object.__setattr__, and
psycopg's class_row first packs the row into keyword arguments: ~6 µs for the
36 fields of a Diamond. Here each field is stored by its slot's own descriptor,
looked up once per statement: about a third of that (benchmarks/search.py
measures both). Generic over the records: fields are matched to columns by name.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from types import MemberDescriptorType
from typing import Any, TypeVar

from psycopg.rows import AsyncRowFactory, RowMaker

T = TypeVar("T")
_Setter = Callable[[Any, Any], None]


def record_row(record: type[T]) -> AsyncRowFactory[T]:
    """A psycopg row factory building `record` from the columns named as its fields."""

    def factory(cursor: Any) -> RowMaker[T]:
        return record_maker(record, column_names(cursor))

    return factory


def column_names(cursor: Any) -> tuple[str, ...]:
    """The names of the current result's columns.

    Read from the result itself: cursor.description builds a Column object per
    column (type, size, precision ...), ~2 µs each, for a search page's 59
    columns on every execute.
    """
    result = cursor.pgresult
    if result is None:
        return ()
    encoding = cursor.connection.info.encoding
    return tuple((result.fname(i) or b"").decode(encoding) for i in range(result.nfields))


def record_maker(record: type[T], columns: tuple[str, ...]) -> RowMaker[T]:
    """A function building `record` from a row with these columns (extra columns ignored).

    A field without a column takes its default; one without either makes every
    row fail (TypeError, as class_row does; an empty result builds nothing).
    Cached: worked out once per result shape.
    """
    cls: Any = record  # any class is hashable; mypy cannot tell for type[T]
    maker: RowMaker[T] = _maker(cls, columns)
    return maker


@functools.lru_cache(maxsize=256)
def _maker(record: type[Any], columns: tuple[str, ...]) -> RowMaker[Any]:
    if not dataclasses.is_dataclass(record) or hasattr(record, "__post_init__"):
        raise TypeError(f"{record!r} is not a plain dataclass record")
    index = {name: i for i, name in enumerate(columns)}
    stores: list[tuple[_Setter, int]] = []
    defaults: list[tuple[_Setter, Callable[[], Any]]] = []
    for field in dataclasses.fields(record):
        setter = _setter(record, field.name)
        if field.name in index:
            stores.append((setter, index[field.name]))
        elif field.default is not dataclasses.MISSING:
            defaults.append((setter, functools.partial(_same, field.default)))
        elif field.default_factory is not dataclasses.MISSING:
            defaults.append((setter, field.default_factory))
        else:
            return functools.partial(_missing, f"{record.__name__}.{field.name}")
    new = object.__new__

    def make(values: Sequence[Any]) -> Any:
        obj = new(record)
        for store, i in stores:
            store(obj, values[i])
        for store, default in defaults:
            store(obj, default())
        return obj

    return make


def _setter(record: type[Any], name: str) -> _Setter:
    """The slot's own descriptor (frozen records refuse setattr), else object.__setattr__."""
    descriptor = getattr(record, name, None)
    if isinstance(descriptor, MemberDescriptorType):
        return descriptor.__set__

    def store(obj: Any, value: Any) -> None:
        object.__setattr__(obj, name, value)

    return store


def _same(value: Any) -> Any:
    return value


def _missing(field: str, values: Sequence[Any]) -> Any:
    raise TypeError(f"{field} has no column in the result")
