"""The measuring core: contenders run A B A B ... after a warm-up, then median, p95 and ratios.

Every scenario hands `alternate` its contenders. Round r runs each of them
once, in the listed order on even rounds and in reverse on odd ones, so a
slow drift of the shared machine (another process, autovacuum, a cache
warming up) falls on every contender alike. The i-th samples of two
contenders come from the same round: their ratio is one paired comparison,
and the median of those ratios is the figure the targets use.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import memory

# The timed call gets the round number (for a contender that varies its input,
# such as the point lookups' ids) and returns what it measured if that is not
# its own wall time (the EXPLAIN floor returns the server's execution time).
Timed = Callable[[int], Awaitable[float | None]]
Untimed = Callable[[int], Awaitable[None]]


@dataclass
class Contender:
    """One way of doing the scenario's work.

    `setup` runs before every timed call and `check` after it, both untimed
    (e.g. emptying a table; verifying the outcome). `items` is how many rows or
    calls one timed call handles, for rates.
    """

    name: str
    run: Timed
    setup: Untimed | None = None
    check: Untimed | None = None
    items: int = 1


@dataclass
class Measured:
    """One contender's samples (seconds per timed call) and their summary."""

    name: str
    samples: list[float]
    items: int = 1
    peak_growth: int = 0  # bytes: the most RSS grew during one of its timed calls

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p95(self) -> float:
        return percentile(self.samples, 95)

    @property
    def rate(self) -> float:
        """Items per second at the median."""
        return self.items / self.median if self.median > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "p95_s": self.p95,
            "items_per_call": self.items,
            "items_per_s": self.rate,
            "samples_s": self.samples,
            "peak_rss_growth_bytes": self.peak_growth,
        }


@dataclass
class Case:
    """One measured situation of a scenario (e.g. "Q2 page 1") with its contenders and ratios.

    `ratios` maps "a/b" to the median of the paired ratios of a's and b's
    per-item times (below 1: a is faster).
    """

    scenario: str
    name: str
    results: dict[str, Measured]
    ratios: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    def ratio(self, a: str, b: str) -> float:
        """Median of the paired ratios a_i / b_i of per-item times; recorded under "a/b"."""
        value = paired_ratio(self.results[a], self.results[b])
        self.ratios[f"{a}/{b}"] = value
        return value

    def median(self, name: str) -> float:
        return self.results[name].median

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "case": self.name,
            "contenders": {name: m.to_json() for name, m in self.results.items()},
            "ratios": self.ratios,
            "info": self.info,
        }


def paired_ratio(a: Measured, b: Measured) -> float:
    """Median over rounds of a's per-item time divided by b's in the same round."""
    pairs = zip(a.samples, b.samples, strict=True)
    return statistics.median((x / a.items) / (y / b.items) for x, y in pairs if y > 0)


def percentile(samples: Sequence[float], pct: float) -> float:
    """The pct-th percentile, linearly interpolated (the one sample when there is one)."""
    if len(samples) == 1:
        return samples[0]
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[round(pct) - 1]


async def alternate(
    scenario: str,
    case: str,
    contenders: Sequence[Contender],
    *,
    rounds: int,
    warmup: int = 1,
) -> Case:
    """Run every contender once per round, alternating the order; keep the post-warm-up samples."""
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    growth = dict.fromkeys(samples, 0)
    for r in range(warmup + rounds):
        order = contenders if r % 2 == 0 else list(reversed(contenders))
        for contender in order:
            if contender.setup is not None:
                await contender.setup(r)
            memory.reset_peak()
            before = memory.current_rss()
            started = time.perf_counter()
            reported = await contender.run(r)
            elapsed = time.perf_counter() - started if reported is None else reported
            growth[contender.name] = max(growth[contender.name], memory.peak_rss() - before)
            if contender.check is not None:
                await contender.check(r)
            if r >= warmup:
                samples[contender.name].append(elapsed)
    results = {
        c.name: Measured(c.name, samples[c.name], c.items, growth[c.name]) for c in contenders
    }
    return Case(scenario, case, results)
