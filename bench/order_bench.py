"""An order's life so far (issue 17 items 1 and 4) against one transfer, in the same process.

Run: ``.venv/bin/python -m bench.order_bench [--goods N] [--rounds R] [--db URL]``. Prints a
table and writes ``bench/results/orders.json``. Ours: one order cycle through the registry's
facade, as the routes call it: open (log lock, holder checks, reservation, a signed change),
deliver (its DELIVERY entry and held lines) and confirm (the sale's TRANSFER, lines due),
three write transactions. Peer, same run, same database, interleaved: one first-hand transfer
of a good (a TRANSFER entry sequenced at once, a signed head and checkpoint, a signed receipt). CPU
seconds of this process (``time.process_time``; the database is in-process SQLite, or
PostgreSQL's own process not counted), median over rounds of the mean per operation.

The issue's benchmark (reserve, deliver, confirm, release with three upline levels, at most
4x a transfer, in server CPU over HTTP) is another; this one runs in process.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from eth_account import Account

from bench.common import save
from registry.creator import CreatorKeys, sign_registration
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.orders import Event, OrderRequest
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.transferrequests import Party, TransferRequest

CREATOR = Party(None, None)


def _register(registry: Registry, creator: CreatorKeys, count: int) -> list[bytes]:
    goods = [os.urandom(32) for _ in range(count)]
    for fingerprint in goods:
        registry.register(
            sign_registration(
                creator,
                DEV_DOMAIN,
                good_type=GoodType.CODE,
                fingerprint=fingerprint,
                product="bench-card",
                use=Use.SINGLE,
                royalty_policy=RoyaltyPolicy.parse({"recipients": []}),
                metadata={},
                now=registry.clock(),
                new_product=not registry.goods_of(
                    bytes.fromhex(creator.address[2:]), after=0, limit=1
                ),
            )
        )
    registry.sequence_all()
    return goods


def _order_cycle(registry: Registry, fingerprint: bytes) -> None:
    order = registry.open_order(
        OrderRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=fingerprint,
            seller=CREATOR,
            buyer=Party("cardhub", "buyer-" + secrets.token_hex(4)),
            price=1_999,
            currency="CNY",
        )
    )
    registry.deliver_order(order.order_id, platform="cardhub")
    registry.change_order(order.order_id, Event.CONFIRM, platform="cardhub")


def _transfer(registry: Registry, fingerprint: bytes) -> None:
    registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=fingerprint,
            seller=CREATOR,
            buyer=Party("cardhub", "buyer-" + secrets.token_hex(4)),
            price=1_999,
            currency="CNY",
        )
    )


def _cpu_per_call(call: Callable[[bytes], None], goods: list[bytes]) -> float:
    started = time.process_time()
    for fingerprint in goods:
        call(fingerprint)
    return (time.process_time() - started) / len(goods)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=20, help="operations of each kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", default=None, help="a database URL (default: a fresh SQLite)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{(Path(tmp) / 'orders.db').as_posix()}"
        engine = create_db_engine(url)
        upgrade(engine)
        registry = Registry(
            engine, domain=DEV_DOMAIN, account=Account.create(), master_key=os.urandom(32)
        )
        creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
        goods = _register(registry, creator, 2 * args.goods * args.rounds)
        orders: list[float] = []
        transfers: list[float] = []
        for r in range(args.rounds):
            batch = goods[2 * r * args.goods : 2 * (r + 1) * args.goods]
            # Interleaved, alternating which goes first, so drift hits both alike.
            first, second = (orders, transfers) if r % 2 == 0 else (transfers, orders)
            halves = (batch[: args.goods], batch[args.goods :])
            for out, half in zip((first, second), halves, strict=True):
                step = _order_cycle if out is orders else _transfer
                out.append(_cpu_per_call(partial(step, registry), half))
        engine.dispose()

    cycle, transfer = statistics.median(orders), statistics.median(transfers)
    load = os.getloadavg()[0]
    print(f"{'operation':<40}{'CPU ms (median)':>18}")
    print(f"{'order cycle (open, deliver, confirm)':<40}{cycle * 1e3:>18.2f}")
    print(f"{'transfer (peer)':<40}{transfer * 1e3:>18.2f}")
    print(f"ratio order cycle / transfer: {cycle / transfer:.2f}  (load average {load:.1f})")
    save(
        "orders",
        {
            "database": url.split(":")[0],
            "goods_per_round": args.goods,
            "rounds": args.rounds,
            "order_cycle_cpu_ms": round(cycle * 1e3, 3),
            "transfer_cpu_ms": round(transfer * 1e3, 3),
            "ratio": round(cycle / transfer, 3),
            "rounds_order_ms": [round(x * 1e3, 3) for x in orders],
            "rounds_transfer_ms": [round(x * 1e3, 3) for x in transfers],
            "load_average": round(load, 2),
        },
    )


if __name__ == "__main__":
    main()
