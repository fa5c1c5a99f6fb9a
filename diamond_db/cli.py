"""The `diamond-db` command line: demo, bootstrap, migrate, seed, queries, check, search,
runs, errors, status.

Built on typer (commands and flags) and rich (tables, progress bars). Every
user mistake (a bad flag value, a missing or unreachable database, a missing
schema) ends in a one-line message on stderr and a non-zero exit status,
never a traceback: exit status 2 for a bad invocation, 1 for a
failure (unreachable server, broken statements). `-v` shows the library's
statement log and, for an unexpected error, the traceback.
"""

from __future__ import annotations

import asyncio
import difflib
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
from .presentation import bulk_settings, print_page, progress_bars, where
from .records import MigrationStatus
from .registry import Registry, RegistryError, default_registry

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


@app.command()
def search(
    shape: ListOption = None,
    carat_min: NumberOption = None,
    carat_max: NumberOption = None,
    colors: ListOption = None,
    clarities: ListOption = None,
    cuts: ListOption = None,
    polishes: ListOption = None,
    symmetries: ListOption = None,
    fluorescences: ListOption = None,
    certificate_labs: ListOption = None,
    lab_grown: Annotated[
        bool | None, typer.Option("--lab-grown/--no-lab-grown", show_default=False)
    ] = None,
    treated: Annotated[
        bool | None, typer.Option("--treated/--no-treated", show_default=False)
    ] = None,
    price_min: Annotated[
        int | None, typer.Option(help="supplier_price_cents, inclusive.", show_default=False)
    ] = None,
    price_max: Annotated[
        int | None, typer.Option(help="supplier_price_cents, inclusive.", show_default=False)
    ] = None,
    rating_min: IntOption = None,
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

    given: dict[str, Any] = {
        "shape": _split(shape),
        "carat_min": carat_min,
        "carat_max": carat_max,
        "colors": _split(colors),
        "clarities": _split(clarities),
        "cuts": _split(cuts),
        "polishes": _split(polishes),
        "symmetries": _split(symmetries),
        "fluorescences": _split(fluorescences),
        "certificate_labs": _split(certificate_labs),
        "lab_grown": lab_grown,
        "treated": treated,
        "price_min": price_min,
        "price_max": price_max,
        "rating_min": rating_min,
        "availability": _split(availability),
        "page": page,
        "limit": limit,
        "sort_by": sort_by,
        "sort_order": sort_order,
        "cursor": cursor,
        "count": count,
    }
    filters = {key: value for key, value in given.items() if value is not None}
    if sql and explain:
        raise UserError("--sql and --explain are alternatives: pass one", EXIT_USAGE)
    if sql:
        rendered = catalogue.render_search(**filters)
        print(rendered.sql.strip())
        print("-- parameters:")
        for key, value in rendered.params.items():
            print(f"--   {key} = {value!r}")
        return
    url = _require_url(database_url)
    _probe(url)
    if explain:
        for line in asyncio.run(_explain(url, filters)):
            print(line)
        return
    page_ = asyncio.run(_search(url, filters))
    print_page(_stdout(), page_, title="diamonds")


async def _search(url: str, filters: dict[str, Any]) -> Any:
    async with _database(url) as db:
        return await db.search_diamonds(**filters)


async def _explain(url: str, filters: dict[str, Any]) -> list[str]:
    from .search import EXPLAIN_ANALYZE, render_search

    rendered = render_search(**filters)
    async with _database(url) as db:
        rows = await db._composed(
            "explain_search", "reader", EXPLAIN_ANALYZE + rendered.sql, rendered.params, tuple_row
        )
    return [str(row[0]) for row in rows]


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
