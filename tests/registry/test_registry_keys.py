"""The registry's signing key hand-over (issue 11): logged, one transaction, picked up by a
registry running in another process before its next head, kept across restarts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli.app import app
from registry.creator import CreatorKeys
from registry.errors import Conflict, InvalidInput
from registry.keyring import create_next_registry_key, load_registry_key
from registry.leaf import EntryKind, LeafData, subject_fingerprint
from registry.service import Registry
from registry.settings import load_settings
from registry.signatures import recover_signer
from tests.conftest import Clock
from tests.registry.helpers import registration


def _open(data_dir: Path, clock: Clock) -> Registry:
    return Registry.open(load_settings(data_dir=data_dir), clock=clock)


def _register(registry: Registry, creator: CreatorKeys, clock: Clock) -> None:
    registry.register(registration(creator, clock(), domain=registry.domain))


def test_a_hand_over_is_logged_and_a_registry_elsewhere_switches_before_its_next_head(
    tmp_path: Path, clock: Clock, creator: CreatorKeys
) -> None:
    serving = _open(tmp_path, clock)  # as `tracemark serve` holds it
    old = serving.account
    _register(serving, creator, clock)
    serving.sequence_all()
    _register(serving, creator, clock)  # queued when the hand-over happens

    operator = _open(tmp_path, clock)  # `tracemark registry-key rotate`, another process
    new = create_next_registry_key(tmp_path)
    handover = operator.rotate_key(new)
    # The queued entry was integrated and signed by the old key first (head 4 ends with its
    # state commitment, leaf 3); the hand-over is leaf 4, inside the new key's first head,
    # which it signed and which ends with its own commitment, leaf 5 (issue 14).
    assert (handover.leaf_index, handover.tree_size) == (4, 6)
    assert serving.tree_head(4).signer == bytes.fromhex(old.address[2:])
    assert serving.tree_head(6).signer == bytes.fromhex(new.address[2:])
    for leaf_index, key in ((3, old), (5, new)):
        commitment = serving.entry_at(leaf_index)
        assert commitment.kind is EntryKind.STATE_COMMITMENT
        assert commitment.actor == bytes.fromhex(key.address[2:])
    entry = serving.entry_at(4)
    assert entry.kind is EntryKind.KEY_HANDOVER and entry.good_type is None
    assert entry.fingerprint == subject_fingerprint(
        EntryKind.KEY_HANDOVER, bytes.fromhex(new.address[2:])
    )
    assert LeafData.decode(entry.leaf_data()).actor == bytes.fromhex(old.address[2:])
    # The serving registry still holds the old key in memory: its next head is the new key's.
    _register(serving, creator, clock)
    head = serving.sequence()
    assert head is not None and head.signer == bytes.fromhex(new.address[2:])
    assert serving.account.address == new.address
    periods = serving.key_periods()
    assert [(p.from_size, p.until_size) for p in periods] == [(1, 6), (6, None)]
    # The hand-over signature is the old key's over (newKey, treeSize).
    from registry.eip712 import digest
    from registry.signatures import Signature

    signer = recover_signer(
        digest("KeyHandover", {"newKey": new.address, "treeSize": 6}, serving.domain),
        Signature.parse(periods[1].handover_signature or b""),
    )
    assert signer == old.address
    # A restart opens with the new key, and the log checks under the key of each size.
    restarted = _open(tmp_path, clock)
    assert restarted.account.address == new.address
    assert restarted.check_log().problems == []
    assert load_registry_key(tmp_path, new.address).address == new.address


def test_a_hand_over_refuses_what_makes_no_sense(
    tmp_path: Path, clock: Clock, creator: CreatorKeys
) -> None:
    registry = _open(tmp_path, clock)
    with pytest.raises(InvalidInput, match="the log is empty"):
        registry.rotate_key(create_next_registry_key(tmp_path))
    _register(registry, creator, clock)
    registry.sequence_all()
    with pytest.raises(InvalidInput, match="is the current key"):
        registry.rotate_key(registry.account)
    first = registry.account
    registry.rotate_key(create_next_registry_key(tmp_path))
    with pytest.raises(Conflict, match="has signed for this registry before"):
        registry.rotate_key(first)


def test_the_cli_rotates_and_shows_the_keys(
    tmp_path: Path, clock: Clock, creator: CreatorKeys
) -> None:
    registry = _open(tmp_path, clock)
    _register(registry, creator, clock)
    registry.sequence_all()
    runner = CliRunner()
    env = {"TRACEMARK_DATA_DIR": str(tmp_path), "COLUMNS": "300"}
    rotated = runner.invoke(app, ["registry-key", "rotate", "--json"], env=env)
    assert rotated.exit_code == 0, rotated.stderr
    done = json.loads(rotated.stdout)
    # Head 2 (an entry and its state commitment) was the old key's last; the new key's first
    # holds the hand-over and its own commitment (issue 14).
    assert done["old_key"] == registry.address and done["new_key_from_size"] == 4
    shown = runner.invoke(app, ["registry-key", "show", "--json"], env=env)
    keys = json.loads(shown.stdout)["signing_keys"]
    assert [(k["address"], k["from_size"], k["until_size"]) for k in keys] == [
        (registry.address, 1, 4),
        (done["new_key"], 4, None),
    ]
    # The key file is owner-only, never printed.
    key_file = tmp_path / "registry-keys" / f"{done['new_key'].lower()}.key"
    assert key_file.stat().st_mode & 0o077 == 0
    assert key_file.read_text().strip()[2:] not in rotated.stdout + shown.stdout
