"""Where the shipped SQL lives: inside the wheel, or beside the package in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The `queries` or `sql` folder: packaged copy first, then the source tree's."""
    for candidate in (_PACKAGE / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"diamond_db: cannot find its {name}/ folder near {_PACKAGE}")


def bootstrap_sql() -> str:
    """The text of sql/bootstrap.sql."""
    return (data_dir("sql") / "bootstrap.sql").read_text(encoding="utf-8")
