"""Keyset cursors of the newest-first listings: a page starts after the previous page's last row.

A cursor is the (timestamp, id) of that row, base64url-encoded; the listing's
statement takes them as its `after_...` parameters.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Final, TypeVar
from uuid import UUID

from .errors import ValidationError
from .records import KeysetPage
from .validation import text_arg

T = TypeVar("T")

# The most rows one page of a listing returns.
MAX_PAGE: Final = 500


def encode_keyset_cursor(stamp: datetime, id: UUID) -> str:
    """The cursor of the page after a row with this (timestamp, id)."""
    raw = f"{stamp.isoformat()}|{id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_keyset_cursor(cursor: str | None) -> tuple[datetime | None, UUID | None]:
    """(timestamp, id) a page starts after; (None, None) for the first page."""
    if cursor is None:
        return None, None
    text_arg("cursor", cursor)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return created_at, UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ValidationError("cursor", "malformed cursor") from None


def keyset_page(
    rows: list[T], limit: int, key: Callable[[T], tuple[datetime, UUID]]
) -> KeysetPage[T]:
    """A page of `limit` rows from `limit + 1` fetched; the cursor from the last row's key."""
    if len(rows) <= limit:
        return KeysetPage(items=rows, next_cursor=None)
    items = rows[:limit]
    return KeysetPage(items=items, next_cursor=encode_keyset_cursor(*key(items[-1])))
