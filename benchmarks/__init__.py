"""diamond_db's performance harness: `python -m benchmarks [--rows N] [--quick]`.

Builds (or reuses) a database of N synthetic diamonds through the library's
own seeding path, then measures the platform's hot paths against baselines in
the same run on the same database: search, point lookups, raw ingest,
consolidation claims, diamond upserts, and the process's peak memory. Every
scenario alternates its contenders after a warm-up and reports medians, p95s
and the median of paired ratios; the issue's targets are reported as met or
missed, never asserted. Results: a table on the terminal and
benchmarks/results/<time>-<rows>.json (+ .md).
"""
