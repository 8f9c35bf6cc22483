"""Over HTTP: a good held on a platform moves only with that platform's consent (it reports the
sale, or it issues a one-time hand-over authorization the buyer presents); a holder's reference
is not recoverable from a public proof bundle; platform ids in parties keep to their grammar
(issue 12)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from registry.handover import authorizations_t
from registry.holding import holdings_t
from registry.parties import LEGACY_REFERENCE_TAG, legacy_reference_hash
from registry.service import Registry
from registry.transfers import attempts_t, transfers_t
from tests.api.conftest import CodeGood, KeyFactory, bearer
from tests.api.test_platform_routes import PROBLEM, anchor_everything


def _count(registry: Registry, table: Any) -> int:
    with registry.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _holding(registry: Registry) -> tuple[Any, ...]:
    with registry.engine.connect() as conn:
        return tuple(conn.execute(select(holdings_t)).one())


def _parties(document: Any) -> Iterator[dict[str, Any]]:
    """Every ``{"platform", "reference_hash"}`` party anywhere in a JSON document."""
    if isinstance(document, dict):
        if "reference_hash" in document:
            yield document
        for value in document.values():
            yield from _parties(value)
    elif isinstance(document, list):
        for value in document:
            yield from _parties(value)


@pytest.fixture
def held(client: TestClient, code_good: CodeGood, make_key: KeyFactory) -> dict[str, str]:
    """Cardhub sold the creator's code to its user "carol"; keys of cardhub, keyshop, gamemart."""
    keys = {
        name: make_key(name, "verify", "transfer") for name in ("cardhub", "keyshop", "gamemart")
    }
    first = client.post(
        "/v1/transfers",
        json={
            "good_type": "code",
            "fingerprint": code_good.hex,
            "seller": {"creator": True},
            "buyer": {"reference": "carol"},
            "price": "1000",
            "currency": "EUR",
        },
        headers=bearer(keys["cardhub"]),
    )
    assert first.status_code == 201, first.text
    return keys


def test_another_platform_cannot_move_a_held_good_by_guessing_the_reference(
    client: TestClient, registry: Registry, code_good: CodeGood, held: dict[str, str]
) -> None:
    """The probe: keyshop reports cardhub's "carol" as its seller at a price of 1: 403
    not-the-holder (the same for a wrong guess), nothing moves, the attempt is kept, and the
    real holder's next sale is a 201, not a 409."""
    good = {"good_type": "code", "fingerprint": code_good.hex}
    before = (_count(registry, transfers_t), _holding(registry))
    for guess in ("carol", "carl"):
        stolen = client.post(
            "/v1/transfers",
            json={
                **good,
                "seller": {"platform": "cardhub", "reference": guess},
                "buyer": {"reference": "mallory"},
                "price": "1",
                "currency": "EUR",
            },
            headers=bearer(held["keyshop"]),
        )
        assert stolen.status_code == 403 and stolen.headers["content-type"] == PROBLEM
        assert stolen.json()["type"].endswith("/not-the-holder")
    assert (_count(registry, transfers_t), _holding(registry)) == before
    assert _count(registry, attempts_t) == 2

    own = client.post(
        "/v1/transfers",
        json={
            **good,
            "seller": {"platform": "cardhub", "reference": "carol"},
            "buyer": {"platform": "keyshop", "reference": "bob"},
            "price": "1500",
            "currency": "EUR",
        },
        headers=bearer(held["cardhub"]),
    )
    assert own.status_code == 201, own.text
    assert own.json()["royalties"]  # priced on its real price, not on 1


def test_a_hand_over_authorization_moves_the_good_once_for_its_buyer(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    held: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    good = {"good_type": "code", "fingerprint": code_good.hex}
    # Only the holder may consent: keyshop cannot, cardhub under another reference cannot.
    for key, reference in ((held["keyshop"], "carol"), (held["cardhub"], "dave")):
        refused = client.post(
            "/v1/transfers/authorizations",
            json={**good, "reference": reference, "buyer_platform": "gamemart"},
            headers=bearer(key),
        )
        assert refused.status_code == 403 and refused.json()["type"].endswith("/not-the-holder")
    too_long = client.post(
        "/v1/transfers/authorizations",
        json={**good, "reference": "carol", "buyer_platform": "keyshop", "expires_in": 86_400},
        headers=bearer(held["cardhub"]),
    )
    assert too_long.status_code == 422

    issued = client.post(
        "/v1/transfers/authorizations",
        json={**good, "reference": "carol", "buyer_platform": "keyshop", "expires_in": 300},
        headers=bearer(held["cardhub"]),
    )
    assert issued.status_code == 201, issued.text
    assert issued.headers["cache-control"] == "no-store"
    answer = issued.json()
    token = answer["authorization"]
    assert answer["buyer_platform"] == "keyshop" and answer["fingerprint"] == code_good.hex
    with registry.engine.connect() as conn:
        (stored,) = conn.execute(select(authorizations_t.c.token_hash)).scalars()
    assert bytes(stored) == hashlib.sha256(token.encode()).digest()

    def present(key: str, **extra: Any) -> Any:
        return client.post(
            "/v1/transfers",
            json={
                **good,
                "seller": {"platform": "cardhub"},
                "buyer": {"reference": "bob"},
                "price": "2000",
                "currency": "EUR",
                "authorization": token,
                **extra,
            },
            headers=bearer(key),
        )

    other_buyer = present(held["gamemart"])
    assert other_buyer.status_code == 403
    assert other_buyer.json()["type"].endswith("/authorization-refused")
    no_reference = client.post(
        "/v1/transfers",
        json={**good, "seller": {"platform": "cardhub"}, "buyer": {"reference": "bob"}},
        headers=bearer(held["keyshop"]),
    )
    assert no_reference.status_code == 400
    bought = present(held["keyshop"])
    assert bought.status_code == 201, bought.text
    assert bought.json()["seller"]["platform"] == "cardhub" and bought.json()["royalties"]
    again = present(held["keyshop"], buyer={"reference": "bob-2"})
    assert again.status_code == 403 and again.json()["type"].endswith("/authorization-refused")
    assert _holding(registry)[2] == "keyshop"
    # The token is in the issuing answer only: never in a log line.
    assert all(token not in record.getMessage() for record in caplog.records)


def test_the_public_bundle_does_not_reveal_a_guessable_reference(
    client: TestClient, registry: Registry, code_good: CodeGood, held: dict[str, str]
) -> None:
    anchor_everything(registry)
    bundle = client.get(f"/v1/goods/code/{code_good.hex}/proof")
    assert bundle.status_code == 200, bundle.text
    parties = list(_parties(bundle.json()))
    assert parties, "the bundle names the holder"
    public = {p["reference_hash"] for p in parties}
    for platform in ("cardhub", "keyshop"):
        assert "0x" + legacy_reference_hash(platform, "carol").hex() not in public
    assert "0x" + hashlib.sha256(LEGACY_REFERENCE_TAG + b"carol").hexdigest() not in public
    assert "0x" + registry.reference_hash("cardhub", "carol").hex() in public
    assert registry.reference_hash("cardhub", "carol") != registry.reference_hash(
        "keyshop", "carol"
    )


@pytest.mark.parametrize(
    "platform", ["card\x00hub", "card\u202ehub", "cardhub\u200b", "car\u2067dhub", "Cardhub"]
)
@pytest.mark.parametrize("role", ["seller", "buyer"])
def test_platform_ids_in_parties_keep_to_the_grammar(
    client: TestClient,
    registry: Registry,
    code_good: CodeGood,
    make_key: KeyFactory,
    platform: str,
    role: str,
) -> None:
    key = make_key("cardhub", "transfer")
    parties = {"seller": {"creator": True}, "buyer": {"reference": "x"}}
    parties[role] = {"platform": platform, "reference": "carol"}
    answer = client.post(
        "/v1/transfers",
        json={"good_type": "code", "fingerprint": code_good.hex, **parties},
        headers=bearer(key),
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["type"].endswith("/validation-error")
    assert _count(registry, transfers_t) == 0 and _count(registry, attempts_t) == 0
    handover = client.post(
        "/v1/transfers/authorizations",
        json={
            "good_type": "code",
            "fingerprint": code_good.hex,
            "reference": "carol",
            "buyer_platform": platform,
        },
        headers=bearer(key),
    )
    assert handover.status_code == 422
