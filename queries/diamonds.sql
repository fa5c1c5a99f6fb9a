-- Diamond inventory: the canonical `diamonds` table the API searches and sells from.
-- Statements are named for aiosql; `role` routes reads to a replica when one is
-- configured; `record` names the Python record each row becomes.

-- name: get_diamond_by_id(id)^
-- Fetch one live diamond by primary key; soft-deleted diamonds are not found.
-- role: reader
-- record: Diamond
SELECT *
FROM diamonds
WHERE id = :id AND status = 'active';
