"""Trust roots for tests: the one a registry serves about itself, as a verifier pins it."""

from __future__ import annotations

from api.trustroot import TrustRootConfig, registry_trust_root
from registry.service import Registry
from verifier.trust import TrustPolicy, TrustRoot


def trust_root_of(
    registry: Registry, *, confirmations: int | None = 1, finalized: bool = False
) -> TrustRoot:
    """The registry's own trust root; one confirmation by default (a mined anchor is final),
    as most tests check fresh anchors; finality tests ask for more."""
    config = TrustRootConfig(
        name="test registry",
        confirmations=None if finalized else confirmations,
        finalized=finalized,
    )
    return registry_trust_root(registry, config)


def policy_of(registry: Registry, **kwargs: object) -> TrustPolicy:
    return TrustPolicy.of(trust_root_of(registry, **kwargs))  # type: ignore[arg-type]
