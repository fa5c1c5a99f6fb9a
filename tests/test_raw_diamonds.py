"""Raw payloads: the canonical hash, single and bulk upserts, and claim-based consolidation."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from helpers import fetch_dicts
from hypothesis import given, settings
from hypothesis import strategies as st

from diamond_db import Database, QueryEvent, RawDiamondInput, ValidationError, payload_hash
from diamond_db.operations import raw_diamonds

# Columns that do not depend on when or in which order rows were written.
STATE = (
    "run_id, supplier_stone_id, offer_id, source_updated_at, payload, payload_hash,"
    " consolidated, consolidated_at IS NOT NULL AS was_consolidated, consolidation_status,"
    " claimed_by, consolidation_error"
)


def raw_row(url: str, stone: str) -> dict[str, Any]:
    """Every column of one raw row, plus xmin (changes whenever the row is rewritten)."""
    rows = fetch_dicts(
        url,
        "SELECT *, xmin::text AS xmin FROM raw_diamonds_nivoda WHERE supplier_stone_id = %s",
        stone,
    )
    assert len(rows) == 1
    return rows[0]


def table_state(url: str) -> list[dict[str, Any]]:
    return fetch_dicts(url, f"SELECT {STATE} FROM raw_diamonds_nivoda ORDER BY supplier_stone_id")


def payload(n: int, **extra: Any) -> dict[str, Any]:
    """A small supplier payload with nesting, floats and non-ASCII text."""
    return {
        "id": f"stone-{n}",
        "price": 1000 + n,
        "certificate": {"lab": "GIA", "carats": 1.01, "comments": "Nuage ✓ é"},
        "tags": ["natural", {"z": 1, "a": [1.5, None, True]}],
        **extra,
    }


def inputs(count: int, start: int = 0, **extra: Any) -> list[RawDiamondInput]:
    return [
        RawDiamondInput(f"stone-{n:05d}", f"offer-{n}", payload(n, **extra))
        for n in range(start, start + count)
    ]


@pytest.fixture
def run_id() -> UUID:
    return uuid4()


# -- payload_hash -------------------------------------------------------------


def test_payload_hash_is_sha256_of_the_documented_canonical_json() -> None:
    p = {"b": [1, 2.5, {"y": None, "x": True}], "a": "é ✓", "c": {"k": -0.0}}
    canonical = json.dumps(p, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical == '{"a":"é ✓","b":[1,2.5,{"x":true,"y":null}],"c":{"k":-0.0}}'
    assert payload_hash(p) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    # A fixed vector other services can check their implementation against.
    assert payload_hash({"b": 1, "a": "é"}) == (
        "aa58fba8483623bed37c1b02edfccbdd9a53123837c20bfa4cb4049993a2872e"
    )


def test_payload_hash_ignores_key_order_but_not_values() -> None:
    forward = {"a": 1, "b": {"c": [1, 2], "d": "x"}}
    backward = {"b": {"d": "x", "c": [1, 2]}, "a": 1}
    assert payload_hash(forward) == payload_hash(backward)
    assert payload_hash(forward) != payload_hash({"a": 1, "b": {"c": [2, 1], "d": "x"}})
    assert payload_hash({"a": 1}) != payload_hash({"a": 1.0})  # JSON text differs: 1 vs 1.0


_JSON_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _JSON_TEXT
)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_JSON_TEXT, inner, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=1000, deadline=None)
@given(st.dictionaries(_JSON_TEXT, _JSON, max_size=6))
def test_payload_hash_is_the_documented_json_dumps_rule_for_any_payload(payload: Any) -> None:
    # The library encodes most payloads with a faster encoder: it must never change a hash.
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert payload_hash(payload) == hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@pytest.mark.parametrize(
    "value", [1e-05, 1.5e-300, 1e16, 2.5e22, -7e-9, 2**64, -(2**63) - 1, 2**100]
)
def test_payload_hash_of_numbers_json_dumps_writes_in_its_own_way(value: Any) -> None:
    canonical = json.dumps({"v": [value, {"w": value}]}, separators=(",", ":"))
    assert (
        payload_hash({"v": [value, {"w": value}]}) == hashlib.sha256(canonical.encode()).hexdigest()
    )


@pytest.mark.parametrize(
    ("bad", "where"),
    [
        ({"a": {"b": "x\x00y"}}, "payload.a.b"),
        ({"a": [1, math.nan]}, "payload.a[1]"),
        ({"a": math.inf}, "payload.a"),
        ({"a": {1: "x"}}, "payload.a"),
        ({"a\x00": 1}, "payload"),
        ({"a": {2: "x", 10: "y"}}, "payload.a"),  # int keys would sort differently as text
        ({"a": object()}, "payload.a"),
        ({"a": Decimal("1.5")}, "payload"),  # json.dumps cannot encode it
        (["not", "an", "object"], "payload"),
        ({"a": "\ud800"}, "payload"),  # a lone surrogate has no UTF-8 encoding
    ],
)
def test_payload_hash_rejects_what_jsonb_cannot_store(bad: Any, where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        payload_hash(bad)
    assert caught.value.argument == where


def test_a_literal_backslash_u0000_is_not_mistaken_for_a_nul() -> None:
    text = {"a": "\\u0000"}  # six characters, no NUL
    assert payload_hash(text) == hashlib.sha256(b'{"a":"\\\\u0000"}').hexdigest()


# -- upsert_raw_diamond: the unchanged-payload rule ---------------------------


async def test_upsert_raw_diamond_stores_the_payload_and_its_hash(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    source = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert await diamond_db.upsert_raw_diamond(str(run_id), "s-1", "o-1", payload(1), source)
    row = raw_row(diamond_db_url, "s-1")
    assert row["run_id"] == run_id
    assert row["offer_id"] == "o-1"
    assert row["payload"] == payload(1)
    assert row["payload_hash"] == payload_hash(payload(1))
    assert row["source_updated_at"] == source
    assert (row["consolidation_status"], row["consolidated"]) == ("pending", False)


async def test_an_unchanged_payload_leaves_the_row_untouched(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamond(run_id, "s-1", "o-1", {"a": 1, "b": [1, 2]})
    [claimed] = await diamond_db.claim_unconsolidated_raw_diamonds(1, "c-1")
    await diamond_db.mark_as_consolidated([claimed.id])
    before = raw_row(diamond_db_url, "s-1")

    # Same content, other key order, even another run: no rewrite, no re-consolidation.
    again = await diamond_db.upsert_raw_diamond(uuid4(), "s-1", "o-1", {"b": [1, 2], "a": 1})
    assert again is False
    same = RawDiamondInput("s-1", "o-1", {"a": 1, "b": [1, 2]})
    assert await diamond_db.upsert_raw_diamonds(uuid4(), [same]) == 0
    after = raw_row(diamond_db_url, "s-1")
    assert after == before  # xmin included: the row was not even rewritten
    assert after["consolidation_status"] == "done"


async def test_a_changed_payload_replaces_the_row_and_sends_it_back_to_pending(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamond(run_id, "s-1", "o-1", {"price": 1})
    [claimed] = await diamond_db.claim_unconsolidated_raw_diamonds(1, "c-1")
    await diamond_db.mark_as_failed([claimed.id], "boom")
    before = raw_row(diamond_db_url, "s-1")

    later_run = uuid4()
    assert await diamond_db.upsert_raw_diamond(later_run, "s-1", "o-2", {"price": 2}) is True
    after = raw_row(diamond_db_url, "s-1")
    assert after["payload"] == {"price": 2}
    assert after["payload_hash"] == payload_hash({"price": 2})
    assert (after["run_id"], after["offer_id"]) == (later_run, "o-2")
    assert after["consolidation_status"] == "pending"
    assert after["consolidated"] is False
    assert after["claimed_by"] is after["claimed_at"] is after["consolidation_error"] is None
    assert after["updated_at"] > before["updated_at"]
    assert (after["id"], after["created_at"]) == (before["id"], before["created_at"])


async def test_upsert_raw_diamond_validates_before_sending(
    diamond_db_url: str, run_id: UUID
) -> None:
    events: list[QueryEvent] = []
    async with Database(diamond_db_url, min_size=0, on_query=events.append) as db:
        with pytest.raises(ValidationError) as caught:
            await db.upsert_raw_diamond(run_id, "s-1", "o-1", {"a": [math.nan]})
        assert caught.value.argument == "payload.a[0]"
        with pytest.raises(ValidationError) as caught:
            await db.upsert_raw_diamond(run_id, "s\x00", "o-1", {})
        assert caught.value.argument == "supplier_stone_id"
        with pytest.raises(ValidationError) as caught:
            await db.upsert_raw_diamond("not-a-uuid", "s-1", "o-1", {})
        assert caught.value.argument == "run_id"
    assert events == []


# -- upsert_raw_diamonds ------------------------------------------------------


async def test_bulk_counts_inserted_and_changed_rows_only(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    assert await diamond_db.upsert_raw_diamonds(run_id, inputs(50)) == 50
    assert await diamond_db.upsert_raw_diamonds(run_id, inputs(50)) == 0  # unchanged
    changed = inputs(10, extra="new") + inputs(15, start=40)  # 10 changed, 10 same, 5 new
    assert await diamond_db.upsert_raw_diamonds(run_id, changed) == 15
    assert len(table_state(diamond_db_url)) == 55
    assert await diamond_db.upsert_raw_diamonds(run_id, []) == 0


async def test_bulk_duplicates_in_one_batch_last_wins(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    rows = [
        RawDiamondInput("s-1", "o-first", {"v": 1}),
        RawDiamondInput("s-2", "o-2", {"v": 2}),
        RawDiamondInput("s-1", "o-last", {"v": 3}),
    ]
    assert await diamond_db.upsert_raw_diamonds(run_id, rows) == 2
    row = raw_row(diamond_db_url, "s-1")
    assert (row["offer_id"], row["payload"]) == ("o-last", {"v": 3})


async def test_bulk_and_single_leave_the_same_table(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    source = datetime(2024, 1, 2, tzinfo=UTC)
    first = [*inputs(30), RawDiamondInput("s-x", "o-x", {"k": "é"}, source)]
    second = inputs(10, extra=True) + inputs(5, start=100)  # changes and additions

    for batch in (first, second):
        for row in batch:
            await diamond_db.upsert_raw_diamond(
                run_id, row.supplier_stone_id, row.offer_id, row.payload, row.source_updated_at
            )
    single = table_state(diamond_db_url)

    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE raw_diamonds_nivoda")
    for batch in (first, second):
        await diamond_db.upsert_raw_diamonds(run_id, batch)
    assert table_state(diamond_db_url) == single
    assert len(single) == 36


@pytest.mark.parametrize(
    ("row", "argument"),
    [
        (RawDiamondInput("s-7", "o", {"a": {"b": "x\x00"}}), "rows[7].payload.a.b"),
        (RawDiamondInput("s-7", "o", {"f": [math.inf]}), "rows[7].payload.f[0]"),
        (RawDiamondInput("s-7", "o\x00", {}), "rows[7].offer_id"),
        (RawDiamondInput("", "o", {}), "rows[7].supplier_stone_id"),
        (RawDiamondInput("s-7", "o", {}, "2024-01-01"), "rows[7].source_updated_at"),  # type: ignore[arg-type]
        ({"supplier_stone_id": "s-7"}, "rows[7]"),
    ],
)
async def test_bulk_names_the_bad_row_and_sends_nothing(
    diamond_db_url: str, diamond_db: Database, run_id: UUID, row: Any, argument: str
) -> None:
    events: list[QueryEvent] = []
    rows = [*inputs(7), row, *inputs(3, start=8)]
    async with Database(diamond_db_url, min_size=0, on_query=events.append) as db:
        with pytest.raises(ValidationError) as caught:
            await db.upsert_raw_diamonds(run_id, rows)
    assert caught.value.argument == argument
    if isinstance(row, RawDiamondInput) and row.supplier_stone_id:
        assert "s-7" in str(caught.value)
    assert events == []
    assert table_state(diamond_db_url) == []


async def test_bulk_rejects_a_non_sequence(diamond_db: Database, run_id: UUID) -> None:
    with pytest.raises(ValidationError) as caught:
        await diamond_db.upsert_raw_diamonds(run_id, "rows")  # type: ignore[arg-type]
    assert caught.value.argument == "rows"


@pytest.fixture
def poison_trigger(diamond_db: Database, diamond_db_url: str) -> Iterator[str]:
    """A trigger that makes the database reject one stone: a failure in mid-batch."""
    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION test_poison() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.supplier_stone_id = 'stone-zzz' THEN"
            " RAISE EXCEPTION 'poisoned'; END IF; RETURN NEW; END $$;"
            " CREATE TRIGGER test_poison BEFORE INSERT ON raw_diamonds_nivoda"
            " FOR EACH ROW EXECUTE FUNCTION test_poison()"
        )
    try:
        yield "stone-zzz"
    finally:
        with psycopg.connect(diamond_db_url, autocommit=True) as conn:
            conn.execute(
                "DROP TRIGGER test_poison ON raw_diamonds_nivoda; DROP FUNCTION test_poison()"
            )


@pytest.mark.parametrize("max_chars", [raw_diamonds.MAX_STATEMENT_CHARS, 1000])
async def test_bulk_is_all_or_nothing_in_one_statement_or_several(
    diamond_db: Database,
    diamond_db_url: str,
    run_id: UUID,
    poison_trigger: str,
    max_chars: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(raw_diamonds, "MAX_STATEMENT_CHARS", max_chars)  # 1000: ~8 statements
    good = inputs(40)
    with pytest.raises(psycopg.errors.RaiseException):
        await diamond_db.upsert_raw_diamonds(
            run_id, [*good, RawDiamondInput(poison_trigger, "o", {})]
        )
    assert table_state(diamond_db_url) == []
    assert await diamond_db.upsert_raw_diamonds(run_id, good) == 40
    assert len(table_state(diamond_db_url)) == 40


async def test_split_batches_write_what_one_statement_writes(
    diamond_db: Database, diamond_db_url: str, run_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    await diamond_db.upsert_raw_diamonds(run_id, inputs(60))
    whole = table_state(diamond_db_url)
    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE raw_diamonds_nivoda")
    monkeypatch.setattr(raw_diamonds, "MAX_STATEMENT_CHARS", 1000)
    assert await diamond_db.upsert_raw_diamonds(run_id, inputs(60)) == 60
    assert table_state(diamond_db_url) == whole


# -- reading and claiming -----------------------------------------------------


async def backdate(url: str, column: str, ids: list[UUID], minutes: int) -> None:
    """Move a timestamp column of some rows into the past (instead of waiting)."""
    assert column in ("created_at", "claimed_at")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            f"UPDATE raw_diamonds_nivoda SET {column} = {column} - make_interval(mins => %s)"
            " WHERE id = ANY(%s)".encode(),
            (minutes, ids),
        )


async def test_unconsolidated_rows_are_pending_ones_oldest_first(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamonds(run_id, inputs(5))
    rows = await diamond_db.get_unconsolidated_raw_diamonds(10)
    by_stone = {r.supplier_stone_id: r.id for r in rows}
    await backdate(diamond_db_url, "created_at", [by_stone["stone-00003"]], 60)
    await backdate(diamond_db_url, "created_at", [by_stone["stone-00001"]], 30)

    oldest = await diamond_db.get_unconsolidated_raw_diamonds(2)
    assert [r.supplier_stone_id for r in oldest] == ["stone-00003", "stone-00001"]
    page = await diamond_db.get_unconsolidated_raw_diamonds(10, offset=2)
    assert len(page) == 3
    assert {r.id for r in page}.isdisjoint(r.id for r in oldest)
    assert await diamond_db.get_unconsolidated_count() == 5

    await diamond_db.claim_unconsolidated_raw_diamonds(1, "c")  # takes stone-00003
    await diamond_db.mark_as_consolidated([by_stone["stone-00000"]])
    pending = await diamond_db.get_unconsolidated_raw_diamonds(10)
    assert [r.supplier_stone_id for r in pending][:1] == ["stone-00001"]
    assert len(pending) == 3
    assert await diamond_db.get_unconsolidated_count() == 3


async def test_claim_moves_the_oldest_pending_rows_to_processing(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamonds(run_id, inputs(5))
    first = await diamond_db.claim_unconsolidated_raw_diamonds(3, "consolidator-a")
    second = await diamond_db.claim_unconsolidated_raw_diamonds(3, "consolidator-b")
    assert (len(first), len(second)) == (3, 2)
    assert await diamond_db.claim_unconsolidated_raw_diamonds(3, "consolidator-c") == []
    assert [(r.created_at, r.id) for r in first] == sorted((r.created_at, r.id) for r in first)
    for row in first:
        stored = raw_row(diamond_db_url, row.supplier_stone_id)
        assert stored["consolidation_status"] == row.consolidation_status == "processing"
        assert stored["claimed_by"] == row.claimed_by == "consolidator-a"
        assert stored["claimed_at"] == row.claimed_at is not None
        assert stored["consolidated"] is False


async def test_a_claim_never_waits_for_another_consolidators_open_claim(
    diamond_db: Database, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamonds(run_id, inputs(8))
    async with diamond_db.transaction() as tx:  # A's claim holds its row locks until commit
        first = await tx.claim_unconsolidated_raw_diamonds(3, "a")
        # B skips A's locked rows instead of waiting for them (it would time out here).
        second = await asyncio.wait_for(
            diamond_db.claim_unconsolidated_raw_diamonds(3, "b"), timeout=30
        )
    assert len(first) == len(second) == 3
    assert {r.id for r in first}.isdisjoint(r.id for r in second)
    assert await diamond_db.get_unconsolidated_count() == 2


async def test_mark_as_consolidated_and_failed_keep_the_flag_consistent(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    other_run = uuid4()
    await diamond_db.upsert_raw_diamonds(run_id, inputs(4))
    await diamond_db.upsert_raw_diamonds(other_run, inputs(2, start=10))
    rows = await diamond_db.claim_unconsolidated_raw_diamonds(10, "c")
    ids = {r.supplier_stone_id: r.id for r in rows}

    assert await diamond_db.mark_as_consolidated([ids["stone-00000"], str(ids["stone-00001"])]) == 2
    two = [ids["stone-00002"], ids["stone-00010"]]
    assert await diamond_db.mark_as_failed(two, "bad carats") == 2
    assert await diamond_db.mark_as_failed([ids["stone-00011"]]) == 1
    done = raw_row(diamond_db_url, "stone-00000")
    assert (done["consolidation_status"], done["consolidated"]) == ("done", True)
    assert done["consolidated_at"] is not None
    failed = raw_row(diamond_db_url, "stone-00002")
    assert (failed["consolidation_status"], failed["consolidated"]) == ("failed", False)
    assert failed["consolidation_error"] == "bad carats"
    # A done row is not failed afterwards, nor consolidated twice.
    assert await diamond_db.mark_as_failed([ids["stone-00000"]], "late") == 0
    assert await diamond_db.mark_as_consolidated([ids["stone-00000"]]) == 0
    assert raw_row(diamond_db_url, "stone-00000") == done

    assert await diamond_db.reset_failed_raw_diamonds(run_id) == 1  # stone-00002 only
    assert raw_row(diamond_db_url, "stone-00010")["consolidation_status"] == "failed"
    assert await diamond_db.reset_failed_raw_diamonds() == 2
    for stone in ("stone-00002", "stone-00010", "stone-00011"):
        row = raw_row(diamond_db_url, stone)
        assert row["consolidation_status"] == "pending"
        assert row["claimed_by"] is row["claimed_at"] is row["consolidation_error"] is None
    assert await diamond_db.get_unconsolidated_count() == 3


async def test_empty_id_lists_send_nothing(diamond_db_url: str) -> None:
    events: list[QueryEvent] = []
    async with Database(diamond_db_url, min_size=0, on_query=events.append) as db:
        assert await db.mark_as_consolidated([]) == 0
        assert await db.mark_as_failed([], "x") == 0
        with pytest.raises(ValidationError):
            await db.mark_as_consolidated(["nope"])
        with pytest.raises(ValidationError):
            await db.claim_unconsolidated_raw_diamonds(-1, "c")
        with pytest.raises(ValidationError):
            await db.claim_unconsolidated_raw_diamonds(10, "")
        with pytest.raises(ValidationError):
            await db.reset_stuck_claims(60)  # type: ignore[arg-type]
    assert events == []


async def test_stuck_claims_return_to_pending_and_are_claimed_again(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamonds(run_id, inputs(6))
    crashed = await diamond_db.claim_unconsolidated_raw_diamonds(4, "crashed")
    alive = await diamond_db.claim_unconsolidated_raw_diamonds(4, "alive")
    assert (len(crashed), len(alive)) == (4, 2)
    assert await diamond_db.reset_stuck_claims(timedelta(minutes=10)) == 0  # all fresh

    await backdate(diamond_db_url, "claimed_at", [r.id for r in crashed], 30)
    assert await diamond_db.reset_stuck_claims(timedelta(minutes=10)) == 4
    for row in crashed:
        stored = raw_row(diamond_db_url, row.supplier_stone_id)
        assert stored["consolidation_status"] == "pending"
        assert stored["claimed_by"] is stored["claimed_at"] is None
    for row in alive:
        assert raw_row(diamond_db_url, row.supplier_stone_id)["claimed_by"] == "alive"

    retaken = await diamond_db.claim_unconsolidated_raw_diamonds(10, "successor")
    assert {r.id for r in retaken} == {r.id for r in crashed}
    await diamond_db.mark_as_consolidated([r.id for r in retaken + alive])
    done = fetch_dicts(
        diamond_db_url, "SELECT count(*) AS n FROM raw_diamonds_nivoda WHERE consolidated"
    )
    assert done == [{"n": 6}]


async def test_marks_with_claimed_by_touch_only_the_rows_that_consolidator_still_holds(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    await diamond_db.upsert_raw_diamonds(run_id, inputs(3))
    held = await diamond_db.claim_unconsolidated_raw_diamonds(3, "slow")
    changed, reclaimed, kept = sorted(held, key=lambda r: r.supplier_stone_id)
    # While "slow" works: one claim is reset as stuck and taken by another consolidator ...
    await backdate(diamond_db_url, "claimed_at", [reclaimed.id], 30)
    assert await diamond_db.reset_stuck_claims(timedelta(minutes=10)) == 1
    assert [r.id for r in await diamond_db.claim_unconsolidated_raw_diamonds(5, "fast")] == [
        reclaimed.id
    ]
    # ... and one payload changes (back to pending).
    await diamond_db.upsert_raw_diamond(run_id, changed.supplier_stone_id, "o", {"new": 1})

    ids = [r.id for r in held]
    assert await diamond_db.mark_as_consolidated(ids, claimed_by="slow") == 1
    assert await diamond_db.mark_as_failed(ids, "late", claimed_by="slow") == 0
    states = {
        r["supplier_stone_id"]: (r["consolidation_status"], r["claimed_by"])
        for r in fetch_dicts(
            diamond_db_url,
            "SELECT supplier_stone_id, consolidation_status, claimed_by FROM raw_diamonds_nivoda",
        )
    }
    assert states == {
        changed.supplier_stone_id: ("pending", None),  # its new payload still needs consolidating
        reclaimed.supplier_stone_id: ("processing", "fast"),
        kept.supplier_stone_id: ("done", "slow"),
    }
    with pytest.raises(ValidationError, match="claimed_by"):
        await diamond_db.mark_as_consolidated(ids, claimed_by="")


async def test_four_consolidators_take_every_row_exactly_once(
    diamond_db: Database, diamond_db_url: str, run_id: UUID
) -> None:
    total = 20_000
    rows = [RawDiamondInput(f"s-{n:05d}", f"o-{n}", {"n": n}) for n in range(total)]
    assert await diamond_db.upsert_raw_diamonds(run_id, rows) == total

    async def consolidator(db: Database, name: str) -> list[UUID]:
        taken: list[UUID] = []
        while batch := await db.claim_unconsolidated_raw_diamonds(250, name):
            assert {(r.claimed_by, r.consolidation_status) for r in batch} == {(name, "processing")}
            ids = [r.id for r in batch]
            assert await db.mark_as_consolidated(ids) == len(ids)
            taken += ids
        return taken

    async with Database(diamond_db_url, min_size=4, max_size=8) as db:
        names = [f"consolidator-{i}" for i in range(4)]
        results = await asyncio.gather(*(consolidator(db, name) for name in names))

    everything = [i for taken in results for i in taken]
    assert len(everything) == len(set(everything)) == total  # none twice, none lost
    stored = fetch_dicts(
        diamond_db_url,
        "SELECT claimed_by, consolidation_status, consolidated, count(*) AS n"
        " FROM raw_diamonds_nivoda GROUP BY 1, 2, 3",
    )
    assert {r["consolidation_status"] for r in stored} == {"done"}
    assert all(r["consolidated"] for r in stored)
    assert {r["claimed_by"]: r["n"] for r in stored} == {
        name: len(taken) for name, taken in zip(names, results, strict=True) if taken
    }
    assert await diamond_db.get_unconsolidated_count() == 0


# -- upsert_raw_diamonds from an iterator (streamed) ---------------------------


async def test_an_iterator_is_streamed_in_several_statements_of_one_transaction(
    diamond_db: Database, diamond_db_url: str, run_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raw_diamonds, "MAX_STATEMENT_CHARS", 1000)  # ~8 statements
    assert await diamond_db.upsert_raw_diamonds(run_id, iter(inputs(60))) == 60
    streamed = table_state(diamond_db_url)
    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE raw_diamonds_nivoda")
    assert await diamond_db.upsert_raw_diamonds(run_id, inputs(60)) == 60
    assert table_state(diamond_db_url) == streamed
    assert await diamond_db.upsert_raw_diamonds(run_id, (r for r in inputs(60))) == 0


async def test_an_iterator_repeating_a_stone_in_a_later_statement_counts_it_once(
    diamond_db: Database, diamond_db_url: str, run_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raw_diamonds, "MAX_STATEMENT_CHARS", 1000)
    rows = [*inputs(20), RawDiamondInput("stone-00003", "o-last", {"v": 3})]
    assert await diamond_db.upsert_raw_diamonds(run_id, iter(rows)) == 20
    row = raw_row(diamond_db_url, "stone-00003")
    assert (row["offer_id"], row["payload"]) == ("o-last", {"v": 3})


async def test_a_bad_row_late_in_an_iterator_writes_nothing(
    diamond_db: Database, diamond_db_url: str, run_id: UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(raw_diamonds, "MAX_STATEMENT_CHARS", 1000)  # statements already sent
    sent: list[int] = []

    def rows() -> Iterator[RawDiamondInput]:
        for n, row in enumerate(inputs(40)):
            sent.append(n)
            yield row
        yield RawDiamondInput("stone-bad", "o", {"f": [math.nan]})

    with pytest.raises(ValidationError) as caught:
        await diamond_db.upsert_raw_diamonds(run_id, rows())
    assert caught.value.argument == "rows[40].payload.f[0]"
    assert "stone-bad" in str(caught.value)
    assert len(sent) == 40
    assert table_state(diamond_db_url) == []
    assert await diamond_db.upsert_raw_diamonds(run_id, iter(inputs(3))) == 3
