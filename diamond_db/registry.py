"""The statement registry: every SQL statement the library can send, from queries/*.sql.

aiosql ("apsycopg", the async psycopg 3 adapter) parses the files into
callables; this module adds what aiosql does not know: each statement's role
(reader or writer, for replica routing), the record its rows map to, its
domain file and its comment. A statement's header looks like::

    -- name: get_diamond_by_id(id)^
    -- Fetch one live diamond by primary key.
    -- role: reader
    -- record: Diamond
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, is_dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

import aiosql
import psycopg

from . import records
from ._resources import data_dir

Role = Literal["reader", "writer"]

_KINDS = {
    "SELECT": "rows",
    "SELECT_ONE": "row",
    "SELECT_VALUE": "value",
    "INSERT_RETURNING": "returning",
    "INSERT_UPDATE_DELETE": "rowcount",
    "INSERT_UPDATE_DELETE_MANY": "many",
    "SCRIPT": "script",
}
_ROLES: dict[str, Role] = {"reader": "reader", "writer": "writer"}
_META = re.compile(r"^(role|record):\s*(\S+)\s*$")
_PLACEHOLDER = re.compile(r"%\((\w+)\)s|%%")


class RegistryError(Exception):
    """A queries/ file breaks the registry's conventions (raised at load)."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One named statement and what the facade needs to run it."""

    name: str
    domain: str
    kind: str
    role: Role
    record: type[Any] | None
    comment: str
    sql: str
    parameters: tuple[str, ...]
    call: Callable[..., Any]


@dataclass(frozen=True, slots=True)
class Problem:
    """A statement the connected database rejects, or whose columns drift from its record."""

    name: str
    domain: str
    message: str


class Registry:
    """All statements of a queries/ folder, by name."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or data_dir("queries")
        self._statements: dict[str, Statement] = {}
        for path in sorted(self.folder.glob("*.sql")):
            for statement in _load_file(path):
                if statement.name in self._statements:
                    other = self._statements[statement.name].domain
                    raise RegistryError(
                        f"{statement.name} is defined in both {other}.sql and {path.name}"
                    )
                self._statements[statement.name] = statement

    def __getitem__(self, name: str) -> Statement:
        return self._statements[name]

    def __contains__(self, name: object) -> bool:
        return name in self._statements

    def __iter__(self) -> Iterator[Statement]:
        return iter(self._statements.values())

    def __len__(self) -> int:
        return len(self._statements)

    def check(self, conninfo: str) -> list[Problem]:
        """Prepare and describe every statement on a live database; list what fails.

        Nothing is executed. Catches unknown tables or columns, type errors,
        and a record whose fields are not exactly its statement's columns.
        """
        problems: list[Problem] = []
        with psycopg.Connection.connect(conninfo, autocommit=True) as conn:
            for statement in self:
                message = _check_one(conn.pgconn, statement)
                if message:
                    problems.append(Problem(statement.name, statement.domain, message))
        return problems


@cache
def default_registry() -> Registry:
    """The registry of the shipped queries/ folder, loaded once per process."""
    return Registry()


def _load_file(path: Path) -> Iterator[Statement]:
    queries = aiosql.from_path(path, "apsycopg")
    if not queries.is_aio:  # the sync adapter would silently write nothing
        raise RegistryError("aiosql did not load the async psycopg adapter")
    for name in queries.available_queries:
        fn = getattr(queries, name)
        role, record, comment = _parse_doc(name, path, fn.__doc__ or "")
        yield Statement(
            name=name,
            domain=path.stem,
            kind=_KINDS[fn.operation.name],
            role=role,
            record=record,
            comment=comment,
            sql=fn.sql,
            parameters=tuple(fn.parameters or ()),
            call=fn,
        )


def _parse_doc(name: str, path: Path, doc: str) -> tuple[Role, type[Any] | None, str]:
    role: str | None = None
    record: type[Any] | None = None
    comment: list[str] = []
    for line in doc.splitlines():
        match = _META.match(line.strip())
        if match is None:
            comment.append(line.strip())
        elif match[1] == "role":
            role = match[2]
        else:
            record = getattr(records, match[2], None)
            if not (isinstance(record, type) and is_dataclass(record)):
                raise RegistryError(f"{path.name}: {name}: unknown record {match[2]!r}")
    text = " ".join(line for line in comment if line)
    if not text:
        raise RegistryError(f"{path.name}: {name}: needs a comment saying what it does")
    checked = _ROLES.get(role or "")
    if checked is not None:
        return checked, record, text
    raise RegistryError(f"{path.name}: {name}: needs a '-- role: reader|writer' line")


def to_numbered(sql: str, parameters: tuple[str, ...]) -> str:
    """Rewrite psycopg's %(name)s placeholders as $1, $2 ... for a server-side PREPARE."""
    order = {name: i for i, name in enumerate(parameters, start=1)}

    def replace(match: re.Match[str]) -> str:
        if match[0] == "%%":
            return "%"
        name = match[1]
        if name not in order:
            order[name] = len(order) + 1
        return f"${order[name]}"

    return _PLACEHOLDER.sub(replace, sql)


def _check_one(pgconn: Any, statement: Statement) -> str | None:
    if statement.kind == "script":
        return None
    handle = f"_check_{statement.name}".encode()
    prepared = pgconn.prepare(handle, to_numbered(statement.sql, statement.parameters).encode())
    if prepared.status != psycopg.pq.ExecStatus.COMMAND_OK:
        error = prepared.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY)
        return bytes(error or b"prepare failed").decode()
    described = pgconn.describe_prepared(handle)
    pgconn.exec_(b"DEALLOCATE " + handle)
    if statement.record is None:
        return None
    columns = [described.fname(i).decode() for i in range(described.nfields)]
    expected = [f.name for f in fields(statement.record)]
    if sorted(columns) != sorted(expected) or len(set(columns)) != len(columns):
        missing = sorted(set(expected) - set(columns))
        extra = sorted(set(columns) - set(expected))
        return (
            f"columns differ from {statement.record.__name__}: "
            f"missing {missing}, unexpected {extra}"
        )
    return None
