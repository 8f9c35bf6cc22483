"""Trust roots (``tracemark-trust/v1``) and the pinned store: parsing, the key chain, pinning."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.eip712 import Domain
from registry.errors import Conflict, NotFound
from registry.signatures import sign
from verifier.errors import BundleInvalid, UntrustedRegistry
from verifier.trust import (
    MAX_TRUST_ROOT_BYTES,
    MalformedTrustRoot,
    TrustPolicy,
    TrustRoot,
    extends,
)
from verifier.truststore import TrustStore

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
OTHER_CONTRACT = "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
DOMAIN = Domain(chain_id=31337, verifying_contract=CONTRACT)


def handover(old: LocalAccount, new: LocalAccount, size: int, domain: Domain = DOMAIN) -> str:
    message = {"newKey": new.address, "treeSize": size}
    return "0x" + sign("KeyHandover", message, domain, old.key).hex()


def document(
    keys: list[LocalAccount], sizes: list[int], *, contract: str = CONTRACT, **extra: Any
) -> dict[str, Any]:
    """A trust root whose key ``i`` signs from ``sizes[i]`` (sizes[0] == 1)."""
    signing = []
    for index, key in enumerate(keys):
        signing.append(
            {
                "address": key.address,
                "from_size": sizes[index],
                "until_size": sizes[index + 1] if index + 1 < len(keys) else None,
                "handover_signature": None
                if index == 0
                else handover(keys[index - 1], key, sizes[index], Domain(31337, contract)),
            }
        )
    return {
        "format": "tracemark-trust/v1",
        "name": "studio registry",
        "registry_url": "https://registry.example",
        "chain_id": 31337,
        "contract": contract,
        "signing_keys": signing,
        "finality": {"confirmations": 3},
        **extra,
    }


@pytest.fixture
def keys() -> list[LocalAccount]:
    return [Account.create() for _ in range(3)]


def test_a_root_round_trips_and_its_fingerprint_is_its_canonical_json(
    keys: list[LocalAccount],
) -> None:
    root = TrustRoot.parse(json.dumps(document(keys, [1, 10, 25])))
    again = TrustRoot.parse(root.to_json())
    assert again == root and again.fingerprint() == root.fingerprint()
    assert root.fingerprint().startswith("sha256:") and len(root.fingerprint()) == 7 + 64
    # Key order in the file does not change the fingerprint (RFC 8785); a value does.
    shuffled = json.dumps(dict(reversed(list(document(keys, [1, 10, 25]).items()))))
    assert TrustRoot.parse(shuffled).fingerprint() == root.fingerprint()
    renamed = TrustRoot.parse(json.dumps(document(keys, [1, 10, 25], name="other")))
    assert renamed.fingerprint() != root.fingerprint()


def test_each_head_size_has_exactly_one_key(keys: list[LocalAccount]) -> None:
    root = TrustRoot.parse(json.dumps(document(keys, [1, 10, 25])))
    addresses = [bytes.fromhex(k.address[2:]) for k in keys]
    assert [root.key_for(size) for size in (1, 9, 10, 24, 25, 10**9)] == [
        addresses[0],
        addresses[0],
        addresses[1],
        addresses[1],
        addresses[2],
        addresses[2],
    ]
    # An entry at leaf 9 is first held by head 10: attested by the second key.
    assert root.key_for_entry(8) == addresses[0] and root.key_for_entry(9) == addresses[1]
    root.check_head_signer(10, addresses[1])
    with pytest.raises(BundleInvalid, match="names"):
        root.check_head_signer(10, addresses[0])


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d.update(format="tracemark-trust/v2"), "not a trust root"),
        (lambda d: d.update(extra=1), "Extra inputs"),
        (lambda d: d.update(finality={}), "exactly one rule"),
        (lambda d: d.update(finality={"confirmations": 3, "finalized": True}), "exactly one"),
        (lambda d: d.update(finality={"confirmations": 0}), "greater than or equal to 1"),
        (lambda d: d.update(registry_url="ftp://x.example"), "http"),
        (lambda d: d.update(name="bad\u202ename"), "printable"),
        (lambda d: d["signing_keys"][0].update(from_size=2), "from size 1"),
        (lambda d: d["signing_keys"][0].update(until_size=11), "ends at 11"),
        (lambda d: d["signing_keys"][2].update(until_size=99), "current one"),
        (lambda d: d["signing_keys"][1].update(handover_signature=None), "no hand-over"),
        (lambda d: d["signing_keys"][1].update(address=d["signing_keys"][2]["address"]), "twice"),
        (lambda d: d["signing_keys"].pop(1), "ends at 10"),
    ],
)
def test_malformed_roots_are_refused(keys: list[LocalAccount], mutate: Any, reason: str) -> None:
    candidate = document(keys, [1, 10, 25])
    mutate(candidate)
    with pytest.raises(MalformedTrustRoot, match=reason):
        TrustRoot.parse(json.dumps(candidate))


def test_a_hand_over_must_be_signed_by_the_key_it_replaces(keys: list[LocalAccount]) -> None:
    candidate = document(keys, [1, 10, 25])
    stranger = Account.create()
    candidate["signing_keys"][1]["handover_signature"] = handover(stranger, keys[1], 10)
    with pytest.raises(MalformedTrustRoot, match="not signed by"):
        TrustRoot.parse(json.dumps(candidate))
    # Signed for another size, or under another contract: refused too.
    candidate["signing_keys"][1]["handover_signature"] = handover(keys[0], keys[1], 11)
    with pytest.raises(MalformedTrustRoot, match="not signed by"):
        TrustRoot.parse(json.dumps(candidate))
    other = Domain(31337, OTHER_CONTRACT)
    candidate["signing_keys"][1]["handover_signature"] = handover(keys[0], keys[1], 10, other)
    with pytest.raises(MalformedTrustRoot, match="not signed by"):
        TrustRoot.parse(json.dumps(candidate))


def test_duplicate_keys_and_oversized_documents_are_refused(keys: list[LocalAccount]) -> None:
    text = json.dumps(document(keys[:1], [1]))
    with pytest.raises(MalformedTrustRoot, match="duplicate key"):
        TrustRoot.parse(text[:-1] + ', "name": "twice"}')
    with pytest.raises(MalformedTrustRoot, match="at most"):
        TrustRoot.parse(b" " * (MAX_TRUST_ROOT_BYTES + 1))
    with pytest.raises(MalformedTrustRoot, match="JSON"):
        TrustRoot.parse(b"[" * 60_000)


def test_extends_accepts_hand_overs_only(keys: list[LocalAccount]) -> None:
    first = TrustRoot.parse(json.dumps(document(keys[:1], [1])))
    rotated = TrustRoot.parse(json.dumps(document(keys[:2], [1, 10])))
    twice = TrustRoot.parse(json.dumps(document(keys, [1, 10, 25])))
    assert extends(first, rotated) and extends(rotated, twice) and extends(first, twice)
    assert not extends(rotated, first)
    other_key = TrustRoot.parse(json.dumps(document([Account.create()], [1])))
    assert not extends(first, other_key)
    elsewhere = TrustRoot.parse(json.dumps(document(keys[:1], [1], contract=OTHER_CONTRACT)))
    assert not extends(first, elsewhere)
    moved = TrustRoot.parse(json.dumps(document(keys, [1, 12, 25])))
    assert not extends(rotated, moved)  # rotated's first key ended at 10, not 12


def test_a_policy_names_the_pinned_registry_or_refuses(keys: list[LocalAccount]) -> None:
    root = TrustRoot.parse(json.dumps(document(keys[:1], [1])))
    assert TrustPolicy.of(root).root_for(DOMAIN) is root
    with pytest.raises(UntrustedRegistry) as caught:
        TrustPolicy.of(root).root_for(Domain(31337, OTHER_CONTRACT))
    assert OTHER_CONTRACT in caught.value.detail and CONTRACT in caught.value.detail
    assert keys[0].address in caught.value.detail
    with pytest.raises(UntrustedRegistry, match="no trust root is pinned"):
        TrustPolicy(()).root_for(DOMAIN)
    with pytest.raises(UntrustedRegistry):
        TrustPolicy.of(root).root_for(Domain(1, CONTRACT))  # another chain


def test_the_store_pins_updates_by_hand_over_and_refuses_silent_replacement(
    tmp_path: Path, keys: list[LocalAccount]
) -> None:
    store = TrustStore(tmp_path / "trust")
    assert store.roots() == [] and store.policy().roots == ()
    first = TrustRoot.parse(json.dumps(document(keys[:1], [1])))
    assert store.pin(first).status == "added"
    assert store.pin(first).status == "unchanged"
    rotated = TrustRoot.parse(json.dumps(document(keys[:2], [1, 10])))
    pinned = store.pin(rotated)
    assert pinned.status == "updated" and pinned.replaced == first.fingerprint()
    assert store.roots() == [rotated]
    impostor = TrustRoot.parse(json.dumps(document([Account.create()], [1])))
    with pytest.raises(Conflict, match="does not extend"):
        store.pin(impostor)
    assert store.roots() == [rotated]
    assert store.pin(impostor, replace=True).status == "replaced"
    assert store.roots() == [impostor]
    elsewhere = TrustRoot.parse(json.dumps(document(keys[:1], [1], contract=OTHER_CONTRACT)))
    store.pin(elsewhere)
    assert len(store.roots()) == 2
    assert store.remove(OTHER_CONTRACT.lower()) == elsewhere
    assert store.remove(impostor.fingerprint()[7:19]) == impostor
    with pytest.raises(NotFound):
        store.remove("deadbeefdeadbeef")
    assert store.roots() == []
