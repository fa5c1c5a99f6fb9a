-- Rating rules: priority-ordered quality ratings; NULL criteria match every diamond.
-- The matching itself is one SQL function, rating_rule_for() (sql/bootstrap.sql),
-- which match_rating_rule, upsert_diamonds with apply_rules and the catalogue
-- jobs all use. The table is small (tens of rows): a sequential scan serves it.

-- name: get_active_rating_rules()
-- Every active rule, first-applying first: by priority, ties broken by id.
-- role: reader
-- record: RatingRule
SELECT *
FROM rating_rules
WHERE active
ORDER BY priority ASC, id ASC;

-- name: get_rating_rule(id)^
-- Fetch one rule (active or not) by id.
-- role: reader
-- record: RatingRule
SELECT *
FROM rating_rules
WHERE id = :id;

-- name: create_rating_rule(priority, rating, supplier, shapes, colors, clarities, cuts, polishes, symmetries, fluorescences, certificate_labs, girdles, culet_sizes, lab_grown, carat_min, carat_max, price_min_cents, price_max_cents, table_pct_min, table_pct_max, depth_pct_min, depth_pct_max, crown_angle_min, crown_angle_max, crown_height_min, crown_height_max, pavilion_angle_min, pavilion_angle_max, pavilion_depth_min, pavilion_depth_max, ratio_min, ratio_max)^
-- Add an active rule; a NULL criterion matches every diamond. List criteria
-- arrive upper-cased from the facade.
-- role: writer
-- record: RatingRule
INSERT INTO rating_rules (
    priority, rating, supplier, shapes, colors, clarities, cuts, polishes, symmetries,
    fluorescences, certificate_labs, girdles, culet_sizes, lab_grown, carat_min,
    carat_max, price_min_cents, price_max_cents, table_pct_min, table_pct_max,
    depth_pct_min, depth_pct_max, crown_angle_min, crown_angle_max, crown_height_min,
    crown_height_max, pavilion_angle_min, pavilion_angle_max, pavilion_depth_min,
    pavilion_depth_max, ratio_min, ratio_max
)
VALUES (
    :priority, :rating, :supplier, :shapes, :colors, :clarities, :cuts, :polishes,
    :symmetries, :fluorescences, :certificate_labs, :girdles, :culet_sizes, :lab_grown,
    :carat_min, :carat_max, :price_min_cents, :price_max_cents, :table_pct_min,
    :table_pct_max, :depth_pct_min, :depth_pct_max, :crown_angle_min, :crown_angle_max,
    :crown_height_min, :crown_height_max, :pavilion_angle_min, :pavilion_angle_max,
    :pavilion_depth_min, :pavilion_depth_max, :ratio_min, :ratio_max
)
RETURNING *;

-- name: update_rating_rule(id, changed, priority, rating, supplier, shapes, colors, clarities, cuts, polishes, symmetries, fluorescences, certificate_labs, girdles, culet_sizes, lab_grown, carat_min, carat_max, price_min_cents, price_max_cents, table_pct_min, table_pct_max, depth_pct_min, depth_pct_max, crown_angle_min, crown_angle_max, crown_height_min, crown_height_max, pavilion_angle_min, pavilion_angle_max, pavilion_depth_min, pavilion_depth_max, ratio_min, ratio_max, active)^
-- Change only the columns named in `changed`; the others keep their value. A
-- named column takes the bound value as is, so NULL clears a criterion. One
-- static statement rather than SQL assembled per call.
-- role: writer
-- record: RatingRule
UPDATE rating_rules
SET
    priority = CASE WHEN 'priority' = any(:changed) THEN :priority ELSE priority END,
    rating = CASE WHEN 'rating' = any(:changed) THEN :rating ELSE rating END,
    supplier = CASE WHEN 'supplier' = any(:changed) THEN :supplier ELSE supplier END,
    shapes = CASE WHEN 'shapes' = any(:changed) THEN :shapes ELSE shapes END,
    colors = CASE WHEN 'colors' = any(:changed) THEN :colors ELSE colors END,
    clarities = CASE
        WHEN 'clarities' = any(:changed) THEN :clarities ELSE clarities
    END,
    cuts = CASE WHEN 'cuts' = any(:changed) THEN :cuts ELSE cuts END,
    polishes = CASE WHEN 'polishes' = any(:changed) THEN :polishes ELSE polishes END,
    symmetries = CASE
        WHEN 'symmetries' = any(:changed) THEN :symmetries ELSE symmetries
    END,
    fluorescences = CASE
        WHEN 'fluorescences' = any(:changed) THEN :fluorescences ELSE fluorescences
    END,
    certificate_labs = CASE
        WHEN 'certificate_labs' = any(:changed) THEN :certificate_labs ELSE certificate_labs
    END,
    girdles = CASE WHEN 'girdles' = any(:changed) THEN :girdles ELSE girdles END,
    culet_sizes = CASE
        WHEN 'culet_sizes' = any(:changed) THEN :culet_sizes ELSE culet_sizes
    END,
    lab_grown = CASE
        WHEN 'lab_grown' = any(:changed) THEN :lab_grown ELSE lab_grown
    END,
    carat_min = CASE
        WHEN 'carat_min' = any(:changed) THEN :carat_min ELSE carat_min
    END,
    carat_max = CASE
        WHEN 'carat_max' = any(:changed) THEN :carat_max ELSE carat_max
    END,
    price_min_cents = CASE
        WHEN 'price_min_cents' = any(:changed) THEN :price_min_cents ELSE price_min_cents
    END,
    price_max_cents = CASE
        WHEN 'price_max_cents' = any(:changed) THEN :price_max_cents ELSE price_max_cents
    END,
    table_pct_min = CASE
        WHEN 'table_pct_min' = any(:changed) THEN :table_pct_min ELSE table_pct_min
    END,
    table_pct_max = CASE
        WHEN 'table_pct_max' = any(:changed) THEN :table_pct_max ELSE table_pct_max
    END,
    depth_pct_min = CASE
        WHEN 'depth_pct_min' = any(:changed) THEN :depth_pct_min ELSE depth_pct_min
    END,
    depth_pct_max = CASE
        WHEN 'depth_pct_max' = any(:changed) THEN :depth_pct_max ELSE depth_pct_max
    END,
    crown_angle_min = CASE
        WHEN 'crown_angle_min' = any(:changed) THEN :crown_angle_min ELSE crown_angle_min
    END,
    crown_angle_max = CASE
        WHEN 'crown_angle_max' = any(:changed) THEN :crown_angle_max ELSE crown_angle_max
    END,
    crown_height_min = CASE
        WHEN 'crown_height_min' = any(:changed) THEN :crown_height_min ELSE crown_height_min
    END,
    crown_height_max = CASE
        WHEN 'crown_height_max' = any(:changed) THEN :crown_height_max ELSE crown_height_max
    END,
    pavilion_angle_min = CASE
        WHEN 'pavilion_angle_min' = any(:changed) THEN :pavilion_angle_min ELSE pavilion_angle_min
    END,
    pavilion_angle_max = CASE
        WHEN 'pavilion_angle_max' = any(:changed) THEN :pavilion_angle_max ELSE pavilion_angle_max
    END,
    pavilion_depth_min = CASE
        WHEN 'pavilion_depth_min' = any(:changed) THEN :pavilion_depth_min ELSE pavilion_depth_min
    END,
    pavilion_depth_max = CASE
        WHEN 'pavilion_depth_max' = any(:changed) THEN :pavilion_depth_max ELSE pavilion_depth_max
    END,
    ratio_min = CASE
        WHEN 'ratio_min' = any(:changed) THEN :ratio_min ELSE ratio_min
    END,
    ratio_max = CASE
        WHEN 'ratio_max' = any(:changed) THEN :ratio_max ELSE ratio_max
    END,
    active = CASE WHEN 'active' = any(:changed) THEN :active ELSE active END,
    updated_at = now()
WHERE id = :id
RETURNING *;

-- name: deactivate_rating_rule(id)!
-- Retire an active rule (kept for the record; it no longer matches anything).
-- Touches no row when the rule is unknown or already inactive.
-- role: writer
UPDATE rating_rules
SET
    active = FALSE,
    updated_at = now()
WHERE id = :id AND active;

-- name: match_rating_rule(supplier, shape, color, clarity, cut, polish, symmetry, fluorescence, certificate_lab, girdle, culet_size, lab_grown, carats, supplier_price_cents, table_pct, depth_pct, crown_angle, crown_height, pavilion_angle, pavilion_depth, ratio)^
-- The rule that rates a diamond with these values: rating_rule_for(), the one
-- definition of rating-rule matching.
-- role: reader
-- record: RatingRule
SELECT *
FROM
    rating_rule_for(
        :supplier, :shape, :color, :clarity, :cut, :polish, :symmetry, :fluorescence,
        :certificate_lab, :girdle, :culet_size, :lab_grown, :carats,
        :supplier_price_cents, :table_pct, :depth_pct, :crown_angle, :crown_height,
        :pavilion_angle, :pavilion_depth, :ratio
    );
