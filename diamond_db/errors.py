"""The library's own errors.

Database errors are not wrapped: they propagate as psycopg errors and keep
their SQLSTATE (`err.sqlstate == "23505"`). What the library itself decides
raises one of these, all under `DiamondDBError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from psycopg_pool import PoolTimeout


class DiamondDBError(Exception):
    """Base of every error raised by diamond_db itself."""


class ValidationError(DiamondDBError, ValueError):
    """An argument is invalid; raised before any SQL is sent.

    `argument` names the offending argument (for a batch, with the row's
    index), so a caller can point at it without parsing the message.
    """

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(f"{argument}: {message}")
        self.argument = argument


class NotFoundError(DiamondDBError, LookupError):
    """An operation addressed a row that does not exist."""


class IdempotencyConflict(DiamondDBError):
    """A replayed idempotency key came with different content than the stored row."""

    def __init__(self, idempotency_key: str, message: str) -> None:
        super().__init__(f"idempotency key {idempotency_key!r}: {message}")
        self.idempotency_key = idempotency_key


class JobConflict(DiamondDBError):
    """A catalogue job cannot make this move: another job of its kind is active, or
    its status does not allow it (a retry past max_retries, a cancel of a finished job).

    The one-active-job rule is the database's (a partial unique index), so this
    comes after SQL was sent.
    """


class DuplicateApiKey(DiamondDBError):
    """create_api_key: a key with this hash is already registered.

    The database decides (the INSERT inserts nothing), so unlike a
    ValidationError it comes after SQL was sent. Neither its message nor
    anything it carries contains the hash.
    """

    def __init__(self) -> None:
        super().__init__("an API key with this hash is already registered (hash not shown)")


class RunStateError(DiamondDBError):
    """The run's status does not allow the operation (delete_run of a running run).

    `status` is the run's status as the refusing statement saw it.
    """

    def __init__(self, run_id: UUID, status: str, message: str) -> None:
        super().__init__(f"run {run_id} is {status}: {message}")
        self.run_id = run_id
        self.status = status


class ClaimsInProgress(DiamondDBError):
    """purge_raw_payloads: consolidators hold claimed rows of the feed; nothing was purged.

    `claims` lists (claimed_by, rows claimed) per consolidator. Purge once they
    finish (or reset_stuck_claims returns a crashed one's rows), or pass force=True.
    """

    def __init__(self, supplier: str, claims: tuple[tuple[str | None, int], ...]) -> None:
        held = ", ".join(f"{who or '(unnamed)'}: {count}" for who, count in claims)
        super().__init__(
            f"supplier {supplier!r} has raw rows claimed by consolidators ({held}); "
            "not purged (pass force=True to purge anyway)"
        )
        self.supplier = supplier
        self.claims = claims


class DatabaseUnavailable(DiamondDBError, PoolTimeout):
    """The server could not be reached within the connect timeout.

    Subclasses psycopg_pool's PoolTimeout, so code that already handles a
    pool timeout keeps working; the driver's error is the `__cause__`.
    """

    def __init__(self, host: str, port: str, message: str) -> None:
        super().__init__(f"database at {host}:{port} is unavailable: {message}")
        self.host = host
        self.port = port


class MigrationError(DiamondDBError):
    """A migration failed or was refused; the message names the migration and why.

    `version` is the migration concerned (None when the refusal is about the
    database as a whole); `violations` lists the rows that keep a constraint
    from being validated, when that is the reason.
    """

    def __init__(
        self,
        message: str,
        *,
        version: str | None = None,
        violations: tuple[ConstraintViolations, ...] = (),
    ) -> None:
        super().__init__(message)
        self.version = version
        self.violations = violations


class SchemaMismatch(DiamondDBError):
    """The database lacks migrations this version of the library needs.

    Raised when a Database opens; `missing` lists the versions, and the
    message says to run `diamond-db migrate`.
    """

    def __init__(self, missing: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass(frozen=True, slots=True)
class ConstraintViolations:
    """Rows that violate a constraint `migrate` could not validate.

    `rows` holds up to ten examples as (key, column, value) — values of
    secret-bearing columns (key_hash) are masked —; `count` is how many rows
    violate it in all.
    """

    table: str
    constraint: str
    count: int
    rows: tuple[tuple[str, str, str], ...]

    def __str__(self) -> str:
        shown = ", ".join(f"{key}: {column}={value}" for key, column, value in self.rows)
        more = f" (first {len(self.rows)} shown)" if self.count > len(self.rows) else ""
        return f"{self.table}.{self.constraint}: {self.count} row(s) violate it{more}: {shown}"
