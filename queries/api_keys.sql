-- API keys: only SHA-256 hashes are stored or compared, never a raw key.
-- Lookups by key_hash use the unique index of api_keys_key_hash_key.

-- name: validate_api_key(key_hash)^
-- The key with this hash, only when it is active and not expired (no expiry, or
-- one still ahead). Marked writer so it reads the primary: a key deactivated a
-- moment ago must not still pass on a lagging replica.
-- role: writer
-- record: ApiKey
SELECT *
FROM api_keys
WHERE
    key_hash = :key_hash
    AND active
    AND (expires_at IS NULL OR expires_at > now());

-- name: update_api_key_last_used(id)!
-- Record that the key was just used.
-- role: writer
UPDATE api_keys
SET last_used_at = now()
WHERE id = :id;

-- name: create_api_key(key_hash, client_name, permissions, expires_at)^
-- Register a client's key by its hash. A hash already registered inserts
-- nothing and returns no row (the caller reports it without echoing the hash,
-- which a unique-violation message would carry).
-- role: writer
-- record: ApiKey
INSERT INTO api_keys (key_hash, client_name, permissions, expires_at)
VALUES (:key_hash, :client_name, :permissions, :expires_at)
ON CONFLICT (key_hash) DO NOTHING
RETURNING *;

-- name: deactivate_api_key(id)!
-- Revoke an active key; it stays on record but no longer validates.
-- Touches no row when the key is unknown or already inactive.
-- role: writer
UPDATE api_keys
SET active = FALSE
WHERE id = :id AND active;
