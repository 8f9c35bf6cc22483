"""An order's full cycle (issue 17's benchmark) against one plain transfer, in the same process.

Run: ``.venv/bin/python -m bench.order_bench [--goods N] [--rounds R] [--database sqlite|postgres]
[--postgres-url URL]``. Prints a table and writes ``bench/results/orders.json`` (a PostgreSQL
run its ``postgres`` part, a SQLite run the rest). The registry is set up as the issue's cycle
needs it: the creator's product has a royalty policy (8 % to a studio) and the creator's rebate
policy of three levels (3 %, 2 %, 1 %); cardhub's agent tree puts its seller three levels
below the top (seller <- city <- region <- top), and the seller holds every good (bought
first-hand, not measured). Ours, through the registry's facade as the routes call it:

- cycle (confirm): open (log lock, holder checks, reservation, a signed change), deliver (its
  DELIVERY entry, the royalty line and the three levels' rebate lines held) and confirm (the
  sale's TRANSFER, every line due): three write transactions;
- cycle (dispute, release): open, deliver, dispute, release (the resolution: the same sale and
  lines due): four.

Peer, same run, same registry, interleaved: one plain transfer of the same kind of sale (the
seller to a buyer at the same price: a TRANSFER entry sequenced at once, a signed head and
checkpoint, a signed receipt, its royalty line). Each round checks the cycle wrote its lines
(one royalty and three rebates per order, due). CPU seconds of this process
(``time.process_time``): on the default in-process SQLite that is all of the server's CPU
(no HTTP: the routes' parsing and signing of answers is the same order for both). With
``--database postgres`` (a fresh schema, ``bench.pgschema``) the server's CPU is this
process's plus its PostgreSQL backends' (found by ``application_name``, read from /proc), both
reported. Median over rounds of the mean per operation; the target is at most 4x a transfer.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from eth_account import Account
from sqlalchemy import func, select

from bench.common import RESULTS, save
from bench.pgschema import BackendCpu, fresh_schema, postgres_url
from registry.creator import CreatorKeys, sign_registration
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.orders import Event, OrderRequest
from registry.rebates import CREATOR_SETTER
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.transferrequests import Party, TransferRequest
from registry.transfers import royalty_lines_t

CREATOR = Party(None, None)
SELLER = Party("cardhub", "seller")
PRODUCT = "bench-card"
PRICE = 1_999
ROYALTY = {"recipients": [{"address": "0x" + "5a" * 20, "bps": 800, "label": "studio"}]}
#: The creator's rebate policy: bps of levels 1, 2, 3 above the seller.
REBATE_LEVELS = [300, 200, 100]
TREE = [("top", None), ("region", "top"), ("city", "region"), ("seller", "city")]


def _register(registry: Registry, creator: CreatorKeys, count: int) -> list[bytes]:
    goods = [os.urandom(32) for _ in range(count)]
    for fingerprint in goods:
        registry.register(
            sign_registration(
                creator,
                DEV_DOMAIN,
                good_type=GoodType.CODE,
                fingerprint=fingerprint,
                product=PRODUCT,
                use=Use.SINGLE,
                royalty_policy=RoyaltyPolicy.parse(ROYALTY),
                metadata={},
                now=registry.clock(),
                new_product=not registry.goods_of(
                    bytes.fromhex(creator.address[2:]), after=0, limit=1
                ),
            )
        )
    registry.sequence_all()
    registry.place_agents("cardhub", TREE)
    registry.set_rebate_policy(
        creator=bytes.fromhex(creator.address[2:]),
        product=PRODUCT,
        setter=CREATOR_SETTER,
        levels=REBATE_LEVELS,
    )
    for fingerprint in goods:  # the seller buys them first-hand (no royalty, no rebate)
        registry.transfer(_sale(fingerprint, CREATOR, SELLER, price=1))
    return goods


def _sale(fingerprint: bytes, seller: Party, buyer: Party, *, price: int) -> TransferRequest:
    return TransferRequest(
        platform="cardhub",
        good_type=GoodType.CODE,
        fingerprint=fingerprint,
        seller=seller,
        buyer=buyer,
        price=price,
        currency="CNY",
    )


def _open_and_deliver(registry: Registry, fingerprint: bytes) -> int:
    order = registry.open_order(
        OrderRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=fingerprint,
            seller=SELLER,
            buyer=Party("cardhub", "buyer-" + secrets.token_hex(4)),
            price=PRICE,
            currency="CNY",
        )
    )
    registry.deliver_order(order.order_id, platform="cardhub")
    return order.order_id


def _confirm_cycle(registry: Registry, fingerprint: bytes) -> None:
    order_id = _open_and_deliver(registry, fingerprint)
    registry.change_order(order_id, Event.CONFIRM, platform="cardhub")


def _release_cycle(registry: Registry, fingerprint: bytes) -> None:
    order_id = _open_and_deliver(registry, fingerprint)
    registry.change_order(order_id, Event.DISPUTE, platform="cardhub")
    registry.change_order(order_id, Event.RELEASE, platform="cardhub")


def _transfer(registry: Registry, fingerprint: bytes) -> None:
    buyer = Party("cardhub", "buyer-" + secrets.token_hex(4))
    registry.transfer(_sale(fingerprint, SELLER, buyer, price=PRICE))


def _check_lines(registry: Registry, orders: int) -> None:
    """Every measured order wrote its royalty and three rebate lines, all due: the cycle
    measured is the issue's, not a shortcut."""
    c = royalty_lines_t.c
    with registry.engine.connect() as conn:
        counts: dict[str, int] = dict(
            conn.execute(
                select(c.kind, func.count())
                .where(c.order_id.is_not(None), c.status == "due")
                .group_by(c.kind)
            ).all()
        )
    expected = {"royalty": orders, "rebate": len(REBATE_LEVELS) * orders}
    assert counts == expected, f"the orders' due lines are {counts}, not {expected}"


def _cpu_per_call(
    call: Callable[[bytes], None], goods: list[bytes], backends: BackendCpu | None
) -> tuple[float, float]:
    """(this process's, the database backends') CPU seconds per call."""
    db_before = backends.read() if backends else 0.0
    started = time.process_time()
    for fingerprint in goods:
        call(fingerprint)
    own = (time.process_time() - started) / len(goods)
    db = ((backends.read() - db_before) / len(goods)) if backends else 0.0
    return own, db


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=20, help="operations of each kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=None, help="else TRACEMARK_TEST_POSTGRES_URL")
    args = parser.parse_args()
    if args.database == "postgres":
        with fresh_schema(postgres_url(args.postgres_url)) as (url, schema):
            backends = BackendCpu(postgres_url(args.postgres_url), schema)
            try:
                _run(args, url, backends)
            finally:
                backends.close()
    else:
        with tempfile.TemporaryDirectory() as tmp:
            _run(args, f"sqlite:///{(Path(tmp) / 'orders.db').as_posix()}", None)


def _run(args: argparse.Namespace, url: str, backends: BackendCpu | None) -> None:
    engine = create_db_engine(url)
    upgrade(engine)
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=os.urandom(32)
    )
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    kinds: dict[str, Callable[[Registry, bytes], None]] = {
        "confirm": _confirm_cycle,
        "release": _release_cycle,
        "transfer": _transfer,
    }
    n = args.goods
    goods = _register(registry, creator, len(kinds) * n * args.rounds)
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    db_cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    names = list(kinds)
    for r in range(args.rounds):
        batch = goods[len(kinds) * r * n : len(kinds) * (r + 1) * n]
        # Interleaved, rotating which goes first, so drift hits all alike.
        order = names[r % len(names) :] + names[: r % len(names)]
        for i, kind in enumerate(order):
            half = batch[i * n : (i + 1) * n]
            own, db = _cpu_per_call(partial(kinds[kind], registry), half, backends)
            cpu[kind].append(own + db)
            db_cpu[kind].append(db)
    _check_lines(registry, 2 * n * args.rounds)
    engine.dispose()

    confirm, release = statistics.median(cpu["confirm"]), statistics.median(cpu["release"])
    transfer = statistics.median(cpu["transfer"])
    load = os.getloadavg()[0]
    print(f"{'operation (' + args.database + ')':<52}{'CPU ms (median)':>18}")
    print(f"{'order cycle: open, deliver, confirm (3 levels)':<52}{confirm * 1e3:>18.2f}")
    print(f"{'order cycle: open, deliver, dispute, release':<52}{release * 1e3:>18.2f}")
    print(f"{'plain transfer (peer)':<52}{transfer * 1e3:>18.2f}")
    if backends:
        print(
            "of which PostgreSQL backends: "
            + ", ".join(f"{k} {statistics.median(v) * 1e3:.2f}" for k, v in db_cpu.items())
        )
    print(
        f"ratio confirm cycle / transfer: {confirm / transfer:.2f}, release cycle / transfer:"
        f" {release / transfer:.2f}  (load average {load:.1f})"
    )
    result = {
        "database": args.database,
        "goods_per_round": n,
        "rounds": args.rounds,
        "rebate_levels_bps": REBATE_LEVELS,
        "royalty_bps": 800,
        "price": PRICE,
        "order_cycle_cpu_ms": round(confirm * 1e3, 3),
        "release_cycle_cpu_ms": round(release * 1e3, 3),
        "transfer_cpu_ms": round(transfer * 1e3, 3),
        "ratio": round(confirm / transfer, 3),
        "release_ratio": round(release / transfer, 3),
        "rounds_order_ms": [round(x * 1e3, 3) for x in cpu["confirm"]],
        "rounds_release_ms": [round(x * 1e3, 3) for x in cpu["release"]],
        "rounds_transfer_ms": [round(x * 1e3, 3) for x in cpu["transfer"]],
        "load_average": round(load, 2),
    }
    if backends:
        # The server's CPU above is this process's plus these, per operation (medians).
        result["postgres_backends_cpu_ms"] = {
            k: round(statistics.median(v) * 1e3, 3) for k, v in db_cpu.items()
        }
    save_part("orders", args.database, result)


def save_part(name: str, database: str, result: dict[str, object]) -> None:
    """Write a run's result into ``bench/results/<name>.json``: a SQLite run at the top, a
    PostgreSQL run as its ``postgres`` part, each keeping the other's."""
    path = RESULTS / f"{name}.json"
    kept: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
    for key in ("benchmark", "machine"):
        kept.pop(key, None)
    if database == "postgres":  # the top's "when" stays the SQLite run's
        top = {k: v for k, v in kept.items() if k != "postgres"}
        top["postgres"] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **result,
        }
        save(name, top)
    else:
        save(name, {**result, **({"postgres": kept["postgres"]} if "postgres" in kept else {})})


if __name__ == "__main__":
    main()
