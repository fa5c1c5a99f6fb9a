"""The dashboard commands (runs, show, cancel, delete, errors, status), checked in the database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from helpers import scalar

from diamond_db import Database, cli
from diamond_db.testing import reset_database


def invoke(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `diamond-db ARGS...` in-process: exit status, stdout, stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    captured = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


async def two_runs(url: str) -> tuple[UUID, UUID]:
    async with Database(url, min_size=1) as db:
        running = await db.create_run_metadata("full", 1, supplier="vdb")
        await db.init_partition(running.run_id, "p0")
        await db.create_worker_run(running.run_id, "p0", uuid4(), {"estimated_records": 500})
        done = await db.create_run_metadata("full", 0)
        await db.complete_run(done.run_id)
        await db.log_error("consolidator", "stone 17 rejected", run_id=running.run_id)
        return running.run_id, done.run_id


def test_runs_show_cancel_delete_errors_and_status(
    diamond_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("DATABASE_URL", diamond_db_url)
    reset_database(diamond_db_url)
    running, done = asyncio.run(two_runs(diamond_db_url))

    code, out, _ = invoke(capsys, "runs")
    assert code == 0
    assert str(running) in out
    assert str(done) in out
    code, out, _ = invoke(capsys, "runs", "--supplier", "vdb", "--status", "running")
    assert (code, str(running) in out, str(done) in out) == (0, True, False)
    code, out, _ = invoke(capsys, "runs", "show", str(running))
    assert code == 0
    assert "p0" in out
    assert "in progress" in out

    code, _, err = invoke(capsys, "runs", "delete", str(running))
    assert code == 1
    assert "running" in err  # RunStateError, one line
    code, out, _ = invoke(capsys, "runs", "cancel", str(running), "--reason", "wrong feed")
    assert code == 0
    assert "1 partition(s)" in out
    assert (
        scalar(diamond_db_url, "SELECT cancel_reason FROM run_metadata WHERE run_id = %s", running)
        == "wrong feed"
    )
    code, out, _ = invoke(capsys, "runs", "delete", str(running))
    assert code == 0
    assert scalar(diamond_db_url, "SELECT count(*) FROM run_metadata") == 1
    code, _, err = invoke(capsys, "runs", "show", str(uuid4()))
    assert code == 1

    code, out, _ = invoke(capsys, "errors", "--service", "consolidator", "--since", "1h")
    assert code == 0
    assert "stone <n> rejected" in out
    code, _, err = invoke(capsys, "errors", "--since", "soon")
    assert code == 2
    assert "--since" in err

    code, out, _ = invoke(capsys, "status")
    assert code == 0
    assert "live diamonds: 0" in out
    assert str(done) in out  # nivoda's last successful run


def test_durations() -> None:
    assert cli.parse_duration("90m") == timedelta(minutes=90)
    assert cli.parse_duration("7d") == timedelta(days=7)
