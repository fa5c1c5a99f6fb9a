-- 0005 grading columns: typed grading data on diamonds (issue 13, "Grading data").
--
-- What: adds 21 nullable columns to diamonds, none with a default: fancy_color,
-- fancy_intensity, fancy_overtone, fluorescence_intensity (text), ratio
-- NUMERIC(5,3), table_pct, depth_pct, crown_angle, crown_height, pavilion_angle,
-- pavilion_depth NUMERIC(5,2), length_mm, width_mm, depth_mm NUMERIC(6,2),
-- girdle, culet_size, brown, green, milky (text), eye_clean BOOLEAN and
-- meta_images JSONB (a list of {url, display_index}); and, NOT VALID, one CHECK
-- per physical range: percentages (table, depth, crown height, pavilion depth)
-- 0-100, angles 0-90, millimetres and the length/width ratio > 0, meta_images
-- a JSON array. 0006 fills the columns from the measurements/attributes JSON.
-- Why: the storefront filters and sorts on these values; inside the JSONB they
-- can be neither typed, checked nor indexed.
-- Locks: one ALTER TABLE, catalog changes only (no default, so no rewrite; NOT
-- VALID, so no scan). It takes ACCESS EXCLUSIVE on diamonds until commit:
-- measured 15-28 ms for the whole file on 200,000 diamonds (2-core machine
-- shared with other jobs); it does not grow with the table. The runner then
-- validates the eleven constraints, each in its own transaction under SHARE
-- UPDATE EXCLUSIVE (reads and writes go on), one sequential scan each: 0.4-0.6 s
-- each on 200,000 diamonds (~7 s for all eleven), so ~2-3 s each at 1,000,000.
-- Writes that bypass the library meet the CHECKs at once (NOT VALID constraints
-- apply to new rows); 0006 writes only values within them.
-- Transaction: runs inside one transaction (all or nothing).
--

ALTER TABLE diamonds
ADD COLUMN fancy_color TEXT,
ADD COLUMN fancy_intensity TEXT,
ADD COLUMN fancy_overtone TEXT,
ADD COLUMN fluorescence_intensity TEXT,
ADD COLUMN ratio NUMERIC(5, 3),
ADD COLUMN table_pct NUMERIC(5, 2),
ADD COLUMN depth_pct NUMERIC(5, 2),
ADD COLUMN crown_angle NUMERIC(5, 2),
ADD COLUMN crown_height NUMERIC(5, 2),
ADD COLUMN pavilion_angle NUMERIC(5, 2),
ADD COLUMN pavilion_depth NUMERIC(5, 2),
ADD COLUMN length_mm NUMERIC(6, 2),
ADD COLUMN width_mm NUMERIC(6, 2),
ADD COLUMN depth_mm NUMERIC(6, 2),
ADD COLUMN girdle TEXT,
ADD COLUMN culet_size TEXT,
ADD COLUMN brown TEXT,
ADD COLUMN green TEXT,
ADD COLUMN milky TEXT,
ADD COLUMN eye_clean BOOLEAN,
ADD COLUMN meta_images JSONB,
ADD CONSTRAINT diamonds_ratio_check CHECK (ratio > 0) NOT VALID,
ADD CONSTRAINT diamonds_table_pct_check CHECK (table_pct BETWEEN 0 AND 100) NOT VALID,
ADD CONSTRAINT diamonds_depth_pct_check CHECK (depth_pct BETWEEN 0 AND 100) NOT VALID,
ADD CONSTRAINT diamonds_crown_angle_check CHECK (crown_angle BETWEEN 0 AND 90) NOT VALID,
ADD CONSTRAINT diamonds_crown_height_check CHECK (crown_height BETWEEN 0 AND 100) NOT VALID,
ADD CONSTRAINT diamonds_pavilion_angle_check CHECK (pavilion_angle BETWEEN 0 AND 90) NOT VALID,
ADD CONSTRAINT diamonds_pavilion_depth_check CHECK (
    pavilion_depth BETWEEN 0 AND 100
) NOT VALID,
ADD CONSTRAINT diamonds_length_mm_check CHECK (length_mm > 0) NOT VALID,
ADD CONSTRAINT diamonds_width_mm_check CHECK (width_mm > 0) NOT VALID,
ADD CONSTRAINT diamonds_depth_mm_check CHECK (depth_mm > 0) NOT VALID,
ADD CONSTRAINT diamonds_meta_images_check CHECK (
    jsonb_typeof(meta_images) = 'array'
) NOT VALID;
