"""JSON and JSONB columns parsed with orjson, giving exactly what json.loads gives.

psycopg parses json/jsonb with the standard library's json.loads; orjson is
several times faster, which matters where every row carries JSONB (a search
page's measurements and attributes, a consolidator's raw payloads). orjson
differs from json.loads in one way that reaches us: an integer beyond 64 bits
becomes a float (PostgreSQL's JSONB keeps numbers as numeric, of any size).
Every such integer has 19 or more digits in a row (-9223372036854775809 has
19), so text with such a run, and text orjson refuses, goes to json.loads.
"""

from __future__ import annotations

import json
from typing import Any, Final

import orjson
from psycopg import AsyncConnection
from psycopg.types.json import set_json_loads

# Digits to "1", every other byte to "0": a run of 19 digits is then a substring,
# found at C speed (a regular expression costs ~7x more, 4 times orjson's parse).
_DIGITS: Final = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_LONG_RUN: Final = b"1" * 19


def loads(data: bytes | str) -> Any:
    """json.loads' result for `data`, from orjson where the two agree."""
    text = data.encode() if isinstance(data, str) else data  # psycopg passes bytes
    if _LONG_RUN not in text.translate(_DIGITS):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # e.g. a number beyond a double's range: json.loads says how
    return json.loads(text)


async def use_fast_loads(conn: AsyncConnection[Any]) -> None:
    """Parse this connection's json and jsonb columns with `loads` (a pool's configure hook)."""
    set_json_loads(loads, conn)
