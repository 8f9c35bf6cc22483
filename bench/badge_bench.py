"""What the embeddable badge (issue 18 item 6) costs a registry per load, in the same process.

Run: ``.venv/bin/python -m bench.badge_bench [--goods N] [--rounds R]``. Prints a table and
writes ``bench/results/badge.json``. Ours: ``GET /badge/code/{fingerprint}`` (the verify
answer with the holder's stored credit, an HTML template in the reader's language, the
headers). Peer, same run, same app, same goods, interleaved: ``POST /v1/verify`` by the same
fingerprint on the anonymous tier, the JSON answer a platform's script would fetch instead.
Each good is held by a platform's seller with a stored credit score (the risk worker's pass
runs first). Both through Starlette's in-process test client (its cost is in both), CPU
seconds of this process (``time.process_time``), median over rounds of the mean per request.
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
from fastapi.testclient import TestClient

from api.app import create_app
from api.ratelimit import Limit, RateLimits
from bench.common import save
from registry.creator import CreatorKeys, sign_registration
from registry.creditscores import refresh_credit_scores
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.migrate import upgrade
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.transferrequests import Party, TransferRequest

#: No rate limit in the way: the benchmark measures the work, not the budget.
UNLIMITED = Limit.per_second(10**6, burst=10**6)


def _market(registry: Registry, count: int) -> list[str]:
    """``count`` codes, each sold first-hand to a seller on cardhub; their fingerprints."""
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    goods = [os.urandom(32) for _ in range(count)]
    for index, fingerprint in enumerate(goods):
        registry.register(
            sign_registration(
                creator,
                DEV_DOMAIN,
                good_type=GoodType.CODE,
                fingerprint=fingerprint,
                product="30-day-card",
                use=Use.SINGLE,
                royalty_policy=RoyaltyPolicy.parse({"recipients": []}),
                metadata={},
                now=registry.clock(),
                new_product=index == 0,
            )
        )
    registry.sequence_all()
    for index, fingerprint in enumerate(goods):
        registry.transfer(
            TransferRequest(
                platform="cardhub",
                good_type=GoodType.CODE,
                fingerprint=fingerprint,
                seller=Party(None, None),
                buyer=Party("cardhub", f"seller-{index % 10}"),
                price=1_000,
                currency="CNY",
            )
        )
    refresh_credit_scores(
        registry.engine, as_of=registry.clock(), overdue_after=registry.payout_overdue_seconds
    )
    return ["0x" + fingerprint.hex() for fingerprint in goods]


def _badges(http: TestClient, goods: list[str]) -> float:
    started = time.process_time()
    for fingerprint in goods:
        answer = http.get(f"/badge/code/{fingerprint}", headers={"Accept-Language": "zh-CN"})
        assert answer.status_code == 200 and 'data-platform="cardhub"' in answer.text
    return (time.process_time() - started) / len(goods)


def _verifies(http: TestClient, goods: list[str]) -> float:
    started = time.process_time()
    for fingerprint in goods:
        answer = http.post("/v1/verify", json={"good_type": "code", "fingerprint": fingerprint})
        assert answer.status_code == 200 and answer.json()["holder"]["platform"] == "cardhub"
    return (time.process_time() - started) / len(goods)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=200, help="requests of each kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        engine = create_db_engine(f"sqlite:///{(Path(tmp) / 'badge.db').as_posix()}")
        upgrade(engine)
        registry = Registry(
            engine, domain=DEV_DOMAIN, account=Account.create(), master_key=os.urandom(32)
        )
        goods = _market(registry, args.goods)
        limits = RateLimits(anonymous=UNLIMITED, fingerprint=UNLIMITED, probe=UNLIMITED)
        app = create_app(registry, siwe_domain="testserver", limits=limits)
        badges: list[float] = []
        verifies: list[float] = []
        with TestClient(app) as http:
            _badges(http, goods[:20])  # warm the template and the statements
            _verifies(http, goods[:20])
            for r in range(args.rounds):
                # Interleaved, alternating which goes first, so drift hits both alike.
                order = (_badges, _verifies) if r % 2 == 0 else (_verifies, _badges)
                for run in order:
                    (badges if run is _badges else verifies).append(run(http, goods))
        engine.dispose()

    ours, peer = statistics.median(badges), statistics.median(verifies)
    load = os.getloadavg()[0]
    print(f"{'request':<44}{'CPU us (median)':>18}")
    print(f"{'GET /badge (HTML, holder credit)':<44}{ours * 1e6:>18.0f}")
    print(f"{'POST /v1/verify by fingerprint (peer)':<44}{peer * 1e6:>18.0f}")
    print(f"ratio: {ours / peer:.2f}  (load average {load:.1f})")
    save(
        "badge",
        {
            "database": "sqlite",
            "requests_per_round": args.goods,
            "rounds": args.rounds,
            "badge_cpu_us": round(ours * 1e6, 1),
            "verify_cpu_us": round(peer * 1e6, 1),
            "ratio": round(ours / peer, 3),
            "rounds_badge_us": [round(x * 1e6, 1) for x in badges],
            "rounds_verify_us": [round(x * 1e6, 1) for x in verifies],
            "load_average": round(load, 2),
        },
    )


if __name__ == "__main__":
    main()
