"""The monitor against the registry's own static read API (``/tlog`` of ``tracemark serve``'s
app, on loopback): gzip-compressed bundles, the anonymous reader's rate limit waited out, and
a CONFLICT on a watched creator's good followed across two checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

from anchoring.devchain import free_port
from api.app import create_app
from registry.creator import CreatorKeys
from registry.service import Registry
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.serving import serving
from verifier.monitor import Monitor, StepReport
from verifier.monitorstate import LogIdentity, StateDir
from verifier.tlogclient import TlogClient


def _register(registry: Registry, creator: CreatorKeys, clock: Clock, fingerprint: bytes) -> None:
    registry.register(
        registration(creator, clock(), fingerprint=fingerprint, domain=registry.domain)
    )
    registry.sequence_all()


def test_following_the_registry_api(
    registry: Registry, make_creator: CreatorFactory, clock: Clock, tmp_path: Path
) -> None:
    alice, bob = make_creator(), make_creator()
    good = os.urandom(32)
    _register(registry, alice, clock, good)
    for _ in range(3):
        _register(registry, bob, clock, os.urandom(32))
    keys = registry.checkpoint_signer.keys
    reports: list[StepReport] = []
    with (
        serving(create_app(registry), free_port()) as url,
        TlogClient(url + "/tlog") as client,
        StateDir(tmp_path / "state") as state_dir,
    ):
        # The API answers bundles gzip-compressed to a client that admits gzip (this one).
        bundle = client.get("tile/entries/000.p/4", 4 * 226)
        assert bundle is not None and len(bundle) == 4 * 226
        identity = LogIdentity(
            client.prefix, keys.origin, keys.vkeys(), (bytes.fromhex(alice.address[2:]),)
        )
        monitor = Monitor(client, state_dir, state_dir.load(identity), ())
        first = monitor.step(reports.append)
        _register(registry, bob, clock, good)  # Bob's claim on Alice's good: a CONFLICT
        second = monitor.step(reports.append)
    assert first.goods_added == 1 and first.events == ()
    assert [(e.event, e.owner) for e in second.events] == [
        ("CONFLICT", bytes.fromhex(alice.address[2:]))
    ]
    assert second.old_size == first.checkpoint.size < second.checkpoint.size
    assert reports == [first, second]
