"""Hostile probes of the embeddable badge (issue 18 item 6, red team), over HTTP on SQLite and
PostgreSQL: a code smuggled into its URL, markup through what it shows, and the pages that
must still refuse to be framed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from registry.creator import CreatorKeys
from registry.service import Registry
from tests.web.test_badge_http import _register

SECRET = "ABCD-1234-EFGH-5678"


@pytest.fixture
def creator() -> CreatorKeys:
    from eth_account import Account

    return CreatorKeys(Account.create(), os.urandom(32))


@pytest.fixture
def http(registry: Registry) -> Iterator[TestClient]:
    with TestClient(create_app(registry, siwe_domain="testserver")) as client:
        yield client


@pytest.mark.parametrize(
    "query",
    [
        {"Code": SECRET},
        {"CODE": SECRET},
        {"code ": SECRET},
        {"pin": SECRET},
        {"card": SECRET},
        {"lang": "en", "c": SECRET},
    ],
)
def test_a_code_under_any_other_query_name_is_refused_and_never_cached(
    registry: Registry, creator: CreatorKeys, http: TestClient, query: dict[str, str]
) -> None:
    # The badge refused ?code= only: ?Code= or ?pin= answered 200 with ``public,
    # max-age=60``, so a shared cache kept the URL, code and all, as its key. Only ?lang= is
    # the badge's: anything else is refused, not stored.
    (fingerprint,) = _register(registry, creator, 1)
    answer = http.get(f"/badge/file/0x{fingerprint.hex()}", params=query)
    assert answer.status_code == 400, answer.status_code
    assert answer.headers["cache-control"] == "no-store"
    assert SECRET not in answer.text
    assert "frame-ancestors *" in answer.headers["content-security-policy"]


def test_the_badge_with_its_language_only_is_served(
    registry: Registry, creator: CreatorKeys, http: TestClient
) -> None:
    (fingerprint,) = _register(registry, creator, 1)
    for query in ({}, {"lang": "en"}, {"lang": "zh-Hans"}, {"lang": "<script>x</script>"}):
        answer = http.get(f"/badge/file/0x{fingerprint.hex()}", params=query)
        assert answer.status_code == 200, query
        assert "<script" not in answer.text
        assert answer.headers["cache-control"].startswith("public")


def test_every_other_page_still_refuses_to_be_framed(http: TestClient) -> None:
    # Walks the app's own routes: every GET answering HTML, but the badge, must refuse any
    # framer. FastAPI's /docs, /redoc and /docs/oauth2-redirect had neither header.
    app = http.app
    pages = []
    for route in app.routes:  # type: ignore[attr-defined]
        path = getattr(route, "path", "")
        if "GET" not in (getattr(route, "methods", None) or set()) or path.startswith("/v1/"):
            continue
        url = path.replace("{good_type}", "file").replace("{fingerprint}", "0x" + "ab" * 32)
        url = re.sub(r"\{[^}]+\}", "1", url)
        answer = http.get(url)
        if not answer.headers.get("content-type", "").startswith("text/html"):
            continue
        pages.append(path)
        csp = answer.headers.get("content-security-policy", "")
        if path.startswith("/badge/"):
            assert "frame-ancestors *" in csp
            continue
        assert answer.headers.get("x-frame-options") == "DENY", path
        assert "frame-ancestors 'none'" in csp, path
    assert {"/", "/audit", "/docs", "/redoc"} <= set(pages), pages
