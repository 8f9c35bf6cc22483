"""What the embeddable badge (issue 18 item 6) costs a registry per load, in the same process.

Run: ``.venv/bin/python -m bench.badge_bench [--goods N] [--rounds R]``. Prints a table and
writes ``bench/results/badge.json``. Ours: ``GET /badge/code/{fingerprint}`` (the verify
answer with the holder's stored credit, an HTML template in the reader's language, the
headers). Peer, same run, same app, same goods, interleaved: ``POST /v1/verify`` by the same
fingerprint on the anonymous tier, the JSON answer a platform's script would fetch instead.
Each good is held by a platform's seller with a stored credit score (the risk worker's pass
runs first). Both are ASGI calls straight into the app on one event loop (no HTTP client or
server, whose cost would be the same for both and hide the difference), CPU seconds of this
process (``time.process_time``), median over rounds of the mean per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path

from eth_account import Account
from fastapi import FastAPI

from api.app import create_app
from api.ratelimit import Limit, RateLimits
from bench.common import print_ratio, rotations, save
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


async def _call(app: FastAPI, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request through the whole app (its middleware, router, handler), as uvicorn calls
    it; the status and the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"accept-language", b"zh-CN"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver", 80),
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status, chunks = 0, []

    async def receive() -> dict[str, object]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # never: a disconnect is not part of the benchmark
        return {}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))  # type: ignore[arg-type]

    await app(scope, receive, send)  # type: ignore[arg-type]
    return status, b"".join(chunks)


async def _badges(app: FastAPI, goods: list[str]) -> float:
    started = time.process_time()
    for fingerprint in goods:
        status, body = await _call(app, "GET", f"/badge/code/{fingerprint}")
        assert status == 200 and b'data-platform="cardhub"' in body
    return (time.process_time() - started) / len(goods)


async def _verifies(app: FastAPI, goods: list[str]) -> float:
    started = time.process_time()
    for fingerprint in goods:
        request = json.dumps({"good_type": "code", "fingerprint": fingerprint}).encode()
        status, body = await _call(app, "POST", "/v1/verify", request)
        assert status == 200 and json.loads(body)["holder"]["platform"] == "cardhub"
    return (time.process_time() - started) / len(goods)


async def _rounds(app: FastAPI, goods: list[str], rounds: int) -> tuple[list[float], list[float]]:
    measure = {"badge": _badges, "verify": _verifies}
    samples: dict[str, list[float]] = {kind: [] for kind in measure}
    async with app.router.lifespan_context(app):
        await _badges(app, goods[:20])  # warm the template and the statements
        await _verifies(app, goods[:20])
        for _, order in rotations(list(measure), rounds):
            for kind in order:
                samples[kind].append(await measure[kind](app, goods))
    return samples["badge"], samples["verify"]


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
        badges, verifies = asyncio.run(_rounds(app, goods, args.rounds))
        engine.dispose()

    ours, peer = statistics.median(badges), statistics.median(verifies)
    load = print_ratio(
        "request",
        "us",
        ("GET /badge (HTML, holder credit)", ours),
        ("POST /v1/verify by fingerprint (peer)", peer),
    )
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
