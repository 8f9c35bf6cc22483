"""Risk refresh cost at 10^6 and at 10^7 registered goods, the same new events (issue 16 item 4).

Run: ``.venv/bin/python -m bench.risk_refresh_bench [--sizes 1000000 10000000] [--refreshes 5]
[--new 10000] [--history 200000] [--full-refreshes 3]``.

For each size, a SQLite database in a temporary directory (deleted afterwards) made by
``registry.migrate.upgrade`` and then filled by direct bulk inserts of only the rows the risk
worker reads (NOTE: not through the registry: no signed records, tiles, products or holdings):

- ``entries``: N REGISTER rows of single-use codes (32-byte fingerprints, bulk batches of
  10^4, positions), registered 60 days ago; ``payload_hash`` empty and ``product_id`` NULL (a
  code's use defaults to single). Only the index the risk read uses
  (``uq_entries_registered_good``) is built, after the inserts;
- the same look-back history at every size: ``--history`` verification events over the last
  29 days (13 platforms; 2% failed code lookups by anonymous callers), a tenth as many
  accepted transfers and a hundredth refused attempts, of goods among the first 10^6.

Then a ``RiskWorker`` (the incremental engine) runs once (the build: the look-back read),
and ``--refreshes`` times: ``--new`` new mixed events are inserted (90% verifications from
several platforms, 7% transfers, 3% refused attempts, the same stream at every size) and
``run_once()`` is timed (indexing the events by good, reading past the watermarks, the
refresh, writing the changed goods and signals). The old engine (``full_recompute=True``: the
rules and the score over the whole look-back, the whole output diffed) is timed the same way
on the same database. Medians (wall time, and this process's CPU time, which a loaded
machine stretches less); the 10^7 / 10^6 ratio; the 1-minute load average before each
refresh. Then, for the incremental engine, one more refresh after ``REFIT_SECONDS`` (the
periodic refit of the goods' anomaly scales, timed apart).
Writes ``bench/results/risk_refresh.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.common import save
from readmodels.riskstate import REFIT_SECONDS
from readmodels.riskworker import RiskWorker
from registry.db import create_db_engine
from registry.fingerprints import GoodType
from registry.migrate import upgrade
from registry.transferrequests import DoubleSale

CODE = int(GoodType.CODE)
NOW = 1_800_000_000
DAY = 86_400
BATCH = 10_000
#: New events' and the history's goods: among the first 10^6 at every size.
ACTIVE = 1_000_000
PLATFORMS = [f"platform-{i}" for i in range(13)]


def fingerprint(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=32).digest()


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


def _entries(goods: int) -> Iterator[tuple[Any, ...]]:
    actor = b"\x11" * 20
    registered = NOW - 60 * DAY
    for i in range(goods):
        yield (i + 1, i, 1, CODE, fingerprint(i), actor, b"", registered, 1 + i // BATCH,
               i % BATCH, None)  # fmt: skip


def populate(path: Path, goods: int, history: int, seed: int) -> dict[str, float]:
    started = time.perf_counter()
    engine = create_db_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA cache_size=-400000")
    indexes = [
        r[0]
        for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='entries' "
            "AND sql IS NOT NULL"
        )
    ]
    for name in indexes:
        con.execute(f"DROP INDEX {name}")
    con.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", _entries(goods))
    con.execute(
        "CREATE UNIQUE INDEX uq_entries_registered_good ON entries (good_type, fingerprint) "
        "WHERE kind = 1"
    )
    con.commit()
    loaded = time.perf_counter()
    rng = random.Random(seed)
    ids = {"event": 0, "transfer": 0, "attempt": 0}
    _insert_events(con, rng, ids, history, NOW - 29 * DAY, NOW - 60)
    con.commit()
    con.close()
    return {
        "entries_s": round(loaded - started, 1),
        "history_s": round(time.perf_counter() - loaded, 1),
    }


def _insert_events(
    con: sqlite3.Connection, rng: random.Random, ids: dict[str, int], count: int, t0: int, t1: int
) -> None:
    """``count`` mixed events between ``t0`` and ``t1``: 90% verifications, 7% transfers,
    3% refused attempts (the history's mix is the same)."""
    events, transfers, attempts = [], [], []
    for _ in range(count):
        at = rng.randint(t0, t1)
        good = fingerprint(rng.randrange(ACTIVE))
        platform = rng.choice(PLATFORMS)
        roll = rng.random()
        if roll < 0.9:
            ids["event"] += 1
            if rng.random() < 0.02:  # failed code lookups: anonymous callers probing
                events.append((ids["event"], at, "anonymous", CODE, os.urandom(32), "code",
                               "unknown"))  # fmt: skip
            else:
                via = rng.choice(("code", "fingerprint"))
                events.append((ids["event"], at, platform, CODE, good, via, "authentic"))
        elif roll < 0.97:
            ids["transfer"] += 1
            i = ids["transfer"]
            transfers.append((None, None, platform, os.urandom(16), rng.randrange(500, 5_000),
                              "EUR", 0, i, 10**9 + i, CODE, good, b"\x11" * 20, platform, None,
                              None, b"", b"", 10**9 + i, at))  # fmt: skip
        else:
            ids["attempt"] += 1
            attempts.append((platform, os.urandom(16), platform, os.urandom(16), 1_000, "EUR",
                             0, ids["attempt"], at, platform, CODE, good, DoubleSale.code,
                             None))  # fmt: skip
    con.executemany("INSERT INTO verification_events VALUES (?,?,?,?,?,?,?)", events)
    columns = "seller_platform, seller_ref, buyer_platform, buyer_ref, price, currency, final"
    con.executemany(
        f"INSERT INTO transfers ({columns}, id, entry_id, good_type, fingerprint, creator, "
        "platform, royalty_total, idempotency_key, request_hash, receipt_signature, leaf_index, "
        "created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        transfers,
    )
    con.executemany(
        f"INSERT INTO transfer_attempts ({columns}, id, at, platform, good_type, fingerprint, "
        "reason, earlier_transfer_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        attempts,
    )


def measure(path: Path, *, full: bool, refreshes: int, new: int, seed: int) -> dict[str, Any]:
    """Build once, then ``refreshes`` refreshes of ``new`` new events each, timed."""
    engine = create_db_engine(f"sqlite:///{path}")
    clock = Clock()
    worker = RiskWorker(engine, clock=clock, full_recompute=full)
    started = time.perf_counter()
    worker.run_once()
    build = time.perf_counter() - started
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    ids = {
        name: con.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0]
        for name, table in (
            ("event", "verification_events"),
            ("transfer", "transfers"),
            ("attempt", "transfer_attempts"),
        )
    }
    times, written, floors, loads, cpu, floors_cpu = [], [], [], [], [], []
    for _ in range(refreshes):
        clock.now += 5
        before = dict(ids)
        _insert_events(con, rng, ids, new, clock.now - 5, clock.now)
        con.commit()
        cpu_started = time.process_time()
        floors.append(_floor(con, before))
        floors_cpu.append(time.process_time() - cpu_started)
        loads.append(os.getloadavg()[0])
        cpu_started, started = time.process_time(), time.perf_counter()
        report = worker.run_once()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - cpu_started)
        written.append(report.goods_written + report.goods_deleted)
    refit = None
    if not full:
        # The incremental engine's periodic cost: once in REFIT_SECONDS the goods' anomaly
        # scales are refitted over every active good (readmodels.riskstate), and the worker
        # collects the cyclic garbage once (readmodels.riskcollector). Timed apart, with the
        # same new events; not in the median above.
        clock.now += REFIT_SECONDS
        _insert_events(con, rng, ids, new, clock.now - 5, clock.now)
        con.commit()
        started = time.perf_counter()
        worker.run_once()
        refit = round(time.perf_counter() - started, 3)
    con.close()
    engine.dispose()
    return {
        "build_s": round(build, 3),
        "refresh_s": [round(t, 3) for t in times],
        "refresh_median_s": round(statistics.median(times), 3),
        "goods_written_per_refresh": written,
        "floor_s": [round(t, 3) for t in floors],
        "floor_median_s": round(statistics.median(floors), 3),
        "refresh_over_floor": round(statistics.median(times) / statistics.median(floors), 1),
        "load_1min_per_refresh": [round(x, 2) for x in loads],
        # CPU seconds of this process (SQLite runs in it): what a loaded machine's wall time
        # stretches; the floor's likewise.
        "refresh_cpu_median_s": round(statistics.median(cpu), 3),
        "floor_cpu_median_s": round(statistics.median(floors_cpu), 3),
        "refit_refresh_s": refit,
    }


def _floor(con: sqlite3.Connection, after: dict[str, int]) -> float:
    """A floor in the same run: the new rows read with the driver alone, and the REGISTER
    entries of the goods they name (no records made, no rule run, nothing written)."""
    started = time.perf_counter()
    named: set[bytes] = set()
    for name, table, column in (
        ("event", "verification_events", "fingerprint"),
        ("transfer", "transfers", "fingerprint"),
        ("attempt", "transfer_attempts", "fingerprint"),
    ):
        rows = con.execute(f"SELECT * FROM {table} WHERE id > ?", (after[name],)).fetchall()
        named.update(r[0] for r in con.execute(
            f"SELECT {column} FROM {table} WHERE id > ?", (after[name],)))  # fmt: skip
        del rows
    listed = list(named)
    for i in range(0, len(listed), 500):
        chunk = listed[i : i + 500]
        con.execute(
            "SELECT * FROM entries WHERE kind = 1 AND good_type = ? AND fingerprint IN "
            f"({','.join('?' * len(chunk))})",
            (CODE, *chunk),
        ).fetchall()
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10**6, 10**7])
    parser.add_argument("--refreshes", type=int, default=5)
    parser.add_argument("--full-refreshes", type=int, default=3)
    parser.add_argument("--new", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    for size in args.sizes:
        workdir = Path(tempfile.mkdtemp(prefix="tracemark-risk-bench-"))
        try:
            path = workdir / "registry.db"
            filled = populate(path, size, args.history, seed=1)
            backup = workdir / "copy.db"
            shutil.copyfile(path, backup)  # the old engine starts from the same rows
            size_mb = round(path.stat().st_size / 2**20)
            incremental = measure(path, full=False, refreshes=args.refreshes, new=args.new, seed=2)
            print(f"{size:,} goods, incremental: {incremental}", flush=True)
            full = (
                measure(backup, full=True, refreshes=args.full_refreshes, new=args.new, seed=2)
                if args.full_refreshes
                else None
            )
            print(f"{size:,} goods, full recompute: {full}", flush=True)
            results[str(size)] = {
                "populate": filled,
                "database_mb": size_mb,
                "incremental": incremental,
                "full_recompute": full,
            }
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    sizes = [str(s) for s in args.sizes]
    summary: dict[str, Any] = {}
    if len(sizes) == 2:
        small, large = (results[s]["incremental"]["refresh_median_s"] for s in sizes)
        summary["incremental_ratio_large_over_small"] = round(large / small, 2)
        if all(results[s]["full_recompute"] for s in sizes):
            fs, fl = (results[s]["full_recompute"]["refresh_median_s"] for s in sizes)
            summary["full_ratio_large_over_small"] = round(fl / fs, 2)
            summary["full_over_incremental_at_large"] = round(fl / large, 1)
    summary["load_average_before"] = [round(x, 2) for x in load_before]
    summary["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(summary)
    if not args.no_save:
        path = save(
            "risk_refresh",
            {
                "new_events_per_refresh": args.new,
                "history_events": args.history,
                "refreshes": args.refreshes,
                "full_refreshes": args.full_refreshes,
                "results": results,
                "summary": summary,
            },
        )
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
