"""The benchmark harness's arithmetic and baselines, without a database (milliseconds).

The harness itself runs in CI as `python -m benchmarks --quick`; these check
what that run cannot show: the A B A B order, paired ratios, percentiles, the
target verdicts and the naive baseline's missing tie-breaker.
"""

from __future__ import annotations

import pytest

from benchmarks import baselines
from benchmarks.stats import Case, Contender, Measured, alternate, percentile
from benchmarks.targets import evaluate


async def test_alternate_reverses_the_order_every_round_and_drops_the_warmup() -> None:
    calls: list[str] = []

    def contender(name: str, reported: float) -> Contender:
        async def setup(r: int) -> None:
            calls.append(f"setup {name}{r}")

        async def run(r: int) -> float:
            calls.append(f"{name}{r}")
            return reported

        async def check(r: int) -> None:
            calls.append(f"check {name}{r}")

        return Contender(name, run, setup, check, items=2)

    case = await alternate("s", "c", [contender("A", 1.0), contender("B", 3.0)], rounds=2)

    timed = [c for c in calls if " " not in c]
    assert timed == ["A0", "B0", "B1", "A1", "A2", "B2"]
    assert calls[:3] == ["setup A0", "A0", "check A0"]
    assert case.results["A"].samples == [1.0, 1.0]  # the warm-up round is not kept
    assert case.ratio("A", "B") == pytest.approx(1 / 3)
    assert case.ratios == {"A/B": pytest.approx(1 / 3)}
    assert case.results["B"].rate == pytest.approx(2 / 3)


def test_ratios_are_paired_per_item_and_percentiles_interpolate() -> None:
    a = Measured("a", [1.0, 10.0, 2.0], items=1)
    b = Measured("b", [2.0, 10.0, 8.0], items=2)  # per item: 1, 5, 4
    case = Case("s", "c", {"a": a, "b": b})
    assert case.ratio("a", "b") == pytest.approx(1.0)  # median of 1/1, 10/5, 2/4
    assert percentile([5.0], 95) == 5.0
    assert percentile([float(i) for i in range(1, 101)], 95) == pytest.approx(95.05)
    assert a.median == 2.0


def _ingest_case(bulk: float, copy: float, single: float, reingest: float) -> Case:
    times = {"bulk": bulk, "reingest": reingest, "single": single, "single10": single, "copy": copy}
    case = Case("ingest", "raw", {n: Measured(n, [t], items=100) for n, t in times.items()})
    for a, b in (("bulk", "copy"), ("single", "bulk"), ("single10", "bulk"), ("reingest", "bulk")):
        case.ratio(a, b)
    return case


def test_targets_say_met_or_missed() -> None:
    met = {t.name: t.met for t in evaluate([_ingest_case(1.1, 1.0, 8.0, 0.5)])}
    assert met == {
        "bulk ingest vs streaming COPY": True,  # 0.91x of COPY's rate
        "bulk ingest vs single-row path": True,
        "unchanged re-ingest": True,
    }
    missed = {t.name: t.met for t in evaluate([_ingest_case(2.0, 1.0, 4.0, 2.5)])}
    assert not any(missed.values())


def test_the_naive_search_has_no_tie_breaker() -> None:
    count, page = baselines.naive_search(
        {"shape": ["OVAL"], "carat_min": 1}, "supplier_price_cents", "asc"
    )
    count_sql, page_sql = count.as_string(None), page.as_string(None)
    assert count_sql.startswith("SELECT COUNT(*) FROM diamonds WHERE status = 'active' AND ")
    assert 'ORDER BY "supplier_price_cents" ASC LIMIT %(limit)s OFFSET %(offset)s' in page_sql
    assert "id" not in page_sql.split("ORDER BY")[1]
