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

-- name: get_diamond_by_offer_id(offer_id)^
-- Fetch the live diamond sold under a supplier offer id (diamonds_offer_id_active_idx).
-- Offer ids are not unique across suppliers: the most recently updated one wins.
-- role: reader
-- record: Diamond
SELECT *
FROM diamonds
WHERE offer_id = :offer_id AND status = 'active'
ORDER BY updated_at DESC, id ASC
LIMIT 1;

-- name: upsert_diamonds(diamonds, apply_rules)!
-- Insert or update a batch of supplier diamonds in one statement. :diamonds is a
-- JSON array with one object per diamond, keyed by column (keys distinct, sorted by
-- the facade so that concurrent batches lock rows in the same order; NUMERIC values
-- as strings, so they are never rounded through a float). The supplier's attributes
-- are overwritten, updated_at bumped, created_at kept. Two rules protect the
-- platform's own state: a hold placed through the library (on_hold with a hold_id)
-- survives unless the supplier reports the stone sold or unavailable, which also
-- clears hold_id; status 'active' revives a soft-deleted diamond (deleted_at cleared).
-- The grading columns (0005) are supplier data too: overwritten like the others.
-- Prices: with :apply_rules the active rules price and rate each row here
-- (pricing_rule_for, rating_rule_for, diamond_retail_cents: the one definition
-- match_pricing_rule, match_rating_rule and the catalogue jobs use), and the
-- supplied markup_ratio, retail_price_cents and rating are ignored; without it
-- they are stored as given, and the given rating is the pricing rule's rating
-- (pricing_rating), as before rating rules existed.
-- role: writer
WITH request AS (
    SELECT cast(:apply_rules AS BOOLEAN) AS apply_rules
)

INSERT INTO diamonds AS d (
    supplier, supplier_stone_id, offer_id, shape, carats, color, clarity, cut,
    polish, symmetry, fluorescence, lab_grown, treated, supplier_price_cents,
    price_per_carat_cents, availability,
    raw_availability, image_url, video_url, certificate_lab, certificate_number,
    certificate_pdf_url, measurements, attributes, supplier_name,
    supplier_legal_name, status, source_updated_at, fancy_color, fancy_intensity,
    fancy_overtone, fluorescence_intensity, ratio, table_pct, depth_pct,
    crown_angle, crown_height, pavilion_angle, pavilion_depth, length_mm,
    width_mm, depth_mm, girdle, culet_size, brown, green, milky, eye_clean,
    meta_images, deleted_at, retail_price_cents, markup_ratio, pricing_rating, rating
)
SELECT
    incoming.*,
    CASE WHEN incoming.status = 'deleted' THEN now() END AS deleted_at,
    CASE
        WHEN request.apply_rules
            THEN diamond_retail_cents(incoming.supplier_price_cents, pr.markup_ratio)
        ELSE supplied.retail_price_cents
    END AS retail_price_cents,
    CASE
        WHEN request.apply_rules THEN pr.markup_ratio ELSE supplied.markup_ratio
    END AS markup_ratio,
    CASE WHEN request.apply_rules THEN pr.rating ELSE supplied.rating END AS pricing_rating,
    CASE
        WHEN request.apply_rules THEN coalesce(rr.rating, pr.rating) ELSE supplied.rating
    END AS rating
FROM jsonb_array_elements(:diamonds::JSONB) AS item (value)  -- noqa: RF02
CROSS JOIN request
CROSS JOIN
    LATERAL jsonb_to_record(item.value)
        AS incoming (
            supplier TEXT,
            supplier_stone_id TEXT,
            offer_id TEXT,
            shape TEXT,
            carats NUMERIC,
            color TEXT,
            clarity TEXT,
            cut TEXT,
            polish TEXT,
            symmetry TEXT,
            fluorescence TEXT,
            lab_grown BOOLEAN,
            treated BOOLEAN,
            supplier_price_cents BIGINT,
            price_per_carat_cents BIGINT,
            availability TEXT,
            raw_availability TEXT,
            image_url TEXT,
            video_url TEXT,
            certificate_lab TEXT,
            certificate_number TEXT,
            certificate_pdf_url TEXT,
            measurements JSONB,
            attributes JSONB,
            supplier_name TEXT,
            supplier_legal_name TEXT,
            status TEXT,
            source_updated_at TIMESTAMPTZ,
            fancy_color TEXT,
            fancy_intensity TEXT,
            fancy_overtone TEXT,
            fluorescence_intensity TEXT,
            ratio NUMERIC,
            table_pct NUMERIC,
            depth_pct NUMERIC,
            crown_angle NUMERIC,
            crown_height NUMERIC,
            pavilion_angle NUMERIC,
            pavilion_depth NUMERIC,
            length_mm NUMERIC,
            width_mm NUMERIC,
            depth_mm NUMERIC,
            girdle TEXT,
            culet_size TEXT,
            brown TEXT,
            green TEXT,
            milky TEXT,
            eye_clean BOOLEAN,
            meta_images JSONB
        )
CROSS JOIN
    LATERAL jsonb_to_record(item.value)
        AS supplied (retail_price_cents BIGINT, markup_ratio NUMERIC, rating INTEGER)
LEFT JOIN LATERAL pricing_rule_for(
    incoming.carats,
    incoming.shape,
    incoming.lab_grown,
    incoming.supplier,
    incoming.supplier_price_cents,
    incoming.fancy_color IS NOT NULL
) AS pr ON request.apply_rules
LEFT JOIN LATERAL rating_rule_for(
    incoming.supplier, incoming.shape, incoming.color, incoming.clarity, incoming.cut,
    incoming.polish, incoming.symmetry, incoming.fluorescence, incoming.certificate_lab,
    incoming.girdle, incoming.culet_size, incoming.lab_grown, incoming.carats,
    incoming.supplier_price_cents, incoming.table_pct, incoming.depth_pct,
    incoming.crown_angle, incoming.crown_height, incoming.pavilion_angle,
    incoming.pavilion_depth, incoming.ratio
) AS rr ON request.apply_rules
ON CONFLICT (supplier, supplier_stone_id) DO UPDATE
    SET
        offer_id = excluded.offer_id,
        shape = excluded.shape,
        carats = excluded.carats,
        color = excluded.color,
        clarity = excluded.clarity,
        cut = excluded.cut,
        polish = excluded.polish,
        symmetry = excluded.symmetry,
        fluorescence = excluded.fluorescence,
        lab_grown = excluded.lab_grown,
        treated = excluded.treated,
        supplier_price_cents = excluded.supplier_price_cents,
        price_per_carat_cents = excluded.price_per_carat_cents,
        retail_price_cents = excluded.retail_price_cents,
        markup_ratio = excluded.markup_ratio,
        rating = excluded.rating,
        pricing_rating = excluded.pricing_rating,
        -- A library hold (on_hold with a hold_id) survives unless the stone is gone.
        availability = CASE
            WHEN
                d.availability = 'on_hold'
                AND d.hold_id IS NOT NULL
                AND excluded.availability NOT IN ('sold', 'unavailable')
                THEN d.availability
            ELSE excluded.availability
        END,
        hold_id = CASE
            WHEN excluded.availability IN ('sold', 'unavailable') THEN NULL
            ELSE d.hold_id
        END,
        raw_availability = excluded.raw_availability,
        image_url = excluded.image_url,
        video_url = excluded.video_url,
        certificate_lab = excluded.certificate_lab,
        certificate_number = excluded.certificate_number,
        certificate_pdf_url = excluded.certificate_pdf_url,
        measurements = excluded.measurements,
        attributes = excluded.attributes,
        supplier_name = excluded.supplier_name,
        supplier_legal_name = excluded.supplier_legal_name,
        status = excluded.status,
        -- 'active' revives a soft-deleted diamond; a repeated 'deleted' keeps the first date.
        deleted_at = CASE
            WHEN excluded.status = 'active' THEN NULL
            ELSE coalesce(d.deleted_at, now())
        END,
        source_updated_at = excluded.source_updated_at,
        fancy_color = excluded.fancy_color,
        fancy_intensity = excluded.fancy_intensity,
        fancy_overtone = excluded.fancy_overtone,
        fluorescence_intensity = excluded.fluorescence_intensity,
        ratio = excluded.ratio,
        table_pct = excluded.table_pct,
        depth_pct = excluded.depth_pct,
        crown_angle = excluded.crown_angle,
        crown_height = excluded.crown_height,
        pavilion_angle = excluded.pavilion_angle,
        pavilion_depth = excluded.pavilion_depth,
        length_mm = excluded.length_mm,
        width_mm = excluded.width_mm,
        depth_mm = excluded.depth_mm,
        girdle = excluded.girdle,
        culet_size = excluded.culet_size,
        brown = excluded.brown,
        green = excluded.green,
        milky = excluded.milky,
        eye_clean = excluded.eye_clean,
        meta_images = excluded.meta_images,
        updated_at = now();

-- name: update_diamond_availability(id, availability, hold_id)!
-- Set a live diamond's availability and hold id unconditionally.
-- role: writer
UPDATE diamonds
SET availability = :availability, hold_id = :hold_id, updated_at = now()
WHERE id = :id AND status = 'active';

-- name: compare_and_set_diamond_availability(id, availability, hold_id, expected)!
-- Set a live diamond's availability and hold id only if its availability is still
-- :expected. The row lock makes concurrent callers queue; each re-checks the
-- condition on the committed row, so of N holders of an available diamond one wins.
-- role: writer
UPDATE diamonds
SET availability = :availability, hold_id = :hold_id, updated_at = now()
WHERE id = :id AND status = 'active' AND availability = :expected;

-- name: get_diamond_by_supplier_key(supplier, supplier_stone_id)^
-- Fetch a diamond by its supplier key, soft-deleted or not: what an upsert stored.
-- role: reader
-- record: Diamond
SELECT *
FROM diamonds
WHERE supplier = :supplier AND supplier_stone_id = :supplier_stone_id;

-- name: soft_delete_diamond(id)!
-- Soft-delete a live diamond (status 'deleted', deleted_at set); a deleted or
-- unknown one is left as it is, so repeating the call changes nothing.
-- role: writer
UPDATE diamonds
SET status = 'deleted', deleted_at = now(), updated_at = now()
WHERE id = :id AND status = 'active';

-- name: search_diamonds_base()
-- The live diamonds every search starts from. Never run alone: diamond_db/search.py
-- wraps it as `FROM (...) AS d` and adds the WHERE, ORDER BY and LIMIT of its
-- reviewed catalogue of predicates and sort keys (see render_search there).
-- role: reader
-- record: Diamond
SELECT *
FROM diamonds
WHERE status = 'active';
