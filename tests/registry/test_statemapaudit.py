"""The map auditor (issue 14, item 3): logs built from the pure parts, commitments computed by
the naive reference (a dict re-hashed from scratch with hashlib), and every way a committed
root can disagree with its entries."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry import statemap, statemapaudit
from registry.edges import to_hex
from registry.errors import InvalidInput, LogCorrupt
from registry.fingerprints import GoodType
from registry.leaf import (
    NO_GOOD,
    SUBJECT_KINDS,
    EntryKind,
    LeafData,
    encode_leaf,
    subject_fingerprint,
)
from registry.payloads import StateCommitmentPayload
from registry.statemapaudit import MapAudit, MapAuditor, audit_range
from registry.statemaptree import MapSnapshot
from tests.registry.test_statemap import ref_root

REGISTRY = bytes.fromhex("52" * 20)
CREATOR = bytes.fromhex("c0" * 20)
GOOD_KINDS = (EntryKind.REGISTER, EntryKind.REVOKE, EntryKind.TRANSFER, EntryKind.CONFLICT)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


# -- the naive reference: each good's value by its definition, the map re-hashed whole --------


def ref_key(good_type: int, fingerprint: bytes) -> bytes:
    return _sha(b"tracemark-map-key/v1" + bytes([good_type]) + fingerprint)


def ref_map_root(leaves: list[bytes]) -> bytes:
    """The map over every good entry of leaves (all before the commitment), from scratch."""
    histories: dict[bytes, list[tuple[int, bytes]]] = {}
    for leaf_index, leaf in enumerate(leaves):
        good_type = leaf[95]
        if good_type != NO_GOOD:
            key = ref_key(good_type, leaf[96:128])
            histories.setdefault(key, []).append((leaf_index, _sha(b"\x00" + leaf)))
    items = {}
    for key, entries in histories.items():
        history = bytes(32)
        for _, leaf_hash in entries:
            history = _sha(b"\x12" + history + leaf_hash)
        last = entries[-1][0]
        items[key] = _sha(
            b"\x13" + len(entries).to_bytes(8, "big") + last.to_bytes(8, "big") + history
        )
    return ref_root(items)


@dataclass
class Log:
    """Leaves built step by step, each commitment carrying the reference's root."""

    leaves: list[bytes] = field(default_factory=list)
    payloads: dict[int, StateCommitmentPayload] = field(default_factory=dict)

    def good(self, kind: EntryKind, good_type: int, fingerprint: bytes) -> int:
        n = len(self.leaves)
        actor = REGISTRY if kind is EntryKind.TRANSFER else CREATOR
        payload_hash = _sha(b"payload" + n.to_bytes(8, "big"))
        self.leaves.append(
            encode_leaf(kind, good_type, fingerprint, actor, payload_hash, 1_700_000_000 + n)
        )
        return n

    def handover(self) -> int:
        n = len(self.leaves)
        subject = subject_fingerprint(EntryKind.KEY_HANDOVER, bytes.fromhex("77" * 20))
        payload_hash = _sha(b"handover" + n.to_bytes(8, "big"))
        self.leaves.append(
            encode_leaf(EntryKind.KEY_HANDOVER, NO_GOOD, subject, REGISTRY, payload_hash, n)
        )
        return n

    def commit(self, root: bytes | None = None) -> int:
        """A commitment of the reference's root (or of ``root``, a lie)."""
        n = len(self.leaves)
        root = ref_map_root(self.leaves) if root is None else root
        self.leaves.append(commitment_leaf(n, root))
        self.payloads[n] = StateCommitmentPayload(map_root=root, covers=n)
        return n

    def indexed(self) -> list[tuple[int, bytes]]:
        return list(enumerate(self.leaves))


def commitment_leaf(leaf_index: int, root: bytes, *, covers: int | None = None) -> bytes:
    payload = StateCommitmentPayload(map_root=root, covers=leaf_index if covers is None else covers)
    return encode_leaf(
        EntryKind.STATE_COMMITMENT,
        NO_GOOD,
        root,
        REGISTRY,
        payload.payload_hash(),
        1_700_000_000 + leaf_index,
    )


def fp(n: int) -> bytes:
    return _sha(b"good" + n.to_bytes(4, "big"))


def sample_log() -> Log:
    """Four heads' worth: registrations of three good types, a good seen again across heads,
    a transfer, a revocation, a conflict, a key hand-over, each head ending in a commitment."""
    log = Log()
    log.commit()  # an empty map's commitment: root EMPTY
    for n in range(12):
        log.good(EntryKind.REGISTER, 1 + n % 3, fp(n))
    log.commit()
    log.good(EntryKind.TRANSFER, 2, fp(1))
    log.good(EntryKind.REVOKE, 1, fp(0))
    log.handover()
    log.good(EntryKind.CONFLICT, 3, fp(2))
    log.commit()
    log.good(EntryKind.TRANSFER, 2, fp(1))
    log.good(EntryKind.REGISTER, 2, fp(99))
    log.commit()
    return log


def audit(log: Log, leaves: list[tuple[int, bytes]] | None = None) -> MapAudit:
    indexed = log.indexed() if leaves is None else leaves
    return audit_range(MapAuditor(), indexed, len(indexed), payloads=log.payloads)


# -- an honest log --------------------------------------------------------------------------


def test_a_log_whose_commitments_agree_passes() -> None:
    log = sample_log()
    result = audit(log)
    last = max(log.payloads)
    assert result == MapAudit(
        first_leaf=0,
        tree_size=len(log.leaves),
        commitments=4,
        root=log.payloads[last].map_root,
        committed=True,
    )
    assert log.payloads[0].map_root == bytes(32)  # the empty map


def test_without_payloads_the_leaves_alone_are_checked() -> None:
    log = sample_log()
    assert audit_range(MapAuditor(), log.indexed(), len(log.leaves)).commitments == 4


def test_a_log_from_before_commitments_replays_and_proves_no_root() -> None:
    log = Log()
    for n in range(5):
        log.good(EntryKind.REGISTER, 2, fp(n))
    result = audit(log)
    assert (result.commitments, result.committed) == (0, False)
    assert result.root == ref_map_root(log.leaves)


def test_a_snapshot_is_what_a_monitor_keeps() -> None:
    log = sample_log()
    auditor = MapAuditor()
    audit_range(auditor, log.indexed(), len(log.leaves))
    held = auditor.snapshot()
    transferred = held.value(ref_key(2, fp(1)))
    assert transferred is not None
    assert (transferred.entry_count, transferred.last_leaf_index) == (3, 19)
    assert held.value(ref_key(3, fp(99))) is None and held.value(ref_key(2, fp(99))) is not None
    assert held.root == log.payloads[21].map_root


# -- commitments that disagree with their entries ---------------------------------------------


def test_a_changed_root_is_named_with_both_roots() -> None:
    log = sample_log()
    honest = log.payloads[13].map_root
    forged = _sha(b"another map")
    log.leaves[13] = commitment_leaf(13, forged)
    with pytest.raises(LogCorrupt) as caught:
        audit_range(MapAuditor(), log.indexed(), len(log.leaves))
    message = str(caught.value)
    assert "state commitment at leaf 13" in message
    assert to_hex(forged) in message and to_hex(honest) in message


@pytest.mark.parametrize(
    ("payload", "expect"),
    [
        # The leaf's own payload, covering another index: hashes differ from the leaf's.
        (StateCommitmentPayload(map_root=bytes(32), covers=13), "does not hash"),
        # Leaves and payloads re-made to agree with each other, but not with the rule.
        ("covers 12", "covers 12, not its own leaf index"),
        ("root", "payload's map root"),
    ],
)
def test_a_payload_that_disagrees_with_its_leaf_is_named(
    payload: StateCommitmentPayload | str, expect: str
) -> None:
    log = sample_log()
    honest = log.payloads[13]
    if payload == "covers 12":
        log.leaves[13] = commitment_leaf(13, honest.map_root, covers=12)
        log.payloads[13] = StateCommitmentPayload(map_root=honest.map_root, covers=12)
    elif payload == "root":
        # A payload whose root is not the leaf's, and a leaf that commits to that payload.
        lie = StateCommitmentPayload(map_root=_sha(b"lie"), covers=13)
        leaf = bytearray(log.leaves[13])
        leaf[160:192] = lie.payload_hash()
        log.leaves[13], log.payloads[13] = bytes(leaf), lie
    else:
        assert isinstance(payload, StateCommitmentPayload)
        log.payloads[13] = payload
    with pytest.raises(LogCorrupt, match=f"state commitment at leaf 13: .*{expect}"):
        audit(log)


def test_an_altered_good_entry_is_caught_at_the_next_commitment() -> None:
    log = sample_log()
    leaf = bytearray(log.leaves[15])  # the REVOKE of fp(0)
    leaf[160:192] = _sha(b"another payload")
    log.leaves[15] = bytes(leaf)
    with pytest.raises(LogCorrupt, match="state commitment at leaf 18"):
        audit(log)


def test_a_good_entry_moved_to_another_good_is_caught() -> None:
    log = sample_log()
    leaf = bytearray(log.leaves[19])  # the second TRANSFER of fp(1)
    leaf[96:128] = fp(5)
    log.leaves[19] = bytes(leaf)
    with pytest.raises(LogCorrupt, match="state commitment at leaf 21"):
        audit(log)


def test_a_dropped_entry_is_a_missing_leaf() -> None:
    log = sample_log()
    leaves = log.indexed()
    del leaves[16]  # the key hand-over: not even a good's entry
    with pytest.raises(LogCorrupt, match="expected leaf 16 next, got leaf 17"):
        audit(log, leaves)


def test_a_dropped_and_renumbered_entry_is_caught_by_the_commitment() -> None:
    log = sample_log()
    del log.leaves[15]  # the REVOKE: the good's history is one entry short
    renumbered = list(enumerate(log.leaves))
    # Leaf 17 now is the commitment that was leaf 18: its leaf still says 18.
    with pytest.raises(LogCorrupt, match="state commitment at leaf 17"):
        audit_range(MapAuditor(), renumbered, len(renumbered))


def test_the_auditor_goes_on_after_a_disagreement() -> None:
    # check_log reports each bad commitment and carries on with the map the entries give.
    log = sample_log()
    log.leaves[13] = commitment_leaf(13, _sha(b"another map"))
    auditor, failed = MapAuditor(), []
    for leaf_index, leaf in log.indexed():
        try:
            auditor.advance(leaf_index, leaf)
        except LogCorrupt:
            failed.append(leaf_index)
    assert failed == [13]
    assert (auditor.commitments, auditor.tree_size) == (4, len(log.leaves))


def test_out_of_order_and_malformed_leaves_change_nothing() -> None:
    log = sample_log()
    auditor = MapAuditor()
    auditor.advance(0, log.leaves[0])
    with pytest.raises(LogCorrupt, match="expected leaf 1 next, got leaf 2"):
        auditor.advance(2, log.leaves[2])
    with pytest.raises(LogCorrupt, match="expected leaf 1 next, got leaf 0"):
        auditor.advance(0, log.leaves[0])
    with pytest.raises(InvalidInput, match="leaf 1: leaf data must be 224 bytes"):
        auditor.advance(1, log.leaves[1][:-1])
    assert auditor.tree_size == 1
    for leaf_index, leaf in log.indexed()[1:]:
        auditor.advance(leaf_index, leaf)
    assert auditor.root() == log.payloads[max(log.payloads)].map_root


def test_early_folds_give_the_same_map(monkeypatch: pytest.MonkeyPatch) -> None:
    # Entries folded in batches of 2 between commitments: the same roots as one batch.
    monkeypatch.setattr(statemapaudit, "MAX_PENDING_ENTRIES", 2)
    assert audit(sample_log()).commitments == 4


# -- a range, from a map a monitor holds at head A to head B -----------------------------------


def _held_at(log: Log, head: int) -> tuple[MapSnapshot, bytes]:
    auditor = MapAuditor()
    audit_range(auditor, log.indexed()[:head], head, payloads=log.payloads)
    return auditor.snapshot(), log.payloads[head - 1].map_root


def test_a_range_from_a_held_map_passes() -> None:
    log = sample_log()
    held, root = _held_at(log, 14)  # head 14 ends with the commitment at leaf 13
    auditor = MapAuditor.resume(held, 14, root)
    result = audit_range(auditor, log.indexed()[14:], len(log.leaves), payloads=log.payloads)
    assert result == MapAudit(14, len(log.leaves), 2, log.payloads[21].map_root, True)


def test_a_range_with_an_entry_dropped_fails() -> None:
    log = sample_log()
    held, root = _held_at(log, 14)
    between = log.indexed()[14:]
    del between[1]  # the REVOKE at leaf 15
    with pytest.raises(LogCorrupt, match="expected leaf 15 next, got leaf 16"):
        audit_range(MapAuditor.resume(held, 14, root), between, len(log.leaves))
    # Renumbered to hide the gap: the next commitment disagrees (by its payload, then its root).
    renumbered = [(14 + i, leaf) for i, (_, leaf) in enumerate(between)]
    with pytest.raises(LogCorrupt, match="state commitment at leaf 17: its payload covers 18"):
        audit_range(
            MapAuditor.resume(held, 14, root), renumbered, 21, payloads={17: log.payloads[18]}
        )
    with pytest.raises(LogCorrupt, match="state commitment at leaf 17: committed map root"):
        audit_range(MapAuditor.resume(held, 14, root), renumbered, 21)


def test_a_range_that_stops_short_or_runs_past_its_head_fails() -> None:
    log = sample_log()
    held, root = _held_at(log, 14)
    with pytest.raises(LogCorrupt, match="short of tree size 22: leaf 21 is missing"):
        audit_range(MapAuditor.resume(held, 14, root), log.indexed()[14:21], 22)
    with pytest.raises(LogCorrupt, match="leaf 19 is beyond the range's end, tree size 19"):
        audit_range(MapAuditor.resume(held, 14, root), log.indexed()[14:], 19)
    with pytest.raises(InvalidInput, match="cannot end at 13, before its start 14"):
        audit_range(MapAuditor.resume(held, 14, root), [], 13)


def test_a_held_map_must_have_the_committed_root() -> None:
    log = sample_log()
    held, root = _held_at(log, 14)
    with pytest.raises(InvalidInput, match="not the committed root"):
        MapAuditor.resume(held, 14, log.payloads[0].map_root)
    with pytest.raises(InvalidInput, match="non-negative integer"):
        MapAuditor.resume(held, -1, root)


def test_a_range_leaves_the_held_map_as_it_was() -> None:
    # A monitor may check B, then C, from the same map held at A.
    log = sample_log()
    held, root = _held_at(log, 14)
    before = held.value(ref_key(1, fp(0)))
    for _ in range(2):
        result = audit_range(MapAuditor.resume(held, 14, root), log.indexed()[14:], 22)
        assert result.commitments == 2
    assert held.root == root and held.value(ref_key(1, fp(0))) == before


# -- properties against the naive reference ---------------------------------------------------

# A step: a good's entry (kind, good type, one of a few fingerprints, so goods recur), a key
# hand-over (not a good's), or a commitment.
steps = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(GOOD_KINDS), st.sampled_from(GoodType), st.integers(0, 6)),
        st.just("handover"),
        st.just("commit"),
    ),
    max_size=60,
)


def _log_of(script: list[tuple[EntryKind, GoodType, int] | str]) -> Log:
    log = Log()
    for step in script:
        if step == "commit":
            log.commit()
        elif step == "handover":
            log.handover()
        else:
            assert isinstance(step, tuple)
            kind, good_type, n = step
            log.good(kind, good_type, fp(n))
    return log


@settings(max_examples=200, deadline=None)
@given(steps, st.integers(1, 5), st.integers(0, 60))
def test_replay_agrees_with_the_reference(
    script: list[tuple[EntryKind, GoodType, int] | str], fold_every: int, cut: int
) -> None:
    log = _log_of([*script, "commit"])
    size = len(log.leaves)
    # The whole log, folding every few entries (as a long stretch between commitments does).
    auditor = MapAuditor()
    original = statemapaudit.MAX_PENDING_ENTRIES
    statemapaudit.MAX_PENDING_ENTRIES = fold_every
    try:
        result = audit_range(auditor, log.indexed(), size, payloads=log.payloads)
    finally:
        statemapaudit.MAX_PENDING_ENTRIES = original
    assert result.commitments == len(log.payloads)
    assert result.root == ref_map_root(log.leaves[:-1]) == log.payloads[size - 1].map_root
    # A range from the map held after any leaf: the same later roots.
    head = min(cut, size)
    held = MapAuditor()
    audit_range(held, log.indexed()[:head], head)
    resumed = MapAuditor.resume(held.snapshot(), head, ref_map_root(log.leaves[:head]))
    later = audit_range(resumed, log.indexed()[head:], size, payloads=log.payloads)
    assert later.root == result.root
    assert later.commitments == sum(1 for index in log.payloads if index >= head)


@settings(max_examples=200, deadline=None)
@given(steps, st.data())
def test_any_forged_root_is_named(
    script: list[tuple[EntryKind, GoodType, int] | str], data: st.DataObject
) -> None:
    log = _log_of([*script, "commit"])
    forged_at = data.draw(st.sampled_from(sorted(log.payloads)))
    honest = log.payloads[forged_at].map_root
    bit = data.draw(st.integers(0, 255))
    forged = bytearray(honest)
    forged[bit // 8] ^= 0x80 >> (bit % 8)
    log.leaves[forged_at] = commitment_leaf(forged_at, bytes(forged))
    with pytest.raises(LogCorrupt, match=f"state commitment at leaf {forged_at}: committed"):
        audit_range(MapAuditor(), log.indexed(), len(log.leaves))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([*GOOD_KINDS, *SUBJECT_KINDS]),
    st.integers(0, 223),
    st.integers(0, 255),
)
def test_the_auditors_decoding_is_leaf_datas(kind: EntryKind, position: int, byte: int) -> None:
    # Any one byte of a valid leaf changed: the auditor refuses it exactly when
    # LeafData.decode does, and then changes nothing.
    good_type = NO_GOOD if kind in SUBJECT_KINDS else GoodType.CODE
    leaf = bytearray(encode_leaf(kind, good_type, bytes(32), REGISTRY, bytes(32), 0))
    leaf[position] = byte
    mutated = bytes(leaf)
    auditor = MapAuditor()
    try:
        LeafData.decode(mutated)
    except InvalidInput:
        with pytest.raises(InvalidInput, match=r"^leaf 0: "):
            auditor.advance(0, mutated)
        assert auditor.tree_size == 0
        return
    # A valid leaf: taken in (a commitment to a root other than the empty map's disagrees).
    try:
        auditor.advance(0, mutated)
    except LogCorrupt:
        assert mutated[63] == EntryKind.STATE_COMMITMENT and mutated[96:128] != bytes(32)
    assert auditor.tree_size == 1


# -- mutation probes: the tests above catch a broken auditor ----------------------------------


def _probe(check: Callable[[], None]) -> None:
    # A check fails by an assert, an uncaught LogCorrupt, or a pytest.raises that saw none.
    with pytest.raises((AssertionError, LogCorrupt, pytest.fail.Exception)):
        check()


def test_probe_an_auditor_that_keys_every_good_as_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    real = statemap.map_keys
    monkeypatch.setattr(
        statemapaudit, "map_keys", lambda _good_type, fingerprints: real(1, fingerprints)
    )
    _probe(test_a_log_whose_commitments_agree_passes)


def test_probe_an_auditor_that_skips_conflicts(monkeypatch: pytest.MonkeyPatch) -> None:
    skipped = {
        prefix: (kind, NO_GOOD if kind is EntryKind.CONFLICT else good_type)
        for prefix, (kind, good_type) in statemapaudit._LEAF_KINDS.items()
    }
    monkeypatch.setattr(statemapaudit, "_LEAF_KINDS", skipped)
    _probe(test_a_log_whose_commitments_agree_passes)


def test_probe_an_auditor_that_ignores_payloads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(statemapaudit, "_check_payload", lambda *args: None)
    _probe(lambda: test_a_payload_that_disagrees_with_its_leaf_is_named("covers 12", "covers"))
