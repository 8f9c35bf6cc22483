"""The state map wired into the log (issue 14), on real SQLite and PostgreSQL: every head ends
with a commitment whose root is the naive reference map's, the per-process cache heals after a
rollback and after another process sequenced, and state proofs verify at any head."""

from __future__ import annotations

import os
import secrets

import pytest
from eth_account import Account
from sqlalchemy import Engine, select, text, update

from registry import log, statecommit, statereplay
from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import sign_batch_revocation, sign_revocation
from registry.db import write_transaction
from registry.eip712 import DEV_DOMAIN
from registry.entries import LoggedEntry
from registry.errors import InvalidInput, InvalidProof, LogCorrupt, NotFound
from registry.fingerprints import GoodType
from registry.leaf import NO_GOOD, EntryKind
from registry.log import entries_t, heads_t
from registry.merkle import hash_leaf
from registry.payloads import STATE_MAP_FORMAT
from registry.service import Registry
from registry.statemap import MapValue, map_key, verify_map_proof
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.registry.test_registration import _batch, _batch_request, _codes
from tests.registry.test_statemap import ref_root
from tests.registry.test_transfers import CREATOR, party, sale

# -- the naive reference: each good's history, re-read and re-hashed from scratch ---------------


def _goods(engine: Engine) -> list[tuple[GoodType, bytes]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(entries_t.c.good_type, entries_t.c.fingerprint)
            .where(entries_t.c.good_type != NO_GOOD)
            .distinct()
        ).all()
    return [(GoodType(int(good_type)), bytes(fingerprint)) for good_type, fingerprint in rows]


def _reference_values(registry: Registry, covers: int) -> dict[bytes, MapValue]:
    """Every good's MapValue over its entries below leaf ``covers``, re-encoded from the rows
    (``LoggedEntry.leaf_data``, not the tiles the registry's map reads)."""
    with registry.engine.connect() as conn:
        rows = conn.execute(
            select(entries_t)
            .where(entries_t.c.leaf_index < covers, entries_t.c.good_type != NO_GOOD)
            .order_by(entries_t.c.leaf_index)
        ).all()
    values: dict[bytes, MapValue] = {}
    for row in rows:
        entry = LoggedEntry.from_row(row._mapping)
        assert entry.good_type is not None and entry.leaf_index is not None
        key = map_key(entry.good_type, entry.fingerprint)
        leaf_hash = hash_leaf(entry.leaf_data())
        value = values.get(key)
        values[key] = (
            MapValue.first(entry.leaf_index, leaf_hash)
            if value is None
            else value.then(entry.leaf_index, leaf_hash)
        )
    return values


def _history_values(registry: Registry, covers: int) -> dict[bytes, MapValue]:
    """The same from each good's ``history`` (the naive way: a query per good)."""
    values: dict[bytes, MapValue] = {}
    for good_type, fingerprint in _goods(registry.engine):
        value = None
        for entry in registry.history(good_type, fingerprint):
            if entry.leaf_index is None or entry.leaf_index >= covers:
                continue
            leaf_hash = hash_leaf(entry.leaf_data())
            value = (
                MapValue.first(entry.leaf_index, leaf_hash)
                if value is None
                else value.then(entry.leaf_index, leaf_hash)
            )
        if value is not None:
            values[map_key(good_type, fingerprint)] = value
    return values


def _head_sizes(engine: Engine) -> list[int]:
    with engine.connect() as conn:
        sizes = conn.execute(select(heads_t.c.tree_size).order_by(heads_t.c.tree_size)).scalars()
        return [int(size) for size in sizes]


def _check_every_head(registry: Registry) -> int:
    """Every head ends with a commitment equal to the reference map; returns how many."""
    sizes = _head_sizes(registry.engine)
    for size in sizes:
        found = registry.state_commitment(size)
        assert found is not None, f"head {size} does not end in a state commitment"
        entry, payload = found
        assert entry.kind is EntryKind.STATE_COMMITMENT and entry.leaf_index == size - 1
        assert payload.covers == size - 1 and payload.map_root == entry.fingerprint
        assert payload.document()["map"] == STATE_MAP_FORMAT
        assert entry.actor == registry.tree_head(size).signer  # the key that signed the head
        reference = _reference_values(registry, size - 1)
        expected = ref_root({key: value.value_hash() for key, value in reference.items()})
        assert entry.fingerprint == expected, f"head {size}: the map root is not the reference"
    return len(sizes)


def _check_proofs(registry: Registry, size: int, goods: list[tuple[GoodType, bytes]]) -> None:
    """state_proof of each good (and of goods never logged) verifies at head ``size``."""
    reference = _reference_values(registry, size - 1)
    for good_type, fingerprint in [*goods, (GoodType.FILE, os.urandom(32))]:
        proved = registry.state_proof(good_type, fingerprint, size)
        assert proved is not None
        key = map_key(good_type, fingerprint)
        assert proved.key == key and proved.value == reference.get(key)
        assert proved.map_root == proved.commitment.fingerprint
        assert proved.commitment.leaf_index == size - 1
        value_hash = None if proved.value is None else proved.value.value_hash()
        verify_map_proof(proved.map_root, key, value_hash, proved.proof)
        # The other claim fails: a proof of absence is no proof of inclusion, and vice versa.
        with pytest.raises(InvalidProof):
            verify_map_proof(
                proved.map_root, key, os.urandom(32) if value_hash is None else None, proved.proof
            )


# -- every kind of write ------------------------------------------------------------------------


def test_every_head_ends_with_the_commitment_of_the_reference_map(
    registry: Registry, engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    alice, bob = make_creator(), make_creator()
    files = [os.urandom(32) for _ in range(4)]
    for fingerprint in files:
        registry.register(registration(alice, clock(), fingerprint=fingerprint))
    registry.register(registration(bob, clock(), fingerprint=files[0]))  # a CONFLICT
    clock.advance(1)
    registry.sequence_all()
    registry.revoke(
        sign_revocation(
            alice,
            DEV_DOMAIN,
            good_type=GoodType.FILE,
            fingerprint=files[1],
            reason="x",
            now=clock(),
        )
    )
    registry.sequence_all()
    # Transfers: each is sequenced at once under its own head.
    agent, buyer = party("cardhub", "agent-7"), party("keyshop", "buyer-1")
    registry.transfer(sale(files[2], CREATOR, agent, good_type=GoodType.FILE, price=None))
    registry.transfer(sale(files[2], agent, buyer, good_type=GoodType.FILE, price=None, key="k"))
    # Bulk: 300 codes (crossing a tile), then a batch revocation of some of them.
    codes = _codes(300)
    batch = _batch(alice, codes)
    registry.register_batch(_batch_request(alice, batch, clock()), batch.fingerprints())
    assert alice.code_key is not None
    leaked = prepare_code_batch(codes_source("\n".join(codes[10:20])), alice.code_key)
    registry.revoke_batch(
        sign_batch_revocation(
            alice, DEV_DOMAIN, leaked, good_type=GoodType.CODE, reason="leak", now=clock()
        ),
        leaked.fingerprints(),
    )
    # A queued entry, then a key rotation: the old key's last head and the new key's first.
    registry.register(registration(bob, clock()))
    registry.rotate_key(Account.create())
    registry.register(registration(bob, clock()))
    registry.sequence_all()

    assert _check_every_head(registry) == 9
    head = registry.latest_tree_head()
    assert head is not None
    # The reference itself, cross-checked: every good's history gives the same values.
    for size in (_head_sizes(engine)[0], head.tree_size):
        assert _history_values(registry, size - 1) == _reference_values(registry, size - 1)
    codes_goods = [(GoodType.CODE, fp) for fp in list(batch.fingerprints())[5:25]]
    goods = [(GoodType.FILE, fp) for fp in files] + codes_goods
    _check_proofs(registry, head.tree_size, goods)
    # At an older head too: files[1]'s revocation and the transfers are not in it yet.
    _check_proofs(registry, _head_sizes(engine)[0], goods)


def test_the_replay_reads_in_slices(
    registry: Registry, make_creator: CreatorFactory, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replay split into many reads (and tile boundaries) gives the same map."""
    creator = make_creator()
    batch = _batch(creator, _codes(600))
    registry.register_batch(_batch_request(creator, batch, clock()), batch.fingerprints())
    for _ in range(3):
        registry.register(registration(creator, clock()))
        registry.sequence()
    monkeypatch.setattr(statereplay, "REPLAY_LEAVES", 7)
    fresh = Registry(
        registry.engine,
        domain=DEV_DOMAIN,
        account=registry.account,
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    registry.register(registration(creator, clock()))
    fresh.sequence()  # replays the whole log, 7 leaves a read, to commit
    assert _check_every_head(fresh) == 5


# -- self-healing ---------------------------------------------------------------------------------


def test_a_rolled_back_transaction_never_leaves_a_wrong_map(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    creator = make_creator()
    registry.register(registration(creator, clock()))
    registry.sequence()
    for _ in range(3):
        registry.register(registration(creator, clock()))
    before = registry.state_cache.version

    # A sequencing transaction that committed to the map in memory and then failed.
    class Failed(Exception):
        pass

    with pytest.raises(Failed), write_transaction(registry.engine) as conn:
        log.integrate_queue(conn, limit=10, now=clock())
        head = log.publish_tree_head(
            conn,
            account=registry.account,
            domain=DEV_DOMAIN,
            now=clock(),
            state_map=registry.state_cache,
            checkpoint_signer=registry.checkpoint_signer,
        )
        assert head is not None and head.tree_size == 6
        raise Failed
    assert registry.state_cache.version > before  # the cache did advance, then rolled back

    # Other entries take the rolled-back leaf indices; the map must follow the database.
    clock.advance(5)
    registry.register(registration(creator, clock()))
    registry.sequence_all()
    assert _check_every_head(registry) == 2
    head = registry.latest_tree_head()
    assert head is not None and head.tree_size == 7
    _check_proofs(registry, head.tree_size, _goods(registry.engine))


def test_two_registries_on_one_database_keep_one_map(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    """A second process sequencing in between: each registry's next commitment is right."""
    other = Registry(
        registry.engine,
        domain=DEV_DOMAIN,
        account=registry.account,
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    creator = make_creator()
    first = os.urandom(32)
    registry.register(registration(creator, clock(), fingerprint=first))
    registry.sequence()
    for round_ in range(3):
        for writer in (other, registry):
            writer.register(registration(creator, clock()))
            writer.sequence()
        if round_ == 0:
            # The first good's next entry, from the other side: its history chains across
            # processes.
            other.revoke(
                sign_revocation(
                    creator,
                    DEV_DOMAIN,
                    good_type=GoodType.FILE,
                    fingerprint=first,
                    reason="leaked",
                    now=clock(),
                )
            )
            other.sequence()
    assert _check_every_head(registry) == 8
    head = registry.latest_tree_head()
    assert head is not None
    # Each registry proves the other's heads.
    for prover in (registry, other):
        _check_proofs(prover, head.tree_size, _goods(registry.engine))
        _check_proofs(prover, _head_sizes(registry.engine)[2], _goods(registry.engine))


def test_an_old_head_without_a_kept_snapshot_is_replayed_on_the_side(
    registry: Registry, make_creator: CreatorFactory, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statecommit, "KEEP_COMMITMENTS", 3)
    monkeypatch.setattr(statecommit, "KEEP_SPAN", 3)  # at most two heads back, in leaves
    monkeypatch.setattr(statecommit, "KEEP_SERVED", 1)
    creator = make_creator()
    for _ in range(6):
        registry.register(registration(creator, clock()))
        registry.sequence()
    sizes = _head_sizes(registry.engine)
    # Commitments at leaves 1, 3, ..., 11: the span keeps 9 and 11 only.
    assert sorted(registry.state_cache._recent) == [9, 11]
    version = registry.state_cache.version
    for size in (sizes[0], sizes[2], sizes[0], sizes[-1]):
        _check_proofs(registry, size, _goods(registry.engine))
    assert registry.state_cache.version == version  # the live map was not rewound for them
    registry.register(registration(creator, clock()))
    registry.sequence()
    assert _check_every_head(registry) == 7


def test_a_commitment_that_disagrees_with_its_entries_is_log_corrupt(
    registry: Registry, make_creator: CreatorFactory, clock: Clock
) -> None:
    creator = make_creator()
    for _ in range(2):
        registry.register(registration(creator, clock()))
        registry.sequence()
    first = _head_sizes(registry.engine)[0]
    with registry.engine.begin() as conn:
        conn.execute(
            update(entries_t)
            .where(entries_t.c.leaf_index == first - 1)
            .values(fingerprint=os.urandom(32))
        )
    fresh = Registry(
        registry.engine,
        domain=DEV_DOMAIN,
        account=registry.account,
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    registry.register(registration(creator, clock()))
    with pytest.raises(LogCorrupt, match=f"state commitment at leaf {first - 1}"):
        fresh.sequence()


# -- heads before issue 14 ------------------------------------------------------------------------


def test_a_log_without_commitments_gets_one_covering_everything(
    engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    account = Account.create()
    before = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=account,
        master_key=bytes(32),
        clock=clock,
        state_map=False,  # the log as it was before issue 14
    )
    creator = make_creator()
    old = [os.urandom(32) for _ in range(5)]
    for fingerprint in old[:3]:
        before.register(registration(creator, clock(), fingerprint=fingerprint))
    before.sequence()
    for fingerprint in old[3:]:
        before.register(registration(creator, clock(), fingerprint=fingerprint))
    before.sequence()
    assert _head_sizes(engine) == [3, 5]

    after = Registry(engine, domain=DEV_DOMAIN, account=account, master_key=bytes(32), clock=clock)
    for size in (3, 5):
        assert after.state_commitment(size) is None
        assert after.state_proof(GoodType.FILE, old[0], size) is None
    with pytest.raises(NotFound):
        after.state_proof(GoodType.FILE, old[0], 4)
    with pytest.raises(NotFound):
        after.state_commitment(99)
    after.register(registration(creator, clock()))
    head = after.sequence()
    assert head is not None and head.tree_size == 7
    found = after.state_commitment(7)
    assert found is not None and found[1].covers == 6
    reference = _reference_values(after, 6)
    assert len(reference) == 6  # every good logged before the upgrade is in the map
    assert found[0].fingerprint == ref_root({k: v.value_hash() for k, v in reference.items()})
    _check_proofs(after, 7, [(GoodType.FILE, fp) for fp in old])


def test_no_commitment_without_the_map_and_an_empty_log_has_no_head(
    engine: Engine, make_creator: CreatorFactory, clock: Clock
) -> None:
    registry = Registry(
        engine, domain=DEV_DOMAIN, account=Account.create(), master_key=bytes(32), clock=clock
    )
    assert registry.sequence() is None
    with write_transaction(engine) as conn:
        assert (
            log.publish_tree_head(
                conn,
                account=registry.account,
                domain=DEV_DOMAIN,
                now=clock(),
                state_map=registry.state_cache,
                checkpoint_signer=registry.checkpoint_signer,
            )
            is None
        )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM entries")).scalar_one() == 0
    # A head with nothing new to sequence does not get a second commitment.
    registry.register(registration(make_creator(), clock()))
    registry.sequence()
    with write_transaction(engine) as conn:
        again = log.publish_tree_head(
            conn,
            account=registry.account,
            domain=DEV_DOMAIN,
            now=clock(),
            state_map=registry.state_cache,
            checkpoint_signer=registry.checkpoint_signer,
        )
    assert again is None and _head_sizes(engine) == [2]
    empty = registry.state_proof(GoodType.CODE, os.urandom(32), 2)
    assert empty is not None and empty.value is None
    verify_map_proof(empty.map_root, empty.key, None, empty.proof)


# -- a bulk batch hands its leaves to the map ------------------------------------------------------


def test_a_bulk_batch_is_taken_from_memory_and_a_failed_one_leaves_no_trace(
    registry: Registry, make_creator: CreatorFactory, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statecommit, "STAGED_FLUSH", 1_000)  # merged into the map as it comes
    read_back: list[tuple[int, int]] = []
    replay = statereplay.replay

    def spy(conn, tree, start, end, on_commitment):  # type: ignore[no-untyped-def]
        read_back.append((start, end))
        replay(conn, tree, start, end, on_commitment)

    monkeypatch.setattr(statereplay, "replay", spy)
    creator = make_creator()
    registry.register(registration(creator, clock()))
    registry.sequence()
    batch = _batch(creator, _codes(9_000))  # three chunks of the bulk writer
    registry.register_batch(_batch_request(creator, batch, clock()), batch.fingerprints())
    # Nothing of the batch was read back from the database: only the (empty) rest after it.
    assert read_back and all(end - start <= 2 for start, end in read_back), read_back
    # A batch that fails at its end, after all its chunks went into the live map.
    other = _batch(creator, _codes(9_000, prefix="LOST"))
    stream = list(other.fingerprints())
    stream[-1] = os.urandom(32)  # not what the creator signed: the whole batch is refused
    with pytest.raises(InvalidInput, match="itemsRoot"):
        registry.register_batch(_batch_request(creator, other, clock()), iter(stream))
    registry.register(registration(creator, clock()))
    registry.sequence()
    assert _check_every_head(registry) == 3
    head = registry.latest_tree_head()
    assert head is not None and head.tree_size == 2 + 9_001 + 2
    some = [(GoodType.CODE, fp) for fp in [*stream[:3], *list(batch.fingerprints())[-3:]]]
    _check_proofs(registry, head.tree_size, some)


def test_a_reader_rewinding_the_map_during_a_bulk_batch_changes_nothing(
    registry: Registry, make_creator: CreatorFactory, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statecommit, "STAGED_FLUSH", 1_000)
    creator = make_creator()
    registry.register(registration(creator, clock()))
    registry.sequence()
    rewound = []

    def another_thread_reads(position: int) -> None:
        # As a proof request on another thread would: the live map caught up (rewound) to
        # what a separate read transaction sees, between two chunks of the batch.
        with registry.engine.connect() as conn, conn.begin():
            registry.state_cache._catch_up(conn, log.tree_size(conn))
        rewound.append(position)

    batch = _batch(creator, _codes(9_000))
    registry.register_batch(
        _batch_request(creator, batch, clock()), batch.fingerprints(), progress=another_thread_reads
    )
    assert rewound == [4_096, 8_192, 9_000]
    assert _check_every_head(registry) == 2
    head = registry.latest_tree_head()
    assert head is not None
    _check_proofs(
        registry, head.tree_size, [(GoodType.CODE, fp) for fp in batch.fingerprints()][:5]
    )
