"""Every signed tree head has its C2SP checkpoint, signed in the head's transaction with the
log's note keys; published at once without a witness policy, held back with one; heads signed
before checkpoints existed get one for the latest head when the registry opens. SQLite and
PostgreSQL (the ``engine`` fixture)."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from eth_account import Account
from sqlalchemy import Engine, delete, func, select

from registry import checkpoints
from registry.checkpoint import open_checkpoint
from registry.checkpoints import checkpoints_t
from registry.cosignature import CosignerV1
from registry.db import read_transaction, write_transaction
from registry.eip712 import DEV_DOMAIN
from registry.errors import ConfigurationError
from registry.note import NoteError, vkey
from registry.service import Registry
from registry.settings import load_settings
from registry.witnesspolicy import parse_policy
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

WITNESS = CosignerV1("witness.example/w1", ed25519.Ed25519PrivateKey.from_private_bytes(b"\5" * 32))
POLICY_TEXT = f"witness w1 {vkey(WITNESS.verifier())} http://127.0.0.1:9/w1\nquorum w1\n"


def _registry(engine: Engine, clock: Clock, *, witnessed: bool = False) -> Registry:
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
        witness_policy=parse_policy(POLICY_TEXT) if witnessed else None,
    )


def _grow(registry: Registry, make_creator: CreatorFactory, clock: Clock, n: int) -> int:
    creator = make_creator()
    for _ in range(n):
        registry.register(registration(creator, clock()))
    head = registry.sequence_all()
    assert head is not None
    return head.tree_size


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(checkpoints_t)).scalar_one())


def test_each_head_has_its_checkpoint_signed_by_the_log(
    engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    registry = _registry(engine, clock)
    keys = registry.checkpoint_signer.keys
    sizes = [_grow(registry, make_creator, clock, n) for n in (3, 1, 4)]
    with read_transaction(engine) as conn:
        for size in sizes:
            stored = checkpoints.checkpoint_at(conn, size)
            head = registry.tree_head(size)
            assert stored is not None and stored.published
            # The served bytes open under the log's own verifiers: origin, size and root.
            checkpoint, note = open_checkpoint(
                stored.to_bytes(), keys.verifiers(), origin=keys.origin
            )
            assert (checkpoint.size, checkpoint.root) == (head.tree_size, head.root)
            # Ed25519 first, then ML-DSA-44, both named by the origin.
            assert [s.key_id for s in note.signatures] == [v.key_id for v in keys.verifiers()]
        latest = checkpoints.latest_published_checkpoint(conn)
        assert latest is not None and latest.checkpoint.size == sizes[-1]
        assert checkpoints.newest_unpublished_checkpoint(conn) is None
    assert _count(engine) == len(sizes)


def test_a_checkpoint_from_another_key_does_not_open(
    engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    # Mutation probe: the verification above can fail (another registry's keys).
    registry, other = _registry(engine, clock), _registry(engine, clock)
    size = _grow(registry, make_creator, clock, 2)
    with read_transaction(engine) as conn:
        stored = checkpoints.checkpoint_at(conn, size)
    assert stored is not None
    keys = other.checkpoint_signer.keys
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_checkpoint(stored.to_bytes(), keys.verifiers(), origin=keys.origin)


def test_with_a_witness_policy_checkpoints_wait_until_published(
    engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    registry = _registry(engine, clock, witnessed=True)
    first = _grow(registry, make_creator, clock, 2)
    second = _grow(registry, make_creator, clock, 2)
    with read_transaction(engine) as conn:
        assert checkpoints.latest_published_checkpoint(conn) is None
        assert checkpoints.latest_published_size(conn) == 0
        waiting = checkpoints.newest_unpublished_checkpoint(conn)
        assert waiting is not None and waiting.checkpoint.size == second
        assert not waiting.published
    cosignature = WITNESS.sign(waiting.note.text)
    with write_transaction(engine) as conn:
        checkpoints.publish_checkpoint(conn, second, [cosignature], now=clock())
    with read_transaction(engine) as conn:
        published = checkpoints.latest_published_checkpoint(conn)
        skipped = checkpoints.checkpoint_at(conn, first)
    assert published is not None and published.published
    assert published.note.signatures[-1] == cosignature
    assert parse_policy(POLICY_TEXT).check(published.note) == ("w1",)
    # The older one, superseded, stays unpublished: nothing serves or anchors it.
    assert skipped is not None and not skipped.published


def test_a_head_that_rolls_back_leaves_no_checkpoint(
    engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    registry = _registry(engine, clock)
    _grow(registry, make_creator, clock, 1)
    before = _count(engine)
    registry.register(registration(make_creator(), clock()))

    class Failed(Exception):
        pass

    with pytest.raises(Failed), write_transaction(engine) as conn:
        from registry import log

        now = log.sequencer_time(conn, clock())
        log.integrate_queue(conn, limit=10, now=now)
        head = log.publish_tree_head(
            conn,
            account=registry.account,
            domain=DEV_DOMAIN,
            now=now,
            state_map=registry.state_cache,
            checkpoint_signer=registry.checkpoint_signer,
        )
        assert head is not None
        assert checkpoints.checkpoint_at(conn, head.tree_size) is not None
        raise Failed
    assert _count(engine) == before


def test_witness_records_count_failures_and_reset_on_a_cosignature(
    engine: Engine, clock: Clock
) -> None:
    verifier = WITNESS.verifier()
    with write_transaction(engine) as conn:
        assert checkpoints.witness_record(conn, verifier).tree_size == 0
        checkpoints.record_witness_failure(conn, verifier, "connection refused", now=10)
        checkpoints.record_witness_failure(conn, verifier, "x" * 2000, now=11)
    with read_transaction(engine) as conn:
        record = checkpoints.witness_record(conn, verifier)
        alerts = checkpoints.witness_alerts(conn)
    assert (record.failures, record.total_failures, record.failed_at) == (2, 2, 11)
    assert record.last_error is not None and len(record.last_error) == 500
    assert alerts and alerts[0].startswith("witness witness.example/w1 failed 2 time(s)")
    with write_transaction(engine) as conn:
        checkpoints.record_cosigned(conn, verifier, 42, now=12)
    with read_transaction(engine) as conn:
        record = checkpoints.witness_record(conn, verifier)
        assert checkpoints.witness_alerts(conn) == []
    assert (record.tree_size, record.failures, record.total_failures) == (42, 0, 2)


# -- Registry.open: the data dir's keys, the policy file, heads from before checkpoints -------


def _open(tmp_path: Path, clock: Clock, **settings: object) -> Registry:
    return Registry.open(load_settings(data_dir=tmp_path / "data", **settings), clock=clock)


def test_open_signs_the_latest_head_of_a_log_from_before_checkpoints(
    tmp_path: Path, make_creator: CreatorFactory, clock: Clock
) -> None:
    registry = _open(tmp_path, clock)
    first = _grow(registry, make_creator, clock, 2)
    latest = _grow(registry, make_creator, clock, 2)
    with write_transaction(registry.engine) as conn:  # as migration 0018 found the log
        conn.execute(delete(checkpoints_t))
    reopened = _open(tmp_path, clock)
    keys = reopened.checkpoint_signer.keys
    assert keys.origin == "127.0.0.1:8000/tlog"
    assert keys.vkeys() == registry.checkpoint_signer.keys.vkeys()  # the data dir's keys
    with read_transaction(reopened.engine) as conn:
        assert checkpoints.checkpoint_at(conn, first) is None
        signed = checkpoints.checkpoint_at(conn, latest)
    assert signed is not None and signed.published
    open_checkpoint(signed.to_bytes(), keys.verifiers(), origin=keys.origin)
    _open(tmp_path, clock)  # again: nothing new to sign
    assert _count(reopened.engine) == 1


def test_open_with_a_policy_holds_back_and_without_it_publishes(
    tmp_path: Path, make_creator: CreatorFactory, clock: Clock
) -> None:
    policy = tmp_path / "witnesses.policy"
    policy.write_text(POLICY_TEXT)
    witnessed = _open(tmp_path, clock, witness_policy=policy)
    assert witnessed.witness_policy is not None
    size = _grow(witnessed, make_creator, clock, 2)
    with read_transaction(witnessed.engine) as conn:
        assert checkpoints.latest_published_size(conn) == 0
    # The policy removed: the waiting checkpoint is published when the registry opens.
    plain = _open(tmp_path, clock)
    with read_transaction(plain.engine) as conn:
        assert checkpoints.latest_published_size(conn) == size


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("witness w1 nonsense\nquorum w1\n", "line 1: bad vkey"),
        (POLICY_TEXT.replace(" http://127.0.0.1:9/w1", ""), "submission URL; none for w1"),
    ],
    ids=["bad-policy", "witness-without-url"],
)
def test_open_refuses_a_bad_policy_in_one_line(
    tmp_path: Path, clock: Clock, text: str, words: str
) -> None:
    policy = tmp_path / "witnesses.policy"
    policy.write_text(text)
    with pytest.raises(ConfigurationError, match="TRACEMARK_WITNESS_POLICY") as raised:
        _open(tmp_path, clock, witness_policy=policy)
    assert words in raised.value.detail and "\n" not in raised.value.detail
    with pytest.raises(ConfigurationError, match="cannot read"):
        _open(tmp_path, clock, witness_policy=tmp_path / "missing.policy")
