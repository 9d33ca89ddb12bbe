"""A throwaway PostgreSQL server from the system's binaries (initdb, pg_ctl), for one session.

It listens on a free loopback port with its socket in its own temp dir and fsync on (the
durability the tests check is real). PostgreSQL refuses to run as root, so under root it
runs as the ``postgres`` user (or ``nobody``). Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port, require_tool

_STARTED_WITHIN = 60  # seconds pg_ctl waits for the server


def pg_bin() -> Path | None:
    """The newest PostgreSQL's bin folder that has initdb."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parent.parent.name),
    )
    return Path(found[-1]).parent if found else None


def _run_as() -> tuple[list[str], str | None]:
    if os.geteuid() != 0:
        return [], None
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        return ["runuser", "-u", user, "--"], user
    raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL as")


class PostgresServer:
    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.prefix, user = _run_as()
        self.root = Path(tempfile.mkdtemp(prefix="outreach-pg-"))
        if user is not None:
            shutil.chown(self.root, user)
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = free_port()
        self._names = itertools.count(1)
        self._shared: str | None = None

    def _ctl(self, *args: str, timeout: float = _STARTED_WITHIN + 10) -> None:
        command = [*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), *args]
        subprocess.run(command, check=True, capture_output=True, timeout=timeout)

    def init(self) -> PostgresServer:
        command = [
            *self.prefix,
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",  # only initdb's own files; the server below runs with fsync on
        ]
        subprocess.run(command, check=True, capture_output=True, timeout=120)
        return self

    def start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=on",
                "-c synchronous_commit=on",
                "-c max_connections=300",
                "-c shared_buffers=32MB",
            ]
        )
        self._ctl("-l", str(self.log), "-o", options, "-w", "-t", str(_STARTED_WITHIN), "start")

    def stop(self, mode: str = "fast") -> None:
        self._ctl("-m", mode, "-w", "-t", str(_STARTED_WITHIN), "stop")

    def running(self) -> bool:
        command = [*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), "status"]
        return subprocess.run(command, capture_output=True, timeout=10).returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def admin(self, statement: str, database: str = "postgres") -> None:
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(statement)  # type: ignore[arg-type]

    def create_database(self) -> str:
        name = f"t{os.getpid()}_{next(self._names)}"
        self.admin(f"CREATE DATABASE {name}")
        return name

    def shared_database(self) -> str:
        """One database for the session, made when first asked for."""
        if self._shared is None:
            self._shared = self.create_database()
        return self._shared

    def create_schema(self, database: str) -> str:
        name = f"s{next(self._names)}"
        self.admin(f"CREATE SCHEMA {name}", database)
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def dump(self, database: str, schema: str | None = None) -> bytes:
        only = ["--schema", schema] if schema else []
        command = [str(self.bin / "pg_dump"), "--data-only", *only, self.url(database)]
        return subprocess.run(command, check=True, capture_output=True, timeout=60).stdout

    def remove(self) -> None:
        try:
            if self.running():
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session, started when a test first needs it."""
    bin_dir = pg_bin()
    require_tool(
        str(bin_dir / "initdb") if bin_dir else "/usr/lib/postgresql/<version>/bin/initdb",
        "the PostgreSQL suites (apt-get install postgresql)",
    )
    assert bin_dir is not None
    server = PostgresServer(bin_dir)
    try:
        server.init().start()
        yield server
    finally:
        server.remove()
