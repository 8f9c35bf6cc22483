"""Issue 18's credit test on two markets, on SQLite and PostgreSQL: scores recomputed from an
evidence export alone (``tracemark credit recompute``) equal the API's, for every platform and
seller of the market; one input changed in the file moves only its subject's score, the way
``registry.credit`` documents.

- a generated market: the scenario generator's (seeded: platforms, sellers, resales, double
  sales, revoked and consumed goods offered, overdue royalties) plus, seeded too, guaranteed
  trades on three platforms: orders delivered and confirmed, orders disputed and refunded, fake
  deliveries refused (``tests/api/test_credit.py`` has the scenario's market alone);
- the demo market: what ``tracemark demo`` makes against a running registry (slow: it waits
  for an anchor).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from eth_account import Account
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from anchoring.devchain import free_port
from api.app import create_app
from api.cli import app as cli_app
from bench.scenario import SMALL, run_scenario
from readmodels.exports import ExportSelection, write_export
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.delivery import NotTheReservedGood
from registry.eip712 import DEV_DOMAIN
from registry.orders import Event
from registry.sequencer import run_sequencer
from registry.service import Registry
from registry.settings import load_settings
from registry.transferrequests import Party
from tests.api.test_cli import Cli
from tests.conftest import Clock
from tests.polling import wait_until
from tests.registry.orderhelpers import first_sale, opening, register_code
from tests.web.test_demo import Instance, _anchor_new_heads
from verifier.client import TracemarkClient

DAY = 86_400
#: Platforms of their own (their reference keys made under this test's master key).
PLATFORMS = ("ordershop", "guaranteehub", "agentdesk")
KINDS = (
    "sales_completed",
    "fake_deliveries_refused",
    "disputes_lost",
    "bad_sale_attempts",
    "dead_goods_offered",
    "overdue_royalties",
)


def _guaranteed_trades(registry: Registry, clock: Clock, seed: int) -> dict[str, int]:
    """Seeded orders on each platform: sellers (resellers bought first-hand) whose orders are
    confirmed, refunded after a dispute, or first met with a fake delivery refused."""
    rng = random.Random(seed)
    creator = CreatorKeys(Account.from_key(rng.randbytes(32)), rng.randbytes(32))
    made = dict.fromkeys(("orders", "refunds", "fakes"), 0)
    for platform in PLATFORMS:
        for s in range(rng.randint(2, 4)):
            seller = Party(platform, f"seller-{s}")
            for n in range(rng.randint(3, 6)):
                code = register_code(registry, creator, clock)
                first_sale(registry, code, seller, platform=platform)
                clock.advance(rng.randint(60, 3_600))
                buyer = f"buyer-{s}-{n}"
                order = registry.open_order(
                    opening(code, platform=platform, seller=seller, buyer=buyer)
                )
                made["orders"] += 1
                clock.advance(5)
                if rng.random() < 0.4:
                    with pytest.raises(NotTheReservedGood):
                        registry.deliver(order.order_id, [os.urandom(32)], platform=platform)
                    made["fakes"] += 1
                registry.deliver(order.order_id, [code], platform=platform)
                if rng.random() < 0.3:
                    registry.change_order(order.order_id, Event.DISPUTE, platform=platform)
                    registry.change_order(order.order_id, Event.REFUND, platform=platform)
                    made["refunds"] += 1
                else:
                    registry.change_order(order.order_id, Event.CONFIRM, platform=platform)
    return made


def _recompute(path: Path) -> list[dict[str, Any]]:
    result = CliRunner().invoke(cli_app, ["credit", "recompute", str(path), "--json"])
    assert result.exit_code == 0, result.output
    scores: list[dict[str, Any]] = json.loads(result.output)["scores"]
    return scores


def _export(registry: Registry, folder: Path) -> Path:
    # The credit facts are the registry's whole, whichever goods the file carries.
    selection = ExportSelection(
        goods=(), creator=None, since=0, since_text="1970-01-01", after=None, limit=1
    )
    return write_export(registry, selection, folder, credit=True).json_path


def _equal_to_the_api(registry: Registry, scores: list[dict[str, Any]]) -> None:
    app = create_app(registry, siwe_domain="testserver", telemetry_interval=0.05)
    with TestClient(app) as http, TracemarkClient("http://testserver", http_client=http) as api:
        for expected in scores:
            if expected["subject"] == "platform":
                answer = api.platform_credit(expected["platform"])
            else:
                answer = api.seller_credit(expected["platform"], expected["seller"])
            assert answer.model_dump(mode="json") == expected


def _moves_one_subject(path: Path, scores: list[dict[str, Any]], tmp_path: Path) -> None:
    """One more disputes_lost fact for the best-rated seller moves its score, and its
    platform's, down by the formula's step (or keeps it at 0), and nothing else."""
    sellers = [s for s in scores if s["subject"] == "seller" and s["rating"] == "rated"]
    target = max(sellers, key=lambda s: s["score"])
    document = json.loads(path.read_text(encoding="utf-8"))
    document["credit"]["facts"].append(
        {
            "kind": "refund",
            "platform": target["platform"],
            "seller_platform": target["platform"],
            "seller": target["seller"],
            "at": document["exported_at"],
        }
    )
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document), encoding="utf-8")
    moved = [(a, b) for a, b in zip(_recompute(changed), scores, strict=True) if a != b]
    assert {(b["subject"], b["platform"]) for _, b in moved} == {
        ("seller", target["platform"]),
        ("platform", target["platform"]),
    }
    for after, before in moved:
        assert after["inputs"] == {
            **before["inputs"],
            "disputes_lost": before["inputs"]["disputes_lost"] + 1,
        }
        if before["rating"] == "rated":
            assert after["score"] <= before["score"] and (
                before["score"] == 0 or after["score"] < before["score"]
            )


@pytest.mark.slow
def test_a_generated_market_with_orders_recomputes_to_the_apis_scores(
    db_url: str, tmp_path: Path
) -> None:
    run = run_scenario(SMALL, 409, workdir=tmp_path, db_url=db_url)
    clock = Clock(run.now)
    registry = Registry(
        create_db_engine(db_url),
        domain=DEV_DOMAIN,
        account=Account.from_key(random.Random(409).randbytes(32)),  # the scenario's key
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    made = _guaranteed_trades(registry, clock, 409)
    assert made["refunds"] and made["fakes"]
    # Read 40 days on: the plain sales' royalty lines are overdue and sellers rated.
    clock.advance(40 * DAY)
    path = _export(registry, tmp_path / "out")
    scores = _recompute(path)
    platforms = [s for s in scores if s["subject"] == "platform"]
    assert {p["platform"] for p in platforms} >= set(PLATFORMS)
    assert len([s for s in scores if s["subject"] == "seller"]) >= 10
    for kind in KINDS:  # every input kind is in the market
        assert sum(s["inputs"][kind] for s in platforms) > 0, kind
    assert sum(s["inputs"]["disputes_lost"] for s in platforms) == made["refunds"]
    assert sum(s["inputs"]["fake_deliveries_refused"] for s in platforms) == made["fakes"]
    assert {s["rating"] for s in scores} == {"rated", "unrated"}
    _equal_to_the_api(registry, scores)
    _moves_one_subject(path, scores, tmp_path)
    registry.engine.dispose()


@pytest.fixture
def demo_instance(db_url: str, tmp_path: Path) -> Iterator[Instance]:
    """What ``tests/web/test_demo.py`` runs the demo against (the API under uvicorn, the
    sequencer, heads anchored as they come), on ``db_url``."""
    settings = load_settings(data_dir=tmp_path / "data", database_url=db_url)
    registry = Registry.open(settings)
    port = free_port()
    app = create_app(registry, siwe_domain=f"127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.run, daemon=True),
        threading.Thread(
            target=run_sequencer,
            args=(registry,),
            kwargs={"interval": 0.2, "stop": stop},
            daemon=True,
        ),
        threading.Thread(target=_anchor_new_heads, args=(registry, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    wait_until("the API to start", lambda: server.started, timeout=30)
    try:
        yield Instance(f"http://127.0.0.1:{port}", port, registry)
    finally:
        stop.set()
        server.should_exit = True
        for thread in threads:
            thread.join(timeout=30)
        registry.engine.dispose()


@pytest.mark.slow
def test_the_demo_market_recomputes_to_the_apis_scores(
    demo_instance: Instance, db_url: str, tmp_path: Path
) -> None:
    cli = Cli(tmp_path)
    cli.env["TRACEMARK_API_PORT"] = str(demo_instance.port)
    cli.env["TRACEMARK_DATABASE_URL"] = db_url
    result = cli.json("demo", "--anchor-wait", "20")
    assert result["double_sale"]["refused"] is True
    live = demo_instance.registry
    registry = Registry(
        live.engine,
        domain=live.domain,
        account=live.account,
        master_key=live._master_key,
        clock=Clock(live.clock() + 40 * DAY),
    )
    path = _export(registry, tmp_path / "out")
    scores = _recompute(path)
    subjects = {(s["subject"], s["platform"]) for s in scores}
    assert {("platform", "cardhub"), ("platform", "keyshop")} <= subjects
    assert any(s["subject"] == "seller" for s in scores)
    # keyshop's refused double sale is one of its inputs.
    keyshop = next(s for s in scores if s == {**s, "subject": "platform", "platform": "keyshop"})
    assert keyshop["inputs"]["bad_sale_attempts"] >= 1
    _equal_to_the_api(registry, scores)
