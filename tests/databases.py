"""Both report databases behind one test handle: the ``database`` fixture runs a test on
SQLite and on a real PostgreSQL (marker ``postgres``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from form_service.storage import Store
from form_service.storage.postgres import PostgresStore
from form_service.storage.sqlite import SqliteStore
from tests.pg import PostgresServer, postgres

__all__ = ["BACKENDS", "Database", "database", "only_postgres", "postgres"]

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
# For a test of PostgreSQL alone: ``@only_postgres``.
only_postgres = pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


@dataclass
class Database:
    kind: str
    url: str
    path: Path | None = None
    server: PostgresServer | None = None
    name: str | None = None
    """PostgreSQL: the database, and the schema of this test in it (its search_path)."""
    schema: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgres"

    @property
    def integrity_error(self) -> type[Exception]:
        return psycopg.IntegrityError if self.is_postgres else sqlite3.IntegrityError

    def store(self, clock: Callable[[], datetime] | None = None) -> SqliteStore | PostgresStore:
        if self.path is not None:
            return SqliteStore(self.path, clock=clock)
        return PostgresStore(self.url, pool_size=4, clock=clock)

    async def open_store(self, clock: Callable[[], datetime] | None = None) -> Store:
        store = self.store(clock)
        await store.open()
        return store

    def rows(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        """Run *sql* (with ``?`` placeholders) on a connection of its own."""
        if self.path is not None:
            with closing(sqlite3.connect(self.path)) as conn:
                return conn.execute(sql, args).fetchall()
        query = sql.replace("%", "%%").replace("?", "%s") if args else sql
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(query, args or None)  # type: ignore[arg-type]
            return cursor.fetchall() if cursor.description else []

    def execute(self, sql: str) -> None:
        if self.path is not None:
            with closing(sqlite3.connect(self.path)) as conn:
                conn.execute(sql)
                conn.commit()
            return
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def raw(self) -> bytes:
        """What a copy of the database holds: SQLite's files, or a pg_dump of the data."""
        if self.path is not None:
            files = [
                self.path,
                *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm")),
            ]
            return b"".join(path.read_bytes() for path in files if path.exists())
        assert self.server is not None and self.name is not None
        return self.server.dump(self.name, self.schema)

    def own_database(self) -> Database:
        """PostgreSQL: a database for this test alone, for tests that ALTER DATABASE."""
        if self.server is None:
            return self
        name = self.server.create_database()
        return Database("postgres", self.server.url(name), server=self.server, name=name)

    def env(self) -> dict[str, str]:
        return {"OUTREACH_DATABASE_URL": self.url}


def sqlite_database(folder: Path) -> Database:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "reports.sqlite3"
    return Database("sqlite", f"sqlite:///{path}", path=path)


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """An empty database of each kind: a SQLite file, or on PostgreSQL a schema of its own
    (a new schema costs far less than a new database, and the store migrates it as it would
    a new database)."""
    if request.param == "sqlite":
        yield sqlite_database(tmp_path / "db")
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    name = server.shared_database()
    schema = server.create_schema(name)
    url = f"{server.url(name)}?options=-csearch_path%3D{schema}"
    yield Database("postgres", url, server=server, name=name, schema=schema)
    if server.running():
        server.admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE", name)
