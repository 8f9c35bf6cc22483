"""The buyer's delivery receipt on the page (issue 17 item 3), in a real headless Chromium: a
delivered order's receipt at ``/r/<id>``, the code the buyer received typed in (match), a wrong
one (no match), the proof of work solved in the browser, and the code in no URL the browser
asked for. Screenshots go to test-output/screenshots/."""

from __future__ import annotations

import os
from typing import Any

import pytest

from registry.deliveryreceipt import DeliveryReceipt
from registry.fingerprints import CodeFingerprinter, GoodType, Use
from registry.orders import OrderRequest
from registry.transfers import Party
from tests.registry.helpers import registration
from tests.web.conftest import Market
from tests.web.test_page import by_id, console_errors, css, fill, shot, wait_for

pytestmark = pytest.mark.slow


def _delivered(market: Market) -> tuple[str, DeliveryReceipt]:
    """A new code of the market's creator, sold first-hand on cardhub and delivered."""
    registry = market.registry
    code = "RCP-7310-" + os.urandom(3).hex().upper()
    fingerprint = CodeFingerprinter(market.creator.require_code_key()).fingerprint(code)
    registry.register(
        registration(
            market.creator,
            registry.clock(),
            fingerprint=fingerprint,
            good_type=GoodType.CODE,
            product=market.product,
            use=Use.SINGLE,
        )
    )
    registry.sequence_all()
    order = registry.open_order(
        OrderRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=fingerprint,
            seller=Party(None, None),
            buyer=Party("cardhub", "wang-fang"),
            price=4_999,
            currency="CNY",
        )
    )
    registry.deliver(order.order_id, [fingerprint], platform="cardhub")
    return code, registry.delivery_receipt(order.order_id, platform="cardhub")


def _check(driver: Any, code: str) -> tuple[str, str]:
    fill(by_id(driver, "receipt-code"), code)
    css(driver, "#form-receipt-code button[type=submit]")[0].click()

    def answered(d: Any) -> Any:
        found = css(d, "#receipt-result .verdict, #receipt-result .problem")
        return found[0] if found else None

    card = wait_for(driver, answered, "the receipt check's answer")
    return str(card.get_attribute("data-match")), str(card.text)


def test_the_buyer_opens_the_receipt_and_checks_the_code(browser: Any, market: Market) -> None:
    code, receipt = _delivered(market)
    browser.get(f"{market.url}/r/{receipt.receipt_id}")
    assert "Delivery receipt" in browser.title
    facts = by_id(browser, "receipt-facts").text
    assert "0x" + receipt.fingerprint.hex() in facts
    assert receipt.document["receipt"]["buyer_commitment"] in facts
    assert "platform cardhub" in facts and "4999 CNY" in facts
    verdict = by_id(browser, "receipt-verdict")
    assert verdict.get_attribute("data-never-sold") == "true"
    assert "Authentic, never sold before" in verdict.text
    # The QR code is drawn inline, and the link under it is this very page.
    assert css(browser, ".receipt-qr svg.qr")
    assert by_id(browser, "receipt-link").get_attribute("href") == browser.current_url
    shot(browser, "20-receipt")

    found, words = _check(browser, code)
    shot(browser, "21-receipt-match")
    assert found == "true" and "Match" in words
    found, words = _check(browser, code[:-1] + ("0" if code[-1] != "0" else "1"))
    shot(browser, "22-receipt-no-match")
    assert found == "false" and "No match" in words

    # The code went in request bodies only: no URL the page loaded or asked carries it.
    urls = browser.execute_script(
        "return [location.href].concat("
        "performance.getEntriesByType('resource').map(function (e) { return e.name; }));"
    )
    assert any("/check" in url for url in urls)
    assert all(code not in url and code.lower() not in url for url in urls)
    # A typed value is the input's property, not its attribute: the document never holds it.
    assert code not in browser.page_source
    assert console_errors(browser) == []


def test_an_unknown_receipt_is_a_page_not_a_crash(browser: Any, market: Market) -> None:
    browser.get(f"{market.url}/r/{'Z' * 22}")
    assert "no receipt of that id" in by_id(browser, "main").text


def test_the_receipt_page_fits_a_phone(browser: Any, market: Market) -> None:
    _, receipt = _delivered(market)
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{market.url}/r/{receipt.receipt_id}")
        wide = browser.execute_script(
            "const e = document.documentElement; return e.scrollWidth - e.clientWidth;"
        )
        shot(browser, "23-receipt-phone")
        assert wide <= 0, f"the page is {wide} px wider than a phone's screen"
    finally:
        browser.set_window_size(1280, 1000)
