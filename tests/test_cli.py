"""The diamond-db command line, driven as a user would, against a real database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from helpers import fetch, fetch_dicts, scalar

from diamond_db import cli, search
from diamond_db._resources import data_dir
from diamond_db.synthetic import synthetic_diamonds
from diamond_db.testing import reset_database

UNREACHABLE = "postgresql://nobody:secret-password@127.0.0.1:1/nowhere"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """Run `diamond-db ARGS...` in-process; its exit status and output."""
    monkeypatch.setenv("COLUMNS", "200")  # rich tables on one line each
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv(cli.QUERIES_DIR_VARIABLE, raising=False)

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.main(list(args))
        captured = capsys.readouterr()
        code = exited.value.code
        return Result(code if isinstance(code, int) else 1, captured.out, captured.err)

    return invoke


@pytest.fixture
def url(diamond_db_url: str) -> str:
    """The session's database, emptied (schema kept)."""
    reset_database(diamond_db_url)
    return diamond_db_url


def _short_error(result: Result, code: int) -> str:
    """The error is one line on stderr, with the given exit status, and no traceback."""
    assert result.code == code, result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.err + result.out
    return lines[0]


# -- user mistakes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["seed", "--rows", "abc"], "--rows"),
        (["seed", "--rows", "0"], "--rows"),
        (["demo", "--rows", "-5"], "--rows"),
        (["search", "--price-min", "cheap"], "--price-min"),
        (["search", "--no-such-filter", "1"], "--no-such-filter"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_bad_flags_are_one_line_usage_errors(run: Any, args: list[str], mentions: str) -> None:
    line = _short_error(run(*args), 2)
    assert mentions in line
    assert "--help" in line


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["--carat-min", "heavy"], "carat_min"),
        (["--carat-min", "2", "--carat-max", "1"], "carat"),
        (["--sort-by", "colour"], "sort_by"),
        (["--page", "0"], "page"),
        (["--ratio-min", "long"], "ratio_min"),
        (["--table-min", "70", "--table-max", "60"], "table"),
        (["--rating-max", "11"], "rating_max"),
        (["--projection", "short"], "projection"),
    ],
)
def test_bad_search_values_name_the_filter(
    run: Any, url: str, args: list[str], mentions: str
) -> None:
    line = _short_error(run("search", *args, "--database-url", url), 2)
    assert mentions in line


def test_a_missing_database_url_says_what_to_do(run: Any) -> None:
    for command in (["bootstrap"], ["migrate"], ["seed"], ["check"], ["search"]):
        line = _short_error(run(*command), 2)
        assert "DATABASE_URL" in line
        assert "--database-url" in line


def test_an_unreachable_database_is_one_line_without_pool_warnings_or_password(
    run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    commands = (["bootstrap"], ["migrate"], ["seed", "--rows", "10"], ["search"], ["check"])
    for command in commands:
        line = _short_error(run(*command), 1)
        assert "127.0.0.1:1/nowhere" in line
        assert "secret-password" not in line


def test_an_unreachable_database_from_a_real_process(tmp_path: Path) -> None:
    """The console entry point, as a shell runs it: exit status and stderr only."""
    done = subprocess.run(
        [sys.executable, "-m", "diamond_db", "search", "--database-url", UNREACHABLE],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: cannot connect to the database at 127.0.0.1:1/nowhere")


def test_a_database_without_the_schema_says_to_migrate(run: Any, diamond_db_server: Any) -> None:
    with diamond_db_server.database(bootstrap=False) as empty:
        line = _short_error(run("search", "--database-url", empty), 1)
        assert "diamond-db migrate" in line
        result = run("bootstrap", "--database-url", empty)
        assert result.code == 0, result
        assert run("search", "--database-url", empty).code == 0
        assert run("bootstrap", "--database-url", empty).code == 0  # a no-op now


def test_migrate_from_the_command_line(run: Any, diamond_db_server: Any, tmp_path: Path) -> None:
    with diamond_db_server.database(bootstrap=False) as empty:
        status = run("migrate", "--status", "--database-url", empty)
        assert status.code == 1
        assert "pending" in status.out
        plan = run("migrate", "--dry-run", "--database-url", empty)
        assert plan.code == 0
        assert "CREATE TABLE diamonds" in plan.out
        assert "-- == 0001_initial_schema, in one transaction ==" in plan.out
        done = run("migrate", "--database-url", empty)
        assert done.code == 0
        assert "applied 0001_initial_schema in " in done.out
        assert run("migrate", "--status", "--database-url", empty).code == 0
        assert "nothing to apply" in run("migrate", "--database-url", empty).out
        bad = run("migrate", "--to", "2", "--database-url", empty)
        assert _short_error(bad, 2).startswith("error: --to takes a four-digit version")
        (tmp_path / "0001_initial_schema.sql").write_text("SELECT 1;\n")
        edited = run("migrate", "--migrations-dir", str(tmp_path), "--database-url", empty)
        assert edited.code == 1
        assert "0001_initial_schema.sql were edited" in edited.err


# -- queries and check ----------------------------------------------------------


def test_queries_lists_every_statement_with_file_kind_role_and_comment(run: Any) -> None:
    result = run("queries")
    assert result.code == 0, result
    from diamond_db import default_registry

    for statement in default_registry():
        assert re.search(
            rf"{statement.name}\s+│\s+{statement.domain}\.sql\s+│\s+{statement.kind}\s+│\s+"
            rf"{statement.role}",
            result.out,
        ), statement.name


def test_queries_name_prints_its_sql(run: Any) -> None:
    result = run("queries", "get_run_metadata")
    assert result.code == 0, result
    assert result.out.startswith("-- get_run_metadata: run_metadata.sql")
    assert "FROM run_metadata" in result.out
    line = _short_error(run("queries", "get_run_metadat"), 2)
    assert "did you mean get_run_metadata" in line


@pytest.fixture
def broken_queries(tmp_path: Path) -> Path:
    """A copy of queries/ with one statement that names a column the schema lacks."""
    folder = tmp_path / "queries"
    shutil.copytree(data_dir("queries"), folder)
    with (folder / "run_metadata.sql").open("a") as f:
        f.write(
            "\n-- name: count_runs_by_colour()$\n"
            "-- Deliberately broken: run_metadata has no colour column.\n"
            "-- role: reader\n"
            "SELECT count(*) FROM run_metadata WHERE colour = 'blue';\n"
        )
    return folder


def test_check_passes_on_the_shipped_statements(run: Any, url: str) -> None:
    result = run("check", "--database-url", url)
    assert result.code == 0, result
    assert re.search(r"all \d+ statements are valid", result.out)


def test_check_names_a_broken_statement_and_exits_non_zero(
    run: Any, url: str, broken_queries: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run("check", "--database-url", url, "--queries-dir", str(broken_queries))
    assert result.code == 1
    assert 'BROKEN run_metadata.sql count_runs_by_colour: column "colour" does not exist' in (
        result.err
    )
    assert result.err.count("BROKEN") == 1
    assert "1 of" in result.err.strip().splitlines()[-1]
    # The same through the environment variable, as a CI job would set it.
    monkeypatch.setenv(cli.QUERIES_DIR_VARIABLE, str(broken_queries))
    monkeypatch.setenv("DATABASE_URL", url)
    assert run("check").code == 1


def test_check_reports_a_statement_file_that_does_not_load(
    run: Any, url: str, broken_queries: Path
) -> None:
    with (broken_queries / "run_metadata.sql").open("a") as f:
        f.write("\n-- name: undocumented()$\nSELECT 1;\n")
    line = _short_error(
        run("check", "--database-url", url, "--queries-dir", str(broken_queries)), 1
    )
    assert "undocumented" in line


# -- seed -------------------------------------------------------------------------


def _diamonds(url: str) -> list[dict[str, Any]]:
    """Every diamond as stored, without the columns the database stamps itself."""
    rows = fetch_dicts(url, "SELECT * FROM diamonds ORDER BY supplier_stone_id")
    for row in rows:
        for stamped in ("id", "created_at", "updated_at"):
            del row[stamped]
    return rows


def test_seed_is_deterministic_and_matches_the_generator(run: Any, url: str) -> None:
    result = run(
        "seed", "--rows", "600", "--seed", "42", "--batch-size", "250", "--database-url", url
    )
    assert result.code == 0, result
    assert re.search(r"seeded 600 diamonds \(seed 42\).*rows/s", result.out)
    first = _diamonds(url)
    assert len(first) == 600
    assert [r["supplier_stone_id"] for r in first] == sorted(
        d.supplier_stone_id for d in synthetic_diamonds(600, 42)
    )

    reset_database(url)
    assert run("seed", "--rows", "600", "--seed", "42", "--database-url", url).code == 0
    assert _diamonds(url) == first  # same seed, same rows (whatever the batch size)

    reset_database(url)
    assert run("seed", "--rows", "600", "--seed", "43", "--database-url", url).code == 0
    other = _diamonds(url)
    assert {r["supplier_stone_id"] for r in other}.isdisjoint(r["supplier_stone_id"] for r in first)


def test_seeding_again_with_the_same_seed_updates_in_place(run: Any, url: str) -> None:
    assert run("seed", "--rows", "200", "--database-url", url).code == 0
    before = _diamonds(url)
    assert run("seed", "--rows", "200", "--database-url", url).code == 0
    assert _diamonds(url) == before


# -- demo -------------------------------------------------------------------------


def _fact(out: str, name: str) -> str:
    match = re.search(rf"^\s*{re.escape(name)}\s{{2,}}(.+?)\s*$", out, re.MULTILINE)
    assert match, f"{name!r} missing from the summary:\n{out}"
    return match[1]


def _number(out: str, name: str) -> int:
    return int(_fact(out, name).replace(",", ""))


def test_demo_summary_matches_the_database(
    run: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)  # ignored by the demo
    result = run("demo", "--rows", "1500", "--workers", "3", "--database-url", url)
    assert result.code == 0, result
    out = result.out
    assert "The seed README's search" in out

    # Two feeds, each its own run, workers and consolidators; nivoda two thirds of the offers.
    for feed, offers in (("nivoda", 1000), ("vdb", 500)):
        run_id = _fact(out, f"{feed} run").split()[0]
        assert _fact(out, f"{feed} run").endswith("(completed)")
        completed, expected, supplier = fetch(
            url,
            "SELECT completed_workers, expected_workers, supplier FROM run_metadata"
            " WHERE run_id = %s AND completed_at IS NOT NULL",
            run_id,
        )[0]
        assert supplier == feed
        assert _fact(out, f"{feed} workers completed") == f"{completed} of {expected}" == "3 of 3"
        raw = fetch(
            url,
            "SELECT count(*), count(*) FILTER (WHERE consolidation_status = 'done')"
            " FROM raw_diamonds WHERE run_id = %s AND supplier = %s",
            run_id,
            feed,
        )[0]
        assert raw == (offers, offers)
        assert _fact(out, f"{feed} raw payloads") == f"{offers:,} stored, {offers:,} consolidated"
        live = "SELECT count(*) FROM diamonds WHERE status = 'active' AND supplier = %s"
        assert scalar(url, live, feed) == offers
    assert scalar(url, "SELECT count(*) FROM worker_runs WHERE status = 'completed'") == 6
    assert _number(out, "raw payloads stored") == 1500
    assert _number(out, "raw payloads consolidated") == 1500
    assert _number(out, "raw payloads pending") == 0

    # The facet counts and the recommendation are what the library returns for that data.
    assert "Facet counts of the README search's filters" in out
    assert "Recommended for " in out
    for slot in ("highest rated", "most expensive", "mid rated"):
        assert re.search(rf"^\W*{slot}\W", out, re.MULTILINE), slot

    active = "SELECT count(*) FROM diamonds WHERE status = 'active'"
    assert _number(out, "active diamonds") == scalar(url, active) == 1500
    available = active + " AND availability = 'available'"
    assert _number(out, "available diamonds") == scalar(url, available)

    markups: dict[Decimal, int] = dict(
        fetch(url, "SELECT markup_ratio, count(*) FROM diamonds GROUP BY 1")
    )
    priced = {f"x{ratio}": count for ratio, count in markups.items()}
    shown = dict(part.split(": ") for part in _fact(out, "priced by markup").split(", "))
    assert {k: int(v.replace(",", "")) for k, v in shown.items()} == priced

    stone, state = _fact(out, "held diamond").split()
    hold_id = _fact(out, "hold id")
    assert state == "(on_hold)"
    diamond_id = scalar(
        url,
        "SELECT id FROM diamonds WHERE supplier_stone_id = %s AND availability = 'on_hold'"
        " AND hold_id = %s",
        stone,
        hold_id,
    )
    assert scalar(
        url,
        "SELECT array_agg(supplier_hold_id) FROM hold_history"
        " WHERE diamond_id = %s AND status = 'active'",
        diamond_id,
    ) == [hold_id]
    assert _fact(out, "rival hold refused") == "yes"
    assert _fact(out, "purchase replay returned the same row") == "yes"
    assert scalar(
        url, "SELECT array_agg(id::text) FROM purchase_history WHERE diamond_id = %s", diamond_id
    ) == [_fact(out, "purchase")]

    # The checkout: walked through payment and supplier order; the replayed webhook changed nothing.
    number = _fact(out, "checkout order")
    order = fetch(
        url,
        "SELECT p.status, p.payment_status, p.order_status, p.currency, p.amount_cents,"
        " d.availability, d.supplier_stone_id FROM purchase_history p"
        " JOIN diamonds d ON d.id = p.diamond_id WHERE p.order_number = %s",
        number,
    )
    assert order[0][:4] == ("confirmed", "paid", "placed", "EUR")
    assert _fact(out, "checkout state") == "confirmed / paid / placed"
    assert _fact(out, "checkout amount") == f"{order[0][4]:,} EUR cents"
    assert _fact(out, "checkout diamond") == f"{order[0][6]} (sold)"
    assert order[0][5] == "sold"
    assert _fact(out, "replayed webhook changed nothing") == "yes"


def test_demo_refuses_a_database_that_holds_diamonds(run: Any, url: str) -> None:
    assert run("seed", "--rows", "5", "--database-url", url).code == 0
    line = _short_error(run("demo", "--rows", "100", "--database-url", url), 1)
    assert "already holds diamonds" in line
    assert scalar(url, "SELECT count(*) FROM run_metadata") == 0  # nothing written


def test_demo_with_nothing_configured_starts_and_removes_its_own_server(tmp_path: Path) -> None:
    """As a new user runs it: no DATABASE_URL that works, no test server variable."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DIAMOND_DB_TEST_URL", "DATABASE_URL", cli.QUERIES_DIR_VARIABLE)
    }
    env["DATABASE_URL"] = UNREACHABLE
    env["COLUMNS"] = "200"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "diamond_db", "demo", "--rows", "800"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - started < 60
    assert "throw-away PostgreSQL" in done.stdout
    assert _number(done.stdout, "active diamonds") == 800
    assert _fact(done.stdout, "database").endswith("now removed")
    assert "Traceback" not in done.stderr


def test_dependencies_run_one_way_cli_demo_presentation() -> None:
    """demo and the shared presentation never import the command line (no import cycle)."""
    probe = (
        "import sys, diamond_db.presentation;"
        "print(sorted({'diamond_db.cli', 'diamond_db.demo'} & set(sys.modules)));"
        "import diamond_db.demo;"
        "print(sorted({'diamond_db.cli'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.splitlines() == ["[]", "[]"], done.stdout + done.stderr


def test_demo_at_80_columns_splits_no_id_price_or_count(
    run: Any, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An 80-column terminal, the default of many: every row, id, price and count stays whole."""
    monkeypatch.setenv("COLUMNS", "80")
    result = run("demo", "--rows", "600", "--workers", "2", "--consolidators", "2",
                 "--database-url", url)  # fmt: skip
    assert result.code == 0, result
    out = result.out
    counts = [line for line in out.splitlines() if re.search(r" (400/400|200/200) ", line)]
    assert len(counts) == 4, out  # both progress bars of both feeds, counts whole
    rows = _rows_shown(out, 80)
    assert len(rows) >= 5, out
    for stone, price in rows:
        assert scalar(url, "SELECT supplier_price_cents FROM diamonds WHERE supplier_stone_id = %s",
                      stone) == price  # fmt: skip
    ids = re.findall(r"syn-[\d-]*", out)
    assert ids
    assert all(re.fullmatch(r"syn-[78]-\d{8}", i) for i in ids), ids  # the two feeds' seeds
    for line in out.splitlines():
        assert len(line) <= 80 or "--cursor" in line, line  # the cursor line is left whole


# -- search -----------------------------------------------------------------------

SEARCH_FLAGS = (
    "--colors", "D,E,F", "--carat-min", "0.5", "--no-lab-grown",
    "--sort-by", "supplier_price_cents", "--sort-order", "asc", "--limit", "5",
)  # fmt: skip
ORACLE = (
    "SELECT supplier_stone_id, supplier_price_cents FROM diamonds WHERE status = 'active'"
    " AND color = ANY(%s) AND carats >= 0.5 AND NOT lab_grown ORDER BY supplier_price_cents, id"
)


def _rows_shown(out: str, width: int) -> list[tuple[str, int]]:
    """(stone, price in cents) of each table row; every row is one line that fits `width`.

    Each cell must hold a whole stone id and a whole price: a wrapped row would
    leave a fragment (or an empty cell) on a line of its own.
    """
    rows = []
    header: list[str] = []
    for line in out.splitlines():
        if line.startswith("┃"):
            header = [cell.strip() for cell in line.strip("┃").split("┃")]
        elif line.startswith("│"):
            assert len(line) <= width, out
            if header[0] in ("slot", "value"):  # the demo's recommendations and facet counts
                continue
            cells = dict(zip(header, (c.strip() for c in line.strip("│").split("│")), strict=True))
            assert {"stone", "price"} <= set(cells), f"a header split across lines:\n{out}"
            assert re.fullmatch(r"syn-\d+-\d{8}", cells["stone"]), out
            price = re.fullmatch(r"\$(\d{1,3}(?:,\d{3})*)\.(\d\d)", cells["price"])
            assert price, out
            rows.append((cells["stone"], int(price[1].replace(",", "") + price[2])))
    return rows


@pytest.mark.parametrize("columns", [80, 160])
def test_search_prints_the_page_the_database_holds_and_pages_on_by_cursor(
    run: Any, url: str, monkeypatch: pytest.MonkeyPatch, columns: int
) -> None:
    assert run("seed", "--rows", "400", "--seed", "9", "--database-url", url).code == 0
    expected = fetch(url, ORACLE, ["D", "E", "F"])
    assert len(expected) > 10
    monkeypatch.setenv("COLUMNS", str(columns))  # a terminal of that width

    first = run("search", *SEARCH_FLAGS, "--database-url", url)
    assert first.code == 0, first
    assert _rows_shown(first.out, columns) == expected[:5]
    assert f"{len(expected)} matching, page 1 of " in first.out
    cursor = re.search(r"--cursor (\S+)", first.out)
    assert cursor is not None

    second = run("search", *SEARCH_FLAGS, "--cursor", cursor[1], "--database-url", url)
    assert second.code == 0, second
    assert _rows_shown(second.out, columns) == expected[5:10]


def test_search_sql_prints_render_search_without_a_database(run: Any) -> None:
    from diamond_db.search import render_search

    result = run("search", *SEARCH_FLAGS, "--sql")
    assert result.code == 0, result
    rendered = render_search(
        colors=["D", "E", "F"],
        carat_min="0.5",
        lab_grown=False,
        sort_by="supplier_price_cents",
        sort_order="asc",
        limit=5,
    )
    assert result.out.startswith(rendered.sql.strip() + "\n-- parameters:\n")
    for key, value in rendered.params.items():
        assert f"--   {key} = {value!r}\n" in result.out


# Every new filter of issue 13 as a flag, and as render_search takes the same values.
RANGES = {
    "ratio_min": "1.1", "ratio_max": "1.6", "table_min": "54", "table_max": "64",
    "depth_pct_min": "58", "depth_pct_max": "66", "crown_angle_min": "30",
    "crown_angle_max": "38", "pavilion_angle_min": "40", "pavilion_angle_max": "42",
    "length_min": "5", "length_max": "9", "width_min": "4", "width_max": "8",
    "depth_mm_min": "3", "depth_mm_max": "6",
}  # fmt: skip
NEW_FLAGS = (
    "--supplier", "nivoda,vdb", "--fancy-colors", "Yellow,Pink", "--fancy-color",
    "--fancy-intensities", "Fancy,Vivid", "--fluorescence-intensities", "None,Faint",
    *(part for name, value in RANGES.items() for part in (f"--{name.replace('_', '-')}", value)),
    "--no-eye-clean", "--no-bgm", "--rating-max", "8", "--retail-price-min", "1000",
    "--retail-price-max", "900000", "--sort-by", "ratio", "--projection", "list",
)  # fmt: skip
NEW_FILTERS: dict[str, Any] = {
    "supplier": ["nivoda", "vdb"],
    "fancy_colors": ["Yellow", "Pink"],
    "fancy_color": True,
    "fancy_intensities": ["Fancy", "Vivid"],
    "fluorescence_intensities": ["None", "Faint"],
    **RANGES,
    "eye_clean": False,
    "no_bgm": True,
    "rating_max": 8,
    "retail_price_min": 1000,
    "retail_price_max": 900_000,
    "sort_by": "ratio",
}


def test_search_new_flags_are_the_new_filters(run: Any) -> None:
    result = run("search", *NEW_FLAGS, "--sql")
    assert result.code == 0, result
    rendered = search.render_search(**NEW_FILTERS, projection="list")
    assert result.out.startswith(rendered.sql.strip() + "\n-- parameters:\n")
    assert "d.fancy_color IS NOT NULL" in rendered.sql
    for key, value in rendered.params.items():
        assert f"--   {key} = {value!r}\n" in result.out


def test_search_list_projection_prints_summaries(run: Any, url: str) -> None:
    assert run("seed", "--rows", "200", "--seed", "9", "--database-url", url).code == 0
    result = run("search", "--projection", "list", "--limit", "3", "--database-url", url)
    assert result.code == 0, result
    shown = re.findall(r"^│ ([0-9a-f-]{36}) ", result.out, re.MULTILINE)
    newest = fetch(
        url,
        "SELECT id::TEXT FROM diamonds WHERE status = 'active'"
        " ORDER BY created_at DESC, id DESC LIMIT 3",
    )
    assert shown == [i for (i,) in newest]


def test_search_explain_runs_explain_analyze(run: Any, url: str) -> None:
    assert run("seed", "--rows", "50", "--database-url", url).code == 0
    result = run("search", *SEARCH_FLAGS, "--explain", "--database-url", url)
    assert result.code == 0, result
    assert "actual time=" in result.out
    assert "Execution Time" in result.out
    assert search.EXPLAIN_ANALYZE.startswith("EXPLAIN (ANALYZE")
    line = _short_error(run("search", "--sql", "--explain"), 2)
    assert "--sql" in line


# -- facets -----------------------------------------------------------------------


def test_facets_prints_the_counts_the_database_holds(run: Any, url: str) -> None:
    assert run("seed", "--rows", "300", "--seed", "4", "--database-url", url).code == 0
    flags = ("--facets", "shape,lab_grown", "--shape", "ROUND", "--colors", "D,E,F,G")
    result = run("facets", *flags, "--database-url", url)
    assert result.code == 0, result
    shapes = fetch(
        url,
        "SELECT shape, count(*) FROM diamonds WHERE status = 'active'"
        " AND color = ANY(%s) GROUP BY shape",
        ["D", "E", "F", "G"],
    )
    assert len(shapes) > 2  # every shape is counted, though ROUND is chosen
    for shape, n in shapes:
        assert re.search(rf"│ {shape}\s+│\s+{n:,} │", result.out), (shape, n, result.out)
    origins = fetch(
        url,
        "SELECT lab_grown, count(*) FROM diamonds WHERE status = 'active' AND shape = 'ROUND'"
        " AND color = ANY(%s) GROUP BY lab_grown",
        ["D", "E", "F", "G"],
    )
    for lab_grown, n in origins:
        assert re.search(rf"│ {lab_grown}\s+│\s+{n:,} │", result.out), (lab_grown, n)
    capped = run("facets", "--facets", "supplier", "--count", "capped", "--count-cap", "10",
                 "--database-url", url)  # fmt: skip
    assert re.search(r"│ nivoda\s+│\s+10\+ │", capped.out), capped.out
    assert "more than 10 (count capped)" in capped.out


def test_facets_sql_and_mistakes(run: Any) -> None:
    from diamond_db.facets import compose_facets

    result = run("facets", "--facets", "cut", "--colors", "D", "--no-lab-grown", "--sql")
    assert result.code == 0, result
    expected = compose_facets(search.DiamondSearch(colors=["D"], lab_grown=False), ["cut"])
    assert result.out.startswith(expected.sql.strip() + "\n-- parameters:\n")
    line = _short_error(run("facets", "--facets", "shape,polish", "--sql"), 2)
    assert "facets[1]" in line
    assert "unknown facet 'polish'" in line
    assert "count: " in _short_error(run("facets", "--count", "none", "--sql"), 2)
