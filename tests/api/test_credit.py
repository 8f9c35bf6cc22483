"""Credit scores (issue 18 item 1) on a generated market, on SQLite and PostgreSQL: an
evidence export with ``--credit`` recomputed alone (``tracemark credit recompute``) gives the
API's number, with the same inputs, for every platform and every seller of the market."""

from __future__ import annotations

import dataclasses
import json
import secrets
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from bench.scenario import SMALL, run_scenario
from readmodels.exports import ExportSelection, write_export
from registry.credit import CreditInputs, credit_score
from registry.creditfacts import all_inputs
from registry.db import create_db_engine, read_transaction
from registry.eip712 import DEV_DOMAIN
from registry.service import Registry
from tests.conftest import Clock
from verifier.client import TracemarkClient

DAY = 86_400
#: A small market: a few hundred sales and refusals of each kind, a few seconds to play.
MARKET = SMALL


@pytest.fixture
def market(db_url: str, tmp_path: Path) -> Registry:
    run = run_scenario(MARKET, 401, workdir=tmp_path, db_url=db_url)
    # Read 40 days after the market closed: its plain sales' royalty lines (due at once,
    # never paid out in the scenario) are overdue by then, so every input kind is exercised.
    return Registry(
        create_db_engine(db_url),
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=Clock(run.now + 40 * DAY),
    )


def test_recomputed_from_the_export_equals_the_api_for_every_subject(
    market: Registry, tmp_path: Path
) -> None:
    # The credit facts are the registry's whole, whichever goods the file carries.
    selection = ExportSelection(
        goods=(), creator=None, since=0, since_text="1970-01-01", after=None, limit=1
    )
    result = write_export(market, selection, tmp_path / "out", credit=True)
    recomputed = CliRunner().invoke(
        cli_app,
        ["credit", "recompute", str(result.json_path), "--json"],
    )
    assert recomputed.exit_code == 0, recomputed.output
    scores = json.loads(recomputed.output)["scores"]

    platforms = [s for s in scores if s["subject"] == "platform"]
    sellers = [s for s in scores if s["subject"] == "seller"]
    assert len(platforms) >= 3 and len(sellers) >= 10
    # Every input kind the market has shows up in some subject's inputs.
    totals = {k: sum(s["inputs"][k] for s in platforms) for k in platforms[0]["inputs"]}
    for kind in ("sales_completed", "bad_sale_attempts", "dead_goods_offered", "overdue_royalties"):
        assert totals[kind] > 0, kind
    assert {s["rating"] for s in scores} == {"rated", "unrated"}

    # The whole market in one grouped pass (what the benchmark times) says the same.
    with read_transaction(market.engine) as conn:
        every = all_inputs(conn, as_of=market.clock(), overdue_after=market.payout_overdue_seconds)
    assert len(every) == len(scores)
    for doc in scores:
        seller = None if doc["seller"] is None else bytes.fromhex(doc["seller"][2:])
        subject = (doc["subject"], doc["platform"], seller)
        assert dataclasses.asdict(every[subject]) == doc["inputs"]

    # One more refused double sale in the file moves that platform's score down (or keeps it
    # at 0) and nothing else: the recompute reads the facts, not a stored number.
    rated = max((s for s in platforms if s["rating"] == "rated"), key=lambda s: s["score"])
    document = json.loads(result.json_path.read_text(encoding="utf-8"))
    extra = {"kind": "bad-sale", "platform": rated["platform"], "seller_platform": None}
    document["credit"]["facts"].append({**extra, "seller": None, "at": document["exported_at"]})
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(document), encoding="utf-8")
    again = CliRunner().invoke(cli_app, ["credit", "recompute", str(changed), "--json"])
    assert again.exit_code == 0, again.output
    moved = [a for a, b in zip(json.loads(again.output)["scores"], scores, strict=True) if a != b]
    assert len(moved) == 1 and moved[0]["platform"] == rated["platform"]
    assert moved[0]["inputs"]["bad_sale_attempts"] == rated["inputs"]["bad_sale_attempts"] + 1
    assert moved[0]["score"] < rated["score"]
    # An export naming credit/v1 (written before v2; its facts were every transfer) still
    # recomputes to its v1 number: the formula the file names is the one applied. Here five
    # more sale facts, as v1 counted unpriced ones, for the rated platform.
    document = json.loads(result.json_path.read_text(encoding="utf-8"))
    assert document["credit"]["formula"] == "credit/v2"
    document["credit"]["formula"] = "credit/v1"
    sale = {"kind": "sale", "platform": rated["platform"], "seller_platform": None}
    document["credit"]["facts"] += [{**sale, "seller": None, "at": 1}] * 5
    old = tmp_path / "old.json"
    old.write_text(json.dumps(document), encoding="utf-8")
    v1 = CliRunner().invoke(cli_app, ["credit", "recompute", str(old), "--json"])
    assert v1.exit_code == 0, v1.output
    v1_scores = json.loads(v1.output)["scores"]
    assert {s["formula"] for s in v1_scores} == {"credit/v1"}
    for a, b in zip(v1_scores, scores, strict=True):
        if a["platform"] == rated["platform"] and a["subject"] == "platform":
            inputs = CreditInputs(**a["inputs"])
            assert inputs.sales_completed == rated["inputs"]["sales_completed"] + 5
            assert a["score"] == credit_score(inputs, "credit/v1").score
        else:
            assert {**a, "formula": "credit/v2"} == b
    # The plain output names every subject once.
    plain = CliRunner().invoke(cli_app, ["credit", "recompute", str(result.json_path)])
    assert plain.exit_code == 0 and len(plain.output.splitlines()) == len(scores)

    app = create_app(market, siwe_domain="testserver", telemetry_interval=0.05)
    with TestClient(app) as http, TracemarkClient("http://testserver", http_client=http) as api:
        for expected in scores:
            if expected["subject"] == "platform":
                answer = api.platform_credit(expected["platform"])
            else:
                answer = api.seller_credit(expected["platform"], expected["seller"])
            assert answer.model_dump(mode="json") == expected
    market.engine.dispose()
