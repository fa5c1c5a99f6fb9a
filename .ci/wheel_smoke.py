"""CI step: the installed wheel works outside the repo (queries/ and sql/ ship inside it)."""

import asyncio
import sys
from pathlib import Path

import diamond_db
from diamond_db._server import throwaway_database


async def main() -> None:
    package = Path(diamond_db.__file__).parent
    assert "site-packages" in str(package), package
    assert (package / "queries" / "diamonds.sql").is_file()
    assert (package / "sql" / "bootstrap.sql").is_file()
    assert (package / "sql" / "migrations" / "0001_initial_schema.sql").is_file()
    with throwaway_database() as (_, url):
        db = diamond_db.Database(url, min_size=1)
        applied = await db.migrate()  # the shipped migrations, before opening (it checks them)
        assert [s.state for s in applied] == ["applied"] * len(applied), applied
        async with db:
            run = await db.create_run_metadata("full", 3)
            assert await db.get_run_metadata(run.run_id) == run
            problems = db._registry.check(url)
            assert problems == [], problems
    print(f"wheel smoke: ok ({len(diamond_db.default_registry())} statements from {package})")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
