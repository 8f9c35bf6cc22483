"""The API's contract where fuzzing found it loose: a 405 names what is allowed, the OpenAPI
document is as tight as the handlers (cursors, currencies, signed types), and an empty upload
is refused rather than answered with the empty file's verdict (THREATS 40, 44)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from api.pagination import (
    CURSOR_MAX_LENGTH,
    CURSOR_PATTERN,
    MAX_ID,
    decode_cursor,
    encode_cursor,
)
from registry.creator import CreatorKeys
from registry.errors import InvalidInput
from registry.fingerprints import EMPTY_FILE_FINGERPRINT
from registry.royalty import policy_document
from tests.api.conftest import KeyFactory, bearer
from tests.conftest import Clock
from tests.registry.helpers import registration

PROBLEM = "application/problem+json"
sqlite_only = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def _operations(openapi: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for item in openapi["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def _resolve(openapi: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = openapi["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


# -- 405 -------------------------------------------------------------------------------------


@sqlite_only
def test_a_405_names_the_allowed_methods(client: TestClient) -> None:
    """RFC 9110 §15.5.6: a 405 MUST carry ``Allow``."""
    for method, path, allowed in (
        ("DELETE", "/v1/log/head", {"GET"}),
        ("PUT", "/v1/registrations", {"POST"}),
        ("PATCH", "/v1/webhooks", {"GET", "POST"}),
    ):
        answer = client.request(method, path)
        assert answer.status_code == 405, (method, path, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        assert {m.strip() for m in answer.headers["allow"].split(",")} >= allowed, path


# -- empty files -------------------------------------------------------------------------------


@sqlite_only
def test_verifying_an_empty_upload_is_refused(client: TestClient, make_key: KeyFactory) -> None:
    key = make_key("cardhub", "verify")
    for headers in ({}, bearer(key)):
        answer = client.post(
            "/v1/verify/file",
            content=b"",
            headers={**headers, "Content-Type": "application/octet-stream"},
        )
        assert answer.status_code == 400, answer.text
        assert answer.headers["content-type"] == PROBLEM
        assert answer.json()["detail"] == "the body is empty: send the file's bytes"
        assert EMPTY_FILE_FINGERPRINT.hex() not in answer.text
    # One byte is a file.
    one = client.post("/v1/verify/file", content=b"x", headers=bearer(key))
    assert one.status_code == 200 and one.json()["fingerprint"].endswith(
        hashlib.sha256(b"x").hexdigest()
    )


@sqlite_only
def test_registering_the_empty_file_is_refused(
    client: TestClient, creator: CreatorKeys, clock: Clock
) -> None:
    assert hashlib.sha256(b"").digest() == EMPTY_FILE_FINGERPRINT
    request = registration(creator, clock(), fingerprint=EMPTY_FILE_FINGERPRINT)
    body = {
        "signed": request.signed.document(),
        "royalty_policy": policy_document(request.royalty_policy),
        "metadata": dict(request.metadata),
        "new_product": request.new_product,
    }
    answer = client.post("/v1/registrations", json=body)
    assert answer.status_code == 400, answer.text
    assert "empty file" in answer.json()["detail"]


# -- the schema is no looser than the handlers -------------------------------------------------

LIST_OPERATIONS = ("list_transfers", "list_my_goods", "get_good_history", "list_webhooks")


@sqlite_only
def test_every_cursor_parameter_has_the_decoders_grammar(client: TestClient) -> None:
    openapi = client.get("/openapi.json").json()
    operations = _operations(openapi)
    found = []
    for operation_id, operation in operations.items():
        for parameter in operation.get("parameters", ()):
            if parameter["name"] != "cursor" or operation_id == "list_signals":
                continue  # the signal feed's cursor is a rule id of its own grammar
            schema = parameter["schema"]
            strings = [s for s in schema.get("anyOf", [schema]) if s.get("type") == "string"]
            assert strings and strings[0]["pattern"] == CURSOR_PATTERN, operation_id
            assert strings[0]["maxLength"] == CURSOR_MAX_LENGTH, operation_id
            found.append(operation_id)
    assert set(LIST_OPERATIONS) <= set(found)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, MAX_ID))
def test_every_cursor_handed_out_matches_the_grammar(last_id: int) -> None:
    cursor = encode_cursor(last_id)
    assert re.fullmatch(CURSOR_PATTERN, cursor) and len(cursor) <= CURSOR_MAX_LENGTH
    assert decode_cursor(cursor) == last_id


@settings(max_examples=300, deadline=None)
@given(st.from_regex(CURSOR_PATTERN, fullmatch=True))
def test_a_cursor_of_the_grammar_is_refused_only_past_the_largest_id(cursor: str) -> None:
    number = int(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))[3:])
    if number > MAX_ID:
        with pytest.raises(InvalidInput):
            decode_cursor(cursor)
    else:
        assert decode_cursor(cursor) == number


@pytest.mark.parametrize(
    "cursor",
    [
        "djE6M*Q",  # "v1:1" once base64's decoder skipped the "*"
        "djE6MQ==",  # padded: never handed out
        "djE6MQ\n",
        "djE6",
        "djE6LTE",  # "v1:-1"
        "dj E6MQ",
        encode_cursor(MAX_ID) + "A",
    ],
)
def test_a_cursor_off_the_grammar_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(cursor)


@sqlite_only
def test_currency_and_signed_types_are_as_tight_as_the_handlers(
    client: TestClient, make_key: KeyFactory
) -> None:
    openapi = client.get("/openapi.json").json()
    components = openapi["components"]["schemas"]
    currency = [
        s for s in components["TransferIn"]["properties"]["currency"]["anyOf"] if s.get("pattern")
    ]
    pattern = currency[0]["pattern"]
    for good in ("EUR", "USDC", "1INCH", "X"):
        assert re.fullmatch(pattern, good), good
    for bad in ("123", "0", "eur", "", "E UR"):
        assert not re.fullmatch(pattern, bad), bad
    # A currency of digits alone is refused by the schema (422), before the handler.
    key = make_key("cardhub", "transfer")
    answer = client.post(
        "/v1/transfers",
        json={
            "good_type": "file",
            "fingerprint": "0x" + "ab" * 32,
            "seller": {"creator": True},
            "buyer": {"reference": "b"},
            "price": "100",
            "currency": "123",
        },
        headers=bearer(key),
    )
    assert answer.status_code == 422, answer.text

    # Each signed write names the one primary type it takes.
    expected = {
        "register_good": "Registration",
        "revoke_good": "Revocation",
        "enroll_code_key": "CodeKeyEnrollment",
        "retire_code_key": "CodeKeyRetirement",
    }
    operations = _operations(openapi)
    for operation_id, primary_type in expected.items():
        body = operations[operation_id]["requestBody"]["content"]["application/json"]["schema"]
        signed = _resolve(openapi, _resolve(openapi, body)["properties"]["signed"])
        kind = signed["properties"]["type"]
        assert kind.get("const", (kind.get("enum") or [None])[0]) == primary_type, operation_id
    # A route handed another type refuses it as a malformed body (422), like an empty one.
    for kind in ("", "BatchRegistration", "Revocation"):
        refused = client.post(
            "/v1/registrations",
            json={
                "signed": {
                    "type": kind,
                    "signer": "0x" + "11" * 20,
                    "message": {},
                    "signature": "0x" + "00" * 65,
                }
            },
        )
        assert refused.status_code == 422, (kind, refused.text)
