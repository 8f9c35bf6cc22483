"""The ``tracemark-creator/v1`` statement: strict parsing and the display-spoofing guard."""

from __future__ import annotations

import json

import pytest
from eth_account import Account

from registry.eip712 import DEV_DOMAIN
from verifier.identity import (
    MAX_STATEMENT_BYTES,
    CreatorStatement,
    MalformedStatement,
    parse_domain,
    parse_name,
)


@pytest.fixture
def good() -> CreatorStatement:
    return CreatorStatement.signed(
        private_key=bytes(Account.create().key),
        domain="studio.example",
        name="Studio Name",
        issued_at=1_800_000_000,
        eip712_domain=DEV_DOMAIN,
    )


def test_a_statement_round_trips_and_checks(good: CreatorStatement) -> None:
    again = CreatorStatement.parse(good.to_json())
    assert again == good
    again.check(creator=good.creator, domain="studio.example", eip712_domain=DEV_DOMAIN)


@pytest.mark.parametrize(
    "mutation",
    ["duplicate-key", "unknown-field", "missing-field", "other-format", "too-large", "nan"],
)
def test_malformed_statements_are_refused(good: CreatorStatement, mutation: str) -> None:
    text = good.to_json()
    document = good.document()
    if mutation == "duplicate-key":
        text = text.replace('"name":', '"name": "Other", "name":', 1)
    elif mutation == "unknown-field":
        text = json.dumps(document | {"extra": 1})
    elif mutation == "missing-field":
        text = json.dumps({k: v for k, v in document.items() if k != "issued_at"})
    elif mutation == "other-format":
        text = json.dumps(document | {"format": "tracemark-creator/v2"})
    elif mutation == "too-large":
        text = text.replace('"name":', '"pad": "' + "x" * MAX_STATEMENT_BYTES + '", "name":', 1)
    elif mutation == "nan":
        text = text.replace("1800000000", "NaN")
    with pytest.raises(MalformedStatement):
        CreatorStatement.parse(text)


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 65,
        "Studio\u202eemaN",
        "Stu\u200bdio",
        "Studio\n",
        " Studio",
        "A  B",
        "Cafe\u0301",
    ],
)
def test_names_that_could_spoof_a_display_are_refused(name: str) -> None:
    with pytest.raises(MalformedStatement):
        parse_name(name)


@pytest.mark.parametrize(
    "domain",
    [
        "Studio.example",
        "studio.example/path",
        "https://studio.example",
        "studio.example.",
        "-a.example",
        "a.example:0",
        "a.example:70000",
        "user@a.example",
        "",
    ],
)
def test_domains_are_bare_lower_case_dns_names(domain: str) -> None:
    with pytest.raises(MalformedStatement):
        parse_domain(domain)


def test_host_and_port_for_loopback_and_idna_names_are_accepted() -> None:
    assert parse_domain("127.0.0.1:8443") == "127.0.0.1:8443"
    assert parse_domain("xn--nrd-0na.example") == "xn--nrd-0na.example"
    assert parse_name("Studio Nørd") == "Studio Nørd"
