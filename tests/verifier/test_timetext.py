"""Dates of any number a document carries (``verifier.timetext``), and every place of the
verifier that writes one, fed a hostile time: a date past 9999-12-31 (a uint64 allows
2^64 - 1) made ``datetime`` raise, a traceback instead of a verdict. Pure: no database (the
compliance report, which refuses such a period, is tests/readmodels/test_compliance_dates.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest
from eth_account import Account
from hypothesis import example, given
from hypothesis import strategies as st

from registry.eip712 import DEV_DOMAIN, address_bytes
from verifier.bundlereport import _creator_line
from verifier.compliancefacts import summarize as summarize_report
from verifier.identity import VERIFIED, CreatorStatement, describe, statement_url
from verifier.identityclaim import IdentityClaim, identity_payload, verify_identity_entry
from verifier.orderfacts import summarize as summarize_order
from verifier.timetext import FIRST_MOMENT, LAST_MOMENT, representable, utc_text

UINT64_MAX = 2**64 - 1
#: Past every calendar date: the first second of year 10000, and numbers ``datetime`` answers
#: with each of its three errors (ValueError, OSError, OverflowError).
HOSTILE = [LAST_MOMENT + 1, 2**40, 2**62, UINT64_MAX]
PATTERNS = ["%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M UTC"]


@given(at=st.integers(), pattern=st.sampled_from(PATTERNS))
@example(at=LAST_MOMENT, pattern=PATTERNS[0])
@example(at=LAST_MOMENT + 1, pattern=PATTERNS[0])
@example(at=FIRST_MOMENT, pattern=PATTERNS[0])
@example(at=FIRST_MOMENT - 1, pattern=PATTERNS[0])
@example(at=UINT64_MAX, pattern=PATTERNS[0])
@example(at=-(2**63), pattern=PATTERNS[0])
@example(at=10**30, pattern=PATTERNS[1])
def test_any_integer_is_a_date_or_its_own_number_never_an_error(at: int, pattern: str) -> None:
    text = utc_text(at, pattern)
    if representable(at):
        # A calendar date: exactly what ``datetime`` writes.
        assert text == datetime.fromtimestamp(at, UTC).strftime(pattern)
    else:
        assert text == f"{at} (Unix seconds)"


@given(at=st.integers(0, LAST_MOMENT))
def test_every_date_a_document_can_name_reads_as_before(at: int) -> None:
    assert utc_text(at) == datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def test_the_edges() -> None:
    assert utc_text(LAST_MOMENT) == "9999-12-31 23:59:59 UTC"
    assert utc_text(LAST_MOMENT + 1) == "253402300800 (Unix seconds)"
    assert utc_text(0, "%Y-%m-%dT%H:%M:%SZ") == "1970-01-01T00:00:00Z"
    assert utc_text(UINT64_MAX, "%Y-%m-%d") == "18446744073709551615 (Unix seconds)"
    for at in HOSTILE:
        with pytest.raises((ValueError, OverflowError, OSError)):
            datetime.fromtimestamp(at, UTC)  # what each place did


@pytest.mark.parametrize("at", HOSTILE)
def test_a_compliance_summary_of_any_period_is_words(at: int) -> None:
    """The report's summary (the registry and the verifier compute it alike): the offline
    check refuses such a period first (tests/readmodels/test_compliance_dates.py), but the
    words themselves never raise."""
    summary = summarize_report(platform="cardhub", start=0, end=at, signals=[])
    assert f"to {at} (Unix seconds)" in summary["en"][0]
    assert f"至 {at} (Unix seconds) 期间" in summary["zh"][0]


@pytest.mark.parametrize("at", HOSTILE)
def test_an_order_delivered_past_9999_is_summarized_with_its_number(at: int) -> None:
    """A DELIVERY payload (a uint64 ``delivered_at``) parsed as the verifier parses it: the
    order's summary names the number (the registry, computing the same words, agrees)."""
    from tests.verifier.test_orderfacts import PAYLOAD

    document = PAYLOAD.document()
    document["delivery"] = {**document["delivery"], "delivered_at": at}
    payload = type(PAYLOAD).from_document(document, canonical=False)
    summary = summarize_order(
        order_id=7, state="delivered", payload=payload, delivery_leaf=5, tree_size=9, facts=[]
    )
    assert f"at {at} (Unix seconds)" in summary["en"][0]
    assert f"于 {at} (Unix seconds)" in summary["zh"][0]


@pytest.mark.parametrize("at", HOSTILE)
def test_a_creator_identity_checked_past_9999_is_described_with_its_number(at: int) -> None:
    """A CREATOR_IDENTITY entry's payload whose ``checked_at`` is past 9999, through the
    verifier's own entry check: the bundle's creator line and ``describe`` (the CLI's
    ``tracemark creator identity`` line) name the number."""
    statement = CreatorStatement.signed(
        private_key=bytes(Account.create().key),
        domain="studio.example",
        name="Studio Name",
        issued_at=1_800_000_000,
        eip712_domain=DEV_DOMAIN,
    )
    url = statement_url("studio.example")
    claim = IdentityClaim(statement.creator, "Studio Name", "studio.example", VERIFIED, 7, url)
    payload = identity_payload(
        dataclasses.replace(claim, checked_at=at),
        statement,
        registry="0x" + "11" * 20,
        eip712_domain=DEV_DOMAIN,
    )
    proved = verify_identity_entry(
        payload.document(),
        creator=address_bytes(statement.creator),
        eip712_domain=DEV_DOMAIN,
        registry="0x" + "11" * 20,
    )
    assert proved.checked_at == at
    line = _creator_line(statement.creator, proved)
    assert f"(signed statement at {url}, checked by the registry, checked {at} (Unix" in line
    assert f"(checked {at} (Unix seconds))" in describe(
        proved.name, proved.domain, proved.status, proved.checked_at
    )
