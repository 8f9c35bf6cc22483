"""Verify lookups through a streaming replica (issue 16, item 5): their cost, and the primary's
transactions they take away.

Run: ``.venv/bin/python -m bench.replica_reads_bench [--goods G] [--lookups N] [--rounds R]``.
Makes its own primary and hot standby on loopback ports (``tests.pgreplica``: ``initdb`` +
``pg_basebackup``; as ``postgres`` when run as root), registers ``G`` goods on the primary,
waits for the replica to replay them, then per round, in one thread, ``N`` lookups of random
registered goods:

- peer: ``GoodLookup`` on the primary (the app without a replica);
- replica: ``ReplicaGoodLookup`` (served by the replica while fresh);
- miss: ``ReplicaGoodLookup`` of goods never registered (the replica, then the primary).

Reports each one's median time per lookup over the rounds, the ratios to the peer, and the
primary's transactions per lookup in each phase (``pg_stat_database``, read after the phase's
connections closed so their counters are flushed; the replica watcher's two statements every
0.5 s count too). One machine: the replica shares the cores, so this is the routing's cost and
the primary's share, not a capacity gain. Writes ``bench/results/replica_reads.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from sqlalchemy import Engine, create_engine, text

from readmodels.authenticity import GoodLookup
from readmodels.replicalookup import ReplicaGoodLookup
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.migrate import upgrade
from registry.replica import FRESH, ReplicaReads, replica_engine
from registry.service import Registry
from tests.pgreplica import PgReplicaPair, server_bin_dir
from tests.registry.helpers import registration

RESULTS = Path(__file__).resolve().parent / "results" / "replica_reads.json"


def _transactions(admin: Engine) -> int:
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_stat_clear_snapshot()"))
        return int(
            conn.execute(
                text(
                    "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                    "WHERE datname = current_database()"
                )
            ).scalar_one()
        )


def _phase(
    make: Callable[[], GoodLookup], goods: list[bytes], n: int, admin: Engine, seed: int
) -> tuple[float, float]:
    """Seconds per lookup, and the primary's transactions per lookup."""
    rng = random.Random(seed)
    picks = [rng.choice(goods) for _ in range(n)]
    lookup = make()
    lookup.facts(GoodType.FILE, picks[0])  # connections open before the clock starts
    time.sleep(1.2)  # the stats of what came before are flushed
    before = _transactions(admin)
    start = time.perf_counter()
    for fingerprint in picks:
        lookup.facts(GoodType.FILE, fingerprint)
    elapsed = time.perf_counter() - start
    lookup.close()  # its backends end and flush their counters
    time.sleep(1.2)
    after = _transactions(admin)
    return elapsed / n, (after - before) / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=300)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bin_dir = server_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL's server binaries are not installed")
    pair = PgReplicaPair(bin_dir)
    try:
        pair.start()
        schema = pair.new_schema()
        engine = create_db_engine(schema.primary_url)
        upgrade(engine)
        registry = Registry(
            engine,
            domain=DEV_DOMAIN,
            account=Account.create(),
            master_key=secrets.token_bytes(32),
            clock=lambda: 1_790_000_000,
        )
        creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
        goods = []
        for _ in range(args.goods):
            goods.append(os.urandom(32))
            registry.register(registration(creator, 1_790_000_000, fingerprint=goods[-1]))
        registry.sequence_all()
        missing = [os.urandom(32) for _ in range(args.goods)]
        pair.wait_caught_up()
        admin = create_engine(pair.primary_admin)
        reads = ReplicaReads(registry, replica_engine(schema.replica_url), max_lag=2.0)
        deadline = time.monotonic() + 10
        while reads.status().state != FRESH and time.monotonic() < deadline:
            time.sleep(0.1)
        phases: dict[str, tuple[Callable[[], GoodLookup], list[bytes]]] = {
            "peer_primary": (lambda: GoodLookup(engine), goods),
            "replica": (lambda: ReplicaGoodLookup(engine, reads), goods),
            "replica_miss": (lambda: ReplicaGoodLookup(engine, reads), missing),
        }
        times: dict[str, list[float]] = {name: [] for name in phases}
        primary_tx: dict[str, list[float]] = {name: [] for name in phases}
        for round_ in range(args.rounds):
            for name, (make, keys) in phases.items():
                assert reads.fresh(), "the replica fell behind during the benchmark"
                per, tx = _phase(make, keys, args.lookups, admin, round_)
                times[name].append(per)
                primary_tx[name].append(tx)
        load = os.getloadavg()[0]
        reads.close()
        engine.dispose()
        admin.dispose()
    finally:
        pair.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    peer = medians["peer_primary"]
    result = {
        "goods": args.goods,
        "lookups_per_round": args.lookups,
        "rounds": args.rounds,
        "median_us_per_lookup": {k: round(v * 1e6, 1) for k, v in medians.items()},
        "ratio_to_peer": {k: round(v / peer, 3) for k, v in medians.items()},
        "primary_transactions_per_lookup": {
            k: round(statistics.median(v), 4) for k, v in primary_tx.items()
        },
        "load_average_1m": round(load, 2),
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
