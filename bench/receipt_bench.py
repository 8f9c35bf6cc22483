"""What the buyer's delivery receipt (issue 17 item 3) adds to a delivery, in the same process.

Run: ``.venv/bin/python -m bench.receipt_bench [--orders N] [--rounds R] [--db URL]``. Prints
a table and writes ``bench/results/receipts.json``. Ours: a delivery through the registry's
facade as the route calls it (the order moved, its DELIVERY entry sequenced, a signed head and
checkpoint, the held lines, and the receipt: the facts query, one EIP-712 signature, one row).
Floor, same run, same database, interleaved: the very same delivery with the receipt's
issuing replaced by nothing. The ratio is the receipt's share. Orders are opened outside the
measured time. CPU seconds of this process (``time.process_time``; in-process SQLite, or
PostgreSQL's own process not counted), median over rounds of the mean per delivery.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from eth_account import Account

from bench.common import print_ratio, rotations, save
from bench.order_bench import SELLER, _register
from registry import receiptstore
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.migrate import upgrade
from registry.orders import OrderRequest
from registry.service import Registry
from registry.transferrequests import Party


def _open(registry: Registry, fingerprint: bytes) -> int:
    order = registry.open_order(
        OrderRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=fingerprint,
            seller=SELLER,
            buyer=Party("cardhub", "buyer-" + secrets.token_hex(4)),
            price=1_999,
            currency="CNY",
        )
    )
    return order.order_id


def _deliveries(registry: Registry, goods: list[bytes], *, receipt: bool) -> float:
    """CPU seconds a delivery, for orders opened first (not measured)."""
    orders = [(_open(registry, fingerprint), fingerprint) for fingerprint in goods]
    issue = receiptstore.issue
    if not receipt:
        receiptstore.issue = lambda *args, **kwargs: None  # type: ignore[assignment]
    try:
        started = time.process_time()
        for order_id, fingerprint in orders:
            registry.deliver(order_id, [fingerprint], platform="cardhub")
        return (time.process_time() - started) / len(orders)
    finally:
        receiptstore.issue = issue  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=20, help="deliveries of each kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", default=None, help="a database URL (default: a fresh SQLite)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{(Path(tmp) / 'receipts.db').as_posix()}"
        engine = create_db_engine(url)
        upgrade(engine)
        registry = Registry(
            engine, domain=DEV_DOMAIN, account=Account.create(), master_key=os.urandom(32)
        )
        creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
        goods = _register(registry, creator, 2 * args.orders * args.rounds)
        with_receipt: list[float] = []
        without: list[float] = []
        for r, kinds in rotations([True, False], args.rounds):
            batch = goods[2 * r * args.orders : 2 * (r + 1) * args.orders]
            halves = (batch[: args.orders], batch[args.orders :])
            for receipt, half in zip(kinds, halves, strict=True):
                out = with_receipt if receipt else without
                out.append(_deliveries(registry, half, receipt=receipt))
        engine.dispose()

    ours, floor = statistics.median(with_receipt), statistics.median(without)
    load = print_ratio(
        "operation",
        "ms",
        ("delivery with its receipt", ours),
        ("delivery without a receipt (floor)", floor),
    )
    save(
        "receipts",
        {
            "database": url.split(":")[0],
            "orders_per_round": args.orders,
            "rounds": args.rounds,
            "delivery_with_receipt_cpu_ms": round(ours * 1e3, 3),
            "delivery_without_receipt_cpu_ms": round(floor * 1e3, 3),
            "ratio": round(ours / floor, 3),
            "rounds_with_ms": [round(x * 1e3, 3) for x in with_receipt],
            "rounds_without_ms": [round(x * 1e3, 3) for x in without],
            "load_average": round(load, 2),
        },
    )


if __name__ == "__main__":
    main()
