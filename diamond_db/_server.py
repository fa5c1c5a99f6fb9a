"""The one throw-away PostgreSQL resolver, shared by the tests, the pytest plugin, the CLI demo and
the benchmarks.

Order: the DIAMOND_DB_TEST_URL variable (never DATABASE_URL, which may be
production); a testcontainers Postgres when a Docker daemon answers; a
cluster made with the local PostgreSQL binaries (initdb/pg_ctl) in a temp
folder. As root, the binaries run as the `postgres` system user, since initdb
and pg_ctl refuse to run as root.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from ._resources import bootstrap_sql

TEST_URL_VARIABLE = "DIAMOND_DB_TEST_URL"


class ServerUnavailable(RuntimeError):
    """No PostgreSQL could be found or started; the message says what to install."""


@dataclass
class Server:
    """A PostgreSQL server to create throw-away databases on.

    `admin_url` points at its maintenance database. A server this process
    started (a local cluster) can also be stopped, started and restarted,
    which the fault tests use.
    """

    admin_url: str
    kind: str
    cluster: LocalCluster | None = None
    _stop: list[contextlib.ExitStack] = field(default_factory=list, repr=False)

    def create_database(self, prefix: str = "diamond_db_test") -> str:
        """Create an empty uniquely named database; return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return make_conninfo(self.admin_url, dbname=name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by create_database (its connections are terminated)."""
        name = str(conninfo_to_dict(url)["dbname"])
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    @contextlib.contextmanager
    def database(self, prefix: str = "diamond_db_test", *, bootstrap: bool = True) -> Iterator[str]:
        """A new database (with the schema unless `bootstrap=False`), dropped afterwards."""
        url = self.create_database(prefix)
        try:
            if bootstrap:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(bootstrap_sql().encode())
            yield url
        finally:
            self.drop_database(url)

    def close(self) -> None:
        """Stop whatever this resolver started."""
        while self._stop:
            self._stop.pop().close()


def resolve_server() -> Server:
    """Find or start a PostgreSQL server, in the documented order."""
    url = os.environ.get(TEST_URL_VARIABLE, "").strip()
    if url:
        return Server(admin_url=url, kind=TEST_URL_VARIABLE)
    reasons: list[str] = []
    docker = _try_testcontainers(reasons)
    if docker is not None:
        return docker
    try:
        cluster = LocalCluster.create()
    except ServerUnavailable as exc:
        reasons.append(str(exc))
        raise ServerUnavailable(
            "no PostgreSQL server for diamond_db: "
            + "; ".join(reasons)
            + f". Set {TEST_URL_VARIABLE} to a server you can create databases on, start a "
            "Docker daemon, or install PostgreSQL's server binaries (Debian: apt-get install "
            "postgresql)."
        ) from exc
    stack = contextlib.ExitStack()
    stack.callback(cluster.destroy)
    return Server(admin_url=cluster.url, kind="local", cluster=cluster, _stop=[stack])


@contextlib.contextmanager
def throwaway_database() -> Iterator[tuple[Server, str]]:
    """A server and a fresh empty database on it, both gone afterwards."""
    server = resolve_server()
    try:
        with server.database(bootstrap=False) as url:
            yield server, url
    finally:
        server.close()


def _try_testcontainers(reasons: list[str]) -> Server | None:
    try:
        import docker
    except ImportError:
        reasons.append("testcontainers is not installed (pip install testcontainers to use Docker)")
        return None
    try:
        docker.from_env(timeout=3).ping()
    except Exception:
        reasons.append("no Docker daemon answers")
        return None
    try:  # testcontainers >= 4.14 moved the module
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        from testcontainers.postgres import PostgresContainer
    container = PostgresContainer("postgres:15-alpine", driver=None)
    container.start()
    stack = contextlib.ExitStack()
    stack.callback(container.stop)
    return Server(admin_url=container.get_connection_url(), kind="docker", _stop=[stack])


@dataclass
class LocalCluster:
    """A PostgreSQL cluster in a temp folder, run by the local binaries."""

    bindir: Path
    datadir: Path
    port: int
    user: str | None  # the system user the binaries run as, when we are root

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @classmethod
    def create(cls) -> LocalCluster:
        """initdb a new cluster and start it on a free loopback port."""
        bindir = find_bindir()
        user = None
        if os.geteuid() == 0:
            user = "postgres"
            try:
                pwd.getpwnam(user)
            except KeyError:
                raise ServerUnavailable(
                    "running as root and there is no 'postgres' system user to run initdb as"
                ) from None
        base = Path(tempfile.mkdtemp(prefix="diamond_db_pg_"))
        if user is not None:
            shutil.chown(base, user=user)
        cluster = cls(bindir=bindir, datadir=base / "data", port=_free_port(), user=user)
        cluster._run(
            "initdb",
            "-D",
            str(cluster.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        cluster._configure()
        cluster.start()
        return cluster

    def _configure(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.datadir.parent}'",
            "max_connections": "300",
            "shared_buffers": "256MB",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "wal_level": "replica",
            "max_wal_senders": "4",
            "logging_collector": "off",
        }
        with (self.datadir / "postgresql.conf").open("a") as conf:
            conf.write("\n# diamond_db throw-away cluster\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        with (self.datadir / "pg_hba.conf").open("a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (mode: smart, fast or immediate)."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        """Restart the server on the same port."""
        self._pg_ctl("restart", "-m", mode)

    def _pg_ctl(self, action: str, *args: str) -> None:
        log = self.datadir.parent / "server.log"
        where = ["-D", str(self.datadir), "-l", str(log), "-o", f"-p {self.port}"]
        self._run("pg_ctl", *where, *args, "-w", "-t", "60", action)

    def replicate(self) -> LocalCluster:
        """A streaming hot standby of this cluster (pg_basebackup -R), started on its own port."""
        base = Path(tempfile.mkdtemp(prefix="diamond_db_replica_"))
        if self.user is not None:
            shutil.chown(base, user=self.user)
        replica = LocalCluster(self.bindir, base / "data", _free_port(), self.user)
        host = ("-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres")
        replica._run(
            "pg_basebackup", "-D", str(replica.datadir), *host, "-R", "-X", "stream", "-c", "fast"
        )
        with (replica.datadir / "postgresql.conf").open("a") as conf:
            conf.write(f"unix_socket_directories = '{base}'\nhot_standby = on\n")
        replica.start()
        return replica

    def destroy(self) -> None:
        """Stop the server and delete its folder."""
        with contextlib.suppress(subprocess.CalledProcessError, ServerUnavailable):
            self.stop("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bindir / program), *args]
        if self.user is not None:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            log = self.datadir.parent / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise ServerUnavailable(
                f"{program} failed ({done.returncode}): {done.stderr.strip()}\n{tail}"
            )


def find_bindir() -> Path:
    """The folder holding initdb and pg_ctl: `pg_config --bindir`, else /usr/lib/postgresql/*."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if done.returncode == 0:
            candidates.append(Path(done.stdout.strip()))
    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    ]
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise ServerUnavailable(
        "no initdb/pg_ctl found (pg_config --bindir, /usr/lib/postgresql/*/bin)"
    )


def _version(path: str) -> int:
    part = Path(path).parent.name
    return int(part) if part.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class PgBouncer:
    """A PgBouncer in transaction pooling mode in front of one PostgreSQL server, on loopback.

    Client authentication is `trust` (loopback only); the upstream password,
    if any, comes from the server URL. Like initdb, PgBouncer refuses to run as
    root: as root it runs as the `postgres` system user.
    """

    folder: Path
    port: int
    user: str | None

    @classmethod
    def start(cls, server_url: str, *, pool_size: int = 20) -> PgBouncer:
        """Start PgBouncer in front of the server at `server_url` (any of its databases)."""
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not Path(binary).exists():
            raise ServerUnavailable(
                "pgbouncer is not installed (Debian: apt-get install pgbouncer)"
            )
        user = "postgres" if os.geteuid() == 0 else None
        folder = Path(tempfile.mkdtemp(prefix="diamond_db_pgbouncer_"))
        bouncer = cls(folder=folder, port=_free_port(), user=user)
        bouncer._configure(conninfo_to_dict(server_url), pool_size)
        if user is not None:
            shutil.chown(folder, user=user)
            for path in folder.iterdir():
                shutil.chown(path, user=user)
        command = [binary, "-d", str(folder / "pgbouncer.ini")]
        if user is not None:
            command = ["runuser", "-u", user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, cwd="/")
        if done.returncode != 0:
            raise ServerUnavailable(f"pgbouncer failed to start: {done.stderr.strip()}")
        bouncer._wait_ready()
        return bouncer

    def _configure(self, upstream: dict[str, Any], pool_size: int) -> None:
        user = str(upstream.get("user") or "postgres")
        target = f"host={upstream.get('host') or '127.0.0.1'} port={upstream.get('port') or 5432}"
        if upstream.get("password"):
            target += f" password={upstream['password']}"
        (self.folder / "userlist.txt").write_text(f'"{user}" ""\n')
        (self.folder / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self.folder / 'userlist.txt'}\n"
            f"admin_users = {user}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 1000\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\n"
            f"pidfile = {self.folder / 'pgbouncer.pid'}\n"
        )

    def url(self, server_url: str) -> str:
        """The URL of the same database as `server_url`, through this PgBouncer."""
        return make_conninfo(server_url, host="127.0.0.1", port=str(self.port), password=None)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.02)  # polling for the daemon's listening socket
        raise ServerUnavailable(f"pgbouncer did not listen on port {self.port}")

    def stop(self) -> None:
        """Stop PgBouncer and delete its folder."""
        pidfile = self.folder / "pgbouncer.pid"
        with contextlib.suppress(OSError, ValueError):
            pid = int(pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                os.kill(pid, 0)  # raises once the process is gone
                time.sleep(0.02)
        shutil.rmtree(self.folder, ignore_errors=True)
