-- 0007 search indexes: the sorts and filters of issue 13's search on the grading columns (0005).
--
-- What: four partial indexes on live diamonds: (ratio, id), (table_pct, id) and
-- (depth_pct, id), each serving its sort in both directions (NULLs last, keyset
-- cursors) and its range filter; (fancy_color, id) over the stones that have a
-- fancy colour only (about 2%), serving sort_by fancy_color, fancy_colors and
-- fancy_color=True.
-- Why: issue 13. The other new sorts (certificate_lab, fluorescence_intensity)
-- and filters get no index, by measurement: see the search index list in
-- sql/bootstrap.sql.
-- Write cost (measured, tests/measure_search_indexes.py, 200,000 diamonds, 2 cores,
-- batches of 1,000): WRITE_COST
-- Locks: each index is built CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and
-- writes go on): BUILD_TIMES
-- Transaction: none (CREATE INDEX CONCURRENTLY); every statement re-runnable
-- (IF NOT EXISTS; an INVALID index left by a failed build is dropped by the
-- runner before it runs again).
-- transaction: none
-- squawk-disable-assume-in-transaction
--

-- sort_by ratio; also ratio_min/ratio_max ranges.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds RATE_RATIO
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_ratio_idx
ON diamonds (ratio, id) WHERE status = 'active';

-- sort_by table_pct; also table_min/table_max ranges.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds RATE_TABLE
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_table_pct_idx
ON diamonds (table_pct, id) WHERE status = 'active';

-- sort_by depth_pct; also depth_pct_min/depth_pct_max ranges.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds RATE_DEPTH
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_depth_pct_idx
ON diamonds (depth_pct, id) WHERE status = 'active';

-- sort_by fancy_color (its non-NULL range; the NULLs are read by id), fancy_colors,
-- fancy_color=True: only the stones with a fancy colour, so it stays small.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds RATE_FANCY
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_fancy_color_idx
ON diamonds (fancy_color, id) WHERE status = 'active' AND fancy_color IS NOT NULL;
