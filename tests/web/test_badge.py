"""The embeddable badge (issue 18 item 6) in a real headless Chromium, framed by a product page
served from ANOTHER loopback origin under a strict Content-Security-Policy: the verdict and the
creator shown, the badge's own stylesheet applied, no CSP violation anywhere (the host page's
``securitypolicyviolation`` events and the browser's log, both shown to catch one), both
languages, a revoked good shown revoked, and the embed script's iframe. Screenshots go to
test-output/screenshots/."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from registry.creditscores import refresh_credit_scores
from tests.web.conftest import Market
from tests.web.test_page import console_errors, shot, wait_for

pytestmark = pytest.mark.slow

#: The host page's script (from its own origin): every CSP violation in the host document,
#: kept where the test reads it. The badge's frame has no script of ours to do the same.
COLLECT_JS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""


class _HostHandler(SimpleHTTPRequestHandler):
    """A static product page, sent with the strict policy its server was given."""

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", self.server.policy)  # type: ignore[attr-defined]
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def host(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A second origin (another port on 127.0.0.1) serving the content platform's pages, with
    ``default-src 'none'`` and only our registry allowed to be framed and to give a script."""
    root = tmp_path_factory.mktemp("host")
    (root / "collect.js").write_text(COLLECT_JS, encoding="utf-8")
    (root / "host.css").write_text("body { font-family: sans-serif; }\n", encoding="utf-8")
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_HostHandler, directory=str(root))
    )
    server.policy = (  # type: ignore[attr-defined]
        f"default-src 'none'; script-src 'self' {market.url}; frame-src {market.url}; "
        "style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'"
    )
    thread = threading.Thread(target=server.serve_forever, name="host", daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert url != market.url
        yield url, root
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _page(root: Path, name: str, body: str) -> str:
    (root / name).write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>product</title>"
        "<script src='/collect.js'></script><link rel='stylesheet' href='/host.css'>"
        f"</head><body><h1>30-day card</h1>{body}</body></html>",
        encoding="utf-8",
    )
    return name


def _frame(
    market: Market, good_type: str, fingerprint: str, lang: str, element_id: str, sandbox: bool
) -> str:
    """The markup a platform pastes. NOTE: Chromium's log gets no console message from a
    sandboxed frame, so each test frames one badge without the sandbox too: a violation in
    that one is logged, and a refused stylesheet shows in either as an unstyled card."""
    sandboxed = "sandbox='allow-popups allow-popups-to-escape-sandbox'" if sandbox else ""
    return (
        f"<iframe id='{element_id}' src='{market.url}/badge/{good_type}/{fingerprint}"
        f"?lang={lang}' width='340' height='200' referrerpolicy='no-referrer' {sandboxed}>"
        "</iframe>"
    )


def _read_badge(driver: Any, frame: Any) -> dict[str, str]:
    """What the framed badge shows, read inside its frame."""
    driver.switch_to.frame(frame)
    try:
        badge = wait_for(driver, lambda d: d.find_elements("id", "badge"), "the badge")[0]
        facts = {
            "verdict": str(badge.get_attribute("data-verdict")),
            "word": driver.find_element("id", "badge-word").text,
            "text": badge.text,
            "lang": str(driver.find_element("tag name", "html").get_attribute("lang")),
            # The badge's stylesheet applied under its CSP: a bordered, coloured card.
            "border": str(badge.value_of_css_property("border-top-style")),
        }
        creator = driver.find_elements("id", "badge-creator")
        facts["creator"] = str(creator[0].get_attribute("innerHTML")) if creator else ""
        holder = driver.find_elements("id", "badge-holder")
        facts["holder"] = str(holder[0].get_attribute("data-platform")) if holder else ""
        return facts
    finally:
        driver.switch_to.default_content()


def _violations(driver: Any) -> list[str]:
    found = driver.execute_script("return window.cspViolations || null;")
    assert found is not None, "the host page's violation listener did not run"
    return [str(v) for v in found]


def _csp_log(driver: Any) -> list[str]:
    return [m for m in console_errors(driver) if "Content Security Policy" in m]


def test_the_badge_framed_by_another_origin_under_a_strict_csp(
    browser: Any, market: Market, host: tuple[str, Path]
) -> None:
    url, root = host
    body = _frame(market, "code", market.genuine_fp, "en", "genuine", False) + _frame(
        market, "code", market.revoked_fp, "en", "revoked", True
    )
    browser.get(f"{url}/{_page(root, 'product-en.html', body)}")
    genuine = _read_badge(browser, browser.find_element("id", "genuine"))
    revoked = _read_badge(browser, browser.find_element("id", "revoked"))
    shot(browser, "badge-01-framed-en")
    assert genuine["verdict"] == "authentic" and "Authentic" in genuine["word"]
    assert genuine["lang"] == "en"
    # The creator's address, shortened on the card, whole in its title.
    creator = market.creator.address
    assert creator[:10] in genuine["creator"] and f'title="{creator}"' in genuine["creator"]
    assert "30-day-card" in genuine["text"]
    assert genuine["border"] == "solid"
    assert revoked["verdict"] == "revoked" and "Revoked" in revoked["word"]
    assert revoked["border"] == "double"
    # Nothing refused, in the host page or in the frames.
    assert _violations(browser) == []
    assert _csp_log(browser) == []
    # The code is in no URL the browser was given: the frames name the fingerprint only.
    for frame in browser.find_elements("tag name", "iframe"):
        assert market.genuine_code not in str(frame.get_attribute("src"))


def test_the_badge_in_chinese_with_the_holders_platform(
    browser: Any, market: Market, host: tuple[str, Path]
) -> None:
    url, root = host
    # The risk worker's credit pass, which the badge's scores come from (too little history
    # in this market: unrated).
    registry = market.registry
    refresh_credit_scores(
        registry.engine, as_of=registry.clock(), overdue_after=registry.payout_overdue_seconds
    )
    body = _frame(market, "file", market.big_file_fp, "zh-Hans", "file", False) + _frame(
        market, "code", market.revoked_fp, "zh-Hans", "revoked", True
    )
    browser.get(f"{url}/{_page(root, 'product-zh.html', body)}")
    held = _read_badge(browser, browser.find_element("id", "file"))
    revoked = _read_badge(browser, browser.find_element("id", "revoked"))
    shot(browser, "badge-02-framed-zh")
    assert held["lang"] == "zh-Hans" and held["verdict"] == "authentic"
    assert "正品" in held["word"] and "创作者" in held["text"] and held["border"] == "solid"
    # The file was sold twice; keyshop's user holds it now: its platform and credit shown
    # (keyshop has reported nothing itself: no history, unrated).
    assert held["holder"] == "keyshop"
    assert "平台 keyshop" in held["text"] and "平台信用分 暂无评分" in held["text"]
    assert revoked["verdict"] == "revoked" and "已吊销" in revoked["word"]
    assert revoked["border"] == "double"
    assert _violations(browser) == [] and _csp_log(browser) == []


def test_the_embed_script_turns_a_marker_into_the_badge(
    browser: Any, market: Market, host: tuple[str, Path]
) -> None:
    url, root = host
    body = (
        f"<div data-tracemark-badge='code/{market.genuine_fp}' data-lang='zh-Hans'>"
        "tracemark</div>"
        # Not a fingerprint (a code, say): left alone, never put in a URL.
        f"<div id='left-alone' data-tracemark-badge='code/{market.genuine_code}'>x</div>"
        f"<script src='{market.url}/static/badge-embed.js'></script>"
    )
    browser.get(f"{url}/{_page(root, 'product-script.html', body)}")
    frame = wait_for(browser, lambda d: d.find_elements("css selector", "iframe"), "the iframe")
    assert len(frame) == 1
    assert frame[0].get_attribute("sandbox") == "allow-popups allow-popups-to-escape-sandbox"
    assert frame[0].get_attribute("src") == (
        f"{market.url}/badge/code/{market.genuine_fp}?lang=zh-Hans"
    )
    badge = _read_badge(browser, frame[0])
    shot(browser, "badge-03-embed-script")
    assert badge["verdict"] == "authentic" and "正品" in badge["word"]
    assert badge["border"] == "solid"
    assert browser.find_element("id", "left-alone").text == "x"
    assert _violations(browser) == [] and _csp_log(browser) == []


def test_a_violation_would_be_seen(browser: Any, market: Market, host: tuple[str, Path]) -> None:
    """Negative control: the host's strict policy refuses an image from the registry's origin
    and an inline style, and both ways of looking (the events and the log) report them."""
    url, root = host
    body = f"<img src='{market.url}/static/favicon.svg' alt=''><p style='color: red'>x</p>"
    browser.get(f"{url}/{_page(root, 'product-bad.html', body)}")
    violations = wait_for(browser, lambda d: _violations(d) or None, "a CSP violation")
    assert any(v.startswith("img-src") for v in violations), violations
    assert any(v.startswith("style-src") for v in violations), violations
    assert _csp_log(browser), json.dumps(console_errors(browser))
