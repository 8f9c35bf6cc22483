"""Hostile probes of real-name attestation proofs (issue 18 item 4, red team): a second
registry running our own contract code (the same chain and contract, or its own deployment,
or another chain) signs an attestation; our verifier, pinned to our trust root, refuses it.
Our registry is the verifier tests' (SQLite, on anvil's contract), the other a SQLite file."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from eth_account import Account

from readmodels.attestationproofs import build_attestation_proof
from registry.attestations import Level
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN, Domain
from registry.migrate import upgrade
from registry.service import Registry
from tests.conftest import Clock
from tests.platformkeys import signed_attest
from tests.trust import policy_of, trust_root_of
from verifier.attestationproof import (
    AttestationProof,
    check_attestation_proof,
    check_attestation_proof_under,
)
from verifier.errors import BundleInvalid, UntrustedRegistry

OTHER_CONTRACT = "0x" + "42" * 20


def _other(tmp_path: Path, clock: Clock, domain: Domain) -> Registry:
    engine = create_db_engine(f"sqlite:///{(tmp_path / 'other.db').as_posix()}")
    upgrade(engine)
    return Registry(
        engine,
        domain=domain,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


@pytest.mark.parametrize(
    "domain",
    [DEV_DOMAIN, Domain(DEV_DOMAIN.chain_id, OTHER_CONTRACT), Domain(1, OTHER_CONTRACT)],
    ids=["same-contract", "own-deployment", "other-chain"],
)
def test_a_second_registrys_attestation_is_refused(
    registry: Registry, clock: Clock, tmp_path: Path, domain: Domain
) -> None:
    ours = signed_attest(registry, platform="cardhub", reference="seller-1", level=Level.PHONE)
    assert check_attestation_proof(
        build_attestation_proof(registry, ours.id), trust_root_of(registry)
    )
    other = _other(tmp_path, clock, domain)
    theirs = signed_attest(other, platform="cardhub", reference="seller-1", level=Level.FACE)
    text = json.dumps(build_attestation_proof(other, theirs.id).to_json())
    proof = AttestationProof.parse(text)
    # Its own root accepts it (the proof is sound, just not ours).
    assert check_attestation_proof(proof, trust_root_of(other)).level == Level.FACE
    with pytest.raises((BundleInvalid, UntrustedRegistry)):
        check_attestation_proof_under(proof, policy_of(registry))
    with pytest.raises(BundleInvalid):
        check_attestation_proof(proof, trust_root_of(registry))
