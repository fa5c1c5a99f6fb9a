"""queries/: every statement loads, follows the conventions, and is valid against the schema."""

from __future__ import annotations

import shutil
from dataclasses import fields
from pathlib import Path

import pytest

from diamond_db import default_registry
from diamond_db._resources import data_dir
from diamond_db.registry import Registry, RegistryError, to_numbered

DOMAINS = {
    "diamonds",
    "raw_diamonds",
    "run_metadata",
    "worker_runs",
    "pricing_rules",
    "api_keys",
    "hold_history",
    "purchase_history",
}


def test_every_statement_is_valid_against_the_schema(diamond_db_url: str) -> None:
    problems = default_registry().check(diamond_db_url)
    assert problems == [], "\n".join(f"{p.domain}.sql {p.name}: {p.message}" for p in problems)


def test_each_domain_has_its_file_and_every_statement_is_documented() -> None:
    registry = default_registry()
    assert {path.stem for path in registry.folder.glob("*.sql")} >= DOMAINS
    assert len(registry) > 0
    for statement in registry:
        assert statement.comment, statement.name
        assert statement.role in ("reader", "writer")
        assert statement.call.__name__ == statement.name


def test_records_match_their_statements_columns_by_name() -> None:
    for statement in default_registry():
        if statement.record is not None:
            assert fields(statement.record), statement.name


@pytest.fixture
def queries_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "queries"
    shutil.copytree(data_dir("queries"), folder)
    return folder


def _append(folder: Path, text: str, file: str = "run_metadata.sql") -> None:
    with (folder / file).open("a") as f:
        f.write("\n" + text)


def test_check_names_a_statement_with_a_typo(queries_copy: Path, diamond_db_url: str) -> None:
    _append(
        queries_copy,
        "-- name: broken_one(run_id)^\n-- Typo.\n-- role: reader\n"
        "SELECT * FROM run_metadatum WHERE run_id = :run_id;\n",
    )
    problems = Registry(queries_copy).check(diamond_db_url)
    assert [(p.name, p.domain) for p in problems] == [("broken_one", "run_metadata")]
    assert "run_metadatum" in problems[0].message


def test_check_catches_a_record_that_drifts_from_its_columns(
    queries_copy: Path, diamond_db_url: str
) -> None:
    _append(
        queries_copy,
        "-- name: drifted(run_id)^\n-- Extra column.\n-- role: reader\n"
        "-- record: RunMetadata\n"
        "SELECT *, 1 AS surprise FROM run_metadata WHERE run_id = :run_id;\n",
    )
    _append(
        queries_copy,
        "-- name: renamed(run_id)^\n-- Renamed column.\n-- role: reader\n"
        "-- record: WorkerCounters\n"
        "SELECT completed_workers AS done, expected_workers, failed_workers\n"
        "FROM run_metadata WHERE run_id = :run_id;\n",
    )
    problems = {p.name: p.message for p in Registry(queries_copy).check(diamond_db_url)}
    assert set(problems) == {"drifted", "renamed"}
    assert "surprise" in problems["drifted"]
    assert "completed_workers" in problems["renamed"]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("-- name: no_role(run_id)^\n-- Comment.\nSELECT :run_id;\n", "role"),
        ("-- name: no_comment(run_id)^\n-- role: reader\nSELECT :run_id;\n", "comment"),
        (
            "-- name: bad_record(run_id)^\n-- C.\n-- role: reader\n-- record: Nope\n"
            "SELECT :run_id;\n",
            "Nope",
        ),
        (
            "-- name: get_run_metadata(run_id)^\n-- Again.\n-- role: reader\nSELECT :run_id;\n",
            "both",
        ),
    ],
)
def test_convention_breaches_fail_at_load(queries_copy: Path, text: str, error: str) -> None:
    _append(queries_copy, text, file="worker_runs.sql")
    with pytest.raises(RegistryError, match=error):
        Registry(queries_copy)


def test_undeclared_parameter_fails_at_load(queries_copy: Path) -> None:
    _append(queries_copy, "-- name: sloppy()^\n-- C.\n-- role: reader\nSELECT :run_id;\n")
    with pytest.raises(Exception, match="undeclared parameter"):
        Registry(queries_copy)


def test_placeholders_become_numbered_in_declaration_order() -> None:
    sql = "SELECT %(b)s, %(a)s, %(b)s, 'x%%'"
    assert to_numbered(sql, ("a", "b")) == "SELECT $2, $1, $2, 'x%'"
