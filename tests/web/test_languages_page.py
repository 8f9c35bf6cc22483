"""The page in Simplified Chinese and English (issue 18 item 5), served and in a real headless
Chromium: every page (check, audit, label, receipt, not found) in both languages with a
screenshot of each kept in test-output/screenshots/ (``lang-<page>-<language>.png``),
``Accept-Language`` choosing, the switch's choice remembered across pages by its cookie and
winning over the header, the scripts' texts in the page's language, and problem+json titles in
Chinese with the same ``type`` and status."""

from __future__ import annotations

import contextlib
import json
import re
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from typing import Any

import pytest

from api.languages import CHINESE, COOKIE, ENGLISH, catalogue, problem_catalogue
from readmodels.riskworker import RiskWorker
from registry.transferrequests import DoubleSale, Party
from tests.registry.orderhelpers import register_code
from tests.registry.test_transfers import CREATOR, sale
from tests.web.conftest import Market
from tests.web.test_page import by_id, console_errors, css, fill, shot, wait_for
from tests.web.test_receipt_page import _delivered

pytestmark = pytest.mark.slow

EN, ZH = catalogue(ENGLISH), catalogue(CHINESE)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers, reply.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers, refused.read().decode()


def _pages(market: Market) -> dict[str, tuple[str, str]]:
    """Page name to (path, the key of its heading)."""
    _, receipt = _delivered(market)
    return {
        "check": ("/", "check.title"),
        "audit": ("/audit", "audit.title"),
        "label": (f"/label/code/{market.genuine_fp}", "label.heading"),
        "receipt": (f"/r/{receipt.receipt_id}", "receipt.title"),
        "not-found": (f"/label/code/0x{'ab' * 32}", "notfound.title"),
    }


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", CHINESE),
        ("zh", CHINESE),
        ("zh-Hans", CHINESE),
        ("en-US,en;q=0.9", ENGLISH),
        ("fr-FR", ENGLISH),
        ("zh-TW", ENGLISH),
    ],
)
def test_accept_language_chooses_the_page(market: Market, header: str, language: str) -> None:
    status, headers, page = _get(market.url + "/", {"Accept-Language": header})
    assert status == 200
    assert f'<html lang="{language}">' in page
    texts = catalogue(language)
    assert f"<h1>{texts['check.title']}</h1>" in page
    assert "Accept-Language" in headers["Vary"]
    # No choice was made with the switch: nothing is remembered.
    assert headers.get("Set-Cookie") is None
    # The scripts' texts are the page's language's, as a data block.
    block = page.split('<script type="application/json" id="tm-messages">')[1].split("</script>")[0]
    assert json.loads(block)["js.check.asking"] == texts["js.check.asking"]


def test_the_switch_sets_a_lax_cookie_that_wins_over_the_header(market: Market) -> None:
    status, headers, page = _get(market.url + "/audit?lang=zh-Hans", {"Accept-Language": "en"})
    assert status == 200 and '<html lang="zh-Hans">' in page
    cookie = SimpleCookie(headers["Set-Cookie"])[COOKIE]
    assert cookie.value == CHINESE
    assert cookie["samesite"].lower() == "lax" and cookie["path"] == "/"
    assert int(cookie["max-age"]) > 0
    # The cookie, sent back, wins over an English header; an unknown value is ignored.
    for value, language in ((CHINESE, CHINESE), (ENGLISH, ENGLISH), ("xx", CHINESE)):
        _, _, page = _get(
            market.url + "/", {"Accept-Language": "zh-CN", "Cookie": f"{COOKIE}={value}"}
        )
        assert f'<html lang="{language}">' in page, value
    # The switch's links keep the page's query (a label's link ?type=&fp=).
    _, _, page = _get(market.url + f"/?type=code&fp={market.genuine_fp}")
    assert f"/?type=code&amp;fp={market.genuine_fp}&amp;lang=zh-Hans" in page


def test_problems_in_chinese_keep_their_type_and_status(market: Market) -> None:
    url = market.url + f"/v1/goods/code/0x{'cd' * 32}/history"
    answers = {}
    for header in ("en", "zh-CN"):
        status, headers, body = _get(url, {"Accept-Language": header})
        assert headers["Content-Type"] == "application/problem+json"
        answers[header] = (status, json.loads(body))
    (en_status, en), (zh_status, zh) = answers["en"], answers["zh-CN"]
    assert en_status == zh_status and en["type"] == zh["type"] and en["status"] == zh["status"]
    assert en["title"] != zh["title"]
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh["title"]), zh
    # A refused verify body and an unknown route (404) too.
    request = urllib.request.Request(
        market.url + "/v1/verify",
        data=b'{"good_type": "code"}',
        headers={"Content-Type": "application/json", "Accept-Language": "zh-CN"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    body = json.loads(refused.value.read().decode())
    code = body["type"].rsplit("/", 1)[1]
    assert body["title"] == problem_catalogue()[code]["title"], body
    status, _, text = _get(market.url + "/v1/no-such-route", {"Accept-Language": "zh"})
    assert status == 404 and json.loads(text)["title"] == "未找到"


def _fresh(browser: Any, market: Market) -> None:
    browser.get(market.url + "/static/favicon.svg")
    browser.delete_all_cookies()


def test_every_page_in_both_languages_in_chromium(browser: Any, market: Market) -> None:
    _fresh(browser, market)
    for name, (path, heading) in _pages(market).items():
        for language, texts in ((ENGLISH, EN), (CHINESE, ZH)):
            sep = "&" if "?" in path else "?"
            browser.get(f"{market.url}{path}{sep}lang={language}")
            assert browser.execute_script("return document.documentElement.lang") == language
            assert css(browser, "h1")[0].text == texts[heading], (name, language)
            assert texts["base.nav_check"] in css(browser, "header")[0].text
            current = css(browser, "#language-switch a[aria-current=true]")
            assert [a.get_attribute("data-lang") for a in current] == [language]
            shot(browser, f"lang-{name}-{language}")
    # The not-found page is a 404 on purpose; nothing else may fail.
    assert [e for e in console_errors(browser) if "status of 404" not in e] == []


def test_the_switch_is_remembered_across_pages(browser: Any, market: Market) -> None:
    _fresh(browser, market)
    browser.get(market.url + "/")  # Chromium asks for English (en-US)
    assert css(browser, "h1")[0].text == EN["check.title"]
    css(browser, "#language-switch a[data-lang='zh-Hans']")[0].click()
    wait_for(browser, lambda d: css(d, "html[lang='zh-Hans']"), "the Chinese page")
    # Another page, reached by the navigation's plain link: still Chinese.
    css(browser, "header nav a[href='/audit']")[0].click()
    wait_for(browser, lambda d: css(d, "body[data-page=audit]"), "the audit page")
    assert css(browser, "h1")[0].text == ZH["audit.title"]
    assert by_id(browser, "credential-status").text == ZH["js.audit.no_credential"]
    browser.get(f"{market.url}/label/code/{market.genuine_fp}")
    assert css(browser, "h1")[0].text == ZH["label.heading"]
    # And back to English, remembered the same way.
    css(browser, "#language-switch a[data-lang='en']")[0].click()
    wait_for(browser, lambda d: css(d, "html[lang='en']"), "the English page")
    browser.get(market.url + "/audit")
    assert css(browser, "h1")[0].text == EN["audit.title"]


def test_the_scripts_speak_the_pages_language(browser: Any, market: Market) -> None:
    """A check by fingerprint and a refused one, in Chinese: the verdict, the facts' terms and
    the problem's title come from the Chinese catalogues."""
    _fresh(browser, market)
    browser.get(market.url + f"/?lang=zh-Hans&type=code&fp={market.genuine_fp}")
    css(browser, "#form-fingerprint button[type=submit]")[0].click()

    def answered(d: Any) -> Any:
        found = css(d, "#result-body .verdict")
        return found[0] if found else None

    card = wait_for(browser, answered, "a verdict")
    assert card.get_attribute("data-verdict") == "authentic"
    assert ZH["js.verdict.authentic.word"] in card.text
    facts = css(browser, "#result-body dl.facts")[0].text
    assert ZH["js.check.row.creator"] in facts and ZH["js.check.row.holder"] in facts
    assert "Creator" not in facts
    shot(browser, "lang-check-result-zh-Hans")
    # A revoked code's risk signals by their Chinese titles, each code kept beside it small,
    # its meaning the title's tooltip (issue 18 item 5).
    browser.get(market.url + f"/?lang=zh-Hans&type=code&fp={market.revoked_fp}")
    css(browser, "#form-fingerprint button[type=submit]")[0].click()
    wait_for(browser, lambda d: css(d, "#result-body ul.signals li") or None, "the signals")
    named = {
        item.find_element("css selector", ".signal-code").text: item
        for item in css(browser, "#result-body ul.signals li")
    }
    assert {"revoked", "dead-good-transfer"} <= set(named)
    for code in ("revoked", "dead-good-transfer"):
        title = named[code].find_element("css selector", "strong")
        assert title.text == ZH[f"signal.{code}.title"]
        assert title.get_attribute("title") == ZH[f"signal.{code}.meaning"]
    assert EN["signal.dead-good-transfer.title"] not in by_id(browser, "result-body").text
    # Each detail in Chinese too: the verdict signal's from its catalogued template, the
    # market signal's from its rule's (the answer's parts); no English sentence is visible,
    # only the codes kept beside the titles.
    detail = named["revoked"].find_element("css selector", ".signal-detail")
    assert detail.text == ZH["verdict.revoked.detail"]
    market_detail = named["dead-good-transfer"].find_element("css selector", ".signal-detail")
    assert market_detail.text == ZH["signal.dead-good-transfer.detail.revoked"].format(attempts=1)
    for code, item in named.items():
        assert not re.search(r"[A-Za-z]{2,}", item.text.replace(code, "")), item.text
    assert EN["verdict.revoked.detail"] not in by_id(browser, "result-body").text
    assert not css(browser, "#result-body details.signal-english")
    shot(browser, "lang-check-signals-zh-Hans")
    # A market signal with no parts (an older registry's answer): its meaning, and its English
    # detail folded away.
    browser.execute_script(
        "var d = TM.signalDetail({code: 'dead-good-transfer', detail: 'tried 1 time(s) on x'});"
        "d.id = 'old-detail'; document.getElementById('result-body').appendChild(d);"
    )
    market_detail = by_id(browser, "old-detail")
    assert market_detail.text.startswith(ZH["signal.dead-good-transfer.meaning"])
    folded = market_detail.find_element("css selector", "details.signal-english")
    english = folded.find_element("css selector", "span[lang=en]")
    assert not english.is_displayed()
    folded.find_element("css selector", "summary").click()
    wait_for(browser, lambda d: english.is_displayed() or None, "the English detail")
    assert re.search(r"[A-Za-z]{3,} ", english.text), english.text
    # The same answer in English says the server's sentences, nothing folded.
    browser.get(market.url + f"/?lang=en&type=code&fp={market.revoked_fp}")
    css(browser, "#form-fingerprint button[type=submit]")[0].click()
    wait_for(browser, lambda d: css(d, "#result-body ul.signals li") or None, "the signals")
    named = {
        item.find_element("css selector", ".signal-code").text: item
        for item in css(browser, "#result-body ul.signals li")
    }
    revoked = named["revoked"].find_element("css selector", ".signal-detail").text
    assert revoked == EN["verdict.revoked.detail"]
    assert named["dead-good-transfer"].find_element("css selector", ".signal-detail").text
    assert not css(browser, "#result-body details.signal-english")
    assert not re.search(r"[\u4e00-\u9fff]", by_id(browser, "result-body").text)
    shot(browser, "lang-check-signals-en")
    browser.get(market.url + "/?lang=zh-Hans")
    # A bad fingerprint is refused by the page itself, in Chinese.
    fill(by_id(browser, "fp-value"), "0x12")
    css(browser, "#form-fingerprint button[type=submit]")[0].click()
    wait_for(browser, lambda d: ZH["js.check.bad_fp"] in d.page_source, "the refusal")
    # The receipt's code check, with a wrong code: no match, in Chinese.
    _, receipt = _delivered(market)
    browser.get(f"{market.url}/r/{receipt.receipt_id}")
    fill(by_id(browser, "receipt-code"), "NOT-THE-CODE")
    css(browser, "#form-receipt-code button[type=submit]")[0].click()
    found = wait_for(browser, lambda d: css(d, "#receipt-match"), "the receipt check")[0]
    assert found.get_attribute("data-match") == "false"
    assert ZH["js.receipt.no_match"] in found.text
    shot(browser, "lang-receipt-check-zh-Hans")


def test_the_auditors_view_in_chinese(browser: Any, market: Market) -> None:
    """audit.js's texts: the credential's status, a trace's heading and summary, the signals'
    status line, a creator's dashboard, all from the Chinese catalogue."""
    _fresh(browser, market)
    browser.get(market.url + "/audit?lang=zh-Hans")
    fill(by_id(browser, "credential"), market.audit_key)
    css(browser, "#form-credential button[type=submit]")[0].click()
    using = ZH["js.audit.using"].split("{")[0]
    wait_for(browser, lambda d: using in by_id(d, "credential-status").text, "the credential")
    fill(by_id(browser, "trace-fp"), market.revoked_fp)
    css(browser, "#form-trace button[type=submit]")[0].click()
    summary = wait_for(browser, lambda d: css(d, "#trace-summary"), "the trace")[0].text
    assert ZH["js.audit.row.status"] in summary and ZH["js.audit.row.history"] in summary
    assert "refused transfer" not in summary and "次被拒绝的转让" in summary
    by_id(browser, "signals-load").click()
    wait_for(browser, lambda d: css(d, "#signals-table tbody tr") or None, "the signals")
    status = by_id(browser, "signals-verdict").text
    assert ZH["js.audit.signals_of"].split("{")[0] in status and "implicating" not in status
    headers = [th.text for th in css(browser, "#signals-table thead th")]
    assert headers[0] == ZH["js.audit.col.signal"]
    # The signal by its Chinese title, in the table and the filter, its code kept small.
    cell = css(browser, "#signals-table tbody tr td")[0]
    assert cell.find_element("css selector", "strong").text == ZH["signal.dead-good-transfer.title"]
    assert cell.find_element("css selector", ".signal-code").text == "dead-good-transfer"
    options = [o.text for o in css(browser, "#signal-code option")]
    assert any(o.startswith(ZH["signal.dead-good-transfer.title"]) for o in options), options
    # Searching by the Chinese title finds it.
    fill(by_id(browser, "signal-search"), ZH["signal.dead-good-transfer.title"])
    wait_for(browser, lambda d: css(d, "#signals-table tbody tr") or None, "the search")
    shot(browser, "lang-audit-trace-zh-Hans")
    # The creator's dashboard.
    browser.execute_script("sessionStorage.clear()")
    fill(by_id(browser, "credential"), market.creator_token)
    css(browser, "#form-credential button[type=submit]")[0].click()
    css(browser, "#form-dashboard button[type=submit]")[0].click()
    wait_for(browser, lambda d: css(d, "#dashboard-summary"), "the dashboard")
    text = by_id(browser, "dashboard-out").text
    assert ZH["js.audit.by_product"] in text and ZH["js.audit.newest"] in text
    shot(browser, "lang-audit-dashboard-zh-Hans")
    assert console_errors(browser) == []


def test_market_signal_details_in_chinese(browser: Any, market: Market) -> None:
    """A market signal's detail in Chinese from its rule's templates (``parts`` of the verify
    answer), for a few codes: a code sold by a non-holder (the creator's double sale), a code
    registered, resold and redeemed within minutes, the revoked code's refused sale; the
    English page still says the server's sentences. Last in this module: it adds goods and
    signals to the shared market."""
    registry = market.registry
    double = register_code(registry, market.creator, registry.clock, product=market.product)
    registry.transfer(sale(double, CREATOR, Party("cardhub", "u1"), price=1_000))
    with contextlib.suppress(DoubleSale):
        registry.transfer(
            sale(double, CREATOR, Party("shadykeys", "s1"), platform="shadykeys", price=100)
        )
    cashed = register_code(registry, market.creator, registry.clock, product=market.product)
    for request in (
        sale(cashed, CREATOR, Party("cardhub", "u2"), price=1_000),
        sale(cashed, Party("cardhub", "u2"), Party("keyshop", "k2"), price=1_100),
        sale(
            cashed,
            Party("keyshop", "k2"),
            Party("keyshop", "k3"),
            platform="keyshop",
            price=1_200,
            final=True,
        ),
    ):
        registry.transfer(request)
    registry.sequence_all()
    RiskWorker(registry.engine, clock=registry.clock).run_once()

    def details(fingerprint: bytes, language: str) -> dict[str, str]:
        browser.get(market.url + f"/?lang={language}&type=code&fp=0x{fingerprint.hex()}")
        css(browser, "#form-fingerprint button[type=submit]")[0].click()
        wait_for(browser, lambda d: css(d, "#result-body ul.signals li") or None, "the signals")
        return {
            item.find_element("css selector", ".signal-code").text: item.find_element(
                "css selector", ".signal-detail"
            ).text
            for item in css(browser, "#result-body ul.signals li")
        }

    _fresh(browser, market)
    sold = details(double, "zh-Hans")["sold-by-non-holder"]
    assert sold == ZH["signal.sold-by-non-holder.detail.sold"].format(
        times=1, sellers=ZH["js.param.party.the creator"]
    )
    cash = details(cashed, "zh-Hans")["fast-cash-out"]
    assert cash == ZH["signal.fast-cash-out.detail"].format(resales=1, minutes=0)
    revoked = bytes.fromhex(market.revoked_fp[2:])
    dead = details(revoked, "zh-Hans")["dead-good-transfer"]
    assert dead == ZH["signal.dead-good-transfer.detail.revoked"].format(attempts=1)
    for text in (sold, cash, dead):
        assert re.search(r"[\u4e00-\u9fff]", text) and not re.search(r"[A-Za-z]{2,}", text)
    shot(browser, "lang-check-market-details-zh-Hans")
    english = details(double, "en")["sold-by-non-holder"]
    assert english == "sold 1 time(s) by the creator, who did not hold it"
    assert console_errors(browser) == []
