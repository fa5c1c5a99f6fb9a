"""API keys: only SHA-256 hashes are stored or accepted; validity (active, unexpired)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest
from helpers import fetch

import diamond_db as package
from diamond_db import (
    ApiKey,
    Database,
    DiamondDBError,
    DuplicateApiKey,
    QueryEvent,
    ValidationError,
    hash_api_key,
)

RAW_KEY = "sk_live_4f9a1c2e-raw-secret"


def stored_keys(url: str) -> list[tuple[Any, ...]]:
    """(key_hash, client_name, permissions, active, last_used_at) of every key, read directly."""
    return fetch(
        url, "SELECT key_hash, client_name, permissions, active, last_used_at FROM api_keys"
    )


async def create(db: Database, raw: str = RAW_KEY, **extra: Any) -> ApiKey:
    return await db.create_api_key(hash_api_key(raw), "shop-frontend", **extra)


class Recorded(Database):
    """A Database that records the name of every statement it sends (its on_query hook)."""

    def __init__(self, url: str) -> None:
        self.sent: list[str] = []
        super().__init__(url, min_size=1, on_query=self._record)

    def _record(self, event: QueryEvent) -> None:
        self.sent.append(event.name)


@pytest.fixture
async def recorded(diamond_db: Database, diamond_db_url: str) -> AsyncIterator[Recorded]:
    """A second Database on the emptied test database, recording the statements it sends."""
    db = Recorded(diamond_db_url)
    async with db:
        yield db


def test_hash_api_key_is_lowercase_sha256_hex() -> None:
    assert hash_api_key("abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert hash_api_key(RAW_KEY) == hashlib.sha256(RAW_KEY.encode()).hexdigest()
    assert hash_api_key("clé") == hashlib.sha256("clé".encode()).hexdigest()  # UTF-8
    assert "hash_api_key" in package.__all__
    for bad in ("", None, b"bytes"):
        with pytest.raises(ValidationError) as error:
            hash_api_key(bad)  # type: ignore[arg-type]
        assert error.value.argument == "raw_key"


async def test_create_and_validate_an_active_key(diamond_db: Database, diamond_db_url: str) -> None:
    key = await create(diamond_db, permissions=("search", "hold"))
    assert (key.client_name, key.permissions, key.active) == (
        "shop-frontend",
        ["search", "hold"],
        True,
    )
    assert key.key_hash not in repr(key)
    assert await diamond_db.validate_api_key(hash_api_key(RAW_KEY)) == key
    assert stored_keys(diamond_db_url) == [
        (hash_api_key(RAW_KEY), "shop-frontend", ["search", "hold"], True, None)
    ]


async def test_only_active_unexpired_known_keys_validate(diamond_db: Database) -> None:
    now = datetime.now(UTC)
    later = await create(diamond_db, "later", expires_at=now + timedelta(hours=1))
    await create(diamond_db, "expired", expires_at=now - timedelta(seconds=1))
    revoked = await create(diamond_db, "revoked")
    assert await diamond_db.deactivate_api_key(revoked.id) is True

    assert await diamond_db.validate_api_key(hash_api_key("later")) == later
    assert await diamond_db.validate_api_key(hash_api_key("expired")) is None
    assert await diamond_db.validate_api_key(hash_api_key("revoked")) is None
    assert await diamond_db.validate_api_key(hash_api_key("unknown")) is None


async def test_deactivate_reports_whether_it_changed_a_key(
    diamond_db: Database, diamond_db_url: str
) -> None:
    key = await create(diamond_db)
    assert await diamond_db.deactivate_api_key(str(key.id)) is True
    assert await diamond_db.deactivate_api_key(key.id) is False  # already inactive
    assert await diamond_db.deactivate_api_key(uuid4()) is False
    assert stored_keys(diamond_db_url)[0][3] is False


async def test_update_last_used_stamps_the_key(diamond_db: Database, diamond_db_url: str) -> None:
    key = await create(diamond_db)
    before = datetime.now(UTC)
    assert await diamond_db.update_api_key_last_used(key.id) is True
    last_used = stored_keys(diamond_db_url)[0][4]
    assert last_used is not None
    assert last_used >= before - timedelta(seconds=1)
    assert await diamond_db.update_api_key_last_used(uuid4()) is False


@pytest.mark.parametrize(
    "not_a_hash",
    [
        RAW_KEY,
        hash_api_key(RAW_KEY).upper(),  # hex, but not lowercase
        hash_api_key(RAW_KEY)[:63],
        hash_api_key(RAW_KEY) + "0",
        "g" * 64,
        "",
        None,
    ],
)
async def test_anything_but_a_lowercase_sha256_hex_is_rejected_without_echo(
    recorded: Recorded, diamond_db_url: str, not_a_hash: Any
) -> None:
    with pytest.raises(ValidationError) as created:
        await recorded.create_api_key(not_a_hash, "client")
    with pytest.raises(ValidationError) as validated:
        await recorded.validate_api_key(not_a_hash)
    for error in (created.value, validated.value):
        assert error.argument == "key_hash"
        if not_a_hash:
            assert not_a_hash not in str(error)
    assert recorded.sent == []  # raised before any SQL was sent
    assert stored_keys(diamond_db_url) == []


async def test_a_hash_registered_twice_raises_duplicate_api_key_without_echo(
    recorded: Recorded, diamond_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = await create(recorded, permissions=["search"])
    key_hash = hash_api_key(RAW_KEY)
    with (
        caplog.at_level(logging.DEBUG, logger="diamond_db"),
        pytest.raises(DuplicateApiKey) as caught,
    ):
        await recorded.create_api_key(key_hash, "someone-else", ["search", "hold", "buy"])
    error = caught.value
    assert "DuplicateApiKey" in package.__all__
    assert isinstance(error, DiamondDBError)
    assert not isinstance(error, ValidationError)  # the database decided: not an argument check
    assert recorded.sent == ["create_api_key", "create_api_key"]  # after the INSERT
    # Nothing the error carries repeats the hash: message, args, cause, context, attributes.
    carried = [str(error), repr(error), *map(repr, error.args), repr(vars(error))]
    carried += [repr(error.__cause__), repr(error.__context__)]
    assert not any(key_hash in text for text in carried), carried
    assert error.__cause__ is None
    assert key_hash not in caplog.text
    # The stored key is the first one, unchanged.
    assert stored_keys(diamond_db_url) == [(key_hash, "shop-frontend", ["search"], True, None)]
    assert await recorded.validate_api_key(key_hash) == first


async def test_no_key_or_hash_reaches_the_logs(
    diamond_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="diamond_db"):
        key = await create(diamond_db)
        await diamond_db.validate_api_key(key.key_hash)
        await diamond_db.update_api_key_last_used(key.id)
        with pytest.raises(ValidationError):
            await diamond_db.validate_api_key(RAW_KEY)
    assert caplog.records  # the statements were logged ...
    assert RAW_KEY not in caplog.text
    assert key.key_hash not in caplog.text


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"client_name": ""}, "client_name"),
        ({"permissions": [1]}, "permissions[0]"),
        ({"permissions": None}, "permissions"),
        ({"expires_at": "soon"}, "expires_at"),
    ],
)
async def test_other_bad_arguments_are_rejected(
    recorded: Recorded, diamond_db_url: str, arguments: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValidationError) as error:
        await recorded.create_api_key(
            **({"key_hash": hash_api_key(RAW_KEY), "client_name": "c"} | arguments)
        )
    assert error.value.argument == name
    with pytest.raises(ValidationError) as error:
        await recorded.deactivate_api_key("nope")
    assert error.value.argument == "id"
    assert recorded.sent == []  # raised before any SQL was sent
    assert stored_keys(diamond_db_url) == []
