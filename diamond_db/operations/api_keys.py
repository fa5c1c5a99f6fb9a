"""API keys: validation of hashed keys, creation, deactivation (queries/api_keys.sql).

Only SHA-256 hex digests ever reach the database: every `key_hash` argument
is checked to be one (so a raw key cannot be stored by mistake), and no
message repeats a key or a hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime
from uuid import UUID

from .._executor import Executor
from ..errors import DuplicateApiKey, ValidationError
from ..records import ApiKey
from ..validation import datetime_arg, key_hash_arg, text_arg, text_list_arg, uuid_arg


def hash_api_key(raw_key: str) -> str:
    """The SHA-256 hex digest (lowercase) of a raw key's UTF-8 bytes, as the platform stores it."""
    if not isinstance(raw_key, str) or not raw_key:
        raise ValidationError("raw_key", "expected a non-empty string (value not shown)")
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKeyOperations(Executor):
    """Operations of queries/api_keys.sql."""

    async def validate_api_key(self, key_hash: str) -> ApiKey | None:
        """The key with this hash if it is active and unexpired, else None.

        Reads the primary, so a key deactivated a moment ago is refused at once.
        """
        return await self._one(
            ApiKey, "validate_api_key", key_hash=key_hash_arg("key_hash", key_hash)
        )

    async def update_api_key_last_used(self, id: UUID | str) -> bool:
        """Stamp the key as used now; False when the id is unknown."""
        return await self._rowcount("update_api_key_last_used", id=uuid_arg("id", id)) == 1

    async def create_api_key(
        self,
        key_hash: str,
        client_name: str,
        permissions: Collection[str] = (),
        expires_at: datetime | None = None,
    ) -> ApiKey:
        """Register a client's key by its hash (see hash_api_key).

        A hash already registered raises DuplicateApiKey (the stored key is left
        as it was); bad arguments raise ValidationError before any SQL is sent.
        """
        row = await self._one(
            ApiKey,
            "create_api_key",
            key_hash=key_hash_arg("key_hash", key_hash),
            client_name=text_arg("client_name", client_name),
            permissions=text_list_arg("permissions", permissions),
            expires_at=datetime_arg("expires_at", expires_at, optional=True),
        )
        if row is None:  # ON CONFLICT DO NOTHING: the hash is taken
            raise DuplicateApiKey
        return row

    async def deactivate_api_key(self, id: UUID | str) -> bool:
        """Revoke a key: True when this call deactivated it, False when unknown or inactive."""
        return await self._rowcount("deactivate_api_key", id=uuid_arg("id", id)) == 1
