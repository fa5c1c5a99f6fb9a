"""Peak resident memory of this process, per scenario.

Linux keeps the process's peak RSS in /proc/self/status (VmHWM) and resets it
when "5" is written to /proc/self/clear_refs, so each scenario's peak can be
read on its own. Elsewhere only the lifetime peak (getrusage) is available,
and the report says so.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss() -> int:
    """Resident memory now, in bytes (the lifetime peak where /proc is missing)."""
    kib = _status_kib("VmRSS")
    return kib * 1024 if kib is not None else lifetime_peak()


def lifetime_peak(*, children: bool = False) -> int:
    """The peak RSS of this process's lifetime (or of its largest finished child), in bytes."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    peak = resource.getrusage(who).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux


_open: list[PeakWindow] = []  # windows to credit with the peak a reset is about to discard


def reset_peak() -> bool:
    """Start a new peak window; False when the platform cannot (the lifetime peak is used).

    Open PeakWindows keep the peak reached so far, so windows nest (a scenario's
    window around the per-call windows of alternate()).
    """
    for window in _open:
        window.peak = max(window.peak, peak_rss())
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    """The peak resident memory since the last reset_peak(), in bytes."""
    kib = _status_kib("VmHWM")
    return kib * 1024 if kib is not None else lifetime_peak()


@dataclass
class PeakWindow:
    """The peak RSS of one scenario: `with PeakWindow("search") as w: ...; w.peak`."""

    scenario: str
    rows_streamed: int = 0
    baseline: int = 0
    peak: int = 0
    windowed: bool = True

    def __enter__(self) -> PeakWindow:
        self.windowed = reset_peak()
        self.baseline = self.peak = current_rss()
        _open.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _open.remove(self)
        self.peak = max(self.peak, peak_rss())

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "rows_streamed": self.rows_streamed,
            "rss_before_bytes": self.baseline,
            "peak_rss_bytes": self.peak,
            "growth_bytes": max(self.peak - self.baseline, 0),
            "per_scenario_window": self.windowed,
        }
