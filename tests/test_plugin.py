"""The pytest plugin, used as an application would: from a test file outside this project."""

from __future__ import annotations

from pathlib import Path

import pytest

from diamond_db._server import TEST_URL_VARIABLE, Server

pytest_plugins = ["pytester"]

# An application's test module: it imports nothing from diamond_db.testing, the
# pytest11 entry point provides the fixtures. Markers make it valid in strict mode too.
APPLICATION_TESTS = """
import psycopg
from pathlib import Path

import pytest

from diamond_db import Database


def _runs(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM run_metadata").fetchone()[0]


@pytest.mark.asyncio
async def test_an_open_bootstrapped_database(diamond_db: Database, diamond_db_url: str) -> None:
    run = await diamond_db.create_run_metadata("full", 3)
    assert await diamond_db.get_run_metadata(run.run_id) == run
    assert _runs(diamond_db_url) == 1


@pytest.mark.asyncio
async def test_each_test_starts_empty(diamond_db: Database, diamond_db_url: str) -> None:
    assert _runs(diamond_db_url) == 0
    await diamond_db.create_run_metadata("incremental", 1)


def test_the_url_works_from_sync_code_too(diamond_db_url: str) -> None:
    with psycopg.connect(diamond_db_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename = 'diamonds'"
        ).fetchone()[0]
    assert tables == 1
"""


@pytest.fixture
def application(
    pytester: pytest.Pytester, diamond_db_server: Server, monkeypatch: pytest.MonkeyPatch
) -> pytest.Pytester:
    """A project of its own, pointed at this session's server (no second cluster to start)."""
    pytester.makepyfile(test_application=APPLICATION_TESTS)
    monkeypatch.setenv(TEST_URL_VARIABLE, diamond_db_server.admin_url)
    return pytester


@pytest.mark.parametrize("mode", ["auto", "strict"])
def test_fixtures_work_in_an_application_under_each_asyncio_mode(
    application: pytest.Pytester, mode: str
) -> None:
    result = application.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", f"asyncio_mode={mode}"
    )
    result.assert_outcomes(passed=3)


def test_the_plugin_is_registered_and_inert_until_a_fixture_is_used(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_plain="def test_nothing_to_do_with_databases():\n    assert True\n")
    # An unreachable server: a session that uses no fixture never tries to reach it.
    monkeypatch.setenv(TEST_URL_VARIABLE, "postgresql://nobody@127.0.0.1:1/none")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--fixtures")
    listing = result.stdout.str()
    assert "fixtures defined from diamond_db.testing" in listing
    for fixture in ("diamond_db_server ", "diamond_db_url ", "diamond_db "):
        assert f"\n{fixture}" in listing, fixture
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_the_readme_example_runs_as_written(
    application: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the pytest plugin in your own tests", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(example.strip().splitlines()) <= 10
    application.makepyfile(test_readme_example=example)
    result = application.runpytest_subprocess(
        "-p", "no:cacheprovider", "-o", "asyncio_mode=strict", "test_readme_example.py"
    )
    result.assert_outcomes(passed=1)
