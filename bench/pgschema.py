"""A PostgreSQL schema of a benchmark's own, and the CPU its server backends spend.

The order benchmarks (``bench.order_bench``, ``bench.order_http_bench``) run on a fresh schema
in the test server's database (``TRACEMARK_TEST_POSTGRES_URL`` or ``--postgres-url``), dropped
afterwards, as ``bench.pg_ingest_bench`` does. Every connection of the registry under test
names the schema as its ``application_name``, so its backends are found in
``pg_stat_activity`` and their CPU read from ``/proc`` (the server must run on this machine),
as ``bench.cluster_bench`` counts the cluster's: the database's share of the server's CPU.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from bench.processcpu import cpu_seconds

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def postgres_url(given: str | None) -> str:
    """The server to use: the flag's, else the tests' (``TRACEMARK_TEST_POSTGRES_URL``)."""
    return given or os.environ.get("TRACEMARK_TEST_POSTGRES_URL") or DEFAULT_URL


@contextmanager
def fresh_schema(url: str) -> Iterator[tuple[str, str]]:
    """A new schema (dropped at the end): (its URL, its name, also the application name)."""
    name = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE SCHEMA {name}"))
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{name}&application_name={name}", name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {name} CASCADE"))
        admin.dispose()


class BackendCpu:
    """CPU seconds of the backends named ``application_name``, summed, at each ``read``.

    A backend first seen after the first read (a pool opened it mid-way) counts from 0, its
    start included; one that went away stops counting (pools keep theirs for the run)."""

    def __init__(self, url: str, application_name: str) -> None:
        self._admin = create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        self._name = application_name
        self._seen: dict[int, float] = {}

    def read(self) -> float:
        with self._admin.connect() as conn:
            pids = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :n"),
                {"n": self._name},
            ).scalars()
            for pid in pids:
                cpu = cpu_seconds(int(pid))
                if cpu is not None:
                    self._seen[int(pid)] = cpu
        return sum(self._seen.values())

    def close(self) -> None:
        self._admin.dispose()


__all__ = ["DEFAULT_URL", "BackendCpu", "fresh_schema", "postgres_url"]
