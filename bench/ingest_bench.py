"""Bulk ingest of 1,000,000 codes on SQLite, end to end, against a bare sqlite3 floor.

Run: ``.venv/bin/python -m bench.ingest_bench [--codes N]``. Each side runs in its own
process (so peak memory is its own): ours = read the codes file, normalise + HMAC each code,
items root, one signature, then the registry's bulk path (signature check, items-root
re-check, insert, sequencing, tiles, signed tree head), ready to anchor. Floor = a bare
sqlite3 ``executemany`` of the same 1M entry rows into one table with a unique index.
Peer for issue 14: the same ingest with the state map off (``Registry(state_map=False)``: no
STATE_COMMITMENT, no map work), interleaved with ours. Writes ``bench/results/ingest.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from bench.common import save, sign_code_batch

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def write_codes(path: Path, n: int) -> None:
    rng = random.Random(1)
    with path.open("w") as out:
        for _ in range(n):
            s = "".join(rng.choices(ALPHABET, k=16))
            out.write(f"{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}\n")


def run_ours(
    codes: Path,
    workdir: Path,
    database_url: str | None = None,
    *,
    state_map: bool = True,
    meter: Callable[[], AbstractContextManager[dict[str, float]]] | None = None,
) -> dict[str, float]:
    """One ingest, timed; ``meter`` (if given) is entered around the registry's own call
    alone and the numbers it leaves in its dict are added to the result (bench.pg_ingest_bench:
    the database server's CPU)."""
    from eth_account import Account

    from registry.codesfile import prepare_code_batch
    from registry.creator import CreatorKeys
    from registry.db import create_db_engine
    from registry.eip712 import DEV_DOMAIN
    from registry.migrate import upgrade
    from registry.service import Registry

    engine = create_db_engine(database_url or f"sqlite:///{workdir / 'registry.db'}")
    upgrade(engine)
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        state_map=state_map,
    )
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    started = time.perf_counter()
    with codes.open(newline="") as source:
        batch = prepare_code_batch(source, creator.require_code_key())
    prepared = time.perf_counter()
    request = sign_code_batch(registry, creator, batch, product="bench-card", new_product=True)
    cpu_before = time.process_time()
    with (meter or _no_meter)() as metered:
        result = registry.register_batch(request, batch.fingerprints())
    finished = time.perf_counter()
    cpu = time.process_time() - cpu_before
    head = registry.latest_tree_head()
    # With the map, the head's last leaf is the batch's STATE_COMMITMENT (issue 14).
    assert result.registered == batch.count
    assert head is not None and head.tree_size == batch.count + (1 if state_map else 0)
    return {
        "total_s": finished - started,
        "client_fingerprint_s": prepared - started,
        "registry_ingest_s": finished - prepared,
        # This process's CPU in the registry's call (all its threads): load-independent,
        # unlike the wall time, on a machine shared with other work.
        "registry_cpu_s": cpu,
        **metered,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def _no_meter() -> AbstractContextManager[dict[str, float]]:
    return nullcontext({})


def run_floor(n: int, workdir: Path) -> dict[str, float]:
    rows = [
        (i, 1, 2, os.urandom(32), os.urandom(20), os.urandom(32), 1_790_000_000, 1, i, 1)
        for i in range(n)
    ]
    conn = sqlite3.connect(workdir / "floor.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE entries (leaf_index INTEGER PRIMARY KEY, kind, good_type, fingerprint,"
        " actor, payload_hash, timestamp, record_id, position, product_id)"
    )
    conn.execute("CREATE UNIQUE INDEX ix ON entries (good_type, fingerprint)")
    started = time.perf_counter()
    conn.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    conn.commit()
    return {"total_s": time.perf_counter() - started}


def run_ours_postgres(codes: Path, url: str, workdir: Path) -> dict[str, float]:
    """The same ingest on PostgreSQL, in a schema of its own, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"bench_{secrets.token_hex(4)}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        separator = "&" if "?" in url else "?"
        return run_ours(codes, workdir, f"{url}{separator}options=-csearch_path%3D{schema}")
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))


def child(role: str, arg: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        if role == "ours":
            result = run_ours(Path(arg), Path(tmp))
        elif role == "ours-without-map":
            result = run_ours(Path(arg), Path(tmp), state_map=False)
        elif role == "ours-postgres":
            codes, url = arg.split("|", 1)
            result = run_ours_postgres(Path(codes), url, Path(tmp))
        else:
            result = run_floor(int(arg), Path(tmp))
    print(json.dumps(result))


def measure(role: str, arg: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.ingest_bench", "--child", role, arg],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--codes", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("ROLE", "ARG"))
    parser.add_argument(
        "--postgres", metavar="URL", help="also time the same ingest on this PostgreSQL (1 run)"
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        codes = Path(tmp) / "codes.csv"
        write_codes(codes, args.codes)
        ours, without_map, floor = [], [], []
        for _ in range(args.rounds):  # interleaved, so machine noise hits every side
            ours.append(measure("ours", str(codes)))
            without_map.append(measure("ours-without-map", str(codes)))
            floor.append(measure("floor", str(args.codes)))
        postgres = measure("ours-postgres", f"{codes}|{args.postgres}") if args.postgres else None
    med = {key: statistics.median(r[key] for r in ours) for key in ours[0]}
    bare = {key: statistics.median(r[key] for r in without_map) for key in without_map[0]}
    floor_s = statistics.median(r["total_s"] for r in floor)
    data = {
        "codes": args.codes,
        "rounds": args.rounds,
        "ours": med,
        "floor_sqlite3_executemany_s": floor_s,
        "ratio_to_floor": med["total_s"] / floor_s,
        # Issue 14: the same ingest with the state map off (Registry(state_map=False)).
        "ours_without_map": bare,
        "map_ratio_registry": med["registry_ingest_s"] / bare["registry_ingest_s"],
        "map_ratio_total": med["total_s"] / bare["total_s"],
        "ours_rows_per_s": args.codes / med["total_s"],
        "floor_rows_per_s": args.codes / floor_s,
        "ours_postgres": postgres,
    }
    path = save("ingest", data)
    print(f"codes: {args.codes:,} (median of {args.rounds})")
    print(
        f"ours  {med['total_s']:.1f} s (fingerprint {med['client_fingerprint_s']:.1f} s, "
        f"registry {med['registry_ingest_s']:.1f} s), peak {med['peak_rss_mb']:.0f} MB"
    )
    print(
        f"without the state map {bare['total_s']:.1f} s (registry "
        f"{bare['registry_ingest_s']:.1f} s), peak {bare['peak_rss_mb']:.0f} MB  -> the map "
        f"costs {data['map_ratio_registry']:.2f}x the registry's time "
        f"({data['map_ratio_total']:.2f}x end to end)"
    )
    print(f"floor {floor_s:.1f} s  -> ratio {data['ratio_to_floor']:.2f}x")
    if postgres:
        print(
            f"postgres {postgres['total_s']:.1f} s (registry {postgres['registry_ingest_s']:.1f} s)"
        )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
