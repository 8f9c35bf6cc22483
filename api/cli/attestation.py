"""``tracemark verify PROOF.json`` for a real-name attestation's proof
(``tracemark-attestation-proof/v1`` and ``/v2``, issue 18 item 4): the check is
``verifier.attestationproof``; exit codes are ``tracemark verify``'s. The result says who
enrolled the attestation's key (the platform, or the operator) in words and in ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from api.cli.app import err, out


def verify_attestation(
    data: bytes, rpc: str | None, trust: list[Path] | None, as_json: bool
) -> None:
    """Exit 0 when the attestation verifies against the chain at the trust root's depth, 11
    when it does not verify, 12 when it verifies but no chain was asked or the head is not
    anchored yet, 15 when no pinned trust root names its registry, 16 not final yet."""
    from api.cli.verify import (
        EXIT_BUNDLE_INVALID,
        EXIT_NOT_ANCHORED,
        EXIT_NOT_FINAL,
        EXIT_UNTRUSTED,
    )
    from registry import errors
    from verifier.attestationproof import AttestationProof, check_attestation_proof_under
    from verifier.errors import UntrustedRegistry, VerificationError
    from verifier.trust import TrustPolicy
    from verifier.truststore import TrustStore, read_trust_root

    policy = TrustPolicy([read_trust_root(p) for p in trust]) if trust else TrustStore().policy()
    proof = AttestationProof.parse(data)
    chain = None
    try:
        if rpc:
            if not rpc.startswith(("http://", "https://")):
                raise errors.InvalidInput("--rpc must be an http:// or https:// URL")
            from anchoring.reader import ChainReader

            # The contract comes from the trust root, never from the proof.
            root = policy.root_for(proof.tree_head.domain)
            chain = ChainReader(rpc, root.contract_address)
        proved = check_attestation_proof_under(proof, policy, chain)
    except UntrustedRegistry as exc:
        err.print(f"UNTRUSTED: {exc.detail}", markup=False)
        raise typer.Exit(EXIT_UNTRUSTED) from None
    except VerificationError as exc:
        if as_json:
            out.print_json(
                json.dumps({"status": "failed", "failure": exc.detail, "failed_step": exc.step})
            )
        err.print(f"FAIL: {exc.detail}", markup=False)
        raise typer.Exit(EXIT_BUNDLE_INVALID) from None
    if as_json:
        out.print_json(json.dumps(proved.as_dict()))
    else:
        line = proved.summary()
        if proved.status == "unchecked":
            line += " (pass --rpc URL to check its head on the chain)"
        out.print(
            f"OK: {line}" if proved.status == "verified" else f"{proved.status.upper()}: {line}",
            markup=False,
        )
    if proved.status == "not-final":
        raise typer.Exit(EXIT_NOT_FINAL)
    if proved.status != "verified":
        raise typer.Exit(EXIT_NOT_ANCHORED)


__all__ = ["verify_attestation"]
