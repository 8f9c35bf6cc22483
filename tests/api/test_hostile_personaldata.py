"""Hostile probes of the no-personal-data filter (issue 18 item 4, red team): personal data
disguised so that the detectors or the app-wide dependency miss it, sent through the real app
on SQLite and PostgreSQL, and legitimate opaque ids it must keep accepting."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from registry.codesfile import prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration, sign_batch_revocation
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.personaldata import id_check_character, might_hold_personal_data, personal_data_in
from tests.api.conftest import POLICY, KeyFactory, bearer
from tests.api.test_creator_routes import codes_file, registration_body
from tests.api.test_no_personal_data import _search_database
from tests.conftest import Clock
from tests.registry.helpers import registration

_ID17 = "11010519491231002"
ID_18 = _ID17 + id_check_character(_ID17)


def _refused(answer: object) -> bool:
    from httpx2 import Response

    assert isinstance(answer, Response)
    return answer.status_code == 422 and answer.json()["type"].endswith("/personal-data-refused")


@pytest.mark.parametrize(
    "media",
    ["application/json-patch+json", "application/x-anything+json", "application/JSON+json"],
)
def test_a_json_body_under_another_json_media_type_is_still_checked(
    client: TestClient, make_key: KeyFactory, media: str
) -> None:
    # FastAPI parses any application/*+json body as JSON: the filter must read it too (it
    # read only application/json and problem+json, so these recorded an ID number's hash).
    key = make_key("cardhub", "transfer")
    body = json.dumps({"reference": ID_18, "level": "phone"}).encode()
    answer = client.post(
        "/v1/attestations", content=body, headers={**bearer(key), "Content-Type": media}
    )
    assert _refused(answer), answer.text


DISGUISED_PHONES = [
    "138\u200b0013\u200b8000",  # zero-width spaces
    "1\u200c3800138000",  # zero-width non-joiner
    "138\u20600013\u20608000",  # word joiner
    "\ufeff13800138000",  # a BOM in front
    "138\u00ad0013\u00ad8000",  # soft hyphens
    "138\u20130013\u20138000",  # en dashes
    "138\u20140013\u20148000",  # em dashes
    "138\u22120013\u22128000",  # minus signs
    "138.0013.8000",  # dots
]
SPLIT_IDS = [
    f"{ID_18[:6]} {ID_18[6:14]} {ID_18[14:]}",
    f"{ID_18[:6]}-{ID_18[6:14]}-{ID_18[14:]}",
    f"{ID_18[:6]} {ID_18[6:]}",
    f"{ID_18[:6]}\u200b{ID_18[6:]}",
]


@pytest.mark.parametrize("text", DISGUISED_PHONES)
def test_a_disguised_phone_number_is_found(text: str) -> None:
    assert personal_data_in(text) == "a phone number"
    assert personal_data_in(f"call {text} now") == "a phone number"
    raw = json.dumps({"note": text}, ensure_ascii=False).encode()
    assert might_hold_personal_data(raw) and might_hold_personal_data(json.dumps(text).encode())


@pytest.mark.parametrize("text", SPLIT_IDS)
def test_an_id_number_split_by_spaces_or_dashes_is_found(text: str) -> None:
    assert personal_data_in(text) == "an ID number"
    assert personal_data_in(text, reference=True) == "an ID number"
    assert might_hold_personal_data(json.dumps({"reference": text}).encode())


def test_a_disguised_id_number_is_refused_through_the_app(
    client: TestClient, make_key: KeyFactory
) -> None:
    key = make_key("cardhub", "transfer")
    for text in SPLIT_IDS:
        answer = client.post(
            "/v1/attestations", json={"reference": text, "level": "phone"}, headers=bearer(key)
        )
        assert _refused(answer), (text, answer.text)


def test_a_format_character_cannot_glue_a_number_to_a_word_before_it() -> None:
    assert personal_data_in("tel\u200b13800138000") == "a phone number"
    assert personal_data_in(f"ID\u200b{ID_18}", reference=True) == "an ID number"


def test_every_format_character_and_dash_of_this_unicode_is_read_so() -> None:
    import sys
    import unicodedata

    for point in range(sys.maxunicode + 1):
        char = chr(point)
        category = unicodedata.category(char)
        if category in ("Cf", "Pd"):
            assert personal_data_in(f"138{char}0013{char}8000") == "a phone number", hex(point)


LEGITIMATE = [
    "202612051234567890",  # an 18-digit order number that starts with its date
    "T202612051234567890",
    "0x" + "13800138000".rjust(64, "0"),  # a hex fingerprint holding the digits
    "550e8400-e29b-41d4-a716-446655440000",  # a UUID
    "order 1380.0138 paid",
    "sku-10010-20020-30030",
    "用户-8f3a2c",  # a Chinese product title in free text
    # 15-digit ids with a real date (YYMMDD) but no province's region code: a first-
    # generation ID number has no check digit, so the province is what tells them apart.
    "990105491231002",
    "200105491231002",
]


def test_a_fifteen_digit_id_number_with_a_provinces_region_is_still_found() -> None:
    assert personal_data_in("110105491231002") == "an ID number"
    assert personal_data_in("440301 491231 002") == "an ID number"


@pytest.mark.parametrize("text", LEGITIMATE)
def test_legitimate_opaque_ids_are_kept(text: str) -> None:
    assert personal_data_in(text) is None


@pytest.mark.parametrize("idempotency_key", ["order-13800138000", f"retry-{ID_18}"])
def test_an_idempotency_key_holding_personal_data_is_refused_and_not_stored(
    client: TestClient, make_key: KeyFactory, engine: Engine, idempotency_key: str
) -> None:
    # The key is stored as sent (its replay table, transfers' UNIQUE column): a platform
    # that names retries by its buyer's phone number would have it kept in clear.
    key = make_key("cardhub", "transfer")
    answer = client.post(
        "/v1/attestations",
        json={"reference": "acct-1", "level": "phone"},
        headers={**bearer(key), "Idempotency-Key": idempotency_key},
    )
    assert _refused(answer), answer.text
    assert idempotency_key not in answer.text
    needle = idempotency_key.split("-", 1)[1]
    assert _search_database(engine, [needle]) == []
    # An ordinary key is served.
    served = client.post(
        "/v1/attestations",
        json={"reference": "acct-1", "level": "phone"},
        headers={**bearer(key), "Idempotency-Key": "550e8400-e29b-41d4-a716-446655440000"},
    )
    # (Not refused for personal data: what the route then answers is its own matter.)
    assert not _refused(served), served.text


@pytest.mark.parametrize(
    "metadata",
    [
        {"seller_tel": 13800138000},
        {"contact": {"mobile": 8613800138000}},
        {"ids": [110105491231002]},  # a 15-digit ID (an 18-digit one is past 2^53: refused)
        {"tel": 13800138000.0},
    ],
    ids=["phone", "nested-86", "id-in-list", "float"],
)
def test_a_number_in_free_metadata_is_checked_like_text(
    client: TestClient, creator: CreatorKeys, clock: Clock, engine: Engine, metadata: Any
) -> None:
    # A registration's metadata is free JSON, logged for good (append-only): a phone number
    # written as a JSON number was never looked at (only strings and keys were).
    request = registration(creator, clock(), product="art", new_product=True, metadata=metadata)
    answer = client.post("/v1/registrations", json=registration_body(request))
    assert _refused(answer), answer.text
    assert _search_database(engine, ["13800138000", "110105491231002"]) == []


def test_numbers_elsewhere_are_not_read_as_personal_data(
    client: TestClient, creator: CreatorKeys, clock: Clock
) -> None:
    # Typed numbers (ids, timestamps, nonces, amounts) are not free text: an 11-digit one is
    # not a phone number. Only free metadata's numbers are read.
    request = registration(
        creator, clock(), product="art", new_product=True, metadata={"edition": 12, "year": 2026}
    )
    answer = client.post("/v1/registrations", json=registration_body(request))
    assert answer.status_code == 201, answer.text


def test_a_bulk_uploads_signed_request_is_checked_too(
    client: TestClient,
    creator: CreatorKeys,
    clock: Clock,
    engine: Engine,
    tmp_path: Path,
) -> None:
    # A bulk upload's signed request (its first NDJSON line, or the Tracemark-Request header
    # of a CSV) carries the same metadata and reason as the single routes' bodies, and was
    # never looked at: the filter reads JSON bodies only.
    batch = prepare_code_batch(codes_file(tmp_path, 3).open(), creator.require_code_key())
    fps = ["0x" + fp.hex() for fp in batch.fingerprints()]
    request = sign_batch_registration(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        product="30-day-card",
        use=Use.SINGLE,
        royalty_policy=POLICY,
        metadata={"contact": "+86 138-0013-8000"},
        now=clock(),
        new_product=True,
    )
    lines = [json.dumps(registration_body(request)), *fps]
    answer = client.post(
        "/v1/registrations/batches",
        content="\n".join(lines).encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert _refused(answer), answer.text
    revocation = sign_batch_revocation(
        creator,
        DEV_DOMAIN,
        batch,
        good_type=GoodType.CODE,
        reason="leaked by 13800138000",
        now=clock(),
    )
    header = base64.urlsafe_b64encode(
        json.dumps({"signed": revocation.signed.document()}).encode()
    ).decode()
    answer = client.post(
        "/v1/revocations/batches",
        content=("fingerprint\n" + "\n".join(fps) + "\n").encode(),
        headers={"Content-Type": "text/csv", "Tracemark-Request": header},
    )
    assert _refused(answer), answer.text
    assert _search_database(engine, ["13800138000", "138-0013-8000"]) == []
