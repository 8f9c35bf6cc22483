"""An order's evidence, fuzzed end to end: any mutation of a real evidence file (structured:
a value retyped, a key dropped, duplicated or added, deep nesting, huge numbers and strings;
or bytes flipped, cut, added) is either refused with the verifier's own error and a reason
(``MalformedOrderEvidence`` by the parser, a ``VerificationError`` by the check), or verifies
with the very summary of the original; never a crash, never another summary.

The mutations are the parser fuzz's (tests/verifier/test_parser_fuzz.py), on a real registry
(SQLite) with a disputed, refunded order whose code was then redeemed on another platform.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account import Account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from readmodels.orderevidence import build_order_evidence
from registry.creator import CreatorKeys
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import TracemarkError
from registry.migrate import upgrade
from registry.service import Registry
from tests.conftest import Clock
from tests.registry.test_order_evidence import _redeemed_elsewhere
from tests.trust import policy_of
from tests.verifier.test_parser_fuzz import EXAMPLES, byte_mutated, mutated
from verifier.errors import VerificationError
from verifier.orderevidence import MalformedOrderEvidence, OrderEvidence, check_order_evidence
from verifier.trust import TrustPolicy


@dataclass(frozen=True)
class Seed:
    raw: bytes
    document: Any
    trust: TrustPolicy
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def seed(tmp_path_factory: pytest.TempPathFactory) -> Seed:
    directory = tmp_path_factory.mktemp("evidence")
    engine = create_db_engine(f"sqlite:///{directory / 'registry.db'}")
    upgrade(engine)
    clock = Clock()
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    dispute = _redeemed_elsewhere(registry, creator, clock)
    evidence = build_order_evidence(registry, dispute.order)
    trust = policy_of(registry)
    engine.dispose()
    raw = evidence.to_json().encode()
    report = check_order_evidence(OrderEvidence.parse(raw), trust, None)
    return Seed(raw, evidence.model_dump(mode="json"), trust, report.summary_document)


def _check(seed: Seed, raw: bytes) -> None:
    try:
        evidence = OrderEvidence.parse(raw)
        report = check_order_evidence(evidence, seed.trust, None)
    except (MalformedOrderEvidence, VerificationError) as refusal:
        assert isinstance(refusal, TracemarkError)
        assert refusal.detail.strip() and len(refusal.detail) < 4_000
        return
    except Exception as crash:  # the point of the test: anything else is a crash
        pytest.fail(f"crashed on {raw[:200]!r}: {type(crash).__name__}: {crash}")
    # What verifies says what the original says: a mutation cannot change the story.
    assert report.summary_document == seed.summary


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_structured_mutations_are_refused_or_say_the_same(seed: Seed, data: st.DataObject) -> None:
    _check(seed, data.draw(mutated(seed.document)))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_byte_mutations_are_refused_or_say_the_same(seed: Seed, data: st.DataObject) -> None:
    _check(seed, data.draw(byte_mutated(seed.raw)))
