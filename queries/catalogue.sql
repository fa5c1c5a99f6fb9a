-- The storefront's catalogue reads beside the search: related and recommended
-- stones for a product page, the quick lookup box, and the on-hold list.
-- search_facets is composed from the search catalogue (diamond_db/facets.py).
-- Every statement reads live diamonds only (status 'active').

-- name: get_related_diamonds(id, carat_tolerance, price_tolerance_cents, match_shape, match_lab_grown, match_color, match_clarity, match_cut, match_polish, match_symmetry, match_fluorescence, match_certificate_lab, match_fancy_color, row_limit)
-- Available stones like the anchor: same lab_grown, carats within the tolerance,
-- retail price within the tolerance when the anchor has one, and equal on each
-- :match_<field> that is true where the anchor's value is not NULL; closest in
-- carats, then in price, then newest. No row: the anchor is unknown or deleted;
-- one row of NULLs: it has no related stone. The candidates come from
-- diamonds_search_shape_idx (shape, lab_grown, carats, ...) when shape is matched.
-- role: reader
-- record: Diamond
SELECT related.*
FROM diamonds AS anchor
LEFT JOIN LATERAL (
    SELECT c.*
    FROM diamonds AS c
    WHERE
        c.status = 'active'
        AND c.availability = 'available'
        AND c.id <> anchor.id
        AND c.lab_grown = anchor.lab_grown
        AND c.carats >= anchor.carats - :carat_tolerance
        AND c.carats <= anchor.carats + :carat_tolerance
        AND (
            anchor.retail_price_cents IS NULL
            OR c.retail_price_cents
            BETWEEN anchor.retail_price_cents - :price_tolerance_cents
            AND anchor.retail_price_cents + :price_tolerance_cents
        )
        AND (NOT :match_shape OR c.shape = anchor.shape)
        AND (NOT :match_lab_grown OR c.lab_grown = anchor.lab_grown)
        AND (NOT :match_color OR anchor.color IS NULL OR c.color = anchor.color)
        AND (
            NOT :match_clarity OR anchor.clarity IS NULL OR c.clarity = anchor.clarity
        )
        AND (NOT :match_cut OR anchor.cut IS NULL OR c.cut = anchor.cut)
        AND (NOT :match_polish OR anchor.polish IS NULL OR c.polish = anchor.polish)
        AND (
            NOT :match_symmetry
            OR anchor.symmetry IS NULL
            OR c.symmetry = anchor.symmetry
        )
        AND (
            NOT :match_fluorescence
            OR anchor.fluorescence IS NULL
            OR c.fluorescence = anchor.fluorescence
        )
        AND (
            NOT :match_certificate_lab
            OR anchor.certificate_lab IS NULL
            OR c.certificate_lab = anchor.certificate_lab
        )
        AND (
            NOT :match_fancy_color
            OR anchor.fancy_color IS NULL
            OR c.fancy_color = anchor.fancy_color
        )
    ORDER BY
        abs(c.carats - anchor.carats) ASC,
        abs(c.retail_price_cents - anchor.retail_price_cents) ASC NULLS LAST,
        c.created_at DESC,
        c.id ASC
    LIMIT :row_limit
) AS related ON TRUE
WHERE anchor.id = :id AND anchor.status = 'active';  -- noqa: RF02

-- name: get_recommended_diamonds(id, carat_tolerance)
-- Three distinct available stones for the anchor's page, one row per filled slot
-- (slot, then the diamond's columns). The pool: same lab_grown and shape, carats
-- within the tolerance; level 1 also equal on clarity and cut, level 2 on clarity
-- (a NULL anchor value does not constrain), level 3 the whole pool. The narrowest
-- level holding three stones is used, else level 3: a wider level is read only
-- when the narrower one is short (its guard is an uncorrelated subquery, which
-- PostgreSQL evaluates once, before reading that level). Levels carry only the
-- ordering columns; the three picks are read whole at the end. highest_rated:
-- rating, then retail price, highest first, newest; most_expensive: retail price,
-- newest; mid_rated: rating closest to 7.5 (7 and 8 first, the higher one first),
-- then retail price, newest. No row: the anchor is unknown or deleted; one row of
-- NULLs: the pool is empty. Levels come from diamonds_search_shape_idx.
-- role: reader
WITH anchor AS (
    SELECT
        d.id,
        d.lab_grown,
        d.shape,
        d.clarity,
        d.cut,
        d.carats,
        cast(:carat_tolerance AS NUMERIC) AS carat_tolerance  -- noqa: RF02
    FROM diamonds AS d
    WHERE d.id = :id AND d.status = 'active'
),

pool AS (
    SELECT
        c.id,
        c.clarity,
        c.cut,
        c.rating,
        c.retail_price_cents,
        c.created_at
    FROM anchor AS a
    INNER JOIN diamonds AS c
        ON
            a.shape = c.shape
            AND a.lab_grown = c.lab_grown
            AND c.carats >= a.carats - a.carat_tolerance
            AND c.carats <= a.carats + a.carat_tolerance
            AND a.id <> c.id
    WHERE c.status = 'active' AND c.availability = 'available'
),

level_2 AS (
    SELECT p.*
    FROM pool AS p
    INNER JOIN anchor AS a ON a.clarity IS NULL OR p.clarity = a.clarity
),

level_1 AS (
    SELECT l.*
    FROM level_2 AS l
    INNER JOIN anchor AS a ON a.cut IS NULL OR l.cut = a.cut
),

candidates AS (
    SELECT l1.*
    FROM level_1 AS l1
    WHERE (SELECT count(*) FROM level_1) >= 3
    UNION ALL
    SELECT l2.*
    FROM level_2 AS l2
    WHERE
        (SELECT count(*) FROM level_1) < 3
        AND (SELECT count(*) FROM level_2) >= 3
    UNION ALL
    SELECT p.*
    FROM pool AS p
    WHERE (SELECT count(*) FROM level_2) < 3
),

highest_rated AS (
    SELECT c.id
    FROM candidates AS c
    ORDER BY
        c.rating DESC NULLS LAST,
        c.retail_price_cents DESC NULLS LAST,
        c.created_at DESC,
        c.id ASC
    LIMIT 1
),

most_expensive AS (
    SELECT c.id
    FROM candidates AS c
    WHERE c.id NOT IN (SELECT h.id FROM highest_rated AS h)
    ORDER BY c.retail_price_cents DESC NULLS LAST, c.created_at DESC, c.id ASC
    LIMIT 1
),

mid_rated AS (
    SELECT c.id
    FROM candidates AS c
    WHERE
        c.id NOT IN (SELECT h.id FROM highest_rated AS h)
        AND c.id NOT IN (SELECT m.id FROM most_expensive AS m)
    ORDER BY
        abs(c.rating - 7.5) ASC NULLS LAST,
        c.rating DESC,
        c.retail_price_cents DESC NULLS LAST,
        c.created_at DESC,
        c.id ASC
    LIMIT 1
),

picks AS (
    SELECT
        'highest_rated' AS slot,
        h.id
    FROM highest_rated AS h
    UNION ALL
    SELECT
        'most_expensive' AS slot,
        m.id
    FROM most_expensive AS m
    UNION ALL
    SELECT
        'mid_rated' AS slot,
        r.id
    FROM mid_rated AS r
)

SELECT
    picks.slot,
    d.*
FROM anchor AS a
LEFT JOIN picks ON a.id IS NOT NULL
LEFT JOIN diamonds AS d ON picks.id = d.id;

-- name: quick_search_diamonds(prefix, supplier, row_limit)
-- The lookup box: live diamonds whose supplier stone id, offer id or certificate
-- number starts with :prefix, case-insensitively, newest first. starts_with()
-- takes the text literally (no wildcards: % and _ need no escaping, unlike LIKE).
-- Each column's test is served by its index on lower(column) text_pattern_ops
-- (0008), read as a range of the index; the three are OR-ed in a bitmap.
-- role: reader
-- record: Diamond
SELECT *
FROM diamonds
WHERE
    status = 'active'
    AND (
        starts_with(lower(supplier_stone_id), lower(:prefix))
        OR starts_with(lower(offer_id), lower(:prefix))
        OR starts_with(lower(certificate_number), lower(:prefix))
    )
    AND (cast(:supplier AS TEXT) IS NULL OR supplier = :supplier)
ORDER BY created_at DESC, id DESC
LIMIT :row_limit;

-- name: get_diamonds_on_hold(supplier, after_updated_at, after_id, row_limit)
-- Live on-hold diamonds, most recently changed first, keyset-paged by
-- (updated_at, id) after the previous page's last row (NULL: the first page).
-- Served backwards by the partial index diamonds_on_hold_idx (0008), which holds
-- only the on-hold stones.
-- role: reader
-- record: Diamond
SELECT *
FROM diamonds
WHERE
    status = 'active'
    AND availability = 'on_hold'
    AND (cast(:supplier AS TEXT) IS NULL OR supplier = :supplier)
    AND (
        cast(:after_updated_at AS TIMESTAMPTZ) IS NULL
        OR (updated_at, id) < (:after_updated_at, cast(:after_id AS UUID))
    )
ORDER BY updated_at DESC, id DESC
LIMIT :row_limit;
