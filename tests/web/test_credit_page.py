"""The holder's credit on the page (issue 18 items 1 and 5), in headless Chromium, in English and
Chinese: the check page's answer shows the holding platform's and seller's credit scores
with links to their inputs; the auditor's view lists every platform's credit. Screenshots kept
in test-output/screenshots/ (``credit-*.png``)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from api.languages import CHINESE, ENGLISH, catalogue
from registry.credit import CreditInputs, credit_score
from registry.creditscores import refresh_credit_scores
from registry.fingerprints import GoodType
from registry.transfers import Party, TransferRequest
from tests.web.conftest import Market
from tests.web.test_page import by_id, console_errors, css, shot, wait_for

pytestmark = pytest.mark.slow


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as reply:
        return json.loads(reply.read())


def _sell(
    market: Market, good_type: GoodType, fingerprint: str, seller: Party, buyer: Party
) -> None:
    market.registry.transfer(
        TransferRequest(
            platform="keyshop",
            good_type=good_type,
            fingerprint=bytes.fromhex(fingerprint[2:]),
            seller=seller,
            buyer=buyer,
            price=3_000,
            currency="EUR",
        )
    )


@pytest.fixture(scope="module")
def held(market: Market) -> Market:
    """The print ends held by carol on keyshop, who sold a card there before (so she has a
    seller's score), and the scores are refreshed as the risk worker does."""
    carol = Party("keyshop", "carol")
    _sell(market, GoodType.CODE, market.genuine_fp, Party(None, None), carol)
    _sell(market, GoodType.CODE, market.genuine_fp, carol, Party("keyshop", "erin"))
    _sell(market, GoodType.FILE, market.big_file_fp, Party("keyshop", "bob"), carol)
    registry = market.registry
    refresh_credit_scores(
        registry.engine, as_of=registry.clock(), overdue_after=registry.payout_overdue_seconds
    )
    return market


@pytest.mark.parametrize("language", [ENGLISH, CHINESE])
def test_the_check_page_shows_the_holders_credit_with_its_inputs(
    browser: Any, held: Market, language: str
) -> None:
    texts = catalogue(language)
    browser.get(held.url + f"/?lang={language}&type=file&fp={held.big_file_fp}")
    css(browser, "#form-fingerprint button[type=submit]")[0].click()
    credit = wait_for(browser, lambda d: css(d, "#answer-credit") or None, "the credit")[0]
    facts = css(browser, "#result-body dl.facts")[0].text
    assert texts["js.check.row.credit"] in facts
    assert texts["js.check.credit.platform"].replace("{platform}", "keyshop") in credit.text
    assert texts["js.check.credit.seller"] in credit.text
    shot(browser, f"credit-check-{language}")
    # Each score links to its inputs; the inputs recompute the number shown.
    for part, subject in (("platform", "platform"), ("seller", "seller")):
        node = by_id(browser, f"answer-credit-{part}")
        link = node.find_element("css selector", "a.credit-inputs")
        assert link.text == texts["js.check.credit.inputs"]
        document = _get(link.get_attribute("href"))
        assert document["subject"] == subject and document["platform"] == "keyshop"
        recomputed = credit_score(CreditInputs(**document["inputs"]))
        shown = node.get_attribute("data-score")
        assert shown == ("" if recomputed.score is None else str(recomputed.score))
        if recomputed.score is None:
            assert texts["js.check.credit.unrated"] in node.text
    seller = by_id(browser, "answer-credit-seller").find_element("css selector", "a")
    carol = "0x" + held.registry.reference_hash("keyshop", "carol").hex()
    assert seller.get_attribute("href").endswith(f"/v1/credit/platforms/keyshop/sellers/{carol}")
    assert console_errors(browser) == []


@pytest.mark.parametrize("language", [ENGLISH, CHINESE])
def test_the_auditors_view_lists_every_platforms_credit(
    browser: Any, held: Market, language: str
) -> None:
    texts = catalogue(language)
    browser.get(held.url + f"/audit?lang={language}")
    by_id(browser, "credit-load").click()
    rows = wait_for(browser, lambda d: css(d, "#credit-table tbody tr") or None, "the table")
    listed = _get(held.url + "/v1/credit/platforms")["items"]
    assert [r.get_attribute("data-platform") for r in rows] == [c["platform"] for c in listed]
    assert {"cardhub", "keyshop", "shadowkeys"} <= {c["platform"] for c in listed}
    headers = [th.text for th in css(browser, "#credit-table thead th")]
    assert headers[:2] == [
        texts["js.audit.credit.col.platform"],
        texts["js.audit.credit.col.score"],
    ]
    assert texts["js.audit.credit.input.fake_deliveries_refused"] in headers
    keyshop = next(r for r in rows if r.get_attribute("data-platform") == "keyshop")
    document = next(c for c in listed if c["platform"] == "keyshop")
    cells = [td.text for td in keyshop.find_elements("css selector", "td")]
    assert cells[2] == str(document["inputs"]["sales_completed"]) == "3"
    assert cells[1] == (
        texts["js.audit.credit.unrated"] if document["score"] is None else str(document["score"])
    )
    shot(browser, f"credit-audit-{language}")
    assert console_errors(browser) == []
