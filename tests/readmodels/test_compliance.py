"""A platform's compliance report (issue 18 item 3) on real SQLite and PostgreSQL: which
signals it lists (a real rule's, end to end through the risk worker, and a code no one wrote
a case for), the report checked offline by the verifier (everything but the chain: the chain
is tests/verifier/test_compliance_chain.py), every tampering refused, and its CSV."""

from __future__ import annotations

import copy
import csv
import io
import json
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from readmodels.compliance import build_report
from readmodels.compliancecsv import BOM, CSV_COLUMNS, csv_text, safe_cell
from readmodels.realnamerule import RealNameRule
from readmodels.riskworker import RiskWorker
from readmodels.signals import (
    CODE_VELOCITY,
    PAYOUT_OVERDUE,
    SOLD_BY_NON_HOLDER,
    UNATTESTED_SELLER,
    WEIGHTS,
    Evidence,
    Signal,
    Subject,
)
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.errors import InvalidInput
from registry.fingerprints import GoodType
from registry.service import Registry
from registry.signatures import sign
from registry.telemetry import VerificationRecord as Telemetry
from registry.transferrequests import DoubleSale, Party
from registry.transfers import transfers_t
from tests.conftest import Clock
from tests.registry.orderhelpers import register_code
from tests.registry.test_transfers import CREATOR, sale
from tests.trust import policy_of
from verifier.compliance import (
    REPORT_TYPE,
    ComplianceCheck,
    ComplianceReport,
    check_compliance_report,
    report_hash,
    report_message,
)
from verifier.compliancefacts import severity, summarize
from verifier.errors import BundleInvalid

DAY = 86_400
CODE = int(GoodType.CODE)


@dataclass
class Market:
    registry: Registry
    start: int
    #: cardhub bought it first-hand; shadykeys then claimed to buy it from the creator.
    double_sold: bytes
    #: cardhub sold it on to keyshop (its counterparty).
    resold: bytes
    #: Not cardhub's: gamemart's, double-sold too (a signal cardhub's report leaves out).
    elsewhere: bytes
    keyshop_ref: str
    worker: RiskWorker


def _market(registry: Registry, creator: CreatorKeys, clock: Clock) -> Market:
    start = clock()
    double_sold = register_code(registry, creator, clock)
    resold = register_code(registry, creator, clock)
    elsewhere = register_code(registry, creator, clock)
    clock.advance(60)
    registry.transfer(sale(double_sold, CREATOR, Party("cardhub", "u1"), price=1_000))
    registry.transfer(sale(resold, CREATOR, Party("cardhub", "u2"), price=700))
    registry.transfer(
        sale(resold, Party("cardhub", "u2"), Party("keyshop", "k1"), platform="cardhub", price=900)
    )
    registry.transfer(sale(elsewhere, CREATOR, Party("gamemart", "g1"), platform="gamemart"))
    clock.advance(60)
    for code in (double_sold, elsewhere):
        with pytest.raises(DoubleSale):
            registry.transfer(
                sale(code, CREATOR, Party("shadykeys", "s1"), platform="shadykeys", price=100)
            )
    registry.sequence_all()
    with registry.engine.connect() as conn:
        keyshop_ref = bytes(
            conn.execute(
                select(transfers_t.c.buyer_ref).where(transfers_t.c.buyer_platform == "keyshop")
            ).scalar_one()
        ).hex()
    worker = RiskWorker(registry.engine, clock=clock)
    worker.run_once()
    return Market(registry, start, double_sold, resold, elsewhere, keyshop_ref, worker)


def _add_signals(market: Market, signals: list[Signal]) -> None:
    """Signals no scenario of this test raises, written as the worker writes its own."""
    worker, now = market.worker, market.registry.clock()
    state = worker.state
    assert state is not None
    worker.write_all(state.goods, [*state.all_signals(), *signals], now, now)


def _report(market: Market, platform: str = "cardhub") -> ComplianceReport:
    return build_report(market.registry, platform, start=market.start, end=market.start + DAY)


def _check(registry: Registry, document: dict[str, Any]) -> ComplianceCheck:
    return check_compliance_report(
        ComplianceReport.parse(json.dumps(document)), policy_of(registry), None
    )


@pytest.fixture
def market(engine: Engine, creator: CreatorKeys, clock: Clock) -> Market:
    # NOTE: on both databases (``engine``): this folder's ``registry`` is the chain tests'
    # (SQLite), so the registry is made here as tests/conftest.py makes it.
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    return _market(registry, creator, clock)


def test_the_report_lists_the_platforms_signals_with_their_proofs_and_verifies_offline(
    market: Market,
) -> None:
    # One signal of every rule the registry knows (today's and any added later) about a
    # seller of keyshop, cardhub's counterparty: the report lists each, by no code of its own.
    seller = Subject("seller", f"keyshop/{market.keyshop_ref[:8]}")
    evidence = (Evidence("sale", "order 7", market.start + 100, "a sale of 60000 CNY"),)
    _add_signals(
        market, [Signal(code, f"{code} of a seller", evidence, seller) for code in WEIGHTS]
    )
    report = _report(market)
    assert Counter(s.code for s in report.signals) == Counter([*WEIGHTS, SOLD_BY_NON_HOLDER])
    [double] = [s for s in report.signals if s.subject.kind == "good"]
    assert double.code == SOLD_BY_NON_HOLDER
    assert double.subject.id == f"code:0x{market.double_sold.hex()}"
    # A good cardhub bought, and cardhub is among the platforms it concerns (the holder).
    assert double.relations == ("platform", "good") and double.severity == "high"
    # The accepted sale it cites is a log entry, carried with its proof and its facts.
    [cited] = [e for e in double.evidence if e.entry is not None]
    assert cited.entry is not None
    assert (cited.entry["kind"], cited.entry["price"], cited.entry["currency"]) == (
        "TRANSFER",
        "1000",
        "EUR",
    )
    assert cited.entry["buyer_platform"] == "cardhub"
    assert [e.kind for e in double.evidence if e.entry is None] == ["attempt"]
    sellers = [
        s for s in report.signals if (s.subject.kind, s.subject.id) == (seller.kind, seller.id)
    ]
    assert {s.relations for s in sellers} == {("counterparty",)}
    assert report.export is not None
    assert {g.good.fingerprint for g in report.export.goods} == {market.double_sold}

    check = _check(market.registry, json.loads(report.to_json()))
    assert check.status == "chain-not-checked"
    facts = check.summary_document["facts"]
    assert facts["by_code"] == dict(sorted(Counter([*WEIGHTS, SOLD_BY_NON_HOLDER]).items()))
    severities = Counter(severity(w) for w in [*WEIGHTS.values(), WEIGHTS[SOLD_BY_NON_HOLDER]])
    assert facts["by_severity"] == {k: severities[k] for k in ("high", "medium", "low")}
    assert facts["by_relation"] == {"platform": 1, "good": 1, "counterparty": len(WEIGHTS)}
    assert facts["amounts"] == {"EUR": "1000"}
    assert check.summary_document["zh"][0].startswith("平台 cardhub 在 ")
    assert check.summary_document["zh"][2] == "按严重程度：" + "，".join(
        f"{zh} {severities[k]} 条" for k, zh in (("high", "高"), ("medium", "中"), ("low", "低"))
    )


def test_other_platforms_goods_and_other_periods_are_left_out(market: Market) -> None:
    # gamemart's report has its own double-sold code, not cardhub's.
    gamemart = _report(market, "gamemart")
    assert [s.subject.id for s in gamemart.signals] == [f"code:0x{market.elsewhere.hex()}"]
    # shadykeys made both refused claims: both signals name it, about the platform itself.
    shady = _report(market, "shadykeys")
    assert {s.subject.id for s in shady.signals} == {
        f"code:0x{market.double_sold.hex()}",
        f"code:0x{market.elsewhere.hex()}",
    }
    assert all("platform" in s.relations for s in shady.signals)
    # A period after the evidence: nothing.
    later = build_report(
        market.registry, "cardhub", start=market.start + 2 * DAY, end=market.start + 3 * DAY
    )
    assert later.signals == () and later.export is None
    assert (
        _check(market.registry, json.loads(later.to_json())).summary_document["facts"]["signals"]
        == 0
    )
    with pytest.raises(InvalidInput, match="end must be after"):
        build_report(market.registry, "cardhub", start=market.start, end=market.start)
    with pytest.raises(InvalidInput, match="at most 366 days"):
        build_report(market.registry, "cardhub", start=0, end=400 * DAY)


def test_a_good_held_since_before_the_period_brings_its_signals(market: Market) -> None:
    """cardhub bought ``double_sold`` before the period and still holds it; in the period
    three other platforms verify it within minutes (code-velocity names only them)."""
    registry, later = market.registry, market.start + 2 * DAY
    registry.record_verifications(
        [
            Telemetry(
                later + i * 60, p, int(GoodType.CODE), market.double_sold, "code", "authentic"
            )
            for i, p in enumerate(("a1", "a2", "a3"))
        ]
    )
    market.worker.clock = lambda: later + 600
    market.worker.run_once()
    report = build_report(registry, "cardhub", start=later, end=later + DAY)
    [velocity] = [s for s in report.signals if s.code == CODE_VELOCITY]
    assert velocity.relations == ("good",) and "cardhub" not in velocity.platforms
    # Sold on before the period (keyshop holds ``resold``): no signal of it comes back.
    assert all(s.subject.id != f"code:0x{market.resold.hex()}" for s in report.signals)
    # The platforms that verified it are in the signal; the seller is not their counterparty.
    a1 = build_report(registry, "a1", start=later, end=later + DAY)
    assert [s.relations for s in a1.signals if s.code == CODE_VELOCITY] == [("platform",)]
    assert build_report(registry, "keyshop", start=later, end=later + DAY).signals == ()


def test_the_real_name_rule_lands_in_the_sellers_and_the_buyers_reports(market: Market) -> None:
    """``unattested-seller`` (readmodels.realnamerule, another helper's rule, end to end):
    cardhub's seller u2 sold ``resold`` to keyshop for 900 EUR with no attestation, over a
    limit of 500 EUR. cardhub's report has it about itself, keyshop's about its counterparty,
    each citing the logged sale with its amount."""
    registry = market.registry
    worker = RiskWorker(
        registry.engine, clock=registry.clock, realname=RealNameRule(limits={"EUR": 500})
    )
    worker.run_once()
    for platform, relation in (("cardhub", "platform"), ("keyshop", "counterparty")):
        report = _report(market, platform)
        [unattested] = [s for s in report.signals if s.code == UNATTESTED_SELLER]
        assert unattested.subject.kind == "party"
        assert unattested.subject.id.startswith("cardhub/0x")
        assert relation in unattested.relations, (platform, unattested.relations)
        [cited] = [e.entry for e in unattested.evidence if e.entry is not None]
        assert (cited["price"], cited["buyer_platform"]) == ("900", "keyshop")
        check = _check(registry, json.loads(report.to_json()))
        assert check.summary_document["facts"]["by_code"][UNATTESTED_SELLER] == 1
    # gamemart neither sold nor bought from that seller.
    assert all(s.code != UNATTESTED_SELLER for s in _report(market, "gamemart").signals)


def _first_cited(document: dict[str, Any]) -> dict[str, Any]:
    for signal in document["signals"]:
        for item in signal["evidence"]:
            if item["entry"] is not None:
                return item
    raise AssertionError("no cited entry")


def _drop_evidence(d: dict[str, Any]) -> None:
    d["signals"][0]["evidence"].pop()


def _drop_good_proofs(d: dict[str, Any]) -> None:
    d["export"]["goods"] = []
    d["export"]["heads"], d["export"]["anchors"] = [], []
    d["export"]["consistency"], d["export"]["checkpoints"] = [], []


def _change_cited_amount(d: dict[str, Any]) -> None:
    _first_cited(d)["entry"]["price"] = "10"


def _change_logged_amount(d: dict[str, Any]) -> None:
    for entry in d["export"]["goods"][0]["later_entries"]:
        if entry["kind"] == "TRANSFER":
            entry["payload"]["transfer"]["price"] = "10"


def _change_summary(d: dict[str, Any]) -> None:
    d["summary"]["facts"]["by_severity"]["high"] = 0


def _change_summary_text(d: dict[str, Any]) -> None:
    d["summary"]["zh"][0] = d["summary"]["zh"][0].replace("1 条", "0 条")


def _soften_severity(d: dict[str, Any]) -> None:
    d["signals"][0]["severity"] = "low"


def _rename_rule(d: dict[str, Any]) -> None:
    d["signals"][0]["code"] = "duplicate-claim"


def _reword_detail(d: dict[str, Any]) -> None:
    d["signals"][0]["detail"] = "nothing to see"


def _drop_signal_and_summarize_again(d: dict[str, Any]) -> None:
    d["signals"].pop(0)
    d["summary"] = summarize(
        platform=d["platform"], start=d["period_from"], end=d["period_to"], signals=d["signals"]
    )


#: (tampering, the step that refuses it as it is, the step that refuses it once the registry
#: itself signs the doctored report: even its own key cannot misstate an entry or a summary).
TAMPERINGS = [
    (_drop_evidence, "signature", "summary"),
    (_drop_good_proofs, "citation", "citation"),
    (_change_cited_amount, "signature", "citation"),
    (_change_logged_amount, "leaf", "leaf"),
    (_change_summary, "summary", "summary"),
    (_change_summary_text, "summary", "summary"),
    (_soften_severity, "signature", "signals"),
    (_rename_rule, "signature", "signals"),
    (_reword_detail, "signature", None),
    (_drop_signal_and_summarize_again, "signature", None),
]


def _signed_by(registry: Registry, document: dict[str, Any]) -> dict[str, Any]:
    """The document signed again with the registry's own key."""
    report = ComplianceReport.model_validate(document)
    message = report_message(report, report_hash(report))
    signature = sign(REPORT_TYPE, message, registry.domain, bytes(registry.account.key))
    return {**document, "signature": "0x" + signature.hex()}


def test_a_tampered_report_is_refused_at_the_step_it_breaks(market: Market) -> None:
    registry = market.registry
    document = json.loads(_report(market).to_json())
    _check(registry, document)  # the untouched one holds, and so does it signed again
    _check(registry, _signed_by(registry, document))
    for tamper, step, resigned_step in TAMPERINGS:
        doctored = copy.deepcopy(document)
        tamper(doctored)
        assert doctored != document
        with pytest.raises(BundleInvalid) as refused:
            _check(registry, doctored)
        assert refused.value.step == step, (tamper.__name__, refused.value.detail)
        if resigned_step is None:  # the registry's word: its signature is all there is
            _check(registry, _signed_by(registry, doctored))
            continue
        with pytest.raises(BundleInvalid) as refused:
            _check(registry, _signed_by(registry, doctored))
        assert refused.value.step == resigned_step, (tamper.__name__, refused.value.detail)


def test_the_csv_is_one_row_a_signal_bom_first_and_never_a_formula(market: Market) -> None:
    formula = "=cmd|' /C calc'!A0"
    evidence = (Evidence("sale", "order 7", market.start + 100, "x"),)
    _add_signals(
        market, [Signal(PAYOUT_OVERDUE, formula, evidence, Subject("platform", "keyshop"))]
    )
    report = _report(market)
    text = csv_text(report)
    assert text.startswith(BOM + ",".join(CSV_COLUMNS) + "\r\n")
    rows = list(csv.DictReader(io.StringIO(text.removeprefix(BOM))))
    assert len(rows) == len(report.signals) == 2
    double = next(r for r in rows if r["code"] == SOLD_BY_NON_HOLDER)
    assert double["amounts"] == "1000 EUR" and double["severity"] == "high"
    assert double["logged_leaves"] == str(
        _first_cited(json.loads(report.to_json()))["entry"]["leaf_index"]
    )
    assert double["period_from"].endswith("Z") and double["relations"] == "platform;good"
    injected = next(r for r in rows if r["code"] == PAYOUT_OVERDUE)
    assert injected["detail"] == "'=cmd|' /C calc'!A0"
    assert injected["relations"] == "counterparty"
    # Every cell a spreadsheet would evaluate is text.
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())
    assert [safe_cell(v) for v in ("+1", "-1", "@SUM(A1)", "\tx", "plain", "平台")] == [
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        "平台",
    ]


@given(st.sampled_from(["=", "+", "-", "@", "\t", "\r", "a", "平", ""]), st.text(max_size=40))
def test_no_cell_can_be_a_formula_and_none_loses_its_text(first: str, rest: str) -> None:
    value = first + rest
    cell = safe_cell(value)
    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (value, "'" + value)
