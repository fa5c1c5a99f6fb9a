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
-- (slot, relaxed_to, the diamond's columns). The pool: same lab_grown and shape,
-- carats within the tolerance; level 1 also equal on clarity and cut, level 2 on
-- clarity (a NULL anchor value does not constrain). The narrowest level holding
-- three stones is used, else level 3. highest_rated: rating, then retail price,
-- highest first, newest; most_expensive: retail price, newest; mid_rated: rating
-- closest to 7.5 (7 and 8 first, the higher one first), then retail price, newest.
-- No row: the anchor is unknown or deleted; one row of NULLs: the pool is empty.
-- role: reader
WITH anchor AS (
    SELECT
        d.id,
        d.lab_grown,
        d.shape,
        d.clarity,
        d.cut,
        d.carats,
        :carat_tolerance AS carat_tolerance  -- noqa: AL09
    FROM diamonds AS d
    WHERE d.id = :id AND d.status = 'active'
),

pool AS (
    SELECT
        c.*,
        CASE
            WHEN
                (a.clarity IS NULL OR c.clarity = a.clarity)
                AND (a.cut IS NULL OR c.cut = a.cut)
                THEN 1
            WHEN a.clarity IS NULL OR c.clarity = a.clarity THEN 2
            ELSE 3
        END AS relaxed_to
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

chosen AS (
    SELECT
        CASE
            WHEN count(*) FILTER (WHERE relaxed_to = 1) >= 3 THEN 1
            WHEN count(*) FILTER (WHERE relaxed_to <= 2) >= 3 THEN 2
            ELSE 3
        END AS relaxed_to
    FROM pool
),

candidates AS (
    SELECT pool.*
    FROM pool
    INNER JOIN chosen ON pool.relaxed_to <= chosen.relaxed_to
),

highest_rated AS (
    SELECT *
    FROM candidates
    ORDER BY
        rating DESC NULLS LAST,
        retail_price_cents DESC NULLS LAST,
        created_at DESC,
        id ASC
    LIMIT 1
),

most_expensive AS (
    SELECT *
    FROM candidates
    WHERE id NOT IN (SELECT h.id FROM highest_rated AS h)
    ORDER BY retail_price_cents DESC NULLS LAST, created_at DESC, id ASC
    LIMIT 1
),

mid_rated AS (
    SELECT *
    FROM candidates
    WHERE
        id NOT IN (SELECT h.id FROM highest_rated AS h)
        AND id NOT IN (SELECT m.id FROM most_expensive AS m)
    ORDER BY
        abs(rating - 7.5) ASC NULLS LAST,
        rating DESC,
        retail_price_cents DESC NULLS LAST,
        created_at DESC,
        id ASC
    LIMIT 1
),

picks AS (
    SELECT
        'highest_rated' AS slot,
        h.*
    FROM highest_rated AS h
    UNION ALL
    SELECT
        'most_expensive' AS slot,
        m.*
    FROM most_expensive AS m
    UNION ALL
    SELECT
        'mid_rated' AS slot,
        r.*
    FROM mid_rated AS r
)

SELECT picks.*
FROM anchor AS a
LEFT JOIN picks ON a.id IS NOT NULL;

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
