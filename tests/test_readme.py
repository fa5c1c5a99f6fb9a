"""README's front door: its quick-start example runs as printed, and is on the first screen."""

from __future__ import annotations

import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from helpers import fetch

from diamond_db import Database

README = Path(__file__).resolve().parent.parent / "README.md"
EXAMPLE_URL = "postgresql://app@localhost:5432/diamonds"


def quick_start_example() -> tuple[int, str]:
    """(line number, code) of the first Python block of README's Quick start section."""
    text = README.read_text()
    start = text.index("## Quick start")
    match = re.compile(r"```python\n(.*?)```", re.S).search(text, start)
    assert match, "no Python example in the Quick start section"
    return text.count("\n", 0, match.start()) + 1, match[1]


def test_the_quick_start_example_is_short_and_on_the_first_screen() -> None:
    """What the library is, the two commands (CI's install and test), then the example."""
    line, code = quick_start_example()
    assert len(code.splitlines()) <= 15
    assert line + len(code.splitlines()) < 50, "the example ends below the first screen"
    above = README.read_text().split(code)[0]
    assert "The PostgreSQL data layer of the diamond-inventory platform" in above
    for command in ("pip install . && diamond-db demo", 'pip install -e ".[dev]" && pytest'):
        assert command in above


def test_the_quick_start_example_runs_as_printed(
    diamond_db: Database, diamond_db_url: str, tmp_path: Path
) -> None:
    _, code = quick_start_example()
    assert EXAMPLE_URL in code
    done = subprocess.run(
        [sys.executable, "-c", code.replace(EXAMPLE_URL, diamond_db_url)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "1 [('S-1', 650000)]\n"
    assert "prints `1 [('S-1', 650000)]`" in README.read_text()
    assert fetch(
        diamond_db_url, "SELECT supplier_stone_id, carats, supplier_price_cents FROM diamonds"
    ) == [("S-1", Decimal("1.01"), 650_000)]
