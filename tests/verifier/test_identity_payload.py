"""The CREATOR_IDENTITY payload as one type: its JSON is what the registry always stored."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from eth_account import Account

from registry.eip712 import DEV_DOMAIN, address_bytes
from registry.errors import InvalidInput
from verifier.identity import LAPSED, VERIFIED, CreatorStatement, statement_url
from verifier.identityclaim import (
    CreatorIdentityPayload,
    IdentityClaim,
    identity_payload,
    verify_identity_entry,
)

REGISTRY = "0x" + "11" * 20


@pytest.fixture
def statement() -> CreatorStatement:
    return CreatorStatement.signed(
        private_key=bytes(Account.create().key),
        domain="studio.example",
        name="Studio Name",
        issued_at=1_800_000_000,
        eip712_domain=DEV_DOMAIN,
    )


def _claim(statement: CreatorStatement, status: str = VERIFIED) -> IdentityClaim:
    url = statement_url("studio.example")
    return IdentityClaim(statement.creator, "Studio Name", "studio.example", status, 7, url)  # type: ignore[arg-type]


def test_the_payload_writes_the_dict_it_replaces_and_round_trips(
    statement: CreatorStatement,
) -> None:
    claim = _claim(statement)
    payload = identity_payload(claim, statement, registry=REGISTRY, eip712_domain=DEV_DOMAIN)
    dict_built = {
        "identity": claim.document(),
        "statement": statement.document(),
        "registry": REGISTRY,
        "domain": DEV_DOMAIN.as_dict(),
        "reason": None,
    }
    assert payload.to_json() == rfc8785.dumps(dict_built)
    assert payload.payload_hash() == hashlib.sha256(rfc8785.dumps(dict_built)).digest()
    assert CreatorIdentityPayload.from_json(payload.to_json()) == payload
    proved = verify_identity_entry(
        payload.document(),
        creator=address_bytes(statement.creator),
        eip712_domain=DEV_DOMAIN,
        registry=REGISTRY,
    )
    assert proved == claim


def test_a_lapsed_payload_says_why_and_a_verified_one_does_not(
    statement: CreatorStatement,
) -> None:
    with pytest.raises(InvalidInput, match="lapsed identity entry says why"):
        identity_payload(
            _claim(statement, LAPSED), statement, registry=REGISTRY, eip712_domain=DEV_DOMAIN
        )
    with pytest.raises(InvalidInput, match="lapsed identity entry says why"):
        identity_payload(
            _claim(statement), statement, registry=REGISTRY, eip712_domain=DEV_DOMAIN, reason="x"
        )


def test_only_the_canonical_form_parses_strictly(statement: CreatorStatement) -> None:
    payload = identity_payload(
        _claim(statement), statement, registry=REGISTRY, eip712_domain=DEV_DOMAIN
    )
    document = payload.document()
    document["identity"]["creator"] = statement.creator.lower()
    with pytest.raises(InvalidInput, match="canonical"):
        CreatorIdentityPayload.from_json(json.dumps(document))
    assert CreatorIdentityPayload.from_document(document, canonical=False) == payload
    with pytest.raises(InvalidInput, match="exactly the keys"):
        CreatorIdentityPayload.from_document({**document, "extra": 1})
