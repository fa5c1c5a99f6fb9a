"""How big each scenario is (full size, or --quick for CI), and what every scenario receives."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from diamond_db import Database

from .memory import PeakWindow
from .stats import Case


@dataclass(frozen=True)
class Plan:
    """Sizes and repetitions. Full size follows the issue; quick only checks the harness works."""

    rows: int = 1_000_000
    seed: int = 0
    quick: bool = False
    search_rounds: int = 10
    search_warmup: int = 2
    deep_page: int = 200
    lookups: int = 1_000
    lookup_warmup: int = 50
    ingest_rows: int = 20_000
    ingest_rounds: int = 3
    memory_sizes: tuple[int, ...] = (20_000, 100_000)
    throughput_clients: tuple[int, ...] = (1, 8, 32)
    throughput_seconds: float = 3.0
    throughput_rounds: int = 10
    consolidation_rows: int = 100_000
    consolidation_rounds: int = 2
    consolidators: tuple[int, ...] = (1, 2, 4)
    claim_batch: int = 1_000
    upsert_batch: int = 1_000
    upsert_singles: int = 1_000
    upsert_rounds: int = 3
    migration_baseline: float = 20.0  # seconds of searching before the migration starts
    dashboard_runs: int = 1_000
    dashboard_rounds: int = 20
    dashboard_warmup: int = 3
    feeds_rows: int = 300_000  # pending raw rows per feed (issue 13: 3 x 300,000 vs 1 x 300,000)
    feeds_rounds: int = 20
    jobs_rounds: int = 2  # each round re-prices every live diamond three times
    jobs_search_seconds: float = 180.0  # searching before, then during, the job (at most)

    @classmethod
    def quick_plan(cls, rows: int, seed: int) -> Plan:
        return cls(
            rows=rows,
            seed=seed,
            quick=True,
            search_rounds=3,
            search_warmup=1,
            lookups=200,
            lookup_warmup=10,
            ingest_rows=2_000,
            ingest_rounds=1,
            memory_sizes=(2_000, 5_000),
            throughput_seconds=1.0,
            throughput_rounds=1,
            consolidation_rows=5_000,
            consolidation_rounds=1,
            upsert_batch=1_000,
            upsert_singles=100,
            upsert_rounds=1,
            migration_baseline=2.0,
            dashboard_runs=200,
            dashboard_rounds=5,
            dashboard_warmup=1,
            feeds_rows=10_000,
            feeds_rounds=3,
            jobs_rounds=1,
            jobs_search_seconds=5.0,
        )

    def with_rounds(self, rounds: int) -> Plan:
        """The same plan with at most `rounds` measured rounds in every scenario."""
        names = ("search", "ingest", "consolidation", "upsert", "throughput", "jobs")
        capped = {f"{n}_rounds": min(getattr(self, f"{n}_rounds"), rounds) for n in names}
        return dataclasses.replace(self, **capped)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Bench:
    """What a scenario works with: the open library Database on the benchmark database."""

    db: Database
    url: str
    plan: Plan
    console: Console
    cases: list[Case] = field(default_factory=list)
    memory: list[PeakWindow] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def add(self, case: Case) -> Case:
        self.cases.append(case)
        return case
