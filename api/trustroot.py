"""The trust root this registry serves about itself (``/.well-known/tracemark-trust.json``).

Built from the registry's own configuration and its key periods (``registry.registrykeys``),
never from anything a client sent. A verifier pins it once, after comparing its fingerprint
out of band (``tracemark trust add URL``); the registry serving it is a convenience, not a
reason to trust it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from registry.service import Registry
from verifier.trust import FORMAT, TrustRoot

NO_WITNESS_POLICY: Final = "quorum none\n"
"""The policy a registry without witnesses names (C2SP tlog-policy): no cosignature asked."""


@dataclass(frozen=True)
class TrustRootConfig:
    """What the operator says of the registry: its label, where it answers, and when an
    anchor counts (the anchoring worker's own finality rule)."""

    name: str = "tracemark registry"
    url: str = "http://127.0.0.1:8000"
    confirmations: int | None = 3
    finalized: bool = False


def registry_trust_root(registry: Registry, config: TrustRootConfig) -> TrustRoot:
    """The trust root naming this registry's chain, contract, every signing key with the
    head sizes it signs, the finality rule, and (issue 15) its log's checkpoint origin, the
    vkeys of the note keys that sign its checkpoints and its witness policy (``quorum none``
    when it has none: a verifier then asks no cosignature)."""
    domain = registry.domain
    keys = registry.checkpoint_signer.keys
    policy = registry.witness_policy
    return TrustRoot.model_validate(
        {
            "format": FORMAT,
            "name": config.name,
            "registry_url": config.url,
            "chain_id": domain.chain_id,
            "contract": domain.verifying_contract,
            "signing_keys": [period.as_document() for period in registry.key_periods()],
            "finality": {"finalized": True}
            if config.finalized
            else {"confirmations": config.confirmations},
            "transparency": {
                "log_origin": keys.origin,
                "log_vkeys": list(keys.vkeys()),
                "witness_policy": NO_WITNESS_POLICY if policy is None else policy.to_text(),
            },
        }
    )


__all__ = ["NO_WITNESS_POLICY", "TrustRootConfig", "registry_trust_root"]
