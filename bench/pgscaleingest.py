"""The 10^7-goods benchmark's data: bulk batches into a database of its own with the ``COPY``
floor and the WAL beside each, then the sizes, a sample of goods and platform keys."""

from __future__ import annotations

import json
import os
import random
import resource
import secrets
import sys
import time
from io import StringIO
from pathlib import Path
from typing import Any

from bench.common import sign_code_batch
from bench.ingest_bench import ALPHABET
from bench.pg_ingest_bench import COLUMNS, TYPES

PRODUCT = "scale-card"
#: Leaf indices drawn for the sample of registered goods the verify requests ask about.
SAMPLE = 5000
KEYS = 8  # platform keys, round robin: none passes its 100 requests a second


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _with_database(url: str, database: str) -> str:
    head, _, tail = url.partition("?")
    base = head.rsplit("/", 1)[0] if head.count("/") > 2 else head
    return f"{base}/{database}" + (f"?{tail}" if tail else "")


def _codes(batch: int, n: int) -> str:
    rng = random.Random(1000 + batch)  # a batch's codes differ from every other's
    lines = []
    for _ in range(n):
        s = "".join(rng.choices(ALPHABET, k=16))
        lines.append(f"{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}\n")
    return "".join(lines)


def _number(conn: Any, sql: str) -> int:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return int(row[0])


def _wal_lsn(conn: Any) -> int:
    return _number(conn, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")


def _copy_floor(conn: Any, start: int) -> tuple[int, float]:
    """The batch's rows (read back from ``entries``) COPY'd into the unindexed table."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM entries WHERE leaf_index >= %s ORDER BY leaf_index", (start,)
    ).fetchall()
    conn.commit()
    started = time.perf_counter()
    with (
        conn.cursor() as cursor,
        cursor.copy(f"COPY floor.bare ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        copy.set_types(TYPES)
        for row in rows:
            copy.write_row(row)
    conn.commit()
    return len(rows), time.perf_counter() - started


def sizes(conn: Any) -> list[dict[str, Any]]:
    """Every table (with its indexes and TOAST) and every index of the public schema."""
    rows = conn.execute(
        "SELECT c.relname, c.relkind, COALESCE(i.indrelid::regclass::text, ''), "
        "CASE WHEN c.relkind = 'r' THEN pg_total_relation_size(c.oid) "
        "ELSE pg_relation_size(c.oid) END, "
        "CASE WHEN c.relkind = 'r' THEN pg_relation_size(c.oid) ELSE 0 END "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_index i ON i.indexrelid = c.oid "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i') ORDER BY 4 DESC"
    ).fetchall()
    return [
        {
            "name": name,
            "kind": "table" if kind == "r" else "index",
            "table": table or name,
            "bytes": int(total),
            "heap_bytes": int(heap),
        }
        for name, kind, table, total, heap in rows
    ]


def ingest(data_dir: Path, url: str, batches: int, n: int, progress: Path) -> None:
    """The batches, each committed and its row appended to ``progress`` (JSON lines) as it
    finishes: a run stopped part-way leaves the batches done, measurable by ``finish``."""
    import psycopg
    from eth_account import Account

    from registry.codesfile import prepare_code_batch
    from registry.creator import CreatorKeys, sign_enrollment
    from registry.service import Registry
    from registry.settings import load_settings

    registry = Registry.open(load_settings(data_dir=data_dir, database_url=url))
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    code_key = creator.require_code_key()
    registry.enroll_code_key(
        sign_enrollment(creator, registry.domain, now=registry.clock()), code_key
    )
    conn = psycopg.connect(_dsn(url))
    conn.execute("CREATE SCHEMA floor")
    conn.execute(
        "CREATE TABLE floor.bare (leaf_index bigint, kind smallint, "
        "good_type smallint, fingerprint bytea, actor bytea, payload_hash bytea, "
        "timestamp bigint, record_id bigint, position integer, product_id integer)"
    )
    conn.commit()
    rows: list[dict[str, Any]] = []
    for b in range(batches):
        head = registry.latest_tree_head()
        start = head.tree_size if head is not None else 0
        started = time.perf_counter()
        batch = prepare_code_batch(StringIO(_codes(b, n)), code_key)
        prepared = time.perf_counter()
        request = sign_code_batch(registry, creator, batch, product=PRODUCT, new_product=b == 0)
        wal_before = _wal_lsn(conn)
        conn.commit()
        began = time.perf_counter()
        result = registry.register_batch(request, batch.fingerprints())
        finished = time.perf_counter()
        wal = _wal_lsn(conn) - wal_before
        conn.commit()
        assert result.registered == n, result
        batch.close()
        copied, copy_s = _copy_floor(conn, start)
        ingest_s = finished - began
        rows.append(
            {
                "batch": b + 1,
                "goods_before": start,
                "client_fingerprint_s": prepared - started,
                "registry_ingest_s": ingest_s,
                "goods_per_s": n / ingest_s,
                "copy_unindexed_rows": copied,
                "copy_unindexed_s": copy_s,
                "copy_rows_per_s": copied / copy_s,
                "ratio_registry_to_copy": ingest_s / copy_s,
                "wal_bytes": wal,
                "wal_bytes_per_good": wal / n,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "load_average": os.getloadavg(),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        with progress.open("a") as out:
            out.write(json.dumps(rows[-1]) + "\n")
    conn.close()
    registry.engine.dispose()


def finish(url: str) -> dict[str, Any]:
    """After the batches (all, or those a stopped run committed): the floor table's size,
    then dropped; ANALYZE; every table's and index's size; a sample of registered goods
    (at random leaf indices over the whole log) and platform keys for the serving phase."""
    import psycopg

    from api.apikeys import create_api_key
    from registry.db import create_db_engine

    conn = psycopg.connect(_dsn(url))
    floor_bytes = _number(conn, "SELECT COALESCE(pg_total_relation_size('floor.bare'), 0)")
    conn.execute("DROP SCHEMA IF EXISTS floor CASCADE")
    conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    tree_size = _number(conn, "SELECT max(leaf_index) + 1 FROM entries")
    rng = random.Random(7)
    leaves = [rng.randrange(tree_size) for _ in range(SAMPLE)]
    sample = [
        "0x" + bytes(row[0]).hex()
        for row in conn.execute(
            "SELECT fingerprint FROM entries WHERE kind = 1 AND leaf_index = ANY(%s)", (leaves,)
        ).fetchall()
    ]
    engine = create_db_engine(url)
    keys = [
        create_api_key(
            engine, f"scale-platform-{i % 4}", ["verify"], "scale bench", int(time.time())
        )[0]
        for i in range(KEYS)
    ]
    engine.dispose()
    measured = sizes(conn)
    database_bytes = _number(conn, "SELECT pg_database_size(current_database())")
    conn.close()
    return {
        "tree_size": tree_size,
        "floor_table_bytes": floor_bytes,
        "sizes": measured,
        "database_bytes": database_bytes,
        "sample": sample,
        "api_keys": keys,
    }
