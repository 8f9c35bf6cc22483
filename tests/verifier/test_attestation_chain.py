"""A real-name attestation's proof against a real chain (anvil, issue 18 item 4): before its
head is anchored the proof holds but the chain says not yet; once anchored it verifies at the
trust root's depth, in the library and through ``tracemark verify --rpc``; a proof whose head
root was changed is refused. Registry on SQLite; both databases in
tests/registry/test_attestations.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED
from readmodels.attestationproofs import build_attestation_proof
from registry.attestations import Level
from tests.platformkeys import signed_attest
from tests.trust import policy_of
from tests.verifier.conftest import World
from tests.verifier.test_verify_cli import Verify
from verifier.attestationproof import AttestationProof, check_attestation_proof_under
from verifier.errors import BundleInvalid

pytestmark = pytest.mark.slow


def test_an_attestation_verifies_against_the_chain_once_anchored(
    world: World, tmp_path: Path
) -> None:
    registry = world.registry
    done = signed_attest(registry, platform="cardhub", reference="seller-1", level=Level.ID_CARD)
    trust = policy_of(registry)

    early = check_attestation_proof_under(
        build_attestation_proof(registry, done.id), trust, world.chain
    )
    assert early.status == "not-anchored" and early.level is Level.ID_CARD

    world.anchor()
    proof = build_attestation_proof(registry, done.id)
    assert proof.anchor is not None  # the anchored head is the one proved under now
    proved = check_attestation_proof_under(proof, trust, world.chain)
    assert proved.status == "verified"
    assert proved.chain is not None and proved.chain.final and proved.chain.block_number

    verify = Verify(tmp_path)
    verify.pin(registry)
    rpc = world.devchain.rpc_url
    path = verify.write(proof.to_json(), "attestation.json")
    answer = json.loads(verify(path, "--rpc", rpc, "--json", expect=0).stdout)
    assert (answer["status"], answer["level"]) == ("verified", "id-card")
    assert verify(path, expect=EXIT_NOT_ANCHORED).stdout.startswith("UNCHECKED: platform cardhub")

    # A head whose root was changed: its signature no longer holds, whatever the chain says.
    doctored = proof.to_json()
    root = doctored["tree_head"]["root"]
    doctored["tree_head"]["root"] = root[:-1] + ("0" if root[-1] != "0" else "1")
    bad = verify.write(doctored, "doctored.json")
    verify(bad, "--rpc", rpc, expect=EXIT_BUNDLE_INVALID)
    with pytest.raises(BundleInvalid) as caught:
        check_attestation_proof_under(AttestationProof.model_validate(doctored), trust)
    assert caught.value.step == "inclusion"  # the leaf is checked against the root first


def test_a_head_signed_by_no_one_the_root_names_is_refused(world: World) -> None:
    """The inclusion holds but the head's signature does not (a byte of it changed): refused
    at ``tree-head``, with or without a chain."""
    registry = world.registry
    done = signed_attest(registry, platform="cardhub", reference="seller-2", level=Level.PHONE)
    world.anchor()
    document = build_attestation_proof(registry, done.id).to_json()
    signature = document["tree_head"]["signature"]
    document["tree_head"]["signature"] = (
        signature[:10] + ("0" if signature[10] != "0" else "1") + signature[11:]
    )
    for chain in (None, world.chain):
        with pytest.raises(BundleInvalid) as caught:
            check_attestation_proof_under(
                AttestationProof.model_validate(document), policy_of(registry), chain
            )
        assert caught.value.step == "tree-head"
