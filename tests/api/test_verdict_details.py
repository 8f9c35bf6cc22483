"""A verify answer's verdict signals say their detail in the reader's language (issue 18 item 5).

Each signal ``readmodels.authenticity.decide`` raises carries ``message: {key, params}`` beside
its English ``detail``: the catalogue key of the detail's template and the values of its
placeholders. Walked here through every branch of ``decide``: every code it can raise (read
from its syntax tree, ``tests/api/test_signal_titles.py``) is raised by one of the cases, both
catalogues carry its template, and the template's placeholders are exactly the parameters the
server sends. Then over HTTP on the real database (SQLite and PostgreSQL): the answer carries
the messages, and a market signal's message is null (its detail is the rule's free text).
"""

from __future__ import annotations

import os
import re

import pytest
from fastapi.testclient import TestClient

from api.languages import CHINESE, ENGLISH, LANGUAGES, catalogue
from api.verify_answers import signal_answer, unknown_code
from readmodels.authenticity import AnchorFacts, GoodFacts, VerdictSignal, decide
from registry.fingerprints import GoodType, Use
from registry.service import Registry
from tests.api.conftest import CodeGood, KeyFactory
from tests.api.test_platform_routes import anchor_everything, verify
from tests.api.test_signal_titles import verdict_signal_codes
from tests.conftest import CreatorFactory
from verifier.schemas import SignalOut

PLACEHOLDER = re.compile(r"\{(\w+)\}")
CREATOR = "0x" + "ab" * 20
ANCHOR = AnchorFacts(tree_size=4, final=True, tx_hash=b"\x01" * 32, block_number=7)


def facts(**changes: object) -> GoodFacts:
    base: dict[str, object] = {
        "good_type": GoodType.CODE,
        "fingerprint": b"\x02" * 32,
        "creator": CREATOR,
        "product": "30-day-card",
        "use": Use.SINGLE,
        "leaf_index": 3,
        "holder_platform": "cardhub",
        "last_transfer_id": None,
        "consumed": False,
        "revoked": False,
        "conflicts": 0,
        "anchor": ANCHOR,
        "times_verified": 0,
        "platforms_verified": 0,
        "first_verified_at": None,
    }
    base.update(changes)
    return GoodFacts(**base)  # type: ignore[arg-type]


def raised_signals() -> list[VerdictSignal]:
    """The signals of every branch of ``decide``: unknown, revoked, consumed, both mismatches,
    contested and unanchored."""
    decisions = [
        decide(None),
        decide(facts(revoked=True)),
        decide(facts(consumed=True, conflicts=3)),
        decide(facts(), claimed_creator="0x" + "cd" * 20, claimed_product="7-day-card"),
        decide(facts(product=None), claimed_product="7-day-card"),
        decide(facts(anchor=None, conflicts=1)),
    ]
    return [signal for decision in decisions for signal in decision.signals]


def test_every_code_decide_raises_is_walked() -> None:
    assert {s.code for s in raised_signals()} == verdict_signal_codes()


@pytest.mark.parametrize("language", LANGUAGES)
def test_each_template_takes_exactly_the_params_the_server_sends(language: str) -> None:
    texts = catalogue(language)
    for signal in raised_signals():
        answer = signal_answer(signal)
        SignalOut.model_validate(answer)  # the documented shape, additive to code and detail
        message = answer["message"]
        assert message is not None, signal.code
        assert message["key"] == f"verdict.{signal.code}.detail"
        template = texts.get(message["key"])
        assert template, (language, message["key"])
        assert set(PLACEHOLDER.findall(template)) == set(message["params"]), signal.code
        assert answer["detail"] == signal.detail  # the English sentence stays for clients


def test_the_english_template_says_what_the_detail_says() -> None:
    """The page's English is the server's sentence (product names are quoted differently:
    the server's ``repr``, the page's typographic quotes)."""
    texts = catalogue(ENGLISH)
    for signal in raised_signals():
        message = signal_answer(signal)["message"]
        assert message is not None
        said = texts[message["key"]].format(**message["params"])
        if signal.code == "product-mismatch":
            said = said.replace("“", "'").replace("”", "'").replace("'None'", "None")
        assert said == signal.detail, signal.code


def test_the_chinese_templates_are_chinese_with_no_english_word() -> None:
    texts = catalogue(CHINESE)
    for code in verdict_signal_codes():
        template = PLACEHOLDER.sub("", texts[f"verdict.{code}.detail"])
        assert re.search(r"[\u4e00-\u9fff]", template), code
        assert not re.search(r"[A-Za-z]{2,}", template), code


def test_a_market_signal_has_no_message() -> None:
    market = VerdictSignal("sold-by-non-holder", "sold 1 time(s) by cardhub, who did not", 0.0)
    answer = signal_answer(market)
    assert answer["message"] is None and answer["detail"] == market.detail
    SignalOut.model_validate(answer)


def test_the_unknown_code_answer_carries_its_message() -> None:
    (signal,) = unknown_code(coarse_answer=False)["risk"]["signals"]
    assert signal["message"] == {"key": "verdict.unregistered.detail", "params": {}}


def test_the_answer_over_http_carries_the_messages(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    make_creator: CreatorFactory,
) -> None:
    key = make_key("cardhub", "verify")
    unknown = verify(client, key, good_type="file", fingerprint="0x" + os.urandom(32).hex())
    assert unknown["risk"]["signals"] == [  # type: ignore[index]
        {
            "code": "unregistered",
            "detail": "no creator registered this good",
            "message": {"key": "verdict.unregistered.detail", "params": {}},
        }
    ]
    anchor_everything(registry)
    other = make_creator().address
    wrong = verify(
        client, key, good_type="code", fingerprint=code_good.hex, creator=other, product="x"
    )
    by_code = {s["code"]: s for s in wrong["risk"]["signals"]}  # type: ignore[index]
    creator = by_code["creator-mismatch"]["message"]
    assert creator["key"] == "verdict.creator-mismatch.detail"
    assert creator["params"]["creator"].lower() == code_good.creator.address.lower()
    product = by_code["product-mismatch"]["message"]
    assert product["params"]["claimed"] == "x" and product["params"]["product"] is not None
