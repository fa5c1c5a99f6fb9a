"""The services' error log: like errors grouped by fingerprint and counted (queries/error_log.sql).

`log_error` never raises into the caller's error path: a failure to log is
itself logged on the `diamond_db` logger (without the message or context) and
swallowed. Messages, stacks and context are stored as given, so callers must
keep secrets out of them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import traceback
from collections.abc import Mapping
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, Final
from uuid import UUID

from psycopg.types.json import Jsonb

from .._executor import Executor
from ..keyset import MAX_PAGE, decode_keyset_cursor, keyset_page
from ..records import ErrorGroup, KeysetPage
from ..validation import datetime_arg, int_arg, text_arg, timedelta_arg, uuid_arg

logger = logging.getLogger("diamond_db")

# What normalise_message replaces, in this order: quoted values first (their
# contents may hold anything), then UUIDs, hex ids and numbers.
_NORMALISATIONS: Final = (
    (re.compile(r"'[^']*'"), "'?'"),
    (re.compile(r'"[^"]*"'), '"?"'),
    (re.compile(r"\b[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b(?=[0-9a-fA-F]*[0-9])[0-9a-fA-F]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
)


def normalise_message(message: str) -> str:
    """The message with quoted values, UUIDs, hex ids and numbers replaced by placeholders.

    "order 42 for 'alice' failed" and "order 7 for 'bob' failed" both become
    "order <n> for '?' failed": one group.
    """
    for pattern, replacement in _NORMALISATIONS:
        message = pattern.sub(replacement, message)
    return message


def _storable(text: str) -> str:
    """Text PostgreSQL can store: NUL bytes and lone surrogates escaped."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


def _text(name: str, value: object, *, empty: bool = False) -> str:
    """A text argument made storable, then checked (never echoing a secret it may hold)."""
    storable: object = _storable(value) if isinstance(value, str) else value
    checked: str = text_arg(name, storable, empty=empty)
    return checked


def _error_type(error: BaseException) -> str:
    kind = type(error)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _stack(error: BaseException) -> str:
    return _storable("".join(traceback.format_exception(error)))


def _context(context: Mapping[str, Any]) -> Jsonb:
    """The context as JSONB; values JSON cannot hold are stored as their str().

    JSONB cannot hold a NUL character: it is stored as the text \\x00, as in messages.
    """
    text = json.dumps(dict(context), default=str, ensure_ascii=False)
    return Jsonb(json.loads(_storable(text).replace("\\u0000", "\\\\x00"), parse_constant=str))


def _failed(failure: Exception) -> None:
    """A failure to log, logged without the message or context (they may hold anything)."""
    logger.warning("log_error could not store an error: %s", type(failure).__name__)


class _Burst:
    """Occurrences of one error group waiting to be written as one statement."""

    def __init__(self, occurrence: dict[str, Any], previous: _Burst | None) -> None:
        self.occurrence = occurrence  # the latest: its message, stack and context are kept
        self.count = 1
        self.previous = previous
        self.closed = False
        self.written: asyncio.Future[bool]

    def join(self, occurrence: dict[str, Any]) -> None:
        self.occurrence = occurrence
        self.count += 1


class ErrorLogOperations(Executor):
    """Operations of queries/error_log.sql."""

    async def log_error(
        self,
        service: str,
        message: str,
        *,
        error: BaseException | None = None,
        context: Mapping[str, Any] | None = None,
        run_id: UUID | str | None = None,
    ) -> bool:
        """Count one occurrence of an error in its group; True once it is stored.

        Never raises (but asyncio.CancelledError, which is not an error): a
        failure to log is logged on the `diamond_db` logger, without the
        message or context, and False is returned. `error` adds its type and
        traceback. Store no secrets: message and context are kept as given.
        Concurrent occurrences of one group in this process are written
        together (one statement adds their count), so an error storm costs a
        few statements, not one per occurrence.
        """
        try:
            occurrence = self._occurrence(service, message, error, context, run_id)
        except Exception as failure:
            _failed(failure)
            return False
        return await asyncio.shield(self._burst_of(occurrence))

    def _burst_of(self, occurrence: dict[str, Any]) -> asyncio.Future[bool]:
        """The write that will count this occurrence: the group's open burst, or a new one."""
        bursts: dict[str, _Burst] = self.__dict__.setdefault("_error_bursts", {})
        fingerprint = occurrence["fingerprint"]
        burst = bursts.get(fingerprint)
        if burst is not None and burst.written.get_loop() is not asyncio.get_running_loop():
            burst = None  # left by an event loop that is gone (asyncio.run called again)
        if burst is not None and not burst.closed:
            burst.join(occurrence)
            return burst.written
        burst = bursts[fingerprint] = _Burst(occurrence, previous=burst)
        burst.written = asyncio.ensure_future(self._write_burst(burst))
        return burst.written

    async def _write_burst(self, burst: _Burst) -> bool:
        """Write a burst once the group's previous one is written; it takes joiners until then."""
        if burst.previous is not None:
            await asyncio.wait([burst.previous.written])
        burst.closed = True
        burst.previous = None
        try:
            await self._run("log_error", {**burst.occurrence, "occurrences": burst.count})
        except Exception as failure:  # the callers are already handling an error
            _failed(failure)
            return False
        finally:
            bursts: dict[str, _Burst] = self.__dict__["_error_bursts"]
            if bursts.get(burst.occurrence["fingerprint"]) is burst:
                del bursts[burst.occurrence["fingerprint"]]  # no later burst waits on it
        return True

    @staticmethod
    def _occurrence(
        service: str,
        message: str,
        error: BaseException | None,
        context: Mapping[str, Any] | None,
        run_id: UUID | str | None,
    ) -> dict[str, Any]:
        service = _text("service", service)
        message = _text("message", message, empty=True)
        pattern = normalise_message(message)
        return {
            "fingerprint": sha256(f"{service}\x00{pattern}".encode()).hexdigest(),
            "service": service,
            "pattern": pattern,
            "message": message,
            "error_type": None if error is None else _error_type(error),
            "stack": None if error is None else _stack(error),
            "context": None if context is None else _context(context),
            "run_id": None if run_id is None else uuid_arg("run_id", run_id),
        }

    async def list_errors(
        self,
        service: str | None = None,
        run_id: UUID | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> KeysetPage[ErrorGroup]:
        """Error groups, most recently seen first; `cursor` is the previous page's next_cursor.

        `since`: groups seen at or after it (last_seen); `until`: groups first
        seen before it; `run_id`: groups whose latest occurrence came from that run.
        """
        after_last_seen, after_id = decode_keyset_cursor(cursor)
        row_limit = int_arg("limit", limit, minimum=1, maximum=MAX_PAGE)
        rows = await self._all(
            ErrorGroup,
            "list_errors",
            service=text_arg("service", service, optional=True),
            run_id=None if run_id is None else uuid_arg("run_id", run_id),
            since=datetime_arg("since", since, optional=True),
            until=datetime_arg("until", until, optional=True),
            after_last_seen=after_last_seen,
            after_id=after_id,
            row_limit=row_limit + 1,
        )
        return keyset_page(rows, row_limit, lambda group: (group.last_seen, group.id))

    async def error_services(self) -> list[str]:
        """The services that have logged errors, by name."""
        rows = await self._run("error_services", {})
        return [str(row[0]) for row in rows]

    async def purge_errors(self, older_than: timedelta, service: str | None = None) -> int:
        """Delete the groups not seen for `older_than` (of one service, if given); how many."""
        return await self._rowcount(
            "purge_errors",
            older_than=timedelta_arg("older_than", older_than, minimum=timedelta(0)),
            service=text_arg("service", service, optional=True),
        )
