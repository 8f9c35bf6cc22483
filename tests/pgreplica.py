"""A PostgreSQL primary and its streaming replica, made for the tests on loopback ports.

The machine's shared server has no replication entry in its ``pg_hba.conf`` (and tests must
not change its configuration), so this module makes a cluster of its own: ``initdb`` a
primary with ``wal_level=replica`` and a trust line for replication from 127.0.0.1, then
``pg_basebackup -R -X stream`` a hot standby from it, each on a free port bound to 127.0.0.1
only. Run as the ``postgres`` system user when the tests run as root (PostgreSQL refuses
root). Lag is made on demand with the replica's real ``pg_wal_replay_pause()``.

Use the ``pg_replica`` fixture (session-scoped: one pair for all the tests that import it)
and give each test its own schema with ``PgReplicaPair.new_schema``.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from anchoring.devchain import free_port

REQUIRE_POSTGRES = os.environ.get("TRACEMARK_REQUIRE_POSTGRES") == "1"
#: Seconds a server may take to start, or the replica to replay what the primary wrote.
TIMEOUT = 30.0


def server_bin_dir() -> Path | None:
    root = Path("/usr/lib/postgresql")
    versions = (
        sorted(
            (p for p in root.iterdir() if (p / "bin" / "initdb").exists()),
            key=lambda p: int(p.name) if p.name.isdigit() else 0,
        )
        if root.is_dir()
        else []
    )
    if versions:
        return versions[-1] / "bin"
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL will not run as root; the data directories belong to ``postgres``.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Schema:
    """One test's schema, on both servers: the same data, two URLs."""

    name: str
    primary_url: str
    replica_url: str


class PgReplicaPair:
    """A running primary and its hot standby; ``close`` stops both and deletes their files."""

    def __init__(self, bin_dir: Path) -> None:
        self._bin = bin_dir
        self._root = Path(tempfile.mkdtemp(prefix="tm-pgrepl-"))
        self.primary_dir = self._root / "primary"
        self.replica_dir = self._root / "replica"
        self.primary_port = free_port()
        self.replica_port = free_port()
        self.primary_admin = f"postgresql+psycopg://postgres@127.0.0.1:{self.primary_port}/postgres"
        self.replica_admin = f"postgresql+psycopg://postgres@127.0.0.1:{self.replica_port}/postgres"

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self._root, "postgres", "postgres")
        self._make_primary()
        self._make_replica()
        self.wait_caught_up()

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            _as_postgres([str(self._bin / argv[0]), *argv[1:]]),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stderr.strip()[-800:]}")

    def _make_primary(self) -> None:
        self._run(
            "initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        with (self.primary_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "wal_level = replica\n"
                "max_wal_senders = 4\n"
                "hot_standby = on\n"
                "hot_standby_feedback = on\n"
                # A test cluster: durability is not what these tests are about.
                "fsync = off\n"
                "full_page_writes = off\n"
                "shared_buffers = 16MB\n"
                "max_connections = 60\n"
            )
        with (self.primary_dir / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self._start(self.primary_dir, self.primary_port)

    def _make_replica(self) -> None:
        self._run(
            "pg_basebackup", "-R", "-X", "stream", "-D", str(self.replica_dir),
            "-h", "127.0.0.1", "-p", str(self.primary_port), "-U", "postgres",
        )  # fmt: skip
        self.start_replica()

    def _start(self, data_dir: Path, port: int) -> None:
        self._run(
            "pg_ctl", "start", "-w", "-t", str(int(TIMEOUT)), "-D", str(data_dir),
            "-l", str(data_dir / "server.log"), "-o", f"-c port={port}",
        )  # fmt: skip

    def start_replica(self) -> None:
        self._start(self.replica_dir, self.replica_port)

    def stop_replica(self) -> None:
        self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(self.replica_dir))

    def _on(self, url: str, sql: str) -> object:
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                result = conn.execute(text(sql))
                return result.scalar() if result.returns_rows else None
        finally:
            engine.dispose()

    def pause_replay(self) -> None:
        """The replica stops applying the primary's WAL (it still receives it): real lag."""
        self._on(self.replica_admin, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self._on(self.replica_admin, "SELECT pg_wal_replay_resume()")

    def wait_caught_up(self) -> None:
        """Until the replica has replayed all the primary has written so far."""
        target = self._on(self.primary_admin, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + TIMEOUT
        while True:
            caught = self._on(
                self.replica_admin, f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
            )
            if caught:
                return
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not catch up with the primary")
            time.sleep(0.02)

    def new_schema(self) -> Schema:
        """A fresh schema made on the primary and replayed on the replica."""
        name = f"t_{secrets.token_hex(6)}"
        self._on(self.primary_admin, f"CREATE SCHEMA {name}")
        self.wait_caught_up()
        option = f"?options=-csearch_path%3D{name}"
        return Schema(name, self.primary_admin + option, self.replica_admin + option)

    def drop_schema(self, schema: Schema) -> None:
        self._on(self.primary_admin, f"DROP SCHEMA IF EXISTS {schema.name} CASCADE")

    def close(self) -> None:
        for data_dir in (self.replica_dir, self.primary_dir):
            if (data_dir / "postmaster.pid").exists():
                with contextlib.suppress(RuntimeError):
                    self._run("pg_ctl", "stop", "-m", "immediate", "-D", str(data_dir))
        shutil.rmtree(self._root, ignore_errors=True)


def make_pair() -> PgReplicaPair:
    """A pair, or fail (``TRACEMARK_REQUIRE_POSTGRES=1``) / skip when one cannot be made."""
    bin_dir = server_bin_dir()
    why = "PostgreSQL's server binaries (initdb, pg_basebackup) are not installed"
    if bin_dir is not None:
        pair = PgReplicaPair(bin_dir)
        try:
            pair.start()
            return pair
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            pair.close()
            why = f"could not make a primary and streaming replica: {exc}"
    if REQUIRE_POSTGRES:
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def pg_replica() -> Iterator[PgReplicaPair]:
    pair = make_pair()
    try:
        yield pair
    finally:
        pair.close()


@pytest.fixture
def replica_schema(pg_replica: PgReplicaPair) -> Iterator[Schema]:
    """This test's schema on the pair; replay resumed and the replica running afterwards."""
    schema = pg_replica.new_schema()
    yield schema
    if not (pg_replica.replica_dir / "postmaster.pid").exists():
        pg_replica.start_replica()
    pg_replica.resume_replay()
    pg_replica.drop_schema(schema)
