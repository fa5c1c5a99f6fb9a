"""Raw supplier payloads: ingestion and claim-based consolidation (queries/raw_diamonds.sql)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from hashlib import sha256
from typing import Any, Final
from uuid import UUID

import orjson
import psycopg
from psycopg import sql
from psycopg.types.array import ListBinaryDumper

from .._executor import Executor
from ..errors import ClaimsInProgress, ValidationError
from ..records import RawClaims, RawDiamond, RawDiamondInput, RawPartition
from ..validation import (
    bool_arg,
    datetime_arg,
    int_arg,
    json_arg,
    supplier_arg,
    text_arg,
    timedelta_arg,
    uuid_arg,
    uuid_list_arg,
)

# One statement carries at most this many characters of payload JSON (~1,000 full
# supplier items). A larger batch is a pipeline of such statements in one
# transaction: the client encodes the next statement while the server writes this
# one, and the process holds one statement's arrays at a time, not the batch's.
MAX_STATEMENT_CHARS: Final = 2 * 1024 * 1024


class _TextArray(list[str]):
    """A list of str bound as a binary text[] (ListBinaryDumper, registered below).

    Each element travels as is. As a text-format array literal, every quote of the
    JSON would be escaped and parsed again: measured 3-4x slower for payloads.
    """


psycopg.adapters.register_dumper(_TextArray, ListBinaryDumper)

# (supplier_stone_id, offer_id, source_updated_at, canonical JSON, its SHA-256)
_Encoded = tuple[str, str, datetime | None, str, str]


def payload_hash(payload: Mapping[str, Any]) -> str:
    """The payload's hash as stored in payload_hash: lowercase hex SHA-256 of its canonical JSON.

    Canonical JSON is the UTF-8 of `json.dumps(payload, sort_keys=True,
    separators=(",", ":"), ensure_ascii=False)`, so any service can compute the
    same hash. Raises ValidationError for what JSONB cannot store.
    """
    return _canonical("payload", payload)[1]


def _canonical(argument: str, payload: object) -> tuple[str, str]:
    """Check a payload as json_arg does and return its canonical JSON text and hash.

    json_arg walks every value in Python; here one light walk (_scan) checks the
    keys and picks the encoder, the encoder does the rest of the checking, and
    json_arg only runs to name the culprit of a payload that failed.
    """
    how = _scan(payload, 0) if isinstance(payload, dict) else _INVALID
    if how == _INVALID:
        json_arg(argument, payload)  # raises, naming the bad key or value
    if how == _FAST:
        try:
            utf8 = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # e.g. a lone surrogate: the stdlib path names it
            how = _STDLIB
    if how == _STDLIB:
        utf8 = _stdlib_canonical(argument, payload)
    if b"\\u0000" in utf8:  # a NUL somewhere (or a string holding a literal backslash-u0000)
        json_arg(argument, payload)
    return utf8.decode(), sha256(utf8).hexdigest()


def _stdlib_canonical(argument: str, payload: object) -> bytes:
    """The canonical JSON as the definition states it: json.dumps, then UTF-8."""
    try:
        text = json.dumps(
            payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as error:
        json_arg(argument, payload)
        raise ValidationError(argument, f"cannot be encoded as JSON: {error}") from None
    try:
        return text.encode()
    except UnicodeEncodeError:
        raise ValidationError(argument, "contains a lone surrogate, not valid Unicode") from None


# How _scan says a payload is to be encoded.
_INVALID, _FAST, _STDLIB = 0, 1, 2
# orjson writes exactly json.dumps's bytes for these (tested against it with hypothesis):
# str, bool, None, ints of 64 bits, floats that repr() writes without an exponent, and
# exact dict/list/tuple. Anything else goes through json.dumps itself.
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1


def _scan(value: dict[Any, Any] | list[Any] | tuple[Any, ...], depth: int) -> int:
    """_INVALID (a non-str key, or deeper than json_arg allows), else _FAST or _STDLIB."""
    if depth > 200:
        return _INVALID
    how = _FAST if type(value) in _CONTAINER_TYPES else _STDLIB
    items: Iterable[Any] = value
    if isinstance(value, dict):
        for key in value:
            if type(key) is not str:
                return _INVALID
        items = value.values()
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if not _INT_MIN <= item <= _INT_MAX:
                how = _STDLIB
        elif kind is float:
            if not (item == 0.0 or 1e-4 <= abs(item) < 1e16):  # also NaN and infinities
                how = _STDLIB
        elif isinstance(item, _CONTAINERS):
            inner = _scan(item, depth + 1)
            if inner == _INVALID:
                return _INVALID
            how = max(how, inner)
        else:
            how = _STDLIB  # json.dumps rejects or converts it; json_arg names it
    return how


_CONTAINERS: Final = (dict, list, tuple)
_CONTAINER_TYPES: Final = frozenset(_CONTAINERS)


def _encode(
    prefix: str,
    supplier_stone_id: object,
    offer_id: object,
    payload: object,
    source_updated_at: object,
) -> _Encoded:
    """One raw row checked field by field (argument names start with `prefix`) and encoded."""
    text, digest = _canonical(f"{prefix}payload", payload)
    return (
        text_arg(f"{prefix}supplier_stone_id", supplier_stone_id),
        text_arg(f"{prefix}offer_id", offer_id),
        datetime_arg(f"{prefix}source_updated_at", source_updated_at, optional=True),
        text,
        digest,
    )


def _encode_row(index: int, row: object) -> _Encoded:
    """rows[index] checked and encoded; a ValidationError names its index and stone."""
    if not isinstance(row, RawDiamondInput):
        raise ValidationError(
            f"rows[{index}]", f"expected a RawDiamondInput, got {type(row).__name__}"
        )
    try:
        return _encode(
            f"rows[{index}].",
            row.supplier_stone_id,
            row.offer_id,
            row.payload,
            row.source_updated_at,
        )
    except ValidationError as error:
        message = str(error).removeprefix(f"{error.argument}: ")
        key = f"supplier_stone_id={row.supplier_stone_id!r}"[:200]
        raise ValidationError(error.argument, f"{message} [key {key}]") from None


def _encode_batch(rows: Sequence[object]) -> list[_Encoded]:
    """Check and encode every row before anything is sent; last row per stone wins, sorted.

    Sorted by supplier_stone_id, so concurrent batches lock rows in the same order.
    """
    latest: dict[str, _Encoded] = {}
    for i, row in enumerate(rows):
        encoded = _encode_row(i, row)
        latest[encoded[0]] = encoded
    return [latest[key] for key in sorted(latest)]


def _chunks(batch: list[_Encoded]) -> Iterator[list[_Encoded]]:
    """The batch cut into statements of at most MAX_STATEMENT_CHARS of JSON, in order.

    Consumes `batch`: each row is released once its statement is built.
    """
    batch.reverse()
    chunk: list[_Encoded] = []
    size = 0
    while batch:
        row = batch.pop()
        if chunk and size + len(row[3]) > MAX_STATEMENT_CHARS:
            yield chunk
            chunk, size = [], 0
        chunk.append(row)
        size += len(row[3])
    if chunk:
        yield chunk


def _streamed(rows: Iterable[object]) -> Iterator[list[_Encoded]]:
    """An iterator's rows, encoded statement by statement while earlier ones are written.

    Within a statement the last row per stone wins and rows are sorted; a stone
    repeated in a later statement is written again (the last row still wins).
    """
    latest: dict[str, _Encoded] = {}
    size = 0
    for i, row in enumerate(rows):
        encoded = _encode_row(i, row)
        if latest and size + len(encoded[3]) > MAX_STATEMENT_CHARS:
            yield [latest[key] for key in sorted(latest)]
            latest, size = {}, 0
        latest[encoded[0]] = encoded
        size += len(encoded[3])
    if latest:
        yield [latest[key] for key in sorted(latest)]


def _arrays(supplier: str, run_id: UUID, chunk: list[_Encoded]) -> dict[str, Any]:
    """The parameters of upsert_raw_diamonds: one array per column."""
    stone_ids, offer_ids, updated_ats, payloads, hashes = zip(*chunk, strict=True)
    return {
        "supplier": supplier,
        "run_id": run_id,
        "stone_ids": _TextArray(stone_ids),
        "offer_ids": _TextArray(offer_ids),
        "updated_ats": list(updated_ats),
        "payloads": _TextArray(payloads),
        "payload_hashes": _TextArray(hashes),
    }


# purge_raw_payloads names a partition found in the catalog (get_raw_partition),
# so these two statements are composed with the name as an identifier.
# Reviewed here, since aiosql cannot bind an identifier.
_LOCK_PARTITION: Final = "LOCK TABLE {} IN {} MODE"
_TRUNCATE_PARTITION: Final = "TRUNCATE {}"
# TRUNCATE needs ACCESS EXCLUSIVE anyway; a DELETE from a shared partition only
# needs other writers kept out (claims, marks, upserts): reads go on.
_TRUNCATE_LOCK: Final = "ACCESS EXCLUSIVE"
_DELETE_LOCK: Final = "SHARE ROW EXCLUSIVE"


class RawDiamondOperations(Executor):
    """Operations of queries/raw_diamonds.sql; each takes the feed as `supplier`."""

    async def upsert_raw_diamond(
        self,
        run_id: UUID | str,
        supplier_stone_id: str,
        offer_id: str,
        payload: Mapping[str, Any],
        source_updated_at: datetime | None = None,
        *,
        supplier: str = "nivoda",
    ) -> bool:
        """Insert or update one raw payload of a feed; True if it was inserted or changed.

        An unchanged payload (same hash) leaves the row as it is; a changed one
        replaces it and sends it back to pending consolidation.
        """
        feed = supplier_arg("supplier", supplier)
        run = uuid_arg("run_id", run_id)
        row = _encode("", supplier_stone_id, offer_id, payload, source_updated_at)
        return await self._upsert(feed, run, iter([[row]])) > 0

    async def upsert_raw_diamonds(
        self,
        run_id: UUID | str,
        rows: Sequence[RawDiamondInput] | Iterable[RawDiamondInput],
        *,
        supplier: str = "nivoda",
    ) -> int:
        """Insert or update a batch of one feed's raw payloads atomically; the stones changed.

        A sequence is checked row by row before anything is sent, the error
        naming its index and supplier_stone_id; an iterator is encoded while it
        is sent (bounded memory), and a bad row anywhere raises the same error
        with nothing written. Up to MAX_STATEMENT_CHARS of JSON is one statement;
        more is a pipeline of statements in one transaction. A stone repeated in
        the batch counts once, its last row wins. Same hash rule as upsert_raw_diamond.
        """
        feed = supplier_arg("supplier", supplier)
        run = uuid_arg("run_id", run_id)
        if isinstance(rows, str | bytes | Mapping) or not isinstance(rows, Iterable):
            raise ValidationError("rows", "expected a sequence or iterator of RawDiamondInput")
        if isinstance(rows, Sequence):
            return await self._upsert(feed, run, _chunks(_encode_batch(rows)))
        return await self._upsert(feed, run, _streamed(rows))

    async def _upsert(self, supplier: str, run_id: UUID, chunks: Iterator[list[_Encoded]]) -> int:
        first = next(chunks, None)
        if first is None:
            return 0
        second = next(chunks, None)
        if second is None:
            params = _arrays(supplier, run_id, first)
            return len(await self._run("upsert_raw_diamonds", params))
        statements = (
            _arrays(supplier, run_id, c) for c in itertools.chain((first, second), chunks)
        )
        async with self._atomic() as tx:
            changed = await tx._pipelined("upsert_raw_diamonds", statements)
        return len({stone for (stone,) in changed})

    async def get_unconsolidated_raw_diamonds(
        self, limit: int, offset: int = 0, *, supplier: str = "nivoda"
    ) -> list[RawDiamond]:
        """Up to `limit` of a feed's rows waiting for consolidation (pending), oldest first."""
        return await self._all(
            RawDiamond,
            "get_unconsolidated_raw_diamonds",
            supplier=supplier_arg("supplier", supplier),
            row_limit=int_arg("limit", limit, minimum=0),
            row_offset=int_arg("offset", offset, minimum=0),
        )

    async def claim_unconsolidated_raw_diamonds(
        self, limit: int, claimed_by: str, *, supplier: str = "nivoda"
    ) -> list[RawDiamond]:
        """Claim up to `limit` of a feed's pending rows, oldest first, for this consolidator.

        The rows move to 'processing', stamped with claimed_by and claimed_at;
        concurrent consolidators never receive the same row and never wait for
        each other (FOR UPDATE SKIP LOCKED). Other feeds' rows are never read.
        """
        return await self._all(
            RawDiamond,
            "claim_unconsolidated_raw_diamonds",
            supplier=supplier_arg("supplier", supplier),
            row_limit=int_arg("limit", limit, minimum=0),
            claimed_by=text_arg("claimed_by", claimed_by),
        )

    async def mark_as_consolidated(
        self,
        ids: Sequence[UUID | str],
        *,
        claimed_by: str | None = None,
        supplier: str = "nivoda",
    ) -> int:
        """Mark a feed's pending or claimed rows as consolidated (done); how many changed.

        With `claimed_by` (a claim-based consolidator's name), only the rows it
        still holds change: a row whose payload changed while it worked, or whose
        claim was reset and taken by another, stays to be consolidated again.
        An empty list sends nothing; ids of another feed change nothing.
        """
        feed = supplier_arg("supplier", supplier)
        checked = uuid_list_arg("ids", ids)
        holder = text_arg("claimed_by", claimed_by, optional=True)
        if not checked:
            return 0
        if holder is None:
            return await self._rowcount("mark_as_consolidated", supplier=feed, ids=checked)
        return await self._rowcount(
            "mark_claimed_as_consolidated", supplier=feed, ids=checked, claimed_by=holder
        )

    async def mark_as_failed(
        self,
        ids: Sequence[UUID | str],
        error: str | None = None,
        *,
        claimed_by: str | None = None,
        supplier: str = "nivoda",
    ) -> int:
        """Mark a feed's pending or claimed rows as failed, keeping `error` in consolidation_error.

        `claimed_by` as for mark_as_consolidated. How many changed; an empty
        list sends nothing.
        """
        feed = supplier_arg("supplier", supplier)
        checked = uuid_list_arg("ids", ids)
        message = text_arg("error", error, optional=True, empty=True)
        holder = text_arg("claimed_by", claimed_by, optional=True)
        if not checked:
            return 0
        if holder is None:
            return await self._rowcount("mark_as_failed", supplier=feed, ids=checked, error=message)
        return await self._rowcount(
            "mark_claimed_as_failed", supplier=feed, ids=checked, error=message, claimed_by=holder
        )

    async def reset_stuck_claims(self, older_than: timedelta, *, supplier: str = "nivoda") -> int:
        """Return a feed's claims held longer than `older_than` to pending; how many.

        Rows claimed by a consolidator that crashed are thus claimed again.
        """
        feed = supplier_arg("supplier", supplier)
        age = timedelta_arg("older_than", older_than, minimum=timedelta(0))
        return await self._rowcount("reset_stuck_claims", supplier=feed, older_than=age)

    async def reset_failed_raw_diamonds(
        self, run_id: UUID | str | None = None, *, supplier: str = "nivoda"
    ) -> int:
        """Send a feed's failed rows (only those last written by `run_id`, if given) to pending."""
        feed = supplier_arg("supplier", supplier)
        run = None if run_id is None else uuid_arg("run_id", run_id)
        return await self._rowcount("reset_failed_raw_diamonds", supplier=feed, run_id=run)

    async def get_unconsolidated_count(self, *, supplier: str = "nivoda") -> int:
        """How many of a feed's rows wait for consolidation (pending; claimed ones not counted)."""
        feed = supplier_arg("supplier", supplier)
        count: int = await self._value("get_unconsolidated_count", supplier=feed)
        return count

    async def purge_raw_payloads(self, supplier: str, *, force: bool = False) -> int:
        """Remove every raw row of one feed, for a full reload; how many rows were removed.

        A feed with a partition of its own has it truncated; a feed sharing a
        partition (the default one) has its rows deleted. Other feeds are never
        touched. While consolidators hold claimed rows of the feed it refuses
        with ClaimsInProgress naming them, unless `force`. One transaction: the
        partition is locked against writers before the claims are looked at.
        """
        feed = supplier_arg("supplier", supplier)
        forced = bool_arg("force", force)
        async with self._atomic() as tx:
            partition = await tx._one(RawPartition, "get_raw_partition", supplier=feed)
            if partition is None:
                return 0  # no rows, hence no claims
            name = sql.Identifier(partition.schema_name, partition.table_name)
            mode = _TRUNCATE_LOCK if partition.own_partition else _DELETE_LOCK
            await tx._utility(
                "lock_raw_partition", sql.SQL(_LOCK_PARTITION).format(name, sql.SQL(mode))
            )
            if not forced:
                claims = await tx._all(RawClaims, "get_raw_claims", supplier=feed)
                if claims:
                    raise ClaimsInProgress(feed, tuple((c.claimed_by, c.claimed) for c in claims))
            # The feed's data set changes as a whole: cached searches must go.
            await tx._value("bump_dataset_version", supplier=feed)
            if not partition.own_partition:
                return await tx._rowcount("delete_raw_payloads", supplier=feed)
            removed: int = await tx._value("count_raw_payloads", supplier=feed)
            await tx._utility("truncate_raw_partition", sql.SQL(_TRUNCATE_PARTITION).format(name))
            return removed
