"""bench.pg_scale_bench's ingest and finish steps at a tiny size, in a PostgreSQL database of
their own (the bench makes a schema ``floor`` and measures the ``public`` one, so a test
schema will not do): what the 10^7 run reports is counted right."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from bench.pgscaleingest import KEYS, _dsn, _with_database, finish, ingest
from tests.conftest import HOW_TO_ENABLE, POSTGRES_URL, REQUIRE_POSTGRES, _postgres_available

pytestmark = pytest.mark.postgres

CODES = 300


@pytest.fixture
def scale_url() -> Iterator[str]:
    if not _postgres_available():
        if REQUIRE_POSTGRES:
            pytest.fail(HOW_TO_ENABLE)
        pytest.skip(HOW_TO_ENABLE)
    database = f"t_scale_{secrets.token_hex(4)}"
    with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {database}")
    try:
        yield _with_database(POSTGRES_URL, database)
    finally:
        with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def test_with_database_replaces_only_the_database_name() -> None:
    assert (
        _with_database("postgresql+psycopg://u@h:5432/test?sslmode=disable", "other")
        == "postgresql+psycopg://u@h:5432/other?sslmode=disable"
    )
    assert _with_database("postgresql://u@h/test", "x") == "postgresql://u@h/x"


def test_two_small_batches_counted_floor_copied_and_measured(
    scale_url: str, tmp_path: Path
) -> None:
    progress = tmp_path / "batches.jsonl"
    ingest(tmp_path / "data", scale_url, 2, CODES, progress)
    rows = [json.loads(line) for line in progress.read_text().splitlines()]
    assert [r["batch"] for r in rows] == [1, 2]
    # Each batch: its codes and its state commitment, all copied into the floor's table.
    assert [r["goods_before"] for r in rows] == [0, CODES + 1]
    assert [r["copy_unindexed_rows"] for r in rows] == [CODES + 1, CODES + 1]
    assert all(r["registry_ingest_s"] > 0 and r["wal_bytes"] > 0 for r in rows)

    done = finish(scale_url)
    assert done["tree_size"] == 2 * (CODES + 1)
    assert done["floor_table_bytes"] > 0
    names = {s["name"] for s in done["sizes"]}
    assert {"entries", "uq_entries_registered_good", "tree_tiles"} <= names
    assert "bare" not in names  # the floor's table is dropped before the sizes
    entries = next(s for s in done["sizes"] if s["name"] == "entries")
    assert entries["kind"] == "table" and entries["bytes"] > entries["heap_bytes"] > 0
    assert len(done["api_keys"]) == KEYS
    # The sample is of registered goods (kind 1), never the commitments between batches.
    assert done["sample"]
    with psycopg.connect(_dsn(scale_url)) as conn:
        fingerprints = [bytes.fromhex(f[2:]) for f in done["sample"]]
        registered = conn.execute(
            "SELECT count(DISTINCT fingerprint) FROM entries WHERE kind = 1 "
            "AND fingerprint = ANY(%s)",
            (fingerprints,),
        ).fetchone()
        schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'floor'"
        ).fetchone()
    assert registered == (len(set(fingerprints)),)
    assert schemas == (0,)
