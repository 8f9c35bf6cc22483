"""Golden storage format (THREATS 10): a fixed scenario must give byte-identical leaves and roots.

The leaves, payload hashes and roots below are a format contract (DESIGN.md "Formats, version
1"): proofs already handed out depend on them. If this test fails, the change broke format v1;
bump the version instead. Regenerate only for a new format: TRACEMARK_UPDATE_GOLDEN=1.

``log_v1_before_state_map.json`` is the same scenario's log as it was before issue 14 added a
STATE_COMMITMENT leaf at the end of every head; it is never regenerated: every other leaf of
today's log must still be byte for byte one of its leaves, in the same order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from sqlalchemy import Engine

from registry import log
from registry.creator import CreatorKeys
from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType, Use
from registry.leaf import EntryKind
from registry.requests import RegistrationRequest, RevocationRequest, metadata_hash
from registry.royalty import RoyaltyPolicy, policy_hash
from registry.service import Registry
from registry.signatures import sign
from registry.signed import SignedMessage
from tests.conftest import Clock

GOLDEN = Path(__file__).parent.parent / "golden" / "log_v1.json"
BEFORE_STATE_MAP = GOLDEN.with_name("log_v1_before_state_map.json")
POLICY = RoyaltyPolicy.parse(
    {"recipients": [{"address": "0x" + "ab" * 20, "bps": 750, "label": "studio"}]}
)


def _creator(seed: int) -> CreatorKeys:
    return CreatorKeys(Account.from_key(seed.to_bytes(32, "big")), bytes([seed]) * 32)


def _register(creator: CreatorKeys, fingerprint: bytes, nonce: int) -> RegistrationRequest:
    message = {
        "goodType": int(GoodType.FILE),
        "fingerprint": fingerprint,
        "product": "art",
        "use": int(Use.TRANSFERABLE),
        "royaltyPolicy": policy_hash(POLICY),
        "metadata": metadata_hash({"title": f"work {nonce}"}),
        "nonce": nonce,
        "deadline": 1_900_000_000,
    }
    signature = sign("Registration", message, DEV_DOMAIN, bytes(creator.account.key))
    return RegistrationRequest(
        SignedMessage("Registration", message, signature, creator.address),
        POLICY,
        {"title": f"work {nonce}"},
        new_product=True,
    )


def test_golden_log(engine: Engine) -> None:
    clock = Clock(1_800_000_000)
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.from_key(b"\x07" * 32),
        master_key=bytes(32),
        clock=clock,
    )
    alice, bob = _creator(1), _creator(2)
    for n in range(3):
        registry.register(_register(alice, bytes([n + 1]) * 32, nonce=n + 1))
    registry.register(_register(bob, bytes([1]) * 32, nonce=99))  # a CONFLICT
    clock.advance(10)
    registry.sequence_all()
    revocation = {
        "goodType": int(GoodType.FILE),
        "fingerprint": bytes([2]) * 32,
        "reason": "leaked",
        "nonce": 7,
        "deadline": 1_900_000_000,
    }
    signature = sign("Revocation", revocation, DEV_DOMAIN, bytes(alice.account.key))
    registry.revoke(
        RevocationRequest(SignedMessage("Revocation", revocation, signature, alice.address))
    )
    clock.advance(10)
    head = registry.sequence_all()
    assert head is not None
    entries = [registry.entry_at(i) for i in range(head.tree_size)]
    observed = {
        "leaves": ["0x" + entry.leaf_data().hex() for entry in entries],
        # Each head ends with its state commitment (issue 14): leaves 4 and 6.
        "roots": {str(size): "0x" + registry.tree_head(size).root.hex() for size in (5, 7)},
        "tree_head_signature": "0x" + head.signature.hex(),
    }
    if os.environ.get("TRACEMARK_UPDATE_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(observed, indent=2) + "\n")
    assert observed == json.loads(GOLDEN.read_text())
    # Kinds 1-6 encode exactly as before issue 14; only the commitments are new.
    assert [entry.kind for entry in entries].count(EntryKind.STATE_COMMITMENT) == 2
    before = json.loads(BEFORE_STATE_MAP.read_text())
    kept = [
        leaf
        for leaf, entry in zip(observed["leaves"], entries, strict=True)
        if entry.kind is not EntryKind.STATE_COMMITMENT
    ]
    assert kept == before["leaves"]
    with engine.connect() as conn:
        assert "0x" + log.root_at(conn, 4).hex() == before["roots"]["4"]
