-- Pricing rules: priority-ordered markups; NULL criteria match every diamond.
-- The matching itself is one SQL function, pricing_rule_for() (sql/bootstrap.sql),
-- which match_pricing_rule, upsert_diamonds with apply_rules and the catalogue
-- jobs all use. The table is small (tens of rows): a sequential scan serves it.

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

-- name: create_pricing_rule(priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating, price_min_cents, price_max_cents, fancy)^
-- Add an active rule; a NULL criterion matches every diamond.
-- role: writer
-- record: PricingRule
INSERT INTO pricing_rules (
    priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating,
    price_min_cents, price_max_cents, fancy
)
VALUES (
    :priority, :carat_min, :carat_max, :shapes, :lab_grown, :supplier, :markup_ratio, :rating,
    :price_min_cents, :price_max_cents, :fancy
)
RETURNING *;

-- name: update_pricing_rule(id, changed, priority, carat_min, carat_max, shapes, lab_grown, supplier, markup_ratio, rating, active, price_min_cents, price_max_cents, fancy)^
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
    price_min_cents = CASE
        WHEN 'price_min_cents' = any(:changed) THEN :price_min_cents ELSE price_min_cents
    END,
    price_max_cents = CASE
        WHEN 'price_max_cents' = any(:changed) THEN :price_max_cents ELSE price_max_cents
    END,
    fancy = CASE WHEN 'fancy' = any(:changed) THEN :fancy ELSE fancy END,
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

-- name: match_pricing_rule(carats, shape, lab_grown, supplier, supplier_price_cents, fancy)^
-- The rule that prices a diamond with these values: pricing_rule_for(), the one
-- definition of pricing-rule matching (the first active rule, by priority then
-- id, whose every criterion is NULL or matches; ranges inclusive), so the
-- consolidator, the API and the catalogue jobs always agree on the rule.
-- role: reader
-- record: PricingRule
SELECT *
FROM
    pricing_rule_for(
        :carats, :shape, :lab_grown, :supplier, :supplier_price_cents, :fancy
    );
