-- 0006 grading backfill: the typed grading columns of 0005, filled from the JSON.
--
-- What: for every diamond, fills the grading columns that are still NULL from
-- the keys of its measurements / attributes JSON (a key is looked up in
-- measurements first, then in attributes): table -> table_pct,
-- depthPercentage -> depth_pct, length / width / depth -> length_mm /
-- width_mm / depth_mm, crownAngle, crownHeight, pavAngle, pavDepth ->
-- crown_angle, crown_height, pavilion_angle, pavilion_depth, girdle, culetSize
-- (else culet, the key the seed's feed uses) -> culet_size, eyeClean ->
-- eye_clean (true/yes/1/t/y or false/no/0/f/n/none, any case, or a JSON
-- boolean), brown, green, milky; and ratio = length / width when both are
-- known. A number is a JSON number or a numeric string ("57.5"); a value that
-- is none of these ("abc", "55%", a list), or out of the column's range once
-- rounded as the column stores it (table 120, a zero width), stays NULL and is
-- counted; an empty string or JSON null counts as absent. Nothing aborts on a
-- value. Only NULL columns are written, so re-running changes nothing (rows
-- with nothing to fill are not updated at all).
-- The report: NOTICE lines (the runner logs them and the CLI prints them) with
-- the rows scanned and updated, and per column how many values were malformed
-- or out of range. A row that violates ANOTHER constraint still NOT VALID (an
-- adopted TypeScript-era database, say) cannot be updated before it is fixed:
-- it is skipped, counted in the report, and filled by re-running this file
-- (`diamond-db migrate` reports that constraint and exits 1 until then).
-- Why: issue 13 ("Grading data"): the existing diamonds get the typed values.
-- Locks: batches of 2,000 diamonds in keyset order (by id), each UPDATE in its
-- own transaction, committed at once: ROW EXCLUSIVE on diamonds (reads and
-- writes go on) and row locks on at most 2,000 rows, for one batch's time; no
-- lock is held between batches.
-- Measured on 200,000 diamonds (2-core machine shared with other jobs, load
-- ~9): 962-983 rows/s (208 s; so ~17 min for 1,000,000 diamonds, all rows
-- filled), the runner's validation of 0005's eleven CHECKs ~27 s after it.
-- Meanwhile a writer updating random diamonds every 20 ms: median 9.0 ms (8.1
-- before), p99 30 ms, worst 1.0 s (a row of the batch being written waits for
-- its commit; with 5,000-row batches the worst was 3.2 s); a search page:
-- median 85 ms (74 before), worst 0.23 s. Every row gets a new version (the
-- table's indexes are written too): VACUUM reclaims the old ones as usual.
-- Transaction: none. The DO block commits after every batch, which PostgreSQL
-- allows only outside a transaction block: the runner sends each statement of
-- a `transaction: none` file alone on an autocommit connection (simple query
-- protocol). Re-runnable after a failure or a cancelled lock wait.
-- transaction: none
-- squawk-disable-assume-in-transaction
--

-- The whole backfill, batch by batch; the report comes as NOTICE lines.
-- locks: ROW EXCLUSIVE on diamonds and row locks on one batch (2,000 rows) at a
-- time, each batch committed at once; no lock is held between batches.
-- cost: diamonds 960
DO $backfill$
DECLARE
    batch_size CONSTANT INTEGER := 2000;
    started CONSTANT TIMESTAMPTZ := clock_timestamp();
    last_id UUID;
    batch_ids UUID[];
    chunk_start INTEGER;
    chunk_size INTEGER;
    chunk_updated BIGINT;
    chunk_malformed JSONB;
    scanned BIGINT := 0;
    updated BIGINT := 0;
    skipped BIGINT := 0;
    malformed JSONB := '{}';
    seconds NUMERIC;
    item RECORD;
BEGIN
    LOOP
        -- The next batch of ids in keyset order (the primary key's index).
        IF last_id IS NULL THEN
            SELECT array_agg(next_ids.id ORDER BY next_ids.id) INTO batch_ids
            FROM (
                SELECT diamonds.id FROM diamonds
                ORDER BY diamonds.id LIMIT batch_size
            ) AS next_ids;
        ELSE
            SELECT array_agg(next_ids.id ORDER BY next_ids.id) INTO batch_ids
            FROM (
                SELECT diamonds.id FROM diamonds
                WHERE diamonds.id > last_id
                ORDER BY diamonds.id LIMIT batch_size
            ) AS next_ids;
        END IF;
        EXIT WHEN batch_ids IS NULL;
        last_id := batch_ids[cardinality(batch_ids)];
        scanned := scanned + cardinality(batch_ids);
        -- The batch in one statement; should a row violate another constraint,
        -- the rest of the batch goes one row at a time and that row is skipped.
        chunk_start := 1;
        chunk_size := cardinality(batch_ids);
        WHILE chunk_start <= cardinality(batch_ids) LOOP
            BEGIN
                WITH candidates AS (
                    SELECT
                        d.id,
                        spec.column_name,
                        spec.kind,
                        spec.low,
                        spec.high,
                        spec.places,
                        d.length_mm AS stored_length,
                        d.width_mm AS stored_width,
                        coalesce(
                            d.measurements -> spec.json_key,
                            d.attributes -> spec.json_key,
                            d.measurements -> spec.other_key,
                            d.attributes -> spec.other_key
                        ) AS raw_value
                    FROM diamonds AS d
                    CROSS JOIN LATERAL (
                        VALUES
                        ('table_pct', 'number', 'table', NULL, 0, 100, 2, d.table_pct IS NULL),
                        (
                            'depth_pct', 'number', 'depthPercentage', NULL, 0, 100, 2,
                            d.depth_pct IS NULL
                        ),
                        ('length_mm', 'number', 'length', NULL, 0.01, 9999.99, 2, d.length_mm IS NULL),
                        ('width_mm', 'number', 'width', NULL, 0.01, 9999.99, 2, d.width_mm IS NULL),
                        ('depth_mm', 'number', 'depth', NULL, 0.01, 9999.99, 2, d.depth_mm IS NULL),
                        (
                            'crown_angle', 'number', 'crownAngle', NULL, 0, 90, 2,
                            d.crown_angle IS NULL
                        ),
                        (
                            'crown_height', 'number', 'crownHeight', NULL, 0, 100, 2,
                            d.crown_height IS NULL
                        ),
                        (
                            'pavilion_angle', 'number', 'pavAngle', NULL, 0, 90, 2,
                            d.pavilion_angle IS NULL
                        ),
                        (
                            'pavilion_depth', 'number', 'pavDepth', NULL, 0, 100, 2,
                            d.pavilion_depth IS NULL
                        ),
                        ('girdle', 'text', 'girdle', NULL, NULL, NULL, NULL, d.girdle IS NULL),
                        (
                            'culet_size', 'text', 'culetSize', 'culet', NULL, NULL, NULL,
                            d.culet_size IS NULL
                        ),
                        (
                            'eye_clean', 'boolean', 'eyeClean', NULL, NULL, NULL, NULL,
                            d.eye_clean IS NULL
                        ),
                        ('brown', 'text', 'brown', NULL, NULL, NULL, NULL, d.brown IS NULL),
                        ('green', 'text', 'green', NULL, NULL, NULL, NULL, d.green IS NULL),
                        ('milky', 'text', 'milky', NULL, NULL, NULL, NULL, d.milky IS NULL)
                    ) AS spec (
                        column_name, kind, json_key, other_key, low, high, places, unfilled
                    )
                    WHERE
                        d.id = ANY(batch_ids[chunk_start:chunk_start + chunk_size - 1])
                        AND spec.unfilled
                ),

                -- Absent values dropped; the rest read by kind (NULL: malformed).
                present AS (
                    SELECT
                        candidates.*,
                        jsonb_typeof(candidates.raw_value) AS json_type,
                        btrim(candidates.raw_value #>> '{}') AS raw_text
                    FROM candidates
                    WHERE
                        jsonb_typeof(candidates.raw_value) <> 'null'
                        AND (
                            jsonb_typeof(candidates.raw_value) <> 'string'
                            OR btrim(candidates.raw_value #>> '{}') <> ''
                        )
                ),

                numbers AS (
                    SELECT
                        present.*,
                        round(
                            CASE
                                WHEN present.json_type = 'number'
                                    THEN present.raw_value::NUMERIC
                                WHEN
                                    present.json_type = 'string'
                                    AND present.raw_text ~ '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)$'
                                    THEN present.raw_text::NUMERIC
                            END,
                            present.places
                        ) AS number_value
                    FROM present
                ),

                parsed AS (
                    SELECT
                        numbers.id,
                        numbers.column_name,
                        CASE
                            WHEN numbers.number_value BETWEEN numbers.low AND numbers.high
                                THEN numbers.number_value
                        END AS number_value,
                        CASE
                            WHEN numbers.kind <> 'boolean' THEN NULL
                            WHEN numbers.json_type = 'boolean' THEN numbers.raw_value::BOOLEAN
                            WHEN numbers.json_type NOT IN ('string', 'number') THEN NULL
                            WHEN lower(numbers.raw_text) IN ('true', 'yes', '1', 't', 'y') THEN TRUE
                            WHEN
                                lower(numbers.raw_text) IN ('false', 'no', '0', 'f', 'n', 'none')
                                THEN FALSE
                        END AS boolean_value,
                        CASE
                            WHEN numbers.kind = 'text' AND numbers.json_type = 'string'
                                THEN numbers.raw_text
                        END AS text_value,
                        numbers.kind,
                        numbers.stored_length,
                        numbers.stored_width
                    FROM numbers
                ),

                -- One row per diamond again, each column's new value (or NULL).
                filled AS (
                    SELECT
                        parsed.id,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'table_pct'
                        ) AS table_pct,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'depth_pct'
                        ) AS depth_pct,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'length_mm'
                        ) AS length_mm,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'width_mm'
                        ) AS width_mm,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'depth_mm'
                        ) AS depth_mm,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'crown_angle'
                        ) AS crown_angle,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'crown_height'
                        ) AS crown_height,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'pavilion_angle'
                        ) AS pavilion_angle,
                        max(parsed.number_value) FILTER (
                            WHERE parsed.column_name = 'pavilion_depth'
                        ) AS pavilion_depth,
                        max(parsed.text_value) FILTER (
                            WHERE parsed.column_name = 'girdle'
                        ) AS girdle,
                        max(parsed.text_value) FILTER (
                            WHERE parsed.column_name = 'culet_size'
                        ) AS culet_size,
                        bool_or(parsed.boolean_value) FILTER (
                            WHERE parsed.column_name = 'eye_clean'
                        ) AS eye_clean,
                        max(parsed.text_value) FILTER (
                            WHERE parsed.column_name = 'brown'
                        ) AS brown,
                        max(parsed.text_value) FILTER (
                            WHERE parsed.column_name = 'green'
                        ) AS green,
                        max(parsed.text_value) FILTER (
                            WHERE parsed.column_name = 'milky'
                        ) AS milky,
                        max(parsed.stored_length) AS stored_length,
                        max(parsed.stored_width) AS stored_width
                    FROM parsed
                    GROUP BY parsed.id
                ),

                -- Plus ratio: length / width of the values the row ends with.
                incoming AS (
                    SELECT
                        filled.*,
                        round(
                            coalesce(filled.stored_length, filled.length_mm)
                            / nullif(coalesce(filled.stored_width, filled.width_mm), 0),
                            3
                        ) AS ratio
                    FROM filled
                ),

                changed AS (
                    UPDATE diamonds AS d
                    SET
                        table_pct = coalesce(d.table_pct, incoming.table_pct),
                        depth_pct = coalesce(d.depth_pct, incoming.depth_pct),
                        length_mm = coalesce(d.length_mm, incoming.length_mm),
                        width_mm = coalesce(d.width_mm, incoming.width_mm),
                        depth_mm = coalesce(d.depth_mm, incoming.depth_mm),
                        crown_angle = coalesce(d.crown_angle, incoming.crown_angle),
                        crown_height = coalesce(d.crown_height, incoming.crown_height),
                        pavilion_angle = coalesce(d.pavilion_angle, incoming.pavilion_angle),
                        pavilion_depth = coalesce(d.pavilion_depth, incoming.pavilion_depth),
                        girdle = coalesce(d.girdle, incoming.girdle),
                        culet_size = coalesce(d.culet_size, incoming.culet_size),
                        eye_clean = coalesce(d.eye_clean, incoming.eye_clean),
                        brown = coalesce(d.brown, incoming.brown),
                        green = coalesce(d.green, incoming.green),
                        milky = coalesce(d.milky, incoming.milky),
                        ratio = coalesce(
                            d.ratio,
                            CASE WHEN incoming.ratio BETWEEN 0.001 AND 99.999 THEN incoming.ratio END
                        )
                    FROM incoming
                    WHERE
                        d.id = incoming.id
                        AND (
                            (d.table_pct IS NULL AND incoming.table_pct IS NOT NULL)
                            OR (d.depth_pct IS NULL AND incoming.depth_pct IS NOT NULL)
                            OR (d.length_mm IS NULL AND incoming.length_mm IS NOT NULL)
                            OR (d.width_mm IS NULL AND incoming.width_mm IS NOT NULL)
                            OR (d.depth_mm IS NULL AND incoming.depth_mm IS NOT NULL)
                            OR (d.crown_angle IS NULL AND incoming.crown_angle IS NOT NULL)
                            OR (d.crown_height IS NULL AND incoming.crown_height IS NOT NULL)
                            OR (d.pavilion_angle IS NULL AND incoming.pavilion_angle IS NOT NULL)
                            OR (d.pavilion_depth IS NULL AND incoming.pavilion_depth IS NOT NULL)
                            OR (d.girdle IS NULL AND incoming.girdle IS NOT NULL)
                            OR (d.culet_size IS NULL AND incoming.culet_size IS NOT NULL)
                            OR (d.eye_clean IS NULL AND incoming.eye_clean IS NOT NULL)
                            OR (d.brown IS NULL AND incoming.brown IS NOT NULL)
                            OR (d.green IS NULL AND incoming.green IS NOT NULL)
                            OR (d.milky IS NULL AND incoming.milky IS NOT NULL)
                            OR (d.ratio IS NULL AND incoming.ratio BETWEEN 0.001 AND 99.999)
                        )
                    RETURNING d.id
                ),

                bad AS (
                    SELECT
                        parsed.column_name,
                        count(*) AS n
                    FROM parsed
                    WHERE
                        (parsed.kind = 'number' AND parsed.number_value IS NULL)
                        OR (parsed.kind = 'boolean' AND parsed.boolean_value IS NULL)
                        OR (parsed.kind = 'text' AND parsed.text_value IS NULL)
                    GROUP BY parsed.column_name
                )

                SELECT
                    (SELECT count(*) FROM changed),
                    (SELECT coalesce(jsonb_object_agg(bad.column_name, bad.n), '{}') FROM bad)
                INTO chunk_updated, chunk_malformed;
                updated := updated + chunk_updated;
                SELECT coalesce(jsonb_object_agg(
                    totals.key,
                    coalesce((malformed ->> totals.key)::BIGINT, 0)
                    + coalesce((chunk_malformed ->> totals.key)::BIGINT, 0)
                ), '{}')
                INTO malformed
                FROM jsonb_object_keys(malformed || chunk_malformed) AS totals (key);
                chunk_start := chunk_start + chunk_size;
            EXCEPTION WHEN integrity_constraint_violation THEN
                IF chunk_size = 1 THEN
                    skipped := skipped + 1;
                    chunk_start := chunk_start + 1;
                ELSE
                    chunk_size := 1;
                END IF;
            END;
        END LOOP;
        COMMIT;
    END LOOP;
    seconds := round(extract(EPOCH FROM clock_timestamp() - started)::NUMERIC, 2);
    RAISE NOTICE '0006 backfill: % diamonds scanned, % updated in % s (% rows/s)',
        scanned, updated, seconds, round(scanned / greatest(seconds, 0.01));
    FOR item IN SELECT key, value FROM jsonb_each_text(malformed) ORDER BY key LOOP
        RAISE NOTICE '0006 backfill: % malformed or out-of-range value(s) for % (left NULL)',
            item.value, item.key;
    END LOOP;
    IF skipped > 0 THEN
        RAISE NOTICE '0006 backfill: % diamond(s) skipped: they violate another constraint '
            'not yet validated; fix them and run `diamond-db migrate` again', skipped;
    END IF;
END
$backfill$;
