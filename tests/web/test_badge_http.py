"""The embeddable badge (issue 18 item 6) over HTTP, on SQLite and PostgreSQL: the verdict, the
creator, the holder's credit equal to the credit routes' answers, the headers that let any site
frame it (and nothing else run in it), the language, the refusal of a code in its URL, and its
rate limit. The browser's view (another origin, a strict CSP) is tests/web/test_badge.py."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.badge import BADGE_MAX_AGE
from api.ratelimit import Limit, RateLimits
from registry.creator import CreatorKeys, sign_revocation
from registry.creditscores import refresh_credit_scores
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.service import Registry
from registry.transfers import Party, TransferRequest
from tests.api.test_platform_routes import anchor_everything
from tests.conftest import Clock
from tests.registry.helpers import registration

DAY = 86_400


@pytest.fixture
def creator() -> CreatorKeys:
    from eth_account import Account

    return CreatorKeys(Account.create(), os.urandom(32))


@pytest.fixture
def http(registry: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(registry, siwe_domain="testserver")) as client:
        yield client


def _register(registry: Registry, creator: CreatorKeys, count: int) -> list[bytes]:
    fingerprints = [os.urandom(32) for _ in range(count)]
    for index, fingerprint in enumerate(fingerprints):
        registry.register(
            registration(
                creator,
                registry.clock(),
                fingerprint=fingerprint,
                product="art",
                new_product=index == 0,
            )
        )
    registry.sequence_all()
    anchor_everything(registry)
    return fingerprints


def _sell(registry: Registry, fingerprint: bytes, seller: Party, buyer: Party) -> None:
    registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.FILE,
            fingerprint=fingerprint,
            seller=seller,
            buyer=buyer,
            price=1_000,
            currency="CNY",
        )
    )


def _badge(http: TestClient, fingerprint: bytes, **headers: str) -> tuple[int, str, dict[str, str]]:
    answer = http.get(f"/badge/file/0x{fingerprint.hex()}", headers=headers)
    return answer.status_code, answer.text, dict(answer.headers)


def _field(html: str, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', html)
    assert found is not None, name
    return found.group(1)


def test_an_authentic_good_its_creator_and_the_headers_that_let_it_be_framed(
    registry: Registry, creator: CreatorKeys, http: TestClient
) -> None:
    (fingerprint,) = _register(registry, creator, 1)
    status, html, headers = _badge(http, fingerprint)
    assert status == 200
    assert _field(html, "data-verdict") == "authentic"
    assert "Authentic" in html and creator.address in html and "art" in html
    assert "its creator (never sold)" in html
    # The link to the full check names the good by its fingerprint, and opens our page.
    assert f'href="/?type=file&amp;fp=0x{fingerprint.hex()}"' in html
    csp = headers["content-security-policy"]
    assert "frame-ancestors *" in csp and "default-src 'none'" in csp
    assert "script-src" not in csp and "'unsafe-inline'" not in csp
    assert "x-frame-options" not in headers
    assert headers["cache-control"] == f"public, max-age={BADGE_MAX_AGE}"
    assert headers["vary"] == "Accept-Language"
    assert "set-cookie" not in headers
    # No script, no inline style: what the badge's CSP allows is all it needs.
    assert "<script" not in html and "style=" not in html and "<style" not in html
    # The page's other routes still refuse to be framed.
    page = http.get("/")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]


def test_revoked_unknown_and_consumed(
    registry: Registry, creator: CreatorKeys, http: TestClient
) -> None:
    revoked, sold = _register(registry, creator, 2)
    registry.revoke(
        sign_revocation(
            creator,
            DEV_DOMAIN,
            good_type=GoodType.FILE,
            fingerprint=revoked,
            reason="leaked",
            now=registry.clock(),
        )
    )
    registry.sequence_all()
    anchor_everything(registry)
    status, html, _ = _badge(http, revoked)
    assert status == 200 and _field(html, "data-verdict") == "revoked" and "tone-bad" in html
    status, html, _ = _badge(http, os.urandom(32))
    assert status == 200 and _field(html, "data-verdict") == "unknown"
    assert "No creator registered this good." in html
    _sell(registry, sold, Party(None, None), Party("cardhub", "end-user"))
    status, html, _ = _badge(http, sold)
    assert _field(html, "data-verdict") == "authentic"
    assert _field(html, "data-platform") == "cardhub"
    # A single-use code sold as final to its end user: used, do not buy.
    code = os.urandom(32)
    registry.register(
        registration(
            creator,
            registry.clock(),
            fingerprint=code,
            good_type=GoodType.CODE,
            product="card",
            use=Use.SINGLE,
        )
    )
    registry.sequence_all()
    badge_url = f"/badge/code/0x{code.hex()}"
    # Registered, its head not anchored yet: pending, in the warning tone.
    html = http.get(badge_url).text
    assert _field(html, "data-verdict") == "pending_anchor" and "tone-warn" in html
    anchor_everything(registry)
    registry.transfer(
        TransferRequest(
            platform="cardhub",
            good_type=GoodType.CODE,
            fingerprint=code,
            seller=Party(None, None),
            buyer=Party("cardhub", "player"),
            price=500,
            currency="CNY",
            final=True,
        )
    )
    html = http.get(badge_url).text
    assert _field(html, "data-verdict") == "consumed" and "Already used" in html


def test_the_holders_credit_is_the_credit_routes_answer(
    registry: Registry, creator: CreatorKeys, http: TestClient, clock: Clock
) -> None:
    """Bob holds one good on cardhub after ten sales of his own there: a month on, and after
    the risk worker's credit pass, cardhub and bob are rated, and the badge shows the very
    numbers the public credit routes answer."""
    goods = _register(registry, creator, 11)
    bob = Party("cardhub", "bob")
    for index, fingerprint in enumerate(goods):
        _sell(registry, fingerprint, Party(None, None), bob)
        if index < 10:
            _sell(registry, fingerprint, bob, Party("cardhub", f"buyer-{index}"))
    # Too little history (before and after the worker's pass): unrated, never a low number.
    for _ in range(2):
        status, html, _ = _badge(http, goods[-1])
        assert _field(html, "data-platform") == "cardhub"
        assert "platform credit unrated · seller credit unrated" in " ".join(html.split())
        assert _field(html, "data-platform-score") == _field(html, "data-seller-score") == ""
        _refresh(registry)

    clock.now += 31 * DAY
    _refresh(registry)
    bob_ref = registry.reference_hash("cardhub", "bob")
    platform = http.get("/v1/credit/platforms/cardhub").json()
    seller = http.get(f"/v1/credit/platforms/cardhub/sellers/0x{bob_ref.hex()}").json()
    assert platform["rating"] == seller["rating"] == "rated"
    assert seller["inputs"]["sales_completed"] == 10
    status, html, _ = _badge(http, goods[-1])
    assert status == 200
    assert _field(html, "data-platform") == "cardhub"
    assert _field(html, "data-platform-score") == str(platform["score"])
    assert _field(html, "data-seller-score") == str(seller["score"])
    # A good held by buyer-0 (no sales of their own) shows cardhub's score, and unrated.
    status, html, _ = _badge(http, goods[0])
    assert _field(html, "data-platform-score") == str(platform["score"])
    assert _field(html, "data-seller-score") == ""


def _refresh(registry: Registry) -> None:
    """The risk worker's credit pass (``registry.creditscores``), as of the registry's clock."""
    refresh_credit_scores(
        registry.engine, as_of=registry.clock(), overdue_after=registry.payout_overdue_seconds
    )


def test_a_code_in_the_url_is_refused_and_never_echoed(
    registry: Registry, creator: CreatorKeys, http: TestClient
) -> None:
    (fingerprint,) = _register(registry, creator, 1)
    secret = "GEN-4821-" + os.urandom(4).hex().upper()
    answer = http.get(f"/badge/code/0x{fingerprint.hex()}", params={"code": secret})
    assert answer.status_code == 400
    assert secret not in answer.text and "fingerprint only" in answer.text
    assert answer.headers["cache-control"] == "no-store"
    # A code where the fingerprint goes is not a good's fingerprint: not found, not echoed.
    answer = http.get(f"/badge/code/{secret}")
    assert answer.status_code == 404 and secret not in answer.text


def test_the_language_by_parameter_or_header(
    registry: Registry, creator: CreatorKeys, http: TestClient
) -> None:
    (fingerprint,) = _register(registry, creator, 1)
    _, html, _ = _badge(http, fingerprint, **{"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-Hans">' in html and "正品" in html and "创作者本人（从未售出）" in html
    answer = http.get(f"/badge/file/0x{fingerprint.hex()}?lang=zh-Hans")
    assert "正品" in answer.text and "set-cookie" not in answer.headers
    answer = http.get(
        f"/badge/file/0x{fingerprint.hex()}?lang=en", headers={"Accept-Language": "zh-CN"}
    )
    assert '<html lang="en">' in answer.text and "Authentic" in answer.text


def test_badge_loads_are_charged_to_the_public_budget(
    registry: Registry, creator: CreatorKeys
) -> None:
    (fingerprint,) = _register(registry, creator, 1)
    tight = RateLimits(anonymous=Limit.per_minute(1, burst=3))
    app = create_app(registry, siwe_domain="testserver", limits=tight)
    with TestClient(app) as http:
        codes = [_badge(http, fingerprint)[0] for _ in range(5)]
    assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
