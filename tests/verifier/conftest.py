"""Fixtures of the verifier tests: a real anvil with the contract (from the anchoring tests),
and ``world``: a registry holding single and batch registrations and revocations, anchored."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.worker import AnchorPolicy, AnchorWorker
from registry.codesfile import PreparedBatch, codes_source, prepare_code_batch
from registry.creator import (
    CreatorKeys,
    sign_batch_registration,
    sign_batch_revocation,
    sign_revocation,
)
from registry.fingerprints import GoodType, Use
from registry.royalty import RoyaltyPolicy
from registry.service import Registry

# The anchoring tests' real anvil, its account #0, the contract, and a registry on SQLite.
from tests.anchoring.conftest import chain, devchain, operator, registry  # noqa: F401
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import NO_ROYALTY, registration

CONFIRMATIONS = 2
POLICY = AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=CONFIRMATIONS)
CODES = ["QRST-WXYZ-GHJK", "KLMN-PQRS-TUVW", "GHJK-LMNP-QRST", "WXYZ-GHJK-LMNP", "MNPQ-RSTU-VWXY"]


@dataclass
class World:
    """One registry on one chain; ``anchor()`` anchors its latest head until final."""

    registry: Registry
    chain: Chain
    devchain: DevChain
    creator: CreatorKeys
    clock: Clock
    anchor: Callable[[], None]

    def register_file(
        self,
        policy: RoyaltyPolicy = NO_ROYALTY,
        metadata: dict[str, object] | None = None,
    ) -> bytes:
        fingerprint = os.urandom(32)
        request = registration(
            self.creator,
            self.clock(),
            fingerprint=fingerprint,
            domain=self.registry.domain,
            policy=policy,
            metadata=metadata,
        )
        self.registry.register(request)
        self.registry.sequence_all()
        return fingerprint

    def revoke_file(self, fingerprint: bytes, reason: str = "leaked") -> None:
        self.registry.revoke(
            sign_revocation(
                self.creator,
                self.registry.domain,
                good_type=GoodType.FILE,
                fingerprint=fingerprint,
                reason=reason,
                now=self.clock(),
            )
        )
        self.registry.sequence_all()

    def register_codes(self, codes: list[str]) -> list[bytes]:
        batch = self._batch(codes)
        request = sign_batch_registration(
            self.creator,
            self.registry.domain,
            batch,
            good_type=GoodType.CODE,
            product="card",
            use=Use.SINGLE,
            royalty_policy=NO_ROYALTY,
            metadata={"lot": 7},
            now=self.clock(),
            new_product=True,
        )
        self.registry.register_batch(request, batch.fingerprints())
        return list(batch.fingerprints())

    def revoke_codes(self, codes: list[str], reason: str = "leaked lot") -> None:
        batch = self._batch(codes)
        request = sign_batch_revocation(
            self.creator,
            self.registry.domain,
            batch,
            good_type=GoodType.CODE,
            reason=reason,
            now=self.clock(),
        )
        self.registry.revoke_batch(request, batch.fingerprints())

    def _batch(self, codes: list[str]) -> PreparedBatch:
        return prepare_code_batch(codes_source("\n".join(codes)), self.creator.require_code_key())


@pytest.fixture
def world(
    registry: Registry,  # noqa: F811
    chain: Chain,  # noqa: F811 - the fixture imported above
    devchain: DevChain,  # noqa: F811
    operator: LocalAccount,  # noqa: F811
    clock: Clock,
    make_creator: CreatorFactory,
) -> World:
    worker = AnchorWorker(registry, chain, operator, POLICY)

    def anchor() -> None:
        worker.run_until_idle()
        devchain.rpc("anvil_mine", hex(CONFIRMATIONS))
        worker.run_until_idle()

    return World(registry, chain, devchain, make_creator(), clock, anchor)


@dataclass
class Story:
    """The world's goods: a file registered then revoked among others, and a batch of codes of
    which two were revoked in a batch; everything anchored. Every signed head ends with its
    state commitment (issue 14), so each sequencing adds one more leaf than it has entries."""

    world: World
    #: Registered at leaf 6 (royalty policy and metadata), revoked at leaf 12.
    revoked_file: bytes
    #: Registered at leaf 8, never revoked.
    plain_file: bytes
    #: The batch's fingerprints in upload order (leaves 14..18); codes 1 and 2 revoked (20, 21).
    codes: list[bytes]


POLICY_DOCUMENT = {"recipients": [{"address": "0x" + "11" * 20, "bps": 500, "label": "studio"}]}


@pytest.fixture
def story(world: World) -> Story:
    for _ in range(3):
        world.register_file()
    revoked = world.register_file(
        policy=RoyaltyPolicy.parse(POLICY_DOCUMENT), metadata={"title": "a work"}
    )
    plain = world.register_file()
    world.anchor()  # head 10
    world.register_file()
    world.revoke_file(revoked, reason="pirated copy")
    codes = world.register_codes(CODES)
    world.revoke_codes(CODES[1:3])
    world.anchor()  # head 23
    return Story(world, revoked, plain, codes)
