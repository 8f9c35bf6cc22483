"""A product's face value through the real app on SQLite and PostgreSQL (issue 18 item 2):
set, read, cleared with the creator's session, through the typed client too; refusals are
problem+json; the risk worker's records carry it (what ``below-face-value`` compares with),
and every setting is kept in the product's face value history."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

import registry.facevalue as registry_facevalue
from readmodels.market import FaceSetting
from readmodels.marketreads import read_inputs
from registry.eip712 import address_bytes
from registry.facevalue import FaceValue, face_history, face_value_history_t
from registry.fingerprints import GoodType
from registry.rebates import product_id
from registry.service import Registry
from registry.transfers import Party, TransferRequest
from tests.api.conftest import CodeGood, KeyFactory, bearer, sign_in
from tests.conftest import Clock
from verifier.client import TracemarkClient
from verifier.problems import ApiProblem

PROBLEM = "application/problem+json"
PATH = "/v1/creators/me/products/30-day-card/face-value"


def test_a_creator_sets_reads_and_clears_its_products_face_value(
    client: TestClient, registry: Registry, clock: Clock, make_key: KeyFactory, code_good: CodeGood
) -> None:
    session = bearer(sign_in(client, code_good.creator, clock()))
    creator = code_good.creator.account.address
    none = {"creator": creator, "product": "30-day-card", "face_value": None, "currency": None}
    assert client.get(PATH, headers=session).json() == {
        **none,
        "history": [],
        "history_truncated": False,
    }
    set_at = clock()
    put = client.put(PATH, json={"face_value": "10000", "currency": "CNY"}, headers=session)
    assert put.status_code == 200, put.text
    assert put.json() == {**none, "face_value": "10000", "currency": "CNY"}
    assert client.get(PATH, headers=session).json()["face_value"] == "10000"
    # The records the rules read carry it, with the product's goods (a sale names the good).
    registry.transfer(
        TransferRequest(
            platform="cardhub", good_type=GoodType.CODE, fingerprint=code_good.fingerprint,
            seller=Party(None, None), buyer=Party("cardhub", "u1"), price=3_000, currency="CNY",
        )
    )  # fmt: skip
    inputs, _ = read_inputs(registry.engine)
    entry = inputs.registrations[(int(GoodType.CODE), code_good.fingerprint)]
    assert entry.faces == (FaceSetting(set_at, 10_000, "CNY"),)
    # Refusals: a face value of 0, a lower-case or missing currency, an unknown product, a
    # platform key instead of the creator's session.
    for body in (
        {"face_value": "0", "currency": "CNY"},
        {"face_value": "100", "currency": "cny"},
        {"face_value": "100"},
        {"face_value": "-1", "currency": "CNY"},
    ):
        bad = client.put(PATH, json=body, headers=session)
        assert bad.status_code in (400, 422), (body, bad.text)
        assert bad.headers["content-type"] == PROBLEM
    unknown = client.put(
        PATH.replace("30-day-card", "no-such-card"),
        json={"face_value": "100", "currency": "CNY"},
        headers=session,
    )
    assert unknown.status_code == 404 and unknown.json()["type"].endswith("/unknown-product")
    key = make_key("cardhub", "transfer")
    assert client.get(PATH, headers=bearer(key)).status_code in (401, 403)
    assert client.get(PATH, headers=session).json()["face_value"] == "10000"  # unchanged
    # The typed client: clear, then set again.
    token = session["Authorization"].removeprefix("Bearer ")
    with TracemarkClient("http://testserver", token=token, http_client=client) as own:
        assert own.set_face_value("30-day-card", None, None).face_value is None
        assert own.face_value("30-day-card").currency is None
        assert own.set_face_value("30-day-card", 2_000, "USD").face_value == "2000"
        with pytest.raises(ApiProblem) as caught:
            own.face_value("no-such-card")
        assert caught.value.status == 404
    # Each setting is kept (migration 0034), with the registry's clock and the creator whose
    # session made it; refused ones are not.
    history = face_history(registry.engine, address_bytes(creator), "30-day-card")
    assert [(h.set_at, h.face, h.set_by) for h in history] == [
        (set_at, FaceValue(10_000, "CNY"), address_bytes(creator)),
        (set_at, None, address_bytes(creator)),
        (set_at, FaceValue(2_000, "USD"), address_bytes(creator)),
    ]


def test_the_face_value_answer_says_when_each_value_was_set(
    client: TestClient,
    registry: Registry,
    clock: Clock,
    code_good: CodeGood,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``GET .../face-value`` answers the product's history with its value (additive: PUT and
    DELETE answer as before): each setting's time, value (null: cleared) and who made it,
    oldest first; a face value carried over by migration 0034 has no creator; the newest
    ``MAX_FACE_HISTORY`` only, and it says when older ones were left out."""
    session = bearer(sign_in(client, code_good.creator, clock()))
    creator = code_good.creator.account.address
    first = clock()
    assert client.put(PATH, json={"face_value": "10000", "currency": "CNY"}, headers=session)
    clock.advance(600)
    cleared = client.delete(PATH, headers=session).json()
    assert "history" not in cleared and cleared["face_value"] is None
    clock.advance(60)
    put = client.put(PATH, json={"face_value": "5000", "currency": "USD"}, headers=session)
    assert set(put.json()) == {"creator", "product", "face_value", "currency"}
    answer = client.get(PATH, headers=session).json()
    assert (answer["face_value"], answer["currency"], answer["history_truncated"]) == (
        "5000",
        "USD",
        False,
    )
    assert answer["history"] == [
        {"set_at": first, "face_value": "10000", "currency": "CNY", "set_by": creator},
        {"set_at": first + 600, "face_value": None, "currency": None, "set_by": creator},
        {"set_at": first + 660, "face_value": "5000", "currency": "USD", "set_by": creator},
    ]
    # A setting the migration carried over (set_by NULL), as its rows are.
    with registry.engine.begin() as conn:
        found = product_id(conn, address_bytes(creator), "30-day-card")
        conn.execute(
            face_value_history_t.insert().values(
                product_id=found, face_value=7, face_currency="EUR", set_at=first + 661
            )
        )
    # The newest settings only: two of four here.
    monkeypatch.setattr(registry_facevalue, "MAX_FACE_HISTORY", 2)
    token = session["Authorization"].removeprefix("Bearer ")
    with TracemarkClient("http://testserver", token=token, http_client=client) as own:
        read = own.face_value("30-day-card")
    assert read.history_truncated is True
    assert [(h.set_at, h.face_value, h.set_by) for h in read.history] == [
        (first + 660, "5000", creator),
        (first + 661, "7", None),
    ]
    monkeypatch.setattr(registry_facevalue, "MAX_FACE_HISTORY", 4)
    assert client.get(PATH, headers=session).json()["history_truncated"] is False
    assert client.get(PATH.replace("30-day-card", "no-card"), headers=session).status_code == 404
