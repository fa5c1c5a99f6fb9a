"""The cost curve: how the cost of each kind of work grows with the inventory.

With `--rows 100000,300000,1000000` every selected scenario runs at each size;
this module picks, per size, the median of: the six searches at page 1 (count
capped), the point lookup, a 1,000-row upsert_diamonds batch and the 20,000-row
raw ingest, and the growth factor from each size to the next. A search whose page-1
cost grows faster than log(n) (by more than GROWTH_SLACK) is named, with the
capped plan of the largest size to explain it.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from .report import curve_notes, curve_table, markdown_table
from .stats import Case, Measured

GROWTH_SLACK: Final = 1.25  # measured growth / log growth above this: "faster than log n"


def _work(cases: Sequence[Case]) -> dict[str, tuple[float, str | None]]:
    """(median seconds, plan) per kind of work measured in one size's cases."""
    work: dict[str, tuple[float, str | None]] = {}
    for case in cases:
        if case.scenario == "search" and case.info.get("kind") == "page1":
            name = f"{case.info['query']} p1 ({case.info['description']})"
            work[name] = (case.median("capped"), case.info.get("plan_capped"))
        elif case.scenario == "lookup":
            work["point lookup"] = (case.median("library"), None)
        elif case.scenario == "upsert":
            work[case.name] = (case.median("batch"), None)
        elif case.scenario == "ingest":
            work[f"{case.name} (bulk)"] = (case.median("bulk"), None)
    return work


def cost_curve(runs: Sequence[tuple[int, Sequence[Case]]]) -> dict[str, Any]:
    """The curve over the sizes measured: medians, growth per step, fast growers named."""
    sizes = [rows for rows, _ in runs]
    measured = [_work(cases) for _, cases in runs]
    names = [name for name in measured[-1] if all(name in m for m in measured)]
    log_growth = [math.log(b) / math.log(a) for a, b in itertools.pairwise(sizes)]
    rows: list[dict[str, Any]] = []
    faster: list[dict[str, Any]] = []
    for name in names:
        medians = [m[name][0] for m in measured]
        growth = [b / a for a, b in itertools.pairwise(medians)]
        rows.append({"work": name, "median_s": medians, "growth": growth})
        if name.startswith("Q") and any(
            g > lg * GROWTH_SLACK for g, lg in zip(growth, log_growth, strict=True)
        ):
            faster.append({"work": name, "growth": growth, "plan": measured[-1][name][1]})
    return {
        "sizes": sizes,
        "log_growth": log_growth,
        "rows": rows,
        "faster_than_log_n": faster,
    }


def cases_from_json(cases: Sequence[dict[str, Any]]) -> list[Case]:
    """Cases back from a results file (enough for the curve: medians, info, ratios)."""
    return [
        Case(
            c["scenario"],
            c["case"],
            {
                name: Measured(name, m["samples_s"], m["items_per_call"])
                for name, m in c["contenders"].items()
            },
            c["ratios"],
            c["info"],
        )
        for c in cases
    ]


def main(paths: Sequence[str]) -> None:
    """`python -m benchmarks.curve a.json b.json ...`: one curve over separate runs' sizes."""
    runs: dict[int, list[Case]] = {}
    for path in paths:
        document = json.loads(Path(path).read_text())
        for part in [*document.get("smaller_sizes", []), document]:
            runs[part["plan"]["rows"]] = cases_from_json(part["cases"])
    curve = cost_curve(sorted(runs.items()))
    columns, rows = curve_table(curve)
    print("\n".join(markdown_table(columns, rows)))
    print("\n".join(curve_notes(curve)))


if __name__ == "__main__":
    main(sys.argv[1:])
