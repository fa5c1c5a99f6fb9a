-- Pricing rules: priority-ordered markups; NULL criteria match every diamond.
-- The table is small (tens of rows): a sequential scan serves every statement.

-- name: get_active_pricing_rules()
-- Every active rule, first-applying first: by priority, ties broken by id so the
-- order is stable between calls.
-- role: reader
-- record: PricingRule
SELECT *
FROM pricing_rules
WHERE active
ORDER BY priority ASC, id ASC;

-- name: get_pricing_rule(id)^
-- Fetch one rule (active or not) by id.
-- role: reader
-- record: PricingRule
SELECT *
FROM pricing_rules
WHERE id = :id;

-- name: create_pricing_rule(priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating)^
-- Add an active rule; a NULL criterion matches every diamond.
-- role: writer
-- record: PricingRule
INSERT INTO pricing_rules (
    priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating
)
VALUES (
    :priority, :carat_min, :carat_max, :shapes, :lab_grown, :supplier, :markup_ratio, :rating
)
RETURNING *;

-- name: update_pricing_rule(id, changed, priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating, active)^
-- Change only the columns named in `changed`; the others keep their value. A
-- named column takes the bound value as is, so NULL resets a criterion. One
-- static statement rather than SQL assembled per call.
-- role: writer
-- record: PricingRule
UPDATE pricing_rules
SET
    priority = CASE WHEN 'priority' = any(:changed) THEN :priority ELSE priority END,
    carat_min = CASE WHEN 'carat_min' = any(:changed) THEN :carat_min ELSE carat_min END,
    carat_max = CASE WHEN 'carat_max' = any(:changed) THEN :carat_max ELSE carat_max END,
    shapes = CASE WHEN 'shapes' = any(:changed) THEN :shapes ELSE shapes END,
    lab_grown = CASE WHEN 'lab_grown' = any(:changed) THEN :lab_grown ELSE lab_grown END,
    supplier = CASE WHEN 'supplier' = any(:changed) THEN :supplier ELSE supplier END,
    markup_ratio = CASE
        WHEN 'markup_ratio' = any(:changed) THEN :markup_ratio ELSE markup_ratio
    END,
    rating = CASE WHEN 'rating' = any(:changed) THEN :rating ELSE rating END,
    active = CASE WHEN 'active' = any(:changed) THEN :active ELSE active END,
    updated_at = now()
WHERE id = :id
RETURNING *;

-- name: deactivate_pricing_rule(id)!
-- Retire an active rule (kept for the record; it no longer matches anything).
-- Touches no row when the rule is unknown or already inactive.
-- role: writer
UPDATE pricing_rules
SET
    active = FALSE,
    updated_at = now()
WHERE id = :id AND active;

-- name: match_pricing_rule(carats, shape, lab_grown, supplier)^
-- The rule that prices a diamond: the first active rule, by priority then id
-- (the order of get_active_pricing_rules), whose every criterion is NULL or
-- matches. The carat range is inclusive at both ends. Computed here, in one
-- statement, so the consolidator and the API always agree on the rule.
-- role: reader
-- record: PricingRule
SELECT *
FROM pricing_rules
WHERE
    active
    AND (carat_min IS NULL OR carat_min <= :carats)
    AND (carat_max IS NULL OR carat_max >= :carats)
    AND (shapes IS NULL OR :shape = any(shapes))
    AND (lab_grown IS NULL OR lab_grown = :lab_grown)
    AND (supplier IS NULL OR supplier = :supplier)
ORDER BY priority ASC, id ASC
LIMIT 1;
