-- 0007 search indexes: the sorts and filters of issue 13's search on the grading columns (0005).
--
-- What: four partial indexes on live diamonds, (ratio, id), (table_pct, id),
-- (depth_pct, id) and (fancy_color, id), each serving its sort in both directions
-- (NULLs last, keyset cursors) and its range or list filter (fancy_colors,
-- fancy_color=True); statistics on the brown/green/milky tints as no_bgm reads them
-- (no write cost), then ANALYZE.
-- Why: issue 13. certificate_lab and fluorescence_intensity sorts and the other new
-- filters have no index, by choice: see the search index list in sql/bootstrap.sql.
-- Write cost: batch upserts of 1,000 (new stones; existing ones repriced), measured by
-- tests/measure_search_indexes.py on 200,000 diamonds, each index between two runs
-- without it (rows/s, new stones then repriced ones). On the shared 2-core machine of
-- this measurement (load average 9-12) runs scattered by +-15%, more than one index
-- costs: ratio 863 -> 720 (-17%), 692 -> 741 (+7%); table_pct 1,015 -> 1,171 (+16%),
-- 904 -> 888 (-2%); depth_pct 783 -> 540 (-31%), 651 -> 545 (-16%); fancy_color
-- 731 -> 509 (-30%), 741 -> 435 (-41%); all four 895 -> 878 (-2%), 848 -> 731
-- (-14%). The eleven search indexes before these cost ~40% of batch rows/s on 1M
-- diamonds (sql/bootstrap.sql), ~4% each: expect about that per index, ~15% for the
-- four; rerun the script on a quiet machine for a firmer figure.
-- Locks: each index is built CONCURRENTLY (SHARE UPDATE EXCLUSIVE: reads and
-- writes go on): 2.0-2.9 s each on 200,000 diamonds (70,000-100,000 rows/s, 8 MB
-- each), so about 15 s each on 1,000,000; CREATE STATISTICS is a catalog change,
-- ANALYZE reads a sample.
-- Transaction: none (CREATE INDEX CONCURRENTLY); every statement re-runnable
-- (IF NOT EXISTS; an INVALID index left by a failed build is dropped by the
-- runner before it runs again).
-- transaction: none
-- squawk-disable-assume-in-transaction
--

-- sort_by ratio; also ratio_min/ratio_max ranges.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds 70000
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_ratio_idx
ON diamonds (ratio, id) WHERE status = 'active';

-- sort_by table_pct; also table_min/table_max ranges.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds 70000
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_table_pct_idx
ON diamonds (table_pct, id) WHERE status = 'active';

-- sort_by depth_pct; also depth_pct_min/depth_pct_max ranges.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds 70000
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_depth_pct_idx
ON diamonds (depth_pct, id) WHERE status = 'active';

-- sort_by fancy_color; also fancy_colors and fancy_color=True. Not partial on
-- fancy_color IS NOT NULL: the sort's NULL range (98% of stones) must be read
-- in (fancy_color, id) order too, or every page sorts all of them.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on).
-- cost: diamonds 70000
CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_search_fancy_color_idx
ON diamonds (fancy_color, id) WHERE status = 'active';

-- no_bgm: statistics on each tint as the filter reads it. Without them the planner
-- guesses 2% per tint (0.0008% for all three) and reads a whole no_bgm search by a
-- sequential scan and a sort; with them it knows ~90% match and reads the page from
-- the sort's index (tests/test_search.py, Q1 with the new filters). Costs no write.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds, a catalog change only (milliseconds).
-- cost: none
CREATE STATISTICS IF NOT EXISTS diamonds_tints_stats
ON (coalesce(lower(brown), '')), (coalesce(lower(green), '')), (coalesce(lower(milky), ''))
FROM diamonds;

-- Compute them now rather than at autovacuum's next ANALYZE of diamonds.
-- locks: SHARE UPDATE EXCLUSIVE on diamonds (reads and writes go on); a sample of rows.
-- cost: none
ANALYZE diamonds;
