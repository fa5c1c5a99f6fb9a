"""The `diamond-db` command line: demo, bootstrap, migrate, seed, queries, check, search,
runs, errors, status, jobs.

Built on typer (commands and flags) and rich (tables, progress bars). Every
user mistake (a bad flag value, a missing or unreachable database, a missing
schema) ends in a one-line message on stderr and a non-zero exit status,
never a traceback: exit status 2 for a bad invocation, 1 for a
failure (unreachable server, broken statements). `-v` shows the library's
statement log and, for an unexpected error, the traceback.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import inspect
import logging
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, NoReturn, TypeVar

import aiosql
import psycopg
import typer
from psycopg.rows import tuple_row
from psycopg_pool import PoolTimeout
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from rich.text import Text

from . import dashboard_view
from ._executor import Observer
from ._server import ServerUnavailable
from .database import Database
from .errors import DatabaseUnavailable, DiamondDBError, MigrationError, ValidationError
from .migrations import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_RETRIES,
    MIGRATIONS_DIR_VARIABLE,
    Migrator,
    Plan,
)
from .presentation import bulk_settings, print_facets, print_page, progress_bars, where
from .records import MigrationStatus
from .registry import Registry, RegistryError, default_registry
from .search import Projection, RenderedQuery

PROG: Final = "diamond-db"
QUERIES_DIR_VARIABLE: Final = "DIAMOND_DB_QUERIES_DIR"
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
# Migration statements (a concurrent index build, a VALIDATE) legitimately run for minutes.
MIGRATION_SLOW_QUERY_THRESHOLD: Final = 600.0
T = TypeVar("T")

app = typer.Typer(
    name=PROG,
    help="diamond_db: the diamond-inventory data layer, from the shell.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class UserError(Exception):
    """A mistake the user can fix; shown as a short message with a non-zero exit."""

    def __init__(self, message: str, code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.code = code


class _State:
    verbose = False


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="DATABASE_URL",
        show_envvar=True,
        help="PostgreSQL URL (default: the DATABASE_URL environment variable).",
        show_default=False,
    ),
]
QueriesDir = Annotated[
    Path | None,
    typer.Option(
        "--queries-dir",
        envvar=QUERIES_DIR_VARIABLE,
        show_envvar=True,
        help="Read the statements from this folder instead of the shipped queries/.",
        file_okay=False,
        exists=True,
        show_default=False,
    ),
]


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log every statement; tracebacks on bugs.")
    ] = False,
) -> None:
    """diamond_db from the shell: a zero-setup demo, schema, synthetic data, SQL review, search."""
    _State.verbose = verbose
    _configure_logging(verbose)


# -- plumbing -------------------------------------------------------------------


def _configure_logging(verbose: bool) -> None:
    """Library warnings to stderr; the pool's connection-retry chatter silenced unless -v."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    library = logging.getLogger("diamond_db")
    library.handlers[:] = [handler]
    library.propagate = False
    library.setLevel(logging.DEBUG if verbose else logging.WARNING)
    logging.getLogger("psycopg").setLevel(logging.WARNING if verbose else logging.CRITICAL + 1)


def _stdout() -> Console:
    return Console(highlight=False)


def _stderr() -> Console:
    return Console(stderr=True, highlight=False)


def _require_url(url: str | None) -> str:
    if not url or not url.strip():
        raise UserError(
            "no database: set DATABASE_URL or pass --database-url postgresql://user@host/db "
            f"(for a throw-away database with sample data, run `{PROG} demo`)",
            EXIT_USAGE,
        )
    try:
        where(url)
    except psycopg.ProgrammingError as exc:
        raise UserError(f"invalid database URL: {_first_line(exc)}", EXIT_USAGE) from None
    return url


def _probe(url: str) -> None:
    """Connect once, so an unreachable server is reported at once and briefly."""
    try:
        psycopg.connect(url, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        message = f"cannot connect to the database at {where(url)}: {_first_line(exc)}"
        raise UserError(message) from None


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _database(url: str, **kwargs: Any) -> Database:
    return Database(url, min_size=1, **kwargs)


def _explain_error(exc: BaseException) -> UserError | None:
    """Map an exception to a short message, or None for a bug (shown as one)."""
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, ValidationError):
        return UserError(str(exc), EXIT_USAGE)
    if isinstance(exc, ServerUnavailable):
        return UserError(_first_line(exc))
    if isinstance(exc, DatabaseUnavailable | PoolTimeout):
        return UserError(_first_line(exc))
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return UserError(
            f"the database has no diamond_db schema ({_first_line(exc)}): "
            f"run `{PROG} bootstrap` first"
        )
    if isinstance(exc, psycopg.OperationalError):
        return UserError(f"database connection failed: {_first_line(exc)}")
    if isinstance(exc, psycopg.Error):
        state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
        return UserError(f"database error{state}: {_first_line(exc)}")
    if isinstance(exc, RegistryError | aiosql.SQLLoadException | aiosql.SQLParseException):
        return UserError(f"cannot load the statements: {_first_line(exc)}")
    if isinstance(exc, DiamondDBError):
        return UserError(_first_line(exc))
    return None


def _usage_message(exc: Any) -> str:
    """One line from a click usage error: the command, the problem, where to look."""
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else PROG
    message = " ".join(exc.format_message().split())
    return f"{command}: {message} (see `{command} --help`)"


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point: runs the command, turns failures into short messages."""
    command = typer.main.get_command(app)
    _State.verbose = False
    saved = _LoggingState.save()
    try:
        result = command.main(
            args=list(sys.argv[1:] if argv is None else argv),
            prog_name=PROG,
            standalone_mode=False,
        )
        code = result if isinstance(result, int) else 0
    except KeyboardInterrupt:
        _stderr().print("interrupted", style="red")
        code = 130
    except Exception as exc:
        code = _report(exc)
    finally:
        saved.restore()
    sys.exit(code)


@dataclass(frozen=True)
class _LoggingState:
    """The loggers main() configures, restored afterwards (main may run inside a test)."""

    levels: dict[str, int]
    handlers: list[logging.Handler]
    propagate: bool

    @classmethod
    def save(cls) -> _LoggingState:
        library = logging.getLogger("diamond_db")
        names = ("diamond_db", "psycopg")
        levels = {name: logging.getLogger(name).level for name in names}
        return cls(levels, list(library.handlers), library.propagate)

    def restore(self) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)
        library = logging.getLogger("diamond_db")
        library.handlers[:] = self.handlers
        library.propagate = self.propagate


def _report(exc: Exception) -> int:
    """Print an error briefly; return its exit status."""
    console = _stderr()
    if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # a click usage error
        console.print(f"error: {_usage_message(exc)}", markup=False, soft_wrap=True)
        return int(exc.exit_code) or EXIT_USAGE
    if type(exc).__name__ == "Abort":  # click's Abort (Ctrl-C at a prompt)
        console.print("aborted", style="red")
        return EXIT_FAILURE
    error = _explain_error(exc)
    if error is None:
        if _State.verbose:
            raise exc
        console.print(
            f"error: unexpected {type(exc).__name__}: {_first_line(exc)} "
            f"(run `{PROG} -v ...` for the traceback)",
            markup=False,
            soft_wrap=True,
        )
        return EXIT_FAILURE
    console.print(f"error: {error}", markup=False, soft_wrap=True)
    return error.code


# -- bootstrap ------------------------------------------------------------------


@app.command()
def bootstrap(database_url: DatabaseUrl = None) -> None:
    """Create the schema in an empty database (sql/bootstrap.sql; a no-op on a current one)."""
    url = _require_url(database_url)
    _probe(url)

    async def apply() -> None:
        await _database(url).bootstrap()  # an admin path: no pool, no schema check

    asyncio.run(apply())
    _stdout().print(f"schema applied to {where(url)}")


# -- migrate --------------------------------------------------------------------

MigrationsDir = Annotated[
    Path | None,
    typer.Option(
        "--migrations-dir",
        envvar=MIGRATIONS_DIR_VARIABLE,
        show_envvar=True,
        help="Run the migrations of this folder instead of the shipped sql/migrations/.",
        file_okay=False,
        exists=True,
        show_default=False,
    ),
]


@app.command()
def migrate(
    database_url: DatabaseUrl = None,
    status: Annotated[
        bool, typer.Option("--status", help="Show each migration's state; exit 1 if not current.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and the SQL; apply nothing.")
    ] = False,
    to: Annotated[
        str | None,
        typer.Option("--to", metavar="NNNN", help="Stop after this version.", show_default=False),
    ] = None,
    lock_timeout: Annotated[
        float,
        typer.Option("--lock-timeout", metavar="SECONDS", min=0.001, help="Bound each lock wait."),
    ] = DEFAULT_LOCK_TIMEOUT,
    retries: Annotated[
        int, typer.Option("--retries", min=0, help="Retries after a lock timeout.")
    ] = DEFAULT_RETRIES,
    migrations_dir: MigrationsDir = None,
) -> None:
    """Apply the pending schema migrations (and adopt a TypeScript-era database).

    Exit 0 when the database is current, 1 when a migration failed or was
    refused (or, with --status, when anything is pending, changed or not yet
    validated), 2 on a usage error.
    """
    url = _require_url(database_url)
    if to is not None and not (len(to) == 4 and to.isdigit()):
        raise UserError(f"--to takes a four-digit version such as 0002, not {to!r}", EXIT_USAGE)
    _probe(url)
    console = _stdout()

    def progress(done: MigrationStatus, seconds: float) -> None:
        console.print(f"applied {done.version}_{done.name} in {seconds:.2f} s", markup=False)

    def notice(text: str) -> None:
        console.print(f"  notice {text}", markup=False, soft_wrap=True)

    runner = Migrator(
        url,
        default_registry(),
        Observer(MIGRATION_SLOW_QUERY_THRESHOLD, None),
        migrations=migrations_dir,
        lock_timeout=lock_timeout,
        retries=retries,
        on_progress=progress,
        on_notice=notice,
    )
    if status:
        plan = asyncio.run(runner.plan())
        _print_status(console, plan)
        if _not_current(plan):
            raise typer.Exit(EXIT_FAILURE)
        return
    if dry_run:
        _print_plan(console, asyncio.run(runner.plan(to)))
        return
    try:
        applied = asyncio.run(runner.migrate(to))
    except MigrationError as exc:
        lines = str(exc).splitlines()
        _stderr().print(f"error: {lines[0]}", markup=False, soft_wrap=True)
        for line in lines[1:]:
            _stderr().print(line, markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_FAILURE) from None
    current = asyncio.run(runner.status())
    version = max((s.version for s in current if s.state == "applied"), default="none")
    done = f"{len(applied)} migration(s) applied" if applied else "nothing to apply"
    console.print(f"{done}; {where(url)} is at version {version}", markup=False)


def _not_current(plan: Plan) -> bool:
    return any(s.state in ("pending", "changed") for s in plan.statuses) or any(
        not c.validated for c in plan.unfinished
    )


def _print_status(console: Console, plan: Plan) -> None:
    table = Table(title="schema migrations")
    for column in ("version", "name", "state", "applied at"):
        table.add_column(column, no_wrap=True)
    styles = {"applied": "green", "pending": "yellow", "changed": "red", "unknown": "cyan"}
    for item in plan.statuses:
        applied = f"{item.applied_at:%Y-%m-%d %H:%M:%S %Z}" if item.applied_at else ""
        state = Text(item.state, style=styles[item.state])
        table.add_row(item.version, item.name, state, applied)
    console.print(table)
    waiting = [c for c in plan.unfinished if not c.validated]
    if waiting:
        console.print(f"{len(waiting)} constraint(s) not yet validated (rows violate them):")
        for constraint in waiting:
            console.print(
                f"  {constraint.table_name}.{constraint.constraint_name}: {constraint.definition}",
                markup=False,
            )


def _print_plan(console: Console, plan: Plan) -> None:
    if not plan.pending:
        console.print("-- nothing to apply", markup=False)
    for planned in plan.pending:
        runs = planned.runs
        how = "in one transaction" if runs.transactional else "outside a transaction"
        title = f"{planned.recorded.version}_{planned.recorded.name}"
        if planned.adopts:
            title += f" by adopting this TypeScript-era database ({runs.path.name})"
        console.print(f"-- == {title}, {how} ==", markup=False)
        if runs.transactional:
            console.print(runs.text.strip(), markup=False, highlight=False)
            continue
        total = 0.0
        for number, step in enumerate(runs.steps(), start=1):
            estimate = step.estimate(plan.rows)
            total += estimate or 0.0
            about = f"~{estimate:.1f} s" if estimate is not None else "no estimate"
            locks = step.locks or "see below"
            console.print(f"-- step {number}: {about}; locks: {locks}", soft_wrap=True)
            console.print(step.sql, markup=False, highlight=False)
        console.print(f"-- estimated total: ~{total:,.1f} s from the tables' row counts")
    waiting = [c for c in plan.unfinished if not c.validated]
    if waiting or plan.pending:
        console.print(
            "-- then: VALIDATE CONSTRAINT for every constraint added NOT VALID "
            "(SHARE UPDATE EXCLUSIVE: reads and writes go on), each in its own transaction",
            markup=False,
        )


# -- seed -----------------------------------------------------------------------


@app.command()
def seed(
    rows: Annotated[int, typer.Option("--rows", min=1, help="How many diamonds.")] = 10_000,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Random seed: the same seed gives the same rows.")
    ] = 0,
    batch_size: Annotated[
        int,
        typer.Option("--batch-size", min=1, max=50_000, help="Diamonds per upsert_diamonds call."),
    ] = 5_000,
    database_url: DatabaseUrl = None,
) -> None:
    """Fill the database with synthetic but realistic inventory, through upsert_diamonds."""
    from .synthetic import seed_diamonds

    url = _require_url(database_url)
    _probe(url)
    console = _stdout()

    async def fill(progress: Progress) -> int:
        task = progress.add_task("seeding diamonds", total=rows)

        def advance(done: int) -> None:
            progress.update(task, advance=done)

        async with _database(url, max_size=2, **bulk_settings()) as db:
            return await seed_diamonds(db, rows, seed=seed, batch_size=batch_size, on_batch=advance)

    started = time.perf_counter()
    with progress_bars(console) as progress:
        written = asyncio.run(fill(progress))
    elapsed = time.perf_counter() - started
    console.print(
        f"seeded {written:,} diamonds (seed {seed}) into {where(url)} in {elapsed:.1f} s: "
        f"{written / elapsed:,.0f} rows/s"
    )


# -- queries and check ----------------------------------------------------------


def _registry(folder: Path | None) -> Registry:
    return Registry(folder) if folder is not None else Registry()


@app.command()
def queries(
    name: Annotated[
        str | None, typer.Argument(help="Print this statement's SQL.", show_default=False)
    ] = None,
    queries_dir: QueriesDir = None,
) -> None:
    """List every named statement (file, kind, role, comment); with NAME, print its SQL."""
    registry = _registry(queries_dir)
    console = _stdout()
    if name is None:
        table = Table(title=f"{len(registry)} statements in {registry.folder}")
        for column in ("statement", "file", "kind", "role", "comment"):
            table.add_column(column, overflow="fold")
        for statement in sorted(registry, key=lambda s: (s.domain, s.name)):
            table.add_row(
                statement.name,
                f"{statement.domain}.sql",
                statement.kind,
                statement.role,
                statement.comment,
            )
        console.print(table)
        return
    if name not in registry:
        close = difflib.get_close_matches(name, [s.name for s in registry], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; see `{PROG} queries`"
        raise UserError(f"no statement named {name!r}{hint}", EXIT_USAGE)
    statement = registry[name]
    record = f", record {statement.record.__name__}" if statement.record else ""
    print(
        f"-- {statement.name}: {statement.domain}.sql, {statement.kind}, {statement.role}{record}"
    )
    print(f"-- {statement.comment}")
    print(statement.sql.strip())


@app.command()
def check(database_url: DatabaseUrl = None, queries_dir: QueriesDir = None) -> None:
    """Validate every statement against the database's schema (prepared, never run).

    Exits 1 naming the broken statements: the check the test suite runs, for a
    DBA reviewing a change to queries/.
    """
    url = _require_url(database_url)
    registry = _registry(queries_dir)
    _probe(url)
    problems = registry.check(url)
    if problems:
        console = _stderr()
        for problem in problems:
            console.print(
                f"BROKEN {problem.domain}.sql {problem.name}: {problem.message}", markup=False
            )
        raise UserError(f"{len(problems)} of {len(registry)} statements are broken")
    _stdout().print(f"all {len(registry)} statements are valid against {where(url)}")


# -- search ---------------------------------------------------------------------


def _split(value: str | None) -> list[str] | None:
    """A comma-separated flag value as a list (None when the flag is absent)."""
    if value is None:
        return None
    return [part.strip() for part in value.split(",") if part.strip()]


ListOption = Annotated[str | None, typer.Option(help="Comma-separated values.", show_default=False)]
NumberOption = Annotated[str | None, typer.Option(show_default=False)]
IntOption = Annotated[int | None, typer.Option(show_default=False)]
BoolOption = Annotated[bool | None, typer.Option(show_default=False)]


def _switch(name: str, help: str) -> Any:
    """A --name/--no-name option for a boolean filter (absent: no filter)."""
    return typer.Option(f"--{name}/--no-{name}", help=help, show_default=False)


Cents = Annotated[int | None, typer.Option(help="Cents, inclusive.", show_default=False)]


@app.command()
def search(
    supplier: ListOption = None,
    shape: ListOption = None,
    carat_min: NumberOption = None,
    carat_max: NumberOption = None,
    colors: ListOption = None,
    clarities: ListOption = None,
    cuts: ListOption = None,
    polishes: ListOption = None,
    symmetries: ListOption = None,
    fluorescences: ListOption = None,
    fluorescence_intensities: ListOption = None,
    certificate_labs: ListOption = None,
    lab_grown: Annotated[bool | None, _switch("lab-grown", "Lab-grown or natural.")] = None,
    treated: Annotated[bool | None, _switch("treated", "Treated or not.")] = None,
    fancy_color: Annotated[
        bool | None, _switch("fancy-color", "Has a fancy colour or has none.")
    ] = None,
    fancy_colors: ListOption = None,
    fancy_intensities: ListOption = None,
    price_min: Cents = None,
    price_max: Cents = None,
    retail_price_min: Cents = None,
    retail_price_max: Cents = None,
    rating_min: IntOption = None,
    rating_max: IntOption = None,
    ratio_min: NumberOption = None,
    ratio_max: NumberOption = None,
    table_min: NumberOption = None,
    table_max: NumberOption = None,
    depth_pct_min: NumberOption = None,
    depth_pct_max: NumberOption = None,
    crown_angle_min: NumberOption = None,
    crown_angle_max: NumberOption = None,
    pavilion_angle_min: NumberOption = None,
    pavilion_angle_max: NumberOption = None,
    length_min: NumberOption = None,
    length_max: NumberOption = None,
    width_min: NumberOption = None,
    width_max: NumberOption = None,
    depth_mm_min: NumberOption = None,
    depth_mm_max: NumberOption = None,
    eye_clean: Annotated[bool | None, _switch("eye-clean", "Eye-clean or not.")] = None,
    no_bgm: Annotated[
        bool, typer.Option("--no-bgm", help="No brown, green or milky tint.")
    ] = False,
    availability: ListOption = None,
    page: IntOption = None,
    limit: IntOption = None,
    sort_by: Annotated[str | None, typer.Option(show_default=False)] = None,
    sort_order: Annotated[str | None, typer.Option(help="asc or desc.", show_default=False)] = None,
    cursor: Annotated[
        str | None, typer.Option(help="next_cursor of a previous page.", show_default=False)
    ] = None,
    count: Annotated[
        str | None, typer.Option(help="exact, capped or none.", show_default=False)
    ] = None,
    projection: Annotated[
        str, typer.Option(help="full (every column) or list (a result card's).")
    ] = "full",
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the composed SQL and parameters.")
    ] = False,
    explain: Annotated[
        bool, typer.Option("--explain", help="Print EXPLAIN ANALYZE of the page's statement.")
    ] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Search active diamonds, as the API does; flags are search_diamonds' filters."""
    from . import search as catalogue

    # Every flag but the last four is a DiamondSearch field of the same name.
    given = {name: value for name, value in locals().items() if name in catalogue.FIELDS}
    filters: dict[str, Any] = {
        name: _split(value) if name in catalogue.LIST_FILTERS else value
        for name, value in given.items()
        if value is not None  # no_bgm False (the flag absent) is no filter too
    }
    if sql and explain:
        raise UserError("--sql and --explain are alternatives: pass one", EXIT_USAGE)
    shown = catalogue.projection_arg(projection)
    if sql:
        _print_rendered(catalogue.render_search(**filters, projection=shown))
        return
    url = _require_url(database_url)
    _probe(url)
    if explain:
        for line in asyncio.run(_explain(url, filters, shown)):
            print(line)
        return
    page_ = asyncio.run(_search(url, filters, shown))
    print_page(_stdout(), page_, title="diamonds")


def _print_rendered(rendered: RenderedQuery) -> None:
    """A composed statement and its parameters, as --sql shows them."""
    print(rendered.sql.strip())
    print("-- parameters:")
    for key, value in rendered.params.items():
        print(f"--   {key} = {value!r}")


async def _search(url: str, filters: dict[str, Any], projection: Projection) -> Any:
    async with _database(url) as db:
        return await db.search_diamonds(**filters, projection=projection)


async def _explain(url: str, filters: dict[str, Any], projection: Projection) -> list[str]:
    from .search import EXPLAIN_ANALYZE, render_search

    rendered = render_search(**filters, projection=projection)
    async with _database(url) as db:
        rows = await db._composed(
            "explain_search", "reader", EXPLAIN_ANALYZE + rendered.sql, rendered.params, tuple_row
        )
    return [str(row[0]) for row in rows]


# -- facets ---------------------------------------------------------------------


def _search_filter_flags() -> list[inspect.Parameter]:
    """The flags of `search` that are search filters: `facets` takes the same ones."""
    from .search import PREDICATES

    flags = inspect.signature(search, eval_str=True).parameters.values()
    return [flag for flag in flags if flag.name in PREDICATES]


def _search_filters(flags: dict[str, Any]) -> dict[str, Any]:
    """The filters of the given filter flags: absent ones dropped, list flags split."""
    from .search import LIST_FILTERS

    return {
        name: _split(value) if name in LIST_FILTERS else value
        for name, value in flags.items()
        if value is not None
    }


def facets(
    facet: Annotated[
        str | None,
        typer.Option(
            "--facets", help="Comma-separated facets (default: all eight).", show_default=False
        ),
    ] = None,
    count: Annotated[str, typer.Option(help="exact or capped.")] = "exact",
    count_cap: Annotated[int, typer.Option(help="With --count capped.")] = 10_000,
    sql: Annotated[
        bool, typer.Option("--sql", help="Print the composed SQL and parameters.")
    ] = False,
    database_url: DatabaseUrl = None,
    **flags: Any,
) -> None:
    """Count active diamonds by facet, as a storefront's filter panel shows them.

    Filter flags are `search`'s; each facet's counts apply every filter but its own.
    """
    from .facets import FACET_NAMES, check_count_mode, compose_facets, facet_names
    from .search import build_search

    names = facet_names(_split(facet) or FACET_NAMES)
    options = {**_search_filters(flags), "count": count, "count_cap": count_cap}
    searched = build_search(None, options)
    check_count_mode(searched)
    if sql:
        _print_rendered(compose_facets(searched, names))
        return
    url = _require_url(database_url)
    _probe(url)

    async def count_facets() -> Any:
        async with _database(url) as db:
            return await db.search_facets(names, **options)

    print_facets(_stdout(), asyncio.run(count_facets()), title="facet counts")


# The command's flags: its own, then every filter flag of `search`.
facets.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # typer reads it
    [
        *(
            p
            for p in inspect.signature(facets, eval_str=True).parameters.values()
            if p.kind != p.VAR_KEYWORD
        ),
        *_search_filter_flags(),
    ]
)
app.command()(facets)


# -- runs, errors, status (the operations dashboard) ------------------------------

runs_app = typer.Typer(
    help="Batch runs: list (newest first), show, cancel, delete.", no_args_is_help=False
)
app.add_typer(runs_app, name="runs")
LimitOption = Annotated[int, typer.Option(help="Rows per page (at most 500).")]
CursorOption = Annotated[
    str | None, typer.Option(help="next page: the cursor printed under a page.", show_default=False)
]


@runs_app.callback(invoke_without_command=True)
def runs(
    ctx: typer.Context,
    supplier: Annotated[
        str | None, typer.Option(help="Only this feed.", show_default=False)
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="running, completed, partial, failed, cancelled or stalled.", show_default=False
        ),
    ] = None,
    limit: LimitOption = 50,
    cursor: CursorOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List runs, newest first, with their worker counts, rows and status."""
    if ctx.invoked_subcommand is not None:
        return
    page = _dashboard(
        database_url,
        lambda db: db.list_runs(
            supplier=supplier,
            status=status,  # type: ignore[arg-type]  # the library validates it
            limit=limit,
            cursor=cursor,
        ),
    )
    dashboard_view.print_runs(_stdout(), page)


RunId = Annotated[str, typer.Argument(help="The run's id (a UUID).", show_default=False)]


@runs_app.command("show")
def runs_show(run_id: RunId, database_url: DatabaseUrl = None) -> None:
    """One run: its status, counts, consolidation and partitions."""

    async def read(db: Database) -> Any:
        run = await db.get_run_details(run_id)
        if run is None:
            raise UserError(f"no run {run_id}")
        return run, await db.list_partitions(run_id), await db.get_consolidation_progress(run_id)

    run, partitions, consolidation = _dashboard(database_url, read)
    dashboard_view.print_run(_stdout(), run, partitions, consolidation)


@runs_app.command("cancel")
def runs_cancel(
    run_id: RunId,
    reason: Annotated[str, typer.Option(help="Why (kept with the run and its workers).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Cancel a run: its partitions in progress and running workers fail with the reason."""
    done = _dashboard(database_url, lambda db: db.cancel_run(run_id, reason))
    if done.cancelled_at is None:
        _stdout().print(f"run {run_id} had already finished: not cancelled", markup=False)
        return
    _stdout().print(
        f"run {run_id} cancelled: {done.partitions_failed} partition(s) and "
        f"{done.worker_runs_failed} running worker run(s) failed",
        markup=False,
    )


@runs_app.command("delete")
def runs_delete(run_id: RunId, database_url: DatabaseUrl = None) -> None:
    """Delete a finished or cancelled run with its partitions and worker runs (not its raw rows)."""
    _dashboard(database_url, lambda db: db.delete_run(run_id))
    _stdout().print(f"run {run_id} deleted (its raw payloads stay)", markup=False)


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`30m`, `1h`, `7d`, ... as a timedelta; UserError (usage) otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise UserError(
            f"--since: expected a duration like 30m, 1h or 7d, got {text!r}", EXIT_USAGE
        )
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


@app.command()
def errors(
    service: Annotated[
        str | None, typer.Option(help="Only this service.", show_default=False)
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Seen within this long: 30m, 1h, 7d.", show_default=False)
    ] = None,
    limit: LimitOption = 50,
    cursor: CursorOption = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The error log: groups of like errors, most recently seen first, with their counts."""
    after = None if since is None else datetime.now(UTC) - parse_duration(since)
    page = _dashboard(
        database_url,
        lambda db: db.list_errors(service=service, since=after, limit=limit, cursor=cursor),
    )
    dashboard_view.print_errors(_stdout(), page)


@app.command()
def status(database_url: DatabaseUrl = None) -> None:
    """The operations dashboard: live diamonds, last successful runs, the week's runs."""
    summary = _dashboard(database_url, lambda db: db.get_dashboard_summary())
    dashboard_view.print_summary(_stdout(), summary)


def _dashboard(database_url: str | None, read: Callable[[Database], Awaitable[T]]) -> T:
    """Run one dashboard call against the configured database."""
    url = _require_url(database_url)
    _probe(url)

    async def call() -> T:
        async with _database(url) as db:
            return await read(db)

    return asyncio.run(call())


# -- catalogue jobs -------------------------------------------------------------

jobs_app = typer.Typer(
    name="jobs",
    help="Catalogue jobs: re-price or re-rate the live diamonds after a rule change.",
    no_args_is_help=True,
)
app.add_typer(jobs_app)

JobId = Annotated[str, typer.Argument(help="The job's id.", show_default=False)]
WorkerId = Annotated[
    str | None,
    typer.Option("--worker-id", help="This worker's name (default: host:pid).", show_default=False),
]
BatchSize = Annotated[
    int, typer.Option("--batch-size", min=1, max=100_000, help="Diamonds per transaction.")
]
_JOB_FIELDS: Final = (
    "id", "kind", "status", "phase", "reason", "filters", "triggered_by_rule_id", "total",
    "processed", "changed", "restored", "skipped", "retry_count", "error", "checkpoint",
    "suppliers", "lease_holder", "lease_expires_at", "created_at", "started_at",
    "finished_at", "reverted_at",
)  # fmt: skip


def _worker(worker_id: str | None) -> str:
    import os
    import socket

    return worker_id or f"{socket.gethostname()}:{os.getpid()}"


def _search_flags(args: Sequence[str]) -> dict[str, Any]:
    """`jobs start`'s filter flags, parsed by the `search` command itself (the same flags).

    Only search filters are kept; list flags are split on commas as `search` does.
    """
    from .search import PREDICATES, DiamondSearch

    command = typer.main.get_command(app)
    search_command = command.commands["search"]  # type: ignore[attr-defined]  # a click Group
    context = search_command.make_context("search", list(args))
    types = {f.name: str(f.type) for f in dataclasses.fields(DiamondSearch)}
    filters: dict[str, Any] = {}
    for name, value in context.params.items():
        source = context.get_parameter_source(name)
        given = source is not None and source.name != "DEFAULT"
        if value is None or name not in PREDICATES:
            if given and value is not None and name != "database_url":
                raise UserError(f"jobs start: --{name.replace('_', '-')} is not a filter", 2)
            continue
        listed = "Values" in types[name] or "Sequence" in types[name]
        filters[name] = _split(value) if listed and isinstance(value, str) else value
    return filters


def _print_job(console: Console, job: Any) -> None:
    table = Table(show_header=False, box=None)
    for name in _JOB_FIELDS:
        value = getattr(job, name)
        table.add_row(name, "" if value is None else str(value))
    console.print(table)


@jobs_app.command("list")
def jobs_list(
    kind: Annotated[str | None, typer.Option(help="pricing or rating.", show_default=False)] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest jobs first."""
    url = _require_url(database_url)
    _probe(url)

    async def run() -> list[Any]:
        async with _database(url) as db:
            return await db.list_catalogue_jobs(kind, limit)  # type: ignore[arg-type]  # validated

    table = Table("id", "kind", "status", "processed", "changed", "created", "reason")
    for job in asyncio.run(run()):
        done = f"{job.processed:,}" + (f"/{job.total:,}" if job.total is not None else "")
        created = job.created_at.strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(job.id), job.kind, job.status, done, f"{job.changed:,}", created, job.reason
        )
    _stdout().print(table)


@jobs_app.command("show")
def jobs_show(job_id: JobId, database_url: DatabaseUrl = None) -> None:
    """Every field of one job."""
    url = _require_url(database_url)
    _probe(url)

    async def run() -> Any:
        async with _database(url) as db:
            return await db.get_catalogue_job(job_id)

    job = asyncio.run(run())
    if job is None:
        raise UserError(f"no catalogue job {job_id}")
    _print_job(_stdout(), job)


@jobs_app.command(
    "start", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
def jobs_start(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="pricing or rating.", show_default=False)],
    reason: Annotated[str, typer.Option(help="Why (kept with the job).")] = "manual",
    rule_id: Annotated[
        str | None, typer.Option(help="The rule change that triggered it.", show_default=False)
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Start a job over the live diamonds matching the search filters that follow
    (the flags of `diamond-db search`, e.g. --shape ROUND --carat-min 1)."""
    filters = _search_flags(ctx.args)
    url = _require_url(database_url)
    _probe(url)

    async def run() -> Any:
        async with _database(url) as db:
            return await db.start_catalogue_job(
                kind,  # type: ignore[arg-type]  # the library validates it
                reason=reason,
                filters=filters or None,
                triggered_by_rule_id=rule_id,
            )

    job = asyncio.run(run())
    _stdout().print(f"started {job.kind} job {job.id}: {job.total:,} diamonds", markup=False)


def _work_job(url: str, job_id: str, worker: str, batch_size: int, revert: bool) -> Any:
    """Work (or revert) a job with a progress bar: rows/s and ETA."""
    console = _stdout()

    async def run(progress: Progress) -> Any:
        async with _database(url) as db:
            job = await db.get_catalogue_job(job_id)
            if job is None:
                raise UserError(f"no catalogue job {job_id}")
            total = job.changed if revert or job.phase == "revert" else job.total
            task = progress.add_task(f"{job.kind} job", total=total)

            def advance(current: Any) -> None:
                done = current.restored + current.skipped if current.phase == "revert" else None
                progress.update(task, completed=current.processed if done is None else done)

            work = db.revert_catalogue_job if revert else db.run_catalogue_job
            return await work(job.id, worker_id=worker, batch_size=batch_size, on_progress=advance)

    with progress_bars(console) as progress:
        job = asyncio.run(run(progress))
    console.print(
        f"job {job.id} is {job.status}: {job.processed:,} processed, {job.changed:,} changed"
        + (
            f", {job.restored:,} restored, {job.skipped:,} skipped" if job.phase == "revert" else ""
        ),
        markup=False,
    )
    return job


@jobs_app.command("work")
def jobs_work(
    job_id: JobId,
    worker_id: WorkerId = None,
    batch_size: BatchSize = 5_000,
    database_url: DatabaseUrl = None,
) -> None:
    """Work a job to its end (resumes from its checkpoint; leaves if another worker holds it)."""
    url = _require_url(database_url)
    _probe(url)
    _work_job(url, job_id, _worker(worker_id), batch_size, revert=False)


@jobs_app.command("cancel")
def jobs_cancel(job_id: JobId, database_url: DatabaseUrl = None) -> None:
    """Cancel a pending or running job (a running one stops at its next batch)."""
    url = _require_url(database_url)
    _probe(url)

    async def run() -> Any:
        async with _database(url) as db:
            return await db.cancel_catalogue_job(job_id)

    job = asyncio.run(run())
    _stdout().print(f"job {job.id} is {job.status}", markup=False)


@jobs_app.command("revert")
def jobs_revert(
    job_id: JobId,
    worker_id: WorkerId = None,
    batch_size: BatchSize = 5_000,
    database_url: DatabaseUrl = None,
) -> None:
    """Restore what a completed or cancelled job changed (diamonds changed since are kept)."""
    url = _require_url(database_url)
    _probe(url)
    _work_job(url, job_id, _worker(worker_id), batch_size, revert=True)


@jobs_app.command("retry")
def jobs_retry(
    job_id: JobId,
    max_retries: Annotated[int, typer.Option(min=0, max=1000)] = 3,
    database_url: DatabaseUrl = None,
) -> None:
    """Make a failed job pending again (then `jobs work` resumes it, in its phase)."""
    url = _require_url(database_url)
    _probe(url)

    async def run() -> Any:
        async with _database(url) as db:
            return await db.retry_catalogue_job(job_id, max_retries=max_retries)

    job = asyncio.run(run())
    _stdout().print(f"job {job.id} is {job.status} (retry {job.retry_count})", markup=False)


# -- demo -----------------------------------------------------------------------


@app.command()
def demo(
    rows: Annotated[
        int, typer.Option("--rows", min=1, max=2_000_000, help="Supplier offers to ingest.")
    ] = 10_000,
    workers: Annotated[int, typer.Option("--workers", min=1, max=32)] = 4,
    consolidators: Annotated[int, typer.Option("--consolidators", min=1, max=16)] = 3,
    seed: Annotated[int, typer.Option("--seed", min=0)] = 7,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Run against this (empty) database instead of a throw-away one; "
            "DATABASE_URL is ignored.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """The whole pipeline in one command, on a throw-away PostgreSQL: ingest, consolidate,
    price, search, hold, buy."""
    from . import demo as demo_module

    console = _stdout()
    options = demo_module.DemoOptions(
        rows=rows, workers=workers, consolidators=consolidators, seed=seed
    )
    if database_url is not None:
        url = _require_url(database_url)
        _probe(url)
        summary = demo_module.run_on(url, options, console, progress_bars(console))
    else:
        summary = demo_module.run_throwaway(options, console, progress_bars(console))
    demo_module.print_summary(console, summary)


if __name__ == "__main__":  # pragma: no cover
    main()
