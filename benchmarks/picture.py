"""The picture: one PNG next to the JSON results (latency distributions, cost curve, throughput).

Drawn with matplotlib, the optional extra `pip install diamond-db[bench]`;
without it the run still writes its JSON and Markdown and says the picture was
skipped. Panels are drawn only for what the run measured.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from .stats import Case

MISSING: Final = "matplotlib is not installed (pip install 'diamond-db[bench]'): no picture"
Panel = Callable[[Any], None]


def available() -> bool:
    try:
        return importlib.util.find_spec("matplotlib") is not None
    except ValueError:  # imported and then removed: not usable
        return False


def write_picture(
    path: Path, title: str, cases: Sequence[Case], curve: dict[str, Any] | None
) -> Path | None:
    """Draw the run's panels into `path` (a .png); None without matplotlib or anything to draw."""
    if not available():
        return None
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    panels = _panels(cases, curve)
    if not panels:
        return None
    columns = 3
    rows = math.ceil(len(panels) / columns)
    figure, axes = pyplot.subplots(rows, columns, figsize=(6 * columns, 4.2 * rows), squeeze=False)
    for ax, draw in zip(axes.flat, panels, strict=False):
        draw(ax)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    pyplot.close(figure)
    return path


def _panels(cases: Sequence[Case], curve: dict[str, Any] | None) -> list[Panel]:
    panels: list[Panel] = []
    for case in cases:
        if case.scenario == "search" and case.info.get("kind") == "page1":
            panels.append(_distribution(case, f"{case.name}: {case.info['description']}"))
    for case in cases:
        if case.scenario in ("lookup", "ingest", "ingest_candidates", "upsert"):
            panels.append(_distribution(case, case.name))
    throughput = [c for c in cases if c.scenario == "throughput"]
    if throughput:
        panels.append(_throughput(throughput))
    if curve:
        panels.append(_curve(curve))
    return panels


def _distribution(case: Case, title: str) -> Panel:
    """Each contender's samples (ms per call) as a box with every sample on top."""

    def draw(ax: Any) -> None:
        names = list(case.results)
        samples = [[s * 1e3 for s in case.results[n].samples] for n in names]
        ax.boxplot(samples, vert=False, showfliers=False)
        for i, values in enumerate(samples, start=1):
            ax.plot(values, [i] * len(values), "o", alpha=0.35, markersize=3)
        ax.set_yticks(range(1, len(names) + 1), names)
        ax.set_xscale("log")
        ax.set_xlabel("ms per call (log)")
        ax.set_title(title, fontsize=10)

    return draw


def _throughput(cases: Sequence[Case]) -> Panel:
    def draw(ax: Any) -> None:
        clients = [c.info["clients"] for c in cases]
        for name in ("library", "raw"):
            ax.plot(clients, [c.info[f"{name}_searches_per_s"] for c in cases], "o-", label=name)
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(n) for n in clients])
        ax.set_xlabel("clients (closed loops, same pool)")
        ax.set_ylabel("searches per second")
        ax.set_title("throughput vs clients", fontsize=10)
        ax.legend()

    return draw


def _curve(curve: dict[str, Any]) -> Panel:
    def draw(ax: Any) -> None:
        sizes = curve["sizes"]
        for row in curve["rows"]:
            ax.plot(sizes, [m * 1e3 for m in row["median_s"]], "o-", label=row["work"][:28])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("diamonds")
        ax.set_ylabel("ms per call (median, log)")
        ax.set_title("cost curve", fontsize=10)
        ax.legend(fontsize=6)

    return draw
