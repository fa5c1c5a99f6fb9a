"""Settings: one place where arguments, environment and defaults meet.

A keyword argument wins; otherwise the environment variable; otherwise the
built-in default. Connection URLs come from the environment only for the
process-wide default database (`get_pool()`), never for an explicit
`Database(url)`, so a test or tool never reaches production by accident.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Final, Literal, TypeAlias

from .errors import ValidationError


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET: Final = _Unset.UNSET
"""Marks a keyword argument that was not passed (None is a real value for some)."""

Unset: TypeAlias = Literal[_Unset.UNSET]
Seconds: TypeAlias = float | timedelta


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Database needs to know, resolved and validated."""

    url: str
    read_url: str | None = None
    min_size: int = 2
    max_size: int = 15
    max_idle: float = 30.0
    timeout: float = 5.0
    statement_timeout: float | None = None
    prepare_threshold: int | None = None
    slow_query_threshold: float = 0.5


def _env(env: Mapping[str, str], name: str) -> str | Unset:
    raw = env.get(name, "").strip()
    return raw if raw else UNSET


def _env_ms(env: Mapping[str, str], name: str) -> float | Unset:
    raw = _env(env, name)
    if raw is UNSET:
        return UNSET
    try:
        return float(raw) / 1000.0
    except ValueError:
        raise ValidationError(name, f"expected milliseconds, got {raw!r}") from None


def _env_int(env: Mapping[str, str], name: str, *, none: bool = False) -> int | Unset | None:
    raw = _env(env, name)
    if raw is UNSET:
        return UNSET
    if none and raw.lower() == "none":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(name, f"expected an integer, got {raw!r}") from None


def _first(given: object, from_env: object, default: object) -> object:
    """The argument if passed, else the environment's value if set, else the default."""
    if given is not UNSET:
        return given
    return default if from_env is UNSET else from_env


def _seconds(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, f"expected seconds or a timedelta, got {value!r}")
    if not value >= 0:  # also rejects NaN
        raise ValidationError(name, "must be a non-negative number of seconds")
    return float(value)


def _positive_seconds(name: str, value: object) -> float:
    seconds = _seconds(name, value)
    if not seconds:
        raise ValidationError(name, "must be a positive number of seconds")
    return seconds


def _count(name: str, value: object, *, none: bool = False) -> int | None:
    if value is None and none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(name, f"expected a non-negative integer, got {value!r}")
    return value


def resolve_settings(
    url: str,
    *,
    read_url: str | None = None,
    min_size: int | Unset = UNSET,
    max_size: int | Unset = UNSET,
    max_idle: Seconds | Unset = UNSET,
    timeout: Seconds | Unset = UNSET,
    statement_timeout: Seconds | Unset | None = UNSET,
    prepare_threshold: int | Unset | None = UNSET,
    slow_query_threshold: Seconds | Unset = UNSET,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Merge arguments, environment and defaults into checked Settings."""
    env = os.environ if env is None else env
    if not isinstance(url, str) or not url.strip():
        raise ValidationError("url", "a PostgreSQL connection URL is required")
    d = Settings(url=url)
    min_size_ = _count("min_size", _first(min_size, _env_int(env, "PG_POOL_MIN"), d.min_size))
    max_size_ = _count("max_size", _first(max_size, _env_int(env, "PG_POOL_MAX"), d.max_size))
    if min_size_ is None or max_size_ is None or max_size_ < 1 or min_size_ > max_size_:
        raise ValidationError("max_size", "must be at least 1 and at least min_size")
    return Settings(
        url=url,
        read_url=read_url,
        min_size=min_size_,
        max_size=max_size_,
        max_idle=_positive_seconds(
            "max_idle", _first(max_idle, _env_ms(env, "PG_IDLE_TIMEOUT_MS"), d.max_idle)
        ),
        timeout=_positive_seconds(
            "timeout", _first(timeout, _env_ms(env, "PG_CONN_TIMEOUT_MS"), d.timeout)
        ),
        statement_timeout=_seconds(
            "statement_timeout",
            _first(statement_timeout, _env_ms(env, "PG_STATEMENT_TIMEOUT_MS"), None),
        ),
        prepare_threshold=_count(
            "prepare_threshold",
            _first(
                prepare_threshold,
                _env_int(env, "PG_PREPARE_THRESHOLD", none=True),
                d.prepare_threshold,
            ),
            none=True,
        ),
        slow_query_threshold=_seconds(
            "slow_query_threshold",
            _first(
                slow_query_threshold,
                _env_ms(env, "DIAMOND_DB_SLOW_QUERY_MS"),
                d.slow_query_threshold,
            ),
        )
        or 0.0,
    )


def settings_from_env(env: Mapping[str, str] | None = None) -> Settings:
    """Settings of the process-wide default database, from the environment."""
    env = os.environ if env is None else env
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        raise ValidationError(
            "DATABASE_URL",
            "environment variable is not set; set it to a PostgreSQL URL "
            "(postgresql://user:pass@host:5432/dbname) or create a Database(url) yourself",
        )
    read_url = env.get("DATABASE_READ_URL", "").strip() or None
    return resolve_settings(url, read_url=read_url, env=env)
