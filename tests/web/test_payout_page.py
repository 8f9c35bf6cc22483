"""The creator's dashboard in headless Chromium shows its royalties' balances (issue 17 item
7): owed before the platform pays, paid after a payout clears the line."""

from __future__ import annotations

from typing import Any

from registry.payouts import PayoutRequest
from tests.web.conftest import Market
from tests.web.test_page import by_id, console_errors, css, shot, use_credential, wait_for


def balances_text(browser: Any) -> str:
    css(browser, "#form-dashboard button[type=submit]")[0].click()
    table = wait_for(
        browser, lambda d: css(d, "#payout-balances tbody tr") or None, "the balances table"
    )
    assert table
    return str(by_id(browser, "payout-balances").text)


def test_a_creator_sees_owed_then_paid(browser: Any, market: Market) -> None:
    use_credential(browser, market, market.creator_token)
    before = balances_text(browser)
    # 7.5% of the 8,000 EUR resale reported by cardhub: owed, not paid, not overdue yet.
    assert "cardhub" in before and "EUR" in before, before
    row = [r.text for r in css(browser, "#payout-balances tbody tr") if "cardhub" in r.text]
    assert row and row[0].split()[-3:] == ["600", "0", "0"], row

    [line] = [line for line in market.registry.owed_lines("cardhub") if line.amount == 600]
    market.registry.record_payout(
        PayoutRequest(
            platform="cardhub",
            kind="royalty",
            recipient=line.recipient,
            payee=None,
            amount=600,
            currency="EUR",
            reference="SEPA-42",
            paid_at=market.registry.clock(),
            line_ids=(line.line_id,),
        )
    )
    # The dashboard is drawn again from the API: wait until the row says paid.
    browser.refresh()
    use_credential(browser, market, market.creator_token)
    css(browser, "#form-dashboard button[type=submit]")[0].click()
    wait_for(
        browser,
        lambda d: [
            r for r in css(d, "#payout-balances tbody tr")
            if "cardhub" in r.text and r.text.split()[-3:] == ["0", "600", "0"]
        ] or None,
        "the line paid",
    )  # fmt: skip
    shot(browser, "11-audit-creator-balances")
    assert console_errors(browser) == []
