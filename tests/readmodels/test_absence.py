"""Building absence proofs and the state of bundles (issue 14) on SQLite and PostgreSQL, with
no chain: which head, what a registered or queued good gets, and a log whose heads carry no
state commitment (as before issue 14), whose bundles say completeness is not proven."""

from __future__ import annotations

import os
import secrets

import pytest
from eth_account import Account
from sqlalchemy import Engine

from readmodels.bundles import GoodRegistered, build_absence, build_bundle
from registry.eip712 import DEV_DOMAIN
from registry.errors import NotFound
from registry.fingerprints import GoodType
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.trust import policy_of
from verifier.absence import Absence
from verifier.bundle import FORMAT_V4, Bundle
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.offline import check_bundle
from verifier.statecheck import check_absence


def _registry(engine: Engine, clock: Clock, *, state_map: bool = True) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
        state_map=state_map,
    )


def test_an_absence_is_proved_under_the_latest_head_until_one_is_anchored(
    engine: Engine, clock: Clock, make_creator: CreatorFactory
) -> None:
    registry = _registry(engine, clock)
    never = os.urandom(32)
    with pytest.raises(NotFound, match="no signed head yet"):
        build_absence(registry, GoodType.FILE, never)
    creator = make_creator()
    registered = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=registered))
    registry.sequence_all()  # leaf 0, and the head's state commitment at leaf 1
    absence = Absence.parse(build_absence(registry, GoodType.FILE, never).to_json())
    assert (absence.tree_head.tree_size, absence.anchor) == (2, None)
    assert absence.state.commitment.leaf_index == 1 and absence.state.value is None
    report = check_absence(absence, policy_of(registry), None)
    assert report.status == "chain-not-checked"
    assert report.summary().startswith(
        f"file 0x{never.hex()} is not in the log as of head 2 (state map committed at leaf 1"
    )
    # A registered good, or one whose registration is only queued, has no absence proof.
    with pytest.raises(GoodRegistered, match=f"/v1/goods/file/0x{registered.hex()}/proof"):
        build_absence(registry, GoodType.FILE, registered)
    queued = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=queued))
    with pytest.raises(GoodRegistered):
        build_absence(registry, GoodType.FILE, queued)
    assert GoodRegistered.http_status == 409


def test_a_log_without_state_commitments_proves_no_completeness_and_no_absence(
    engine: Engine, clock: Clock, make_creator: CreatorFactory
) -> None:
    """Heads signed without the state map (``state_map=False``, the benchmarks' peer, as every
    head before issue 14): the bundle is v3 with ``state`` null and says completeness is not
    proven; no absence can be proved."""
    registry = _registry(engine, clock, state_map=False)
    fingerprint = os.urandom(32)
    registry.register(registration(make_creator(), clock(), fingerprint=fingerprint))
    registry.sequence_all()
    bundle = Bundle.parse(build_bundle(registry, GoodType.FILE, fingerprint).to_json())
    assert (bundle.format, bundle.state, bundle.tree_head.tree_size) == (FORMAT_V4, None, 1)
    report = check_bundle(bundle, policy_of(registry), None)
    assert report.state is None and report.completeness == COMPLETENESS_NOT_PROVEN
    assert report.as_dict()["complete"] is False
    assert report.summary().endswith(COMPLETENESS_NOT_PROVEN)
    with pytest.raises(NotFound, match="no signed head commits to the state map yet"):
        build_absence(registry, GoodType.FILE, os.urandom(32))
