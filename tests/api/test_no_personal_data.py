"""No personal data through any route (issue 18 item 4), on SQLite and PostgreSQL.

The app's own OpenAPI document is walked: every text field of every write route's JSON body
(however deep), every text query parameter of every route and every text path parameter of
every write route gets each sample of personal data (an 18- and a 15-digit resident ID
number, a mobile number bare and written ``+86 139-1234-5678``, a Chinese name), one field
at a time, in an otherwise minimal request; non-JSON bodies get them as their content. The
answer must follow the field's policy (``api.personaldata``): refused (422
``personal-data-refused``) where it must be, never a server error. Then the references that
are hashed (a phone-shaped account id) are recorded for real, and every table of the real
database is dumped and searched for every sample, as is every log record of the run.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import fields
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, select

from api.app import create_app
from api.personaldata import EXEMPT_FIELDS, REFERENCE_FIELDS
from api.ratelimit import Limit, RateLimits
from registry.attestations import Level
from registry.creator import CreatorKeys
from registry.personaldata import id_check_character, might_hold_personal_data, personal_data_in
from registry.service import Registry
from registry.transferrequests import Party
from tests.api.conftest import SIWE_DOMAIN, KeyFactory, bearer, sign_in
from tests.conftest import Clock
from tests.platformkeys import enroll, sign_attestation
from tests.registry.orderhelpers import first_sale, register_code

_ID17 = "11010519491231002"
ID_18 = _ID17 + id_check_character(_ID17)
ID_15 = "110105491231002"
PHONE = "13812345678"
PHONE_WRITTEN = "+86 139-1234-5678"
NAME = "张三丰"
SAMPLES = {"id": [ID_18, ID_15], "phone": [PHONE, PHONE_WRITTEN], "name": [NAME]}
#: What a stored copy of each sample would contain (digits as they would be kept).
NEEDLES = [ID_18, ID_15, PHONE, "13912345678", "139-1234-5678", NAME]

ROOMY = RateLimits(
    **{
        f.name: Limit(10_000, 10_000)
        for f in fields(RateLimits)
        if isinstance(getattr(RateLimits(), f.name), Limit)
    }
)
WRITE_METHODS = ("post", "put", "patch", "delete")


def test_the_samples_are_what_they_claim() -> None:
    assert [personal_data_in(s) for s in (ID_18, ID_15, PHONE, PHONE_WRITTEN)] == [
        "an ID number",
        "an ID number",
        "a phone number",
        "a phone number",
    ]
    assert personal_data_in(NAME, reference=True) == "a name"
    # GB 11643-1999's textbook numbers (check characters X and 4): only the right check
    # character makes an ID number; each of the ten others does not.
    for number in ("11010519491231002X", "440524188001010014"):
        assert id_check_character(number[:17]) == number[17]
        for other in set("0123456789X") - {number[17]}:
            assert personal_data_in(number[:17] + other) is None, other
    # Near misses: a wrong check character, a fingerprint's hex, an amount, a product title.
    wrong = ID_18[:-1] + ("0" if ID_18[-1] != "0" else "1")
    for text in (wrong, "0x" + "13812345678" * 5 + "abcdefghi", "1381234567", "三十天点卡"):
        assert personal_data_in(text) is None, text
    assert personal_data_in(PHONE, reference=True) is None  # hashed, not refused
    assert personal_data_in("１３８１２３４５６７８") == "a phone number"  # full-width digits


# -- the OpenAPI walk -------------------------------------------------------------------------


class Schemas:
    def __init__(self, document: dict[str, Any]) -> None:
        self.components = document.get("components", {}).get("schemas", {})

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[-1]]
        return schema

    def choices(self, schema: dict[str, Any]) -> list[dict[str, Any]]:
        schema = self.resolve(schema)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            return [self.resolve(o) for o in options if self.resolve(o).get("type") != "null"]
        return [schema]

    def example(self, schema: dict[str, Any], depth: int = 0) -> Any:
        """A minimal value of ``schema`` (not necessarily valid: the check comes first)."""
        [schema, *_] = self.choices(schema) or [{}]
        if "enum" in schema:
            return schema["enum"][0]
        kind = schema.get("type")
        if kind == "object" or "properties" in schema:
            if depth > 6:
                return {}
            props = schema.get("properties", {})
            return {
                name: self.example(props[name], depth + 1) for name in schema.get("required", [])
            }
        if kind == "array":
            return [self.example(schema.get("items", {}), depth + 1)]
        if kind == "integer":
            return 1
        if kind == "number":
            return 1.0
        if kind == "boolean":
            return False
        return "x"

    def text_paths(self, schema: dict[str, Any], path: str = "", depth: int = 0) -> Iterator[str]:
        """Field paths (dots, ``[]`` for items) of every string in ``schema``."""
        if depth > 6:
            return
        for option in self.choices(schema):
            kind = option.get("type")
            if kind == "string" and "enum" not in option:
                yield path
            elif kind == "object" or "properties" in option:
                for name, child in option.get("properties", {}).items():
                    yield from self.text_paths(child, f"{path}.{name}" if path else name, depth + 1)
                extra = option.get("additionalProperties")
                if isinstance(extra, dict) or extra is True or kind == "object":
                    # An open object (metadata, a signed message): any member may be text.
                    yield f"{path}.note" if path else "note"
            elif kind == "array":
                yield from self.text_paths(option.get("items", {}), f"{path}[]", depth + 1)


def _set(document: Any, path: str, value: str) -> Any:
    """``document`` with the field at ``path`` set to ``value`` (created on the way)."""
    if not path:
        return value
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        name = head[:-2]
        items = document.get(name) if isinstance(document, dict) else None
        item = items[0] if isinstance(items, list) and items else {}
        document = dict(document) if isinstance(document, dict) else {}
        document[name] = [_set(item if rest else None, rest, value)] if rest else [value]
        return document
    document = dict(document) if isinstance(document, dict) else {}
    document[head] = _set(document.get(head, {}), rest, value) if rest else value
    return document


def expected(route: str, field: str, kind: str) -> str:
    """``refused``, ``accepted`` (hashed or never kept) or ``any`` (not ours to refuse)."""
    name = field.rsplit(".", 1)[-1].removesuffix("[]")
    if name in EXEMPT_FIELDS:
        return "any"
    if (route, field) in REFERENCE_FIELDS:
        return "any" if kind == "phone" else "refused"
    return "any" if kind == "name" else "refused"


@pytest.fixture
def app(registry: Registry) -> FastAPI:
    return create_app(registry, siwe_domain=SIWE_DOMAIN, telemetry_interval=0.05, limits=ROOMY)


def test_every_text_field_of_every_route_refuses_or_hashes_and_nothing_is_stored(
    app: FastAPI,
    registry: Registry,
    engine: Engine,
    make_key: KeyFactory,
    creator: CreatorKeys,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = make_key("cardhub", "verify", "transfer", "audit")
    wrong: list[str] = []
    sent = 0
    with TestClient(app) as http:
        session = sign_in(http, creator, clock())
        document = app.openapi()
        schemas = Schemas(document)
        for route, operations in document["paths"].items():
            for method, operation in operations.items():
                headers = bearer(session if route.startswith("/v1/creators/") else key)
                params = operation.get("parameters", [])
                path_values = {
                    p["name"]: "1" for p in params if p["in"] == "path"
                }  # a string "1" also fills an integer id
                text_query = [
                    p["name"]
                    for p in params
                    if p["in"] == "query"
                    and any(c.get("type") == "string" for c in schemas.choices(p["schema"]))
                ]
                text_path = [
                    p["name"]
                    for p in params
                    if p["in"] == "path"
                    and any(c.get("type") == "string" for c in schemas.choices(p["schema"]))
                ]
                content = operation.get("requestBody", {}).get("content", {})
                json_schema = content.get("application/json", {}).get("schema")
                base = None if json_schema is None else schemas.example(json_schema)
                cases: list[tuple[str, str, dict[str, Any]]] = []
                for kind, samples in SAMPLES.items():
                    for sample in samples:
                        for name in text_query:
                            cases.append((name, kind, {"params": {name: sample}}))
                        if method not in WRITE_METHODS:
                            continue
                        for name in text_path:
                            cases.append((name, kind, {"path": {name: sample}}))
                        if json_schema is not None:
                            for field in sorted(set(schemas.text_paths(json_schema))):
                                cases.append((field, kind, {"json": _set(base, field, sample)}))
                        for media in content:
                            if media != "application/json":
                                cases.append(("(body)", kind, {"content": sample, "media": media}))
                for field, kind, case in cases:
                    values = {**path_values, **case.get("path", {})}
                    url = route.format(**values)
                    extra = {}
                    if "media" in case:
                        extra = {
                            "content": case["content"].encode(),
                            "headers": {**headers, "Content-Type": case["media"]},
                        }
                    else:
                        extra = {"headers": headers}
                        if "json" in case:
                            extra["json"] = case["json"]
                    answer = http.request(method.upper(), url, params=case.get("params"), **extra)
                    sent += 1
                    refused = (
                        answer.status_code == 422
                        and answer.headers.get("content-type", "").startswith(
                            "application/problem+json"
                        )
                        and answer.json()["type"].endswith("/personal-data-refused")
                    )
                    want = "any" if field == "(body)" else expected(route, field, kind)
                    if answer.status_code >= 500 or (want == "refused" and not refused):
                        wrong.append(f"{method} {route} {field} {kind}: {answer.status_code}")
                    elif refused and want != "refused":
                        wrong.append(f"{method} {route} {field} {kind}: refused, not expected")
                    if refused:
                        detail = answer.text
                        assert not any(n in detail for n in NEEDLES), detail  # never echoed

        # The hashed references, for real: a phone-shaped account id recorded, then absent.
        registry.clock = clock
        enroll(registry, "cardhub")  # attestations are signed by the platform's key
        deadline = clock() + 600
        signature = sign_attestation(registry, "cardhub", PHONE, Level.PHONE, 1, deadline)
        signed = {"nonce": 1, "deadline": deadline, "signature": "0x" + signature.hex()}
        done = http.post(
            "/v1/attestations",
            json={"reference": PHONE, "level": "phone", **signed},
            headers=bearer(key),
        )
        assert done.status_code == 201, done.text
        assert done.json()["seller_ref"] == "0x" + registry.reference_hash("cardhub", PHONE).hex()
        code = register_code(registry, creator, clock)
        first_sale(registry, code, Party("cardhub", PHONE))
        sold = http.post(
            "/v1/transfers",
            json={
                "good_type": "code",
                "fingerprint": "0x" + code.hex(),
                "seller": {"platform": "cardhub", "reference": PHONE},
                "buyer": {"platform": "cardhub", "reference": PHONE_WRITTEN},
                "price": "100",
                "currency": "CNY",
            },
            headers=bearer(key),
        )
        assert sold.status_code == 201, sold.text
    assert sent > 300 and not wrong, f"{len(wrong)} of {sent}:\n" + "\n".join(wrong[:40])

    found = _search_database(engine, NEEDLES)
    assert found == [], found
    # The server's records (the test client's own log of the URLs it sent is not the server's).
    logged = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert len(logged) > 0
    assert not [m for m in logged if any(n in m for n in NEEDLES)]


def _search_database(engine: Engine, needles: list[str]) -> list[str]:
    """Every (table, column) of every table holding a needle, as text or UTF-8 bytes."""
    metadata = MetaData()
    metadata.reflect(engine)
    found = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for column, value in zip(table.columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, bytes | bytearray | memoryview):
                        text = bytes(value).decode("utf-8", "replace")
                    else:
                        text = json.dumps(value, ensure_ascii=False, default=str)
                    for needle in needles:
                        if needle in text:
                            found.append(f"{table.name}.{column.name}: {needle}")
    return found


def test_the_quick_look_never_misses_what_the_field_check_finds() -> None:
    """``might_hold_personal_data`` lets the per-field walk be skipped: it must say "maybe"
    for every body one of whose fields the walk would refuse (each sample, bare, in a longer
    text, as a key, escaped), and "no" for a usual body."""
    usual = {
        "good_type": "code",
        "fingerprint": "0x" + "13812345678" * 5 + "abcdefghi",
        "seller": {"platform": "cardhub", "reference": "seller-42"},
        "price": "1000",
    }
    assert not might_hold_personal_data(json.dumps(usual).encode())
    for sample in (ID_18, ID_15, PHONE, PHONE_WRITTEN, NAME, "１３８１２３４５６７８"):
        for text in (sample, f"call {sample} now", f"x/{sample}"):
            for document in ({"note": text}, {text: 1}, [text]):
                for raw in (json.dumps(document), json.dumps(document, ensure_ascii=False)):
                    assert might_hold_personal_data(raw.encode()), raw
