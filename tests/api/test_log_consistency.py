"""THREATS 3 over HTTP: the auditor endpoint's consistency proof between any two anchored
sizes verifies against the roots the contract holds (a real anvil), on SQLite and
PostgreSQL, and every mutation of a served proof is rejected."""

from __future__ import annotations

import itertools

import pytest
from eth_account.signers.local import LocalAccount
from fastapi.testclient import TestClient

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.worker import AnchorPolicy, AnchorWorker
from api.app import create_app
from registry import merkle
from registry.errors import InvalidProof
from registry.service import Registry

# The anchoring tests' real anvil, its account #0 and the contract (the registry fixture is
# the suite's own, on both databases).
from tests.anchoring.conftest import chain, devchain, operator  # noqa: F401
from tests.api.conftest import KeyFactory, bearer
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

CONFIRMATIONS = 2
#: Log sizes anchored one after another: powers of two, odd sizes, the smallest step. Each
#: head ends with its state commitment (issue 14), so a head is at least two leaves past the
#: one before it (one entry and the commitment): a one-leaf step is no longer a head.
ANCHORED = [2, 4, 7, 9, 13]


def _mutations(proof: list[bytes]) -> dict[str, list[bytes]]:
    """transparency-dev style probes of one consistency proof, named after what they do."""
    probes = {
        "truncated": proof[:-1],
        "extended": [*proof, bytes(32)],
        "last-hash-duplicated": [*proof, proof[-1]],
        "short-hash": [proof[0][:31], *proof[1:]],
    }
    for position in range(len(proof)):
        flipped = bytearray(proof[position])
        flipped[position % 32] ^= 0x01
        probes[f"modified-proof-bit-{position}"] = [
            *proof[:position],
            bytes(flipped),
            *proof[position + 1 :],
        ]
    if len(proof) > 1:
        probes["reordered"] = [proof[-1], *proof[1:-1], proof[0]]
    return probes


def test_threat_3_consistency_between_two_anchored_sizes(
    registry: Registry,
    chain: Chain,  # noqa: F811 - the fixture imported above
    devchain: DevChain,  # noqa: F811
    operator: LocalAccount,  # noqa: F811
    make_creator: CreatorFactory,
    make_key: KeyFactory,
    clock: Clock,
) -> None:
    worker = AnchorWorker(
        registry,
        chain,
        operator,
        AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=CONFIRMATIONS),
    )
    creator = make_creator()
    for size in ANCHORED:
        head = registry.latest_tree_head()
        for _ in range(size - (head.tree_size if head else 0) - 1):  # the commitment's leaf
            registry.register(registration(creator, clock()))
        head = registry.sequence_all()
        assert head is not None and head.tree_size == size
        worker.run_until_idle()
        devchain.rpc("anvil_mine", hex(CONFIRMATIONS))
        worker.run_until_idle()
        assert chain.last_anchored()[0] == size
    # The roots come from the contract alone, at the confirmation depth (THREATS 8).
    roots = {size: chain.confirmed_root(size, CONFIRMATIONS) for size in ANCHORED}
    assert all(root is not None and len(root) == 32 for root in roots.values()), roots

    # An auditor (its own, larger budget: auditors must keep up with the log, THREATS 38).
    client = TestClient(create_app(registry), headers=bearer(make_key("auditor", "audit")))
    checked = 0
    for old, new in itertools.combinations(ANCHORED, 2):
        answer = client.get(
            "/v1/log/proof/consistency", params={"from_size": old, "tree_size": new}
        )
        assert answer.status_code == 200, answer.text
        assert (answer.json()["from_size"], answer.json()["tree_size"]) == (old, new)
        proof = [bytes.fromhex(h[2:]) for h in answer.json()["proof"]]
        old_root, new_root = roots[old], roots[new]
        assert old_root is not None and new_root is not None
        merkle.verify_consistency(old, new, proof, old_root, new_root)
        checked += 1
        # The proof binds both anchored roots and both sizes.
        with pytest.raises(InvalidProof):
            merkle.verify_consistency(old, new, proof, new_root, new_root)
        other = next(size for size in ANCHORED if size not in (old, new))
        with pytest.raises(InvalidProof):
            merkle.verify_consistency(old, new, proof, old_root, roots[other])  # type: ignore[arg-type]
        if proof:
            for name, probe in _mutations(proof).items():
                with pytest.raises(InvalidProof):
                    merkle.verify_consistency(old, new, probe, old_root, new_root)
                    pytest.fail(f"probe {name} of {old} -> {new} verified")
    assert checked == len(ANCHORED) * (len(ANCHORED) - 1) // 2
    # Sizes out of order or beyond the log: a problem, never a proof (THREATS 9).
    last, before_last = ANCHORED[-1], ANCHORED[-2]
    for params in (
        {"from_size": last, "tree_size": before_last},
        {"from_size": before_last, "tree_size": last + 1},
    ):
        answer = client.get("/v1/log/proof/consistency", params=params)
        assert answer.status_code == 400 and "proof" not in answer.json(), answer.text
