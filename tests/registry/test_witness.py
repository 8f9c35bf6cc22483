"""The witness's add-checkpoint (c2sp.org/tlog-witness): every status on real log-signed
checkpoints (the log's note keys from ``registry.logkeys``, trees built by
``registry.tiles.MemoryTree``), cosignatures checked with ``registry.note``'s verifiers,
mutation probes, the split view, durability across a restart, and the spec's race."""

from __future__ import annotations

import base64
import itertools
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry.checkpoint import Checkpoint
from registry.checkpoints import checkpoint_at
from registry.cosignature import cosignature_timestamp
from registry.errors import ConfigurationError
from registry.logkeys import LogNoteKeys, load_log_note_keys
from registry.merkle import empty_root, hash_leaf
from registry.note import (
    SIG_COSIGNATURE_V1,
    SIG_MLDSA44_SUBTREE,
    Ed25519Signer,
    parse_note,
    parse_signature_lines,
    sign_note,
    verify_note,
)
from registry.service import Registry
from registry.tiles import MemoryTree
from registry.witness import (
    MAX_ADD_CHECKPOINT_BYTES,
    MAX_PROOF_LINES,
    SIZE_MEDIA_TYPE,
    Answer,
    Witness,
    format_add_checkpoint,
    parse_add_checkpoint,
)
from registry.witnessconfig import (
    CONFIG_FILE,
    init_witness,
    load_witness_config,
    open_witness,
    parse_witness_config,
)
from registry.witnessstate import CosignedCheckpoint, WitnessState, origin_hash
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration

ORIGIN = "registry.test/tlog"
NOW = 1_760_000_000
WITNESS = "cards.test/witness"


def _tree(leaves: int, *, fork_at: int | None = None) -> MemoryTree:
    """A log of ``leaves`` entries; with ``fork_at``, entries from there on differ (a split)."""
    tree = MemoryTree()
    hashes = [
        hash_leaf(b"entry %d%s" % (i, b" forked" if fork_at is not None and i >= fork_at else b""))
        for i in range(leaves)
    ]
    tree.append(hashes)
    return tree


class Log:
    """A log as the registry signs it: real note keys, a real tree."""

    def __init__(self, keys: LogNoteKeys, tree: MemoryTree) -> None:
        self.keys, self.tree = keys, tree

    def checkpoint(self, size: int, root: bytes | None = None) -> bytes:
        text = Checkpoint(ORIGIN, size, root if root is not None else self.tree.root(size)).text()
        return sign_note(text, self.keys.signers).to_bytes()

    def request(self, old: int, size: int, *, proof: list[bytes] | None = None) -> bytes:
        if proof is None:
            proof = self.tree.consistency_proof(old, size) if 0 < old < size else []
        return format_add_checkpoint(old, proof, self.checkpoint(size))


@pytest.fixture
def log_keys(tmp_path: Path) -> LogNoteKeys:
    return load_log_note_keys(tmp_path / "registry", ORIGIN)


@pytest.fixture
def log(log_keys: LogNoteKeys) -> Log:
    return Log(log_keys, _tree(64))


@pytest.fixture
def witness_dir(tmp_path: Path, log_keys: LogNoteKeys) -> Path:
    init_witness(tmp_path / "witness", WITNESS, [log_keys.vkeys()])
    return tmp_path / "witness"


@pytest.fixture
def open_it(witness_dir: Path) -> Iterator[Callable[[], Witness]]:
    opened: list[Witness] = []

    def make() -> Witness:
        for previous in opened:
            previous.state.close()
        opened.append(open_witness(load_witness_config(witness_dir / CONFIG_FILE), lambda: NOW))
        return opened[-1]

    yield make
    for witness in opened:
        witness.state.close()


@pytest.fixture
def witness(open_it: Callable[[], Witness]) -> Witness:
    return open_it()


def _witness_verifiers(witness_dir: Path) -> list[object]:
    config = load_witness_config(witness_dir / CONFIG_FILE)
    return [signer.verifier() for signer in config._cosigners()]


def _status(answer: Answer) -> tuple[int, bytes]:
    return answer.status, answer.body


def _stored(witness: Witness) -> bytes | None:
    record = witness.state.get(ORIGIN)
    return None if record is None else record.to_bytes()


# -- 200 -----------------------------------------------------------------------------------


def test_first_checkpoint_is_cosigned_with_ml_dsa_then_ed25519(
    witness: Witness, log: Log, witness_dir: Path
) -> None:
    answer = witness.add_checkpoint(log.request(0, 10))
    assert answer.status == 200, answer.body
    lines = parse_signature_lines(answer.body)
    assert [line.name for line in lines] == [WITNESS, WITNESS]
    verifiers = _witness_verifiers(witness_dir)
    assert [v.sig_type for v in verifiers] == [SIG_MLDSA44_SUBTREE, SIG_COSIGNATURE_V1]  # type: ignore[attr-defined]
    assert [line.key_id for line in lines] == [v.key_id for v in verifiers]  # type: ignore[attr-defined]
    assert all(cosignature_timestamp(line.signature) == NOW for line in lines)
    # As the spec says a client does: the answer appended to the checkpoint verifies.
    note = parse_note(log.checkpoint(10) + answer.body)
    assert verify_note(note, verifiers) == tuple(verifiers)  # type: ignore[arg-type]


def test_extension_is_cosigned_and_served_to_monitors(
    witness: Witness, log: Log, witness_dir: Path
) -> None:
    assert witness.add_checkpoint(log.request(0, 10)).status == 200
    answer = witness.add_checkpoint(log.request(10, 37))
    assert answer.status == 200, answer.body
    served = witness.latest_checkpoint(origin_hash(ORIGIN))
    assert served.status == 200
    note = parse_note(served.body)
    assert Checkpoint.parse(note.text) == Checkpoint(ORIGIN, 37, log.tree.root(37))
    # The log's two signatures it verified and its own two cosignatures, nothing else.
    verify_note(note, log.keys.verifiers())
    verified = verify_note(note, _witness_verifiers(witness_dir))  # type: ignore[arg-type]
    assert len(verified) == 2 and len(note.signatures) == 4
    assert (
        served.body == (witness.state.directory / f"{origin_hash(ORIGIN)}.checkpoint").read_bytes()
    )


def test_unknown_signature_lines_are_ignored_and_not_stored(witness: Witness, log: Log) -> None:
    stranger = Ed25519Signer("someone.else/log", ed25519.Ed25519PrivateKey.generate())
    text = Checkpoint(ORIGIN, 5, log.tree.root(5)).text()
    note = sign_note(text, [stranger, *log.keys.signers])
    assert witness.add_checkpoint(format_add_checkpoint(0, [], note.to_bytes())).status == 200
    stored = witness.state.get(ORIGIN)
    assert stored is not None
    assert "someone.else/log" not in {s.name for s in stored.note.signatures}


def test_same_checkpoint_again_is_cosigned_again(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0, 8)).status == 200
    assert witness.add_checkpoint(log.request(8, 8)).status == 200


def test_empty_tree_checkpoint_with_the_empty_root_is_cosigned(witness: Witness, log: Log) -> None:
    answer = witness.add_checkpoint(format_add_checkpoint(0, [], log.checkpoint(0, empty_root())))
    assert answer.status == 200, answer.body
    assert witness.add_checkpoint(log.request(0, 3)).status == 200


def test_monitoring_endpoint_is_404_before_any_cosignature(witness: Witness) -> None:
    assert witness.latest_checkpoint(origin_hash(ORIGIN)).status == 404
    assert witness.latest_checkpoint("not-hex").status == 404
    assert witness.latest_checkpoint(origin_hash(ORIGIN).upper()).status == 404


def test_cosignature_v1_signs_the_spec_example_message(tmp_path: Path) -> None:
    # tlog-cosignature's example: the exact bytes an Ed25519 cosignature/v1 signs, written
    # out from the spec, verified under the witness's own key as the witness signed them.
    spec_text = (
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    spec_message = (
        b"cosignature/v1\n"
        b"time 1679315147\n"
        b"example.com/behind-the-sofa\n"
        b"20852163\n"
        b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    )
    init_witness(tmp_path / "w", WITNESS)
    config = load_witness_config(tmp_path / "w" / CONFIG_FILE)
    _, cosigner = config._cosigners(lambda: 1679315147)
    line = cosigner.sign(spec_text)
    assert line.signature[:8] == (1679315147).to_bytes(8, "big")
    public = ed25519.Ed25519PublicKey.from_public_bytes(cosigner.public_key)
    public.verify(line.signature[8:], spec_message)  # raises if the message differs


# -- 400 -----------------------------------------------------------------------------------


def _malformed(log: Log) -> dict[str, bytes]:
    good = log.checkpoint(10)
    proof_line = base64.b64encode(bytes(32)) + b"\n"
    return {
        "no-empty-line": b"old 0\n" + good.replace(b"\n\n", b"\n"),
        "no-old-line": b"\n" + good,
        "old-leading-zero": b"old 00\n\n" + good,
        "old-negative": b"old -1\n\n" + good,
        "old-word": b"new 0\n\n" + good,
        "old-trailing-space": b"old 0 \n\n" + good,
        "old-too-large": b"old 18446744073709551616\n\n" + good,
        "proof-not-base64": b"old 3\n!!!!\n\n" + good,
        "proof-short-hash": b"old 3\n" + base64.b64encode(bytes(31)) + b"\n\n" + good,
        "proof-non-canonical": b"old 3\n" + base64.b64encode(bytes(32))[:-2] + b"B=\n\n" + good,
        "proof-64-lines": b"old 3\n" + proof_line * (MAX_PROOF_LINES + 1) + b"\n" + good,
        "note-unsigned": b"old 0\n\n" + log.checkpoint(10).split(b"\n\n")[0] + b"\n\n",
        "checkpoint-size-leading-zero": b"old 0\n\n" + good.replace(b"\n10\n", b"\n010\n"),
        "checkpoint-two-lines": b"old 0\n\n"
        + ORIGIN.encode()
        + b"\n10\n\n"
        + good.split(b"\n\n")[1],
        "not-utf8": b"old 0\n\n" + good.replace(b"registry", b"registr\xff"),
        "too-large": b"old 0\n\n" + b"x" * MAX_ADD_CHECKPOINT_BYTES,
    }


@pytest.mark.parametrize(
    "case",
    [
        "no-empty-line",
        "no-old-line",
        "old-leading-zero",
        "old-negative",
        "old-word",
        "old-trailing-space",
        "old-too-large",
        "proof-not-base64",
        "proof-short-hash",
        "proof-non-canonical",
        "proof-64-lines",
        "note-unsigned",
        "checkpoint-size-leading-zero",
        "checkpoint-two-lines",
        "not-utf8",
        "too-large",
    ],
)
def test_malformed_bodies_are_400_and_change_nothing(witness: Witness, log: Log, case: str) -> None:
    assert witness.add_checkpoint(log.request(0, 3)).status == 200
    before = _stored(witness)
    answer = witness.add_checkpoint(_malformed(log)[case])
    assert answer.status == 400, (case, answer.body)
    assert answer.body.endswith(b"\n") and answer.body.count(b"\n") == 1
    assert _stored(witness) == before


def test_63_proof_lines_are_parsed() -> None:
    proof = [bytes([i]) * 32 for i in range(MAX_PROOF_LINES)]
    request = parse_add_checkpoint(format_add_checkpoint(5, proof, b"note"))
    assert request.consistency_proof == tuple(proof) and request.old_size == 5


def test_old_size_above_the_checkpoint_size_is_400(witness: Witness, log: Log) -> None:
    answer = witness.add_checkpoint(format_add_checkpoint(11, [], log.checkpoint(10)))
    assert _status(answer) == (400, b"old size 11 is larger than the size 10\n")


# -- 403 and 404 ---------------------------------------------------------------------------


def test_unknown_origin_is_404(witness: Witness, log: Log) -> None:
    other = LogNoteKeys.from_seeds("other.test/tlog", bytes(32), bytes(32))
    text = Checkpoint("other.test/tlog", 3, log.tree.root(3)).text()
    answer = witness.add_checkpoint(
        format_add_checkpoint(0, [], sign_note(text, other.signers).to_bytes())
    )
    assert answer.status == 404


def test_no_trusted_signature_is_403(witness: Witness, log: Log) -> None:
    # The right origin signed by another key of the same name: an unknown key, ignored.
    impostor = LogNoteKeys.from_seeds(ORIGIN, bytes(range(32)), bytes(range(32)))
    text = Checkpoint(ORIGIN, 3, log.tree.root(3)).text()
    answer = witness.add_checkpoint(
        format_add_checkpoint(0, [], sign_note(text, impostor.signers).to_bytes())
    )
    assert answer.status == 403
    assert _stored(witness) is None


@pytest.mark.parametrize("which", [0, 1])
def test_a_known_keys_failing_signature_is_403(witness: Witness, log: Log, which: int) -> None:
    # Either line (Ed25519 or ML-DSA-44) failing rejects the note, even if the other verifies.
    note = parse_note(log.checkpoint(10))
    signatures = list(note.signatures)
    bad = signatures[which]
    flipped = bytearray(bad.signature)
    flipped[-1] ^= 0x01
    signatures[which] = type(bad)(bad.name, bad.key_id, bytes(flipped))
    tampered = type(note)(note.text, tuple(signatures)).to_bytes()
    assert witness.add_checkpoint(format_add_checkpoint(0, [], tampered)).status == 403
    assert _stored(witness) is None


def test_signature_byte_mutations_are_403(witness: Witness, log: Log) -> None:
    # One byte of the Ed25519 line at a time (key id bytes excluded: those make it unknown).
    note = parse_note(log.checkpoint(10))
    ed_line = note.signatures[0]
    for position in range(0, len(ed_line.signature), 7):
        flipped = bytearray(ed_line.signature)
        flipped[position] ^= 0x80
        tampered = type(note)(
            note.text, (type(ed_line)(ed_line.name, ed_line.key_id, bytes(flipped)),)
        )
        answer = witness.add_checkpoint(format_add_checkpoint(0, [], tampered.to_bytes()))
        assert answer.status == 403, position
    assert _stored(witness) is None


def test_checkpoint_text_mutation_is_403(witness: Witness, log: Log) -> None:
    # A root the log never signed, under the log's genuine signature lines.
    body = log.checkpoint(10)
    root = base64.b64encode(log.tree.root(10))
    other = base64.b64encode(log.tree.root(9))
    assert (
        witness.add_checkpoint(format_add_checkpoint(0, [], body.replace(root, other))).status
        == 403
    )


# -- 409 -----------------------------------------------------------------------------------


def test_old_size_not_the_cosigned_one_is_409_with_the_size(witness: Witness, log: Log) -> None:
    answer = witness.add_checkpoint(log.request(5, 10))
    assert answer == Answer(409, SIZE_MEDIA_TYPE, b"0\n")
    assert witness.add_checkpoint(log.request(0, 10)).status == 200
    for old in (0, 9, 11):
        stale = witness.add_checkpoint(format_add_checkpoint(old, [], log.checkpoint(12)))
        assert stale == Answer(409, SIZE_MEDIA_TYPE, b"10\n"), old
    # The client retries with the size it was told.
    assert witness.add_checkpoint(log.request(10, 12)).status == 200


def test_witness_state_older_than_the_log_is_409_with_its_size(witness: Witness, log: Log) -> None:
    # The witness cosigned size 10; the log believes it last cosigned 20 and sends 20 -> 30.
    assert witness.add_checkpoint(log.request(0, 10)).status == 200
    answer = witness.add_checkpoint(log.request(20, 30))
    assert answer == Answer(409, SIZE_MEDIA_TYPE, b"10\n")
    assert witness.add_checkpoint(log.request(10, 30)).status == 200


# -- 422 -----------------------------------------------------------------------------------


def test_every_byte_of_the_proof_matters(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0, 13)).status == 200
    before = _stored(witness)
    proof = log.tree.consistency_proof(13, 40)
    for index in range(len(proof)):
        for position in (0, 17, 31):
            tampered = list(proof)
            changed = bytearray(tampered[index])
            changed[position] ^= 0x01
            tampered[index] = bytes(changed)
            answer = witness.add_checkpoint(format_add_checkpoint(13, tampered, log.checkpoint(40)))
            assert answer.status == 422, (index, position)
    assert _stored(witness) == before
    assert (
        witness.add_checkpoint(format_add_checkpoint(13, proof, log.checkpoint(40))).status == 200
    )


def test_proof_of_the_wrong_length_is_422(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0, 13)).status == 200
    proof = log.tree.consistency_proof(13, 40)
    for tampered in (proof[:-1], [*proof, proof[-1]], [], log.tree.consistency_proof(12, 40)):
        answer = witness.add_checkpoint(format_add_checkpoint(13, tampered, log.checkpoint(40)))
        assert answer.status == 422


def test_a_proof_from_old_size_zero_is_422(witness: Witness, log: Log) -> None:
    answer = witness.add_checkpoint(format_add_checkpoint(0, [bytes(32)], log.checkpoint(10)))
    assert answer.status == 422
    assert b"from size 0 must be empty" in answer.body


def test_size_zero_with_a_non_empty_root_is_422(witness: Witness, log: Log) -> None:
    answer = witness.add_checkpoint(
        format_add_checkpoint(0, [], log.checkpoint(0, log.tree.root(1)))
    )
    assert answer.status == 422
    assert _stored(witness) is None


def test_same_size_different_root_is_422(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0, 10)).status == 200
    answer = witness.add_checkpoint(
        format_add_checkpoint(10, [], log.checkpoint(10, log.tree.root(9)))
    )
    assert answer.status == 422


def test_split_view_is_refused_and_the_first_view_goes_on(
    witness: Witness, log: Log, caplog: pytest.LogCaptureFixture
) -> None:
    # The log signs two different checkpoints of size 20 (entries 12.. differ): a split view.
    fork = Log(log.keys, _tree(64, fork_at=12))
    assert fork.tree.root(20) != log.tree.root(20)
    assert witness.add_checkpoint(log.request(0, 20)).status == 200
    first = _stored(witness)
    with caplog.at_level("WARNING", logger="tracemark.witness"):
        answer = witness.add_checkpoint(format_add_checkpoint(20, [], fork.checkpoint(20)))
    assert answer.status == 422, answer.body
    assert "refused a log-signed checkpoint" in caplog.text
    # The second view cannot get in from size 0 either, nor grow past the first.
    assert witness.add_checkpoint(fork.request(0, 20)) == Answer(409, SIZE_MEDIA_TYPE, b"20\n")
    assert witness.add_checkpoint(fork.request(20, 30)).status == 422
    assert _stored(witness) == first
    # A later checkpoint consistent with the FIRST view is still cosigned.
    assert witness.add_checkpoint(log.request(20, 30)).status == 200


# -- durability, the race, the state directory -----------------------------------------------


def test_state_survives_a_restart(open_it: Callable[[], Witness], log: Log) -> None:
    witness = open_it()
    assert witness.add_checkpoint(log.request(0, 17)).status == 200
    served = witness.latest_checkpoint(origin_hash(ORIGIN)).body
    restarted = open_it()  # closes the first one: a new process's view of the same files
    assert restarted.add_checkpoint(log.request(0, 20)) == Answer(409, SIZE_MEDIA_TYPE, b"17\n")
    assert restarted.latest_checkpoint(origin_hash(ORIGIN)).body == served
    assert restarted.add_checkpoint(log.request(17, 20)).status == 200


def test_record_file_is_owner_only_and_no_temporary_is_left(witness: Witness, log: Log) -> None:
    assert witness.add_checkpoint(log.request(0, 4)).status == 200
    files = sorted(p.name for p in witness.state.directory.iterdir())
    assert files == sorted([f"{origin_hash(ORIGIN)}.checkpoint", "witness.lock"])
    record = witness.state.directory / f"{origin_hash(ORIGIN)}.checkpoint"
    assert stat.S_IMODE(record.stat().st_mode) == 0o600


def test_a_second_process_cannot_open_the_same_state(witness: Witness) -> None:
    with pytest.raises(ConfigurationError, match="in use by another witness"):
        WitnessState(witness.state.directory)


def test_a_damaged_record_stops_the_witness_at_start(
    open_it: Callable[[], Witness], log: Log
) -> None:
    witness = open_it()
    assert witness.add_checkpoint(log.request(0, 4)).status == 200
    witness.state.close()
    record = witness.state.directory / f"{origin_hash(ORIGIN)}.checkpoint"
    record.write_bytes(record.read_bytes().replace(b"\n4\n", b"\n04\n"))
    with pytest.raises(ConfigurationError, match="damaged"):
        open_it()


class _PausingState(WitnessState):
    """The real state, with a pause inside ``save`` (a fault injection: the real disk is too
    fast to show the spec's race on demand)."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.pause_next = False

    def save(self, record: CosignedCheckpoint) -> None:
        if self.pause_next:
            self.pause_next = False
            self.entered.set()
            assert self.release.wait(30)
        super().save(record)


def test_the_specs_race_cannot_roll_the_log_back(witness_dir: Path, log: Log) -> None:
    config = load_witness_config(witness_dir / CONFIG_FILE)
    state = _PausingState(config.state_dir)
    witness = Witness(config.cosigners(lambda: NOW), {ORIGIN: log.keys.verifiers()}, state)
    try:
        assert witness.add_checkpoint(log.request(0, 10)).status == 200
        answers: dict[str, Answer] = {}
        # Request A (10 -> 20) is checked and pauses before its save; request B (10 -> 30),
        # checked against the same old size, must wait for A instead of passing its check.
        state.pause_next = True
        a = threading.Thread(
            target=lambda: answers.update(A=witness.add_checkpoint(log.request(10, 20)))
        )
        a.start()
        assert state.entered.wait(30)
        b = threading.Thread(
            target=lambda: answers.update(B=witness.add_checkpoint(log.request(10, 30)))
        )
        b.start()
        b.join(0.5)
        assert b.is_alive() and "B" not in answers  # held by the origin's lock, not answered
        state.release.set()
        a.join(30)
        b.join(30)
        assert answers["A"].status == 200
        assert answers["B"] == Answer(409, SIZE_MEDIA_TYPE, b"20\n")
        record = state.get(ORIGIN)
        assert record is not None and record.checkpoint.size == 20
        # B's log retries from 20: the state only ever grew.
        assert witness.add_checkpoint(log.request(20, 30)).status == 200
    finally:
        state.close()


def test_concurrent_requests_from_one_old_size_cosign_exactly_one(
    witness: Witness, log: Log
) -> None:
    assert witness.add_checkpoint(log.request(0, 8)).status == 200
    sizes = list(range(9, 33))
    bodies = {size: log.request(8, size) for size in sizes}
    answers: dict[int, Answer] = {}
    start = threading.Barrier(len(sizes))

    def submit(size: int) -> None:
        start.wait()
        answers[size] = witness.add_checkpoint(bodies[size])

    threads = [threading.Thread(target=submit, args=(size,)) for size in sizes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    winners = [size for size, answer in answers.items() if answer.status == 200]
    assert len(winners) == 1
    record = witness.state.get(ORIGIN)
    assert record is not None and record.checkpoint.size == winners[0]
    for size, answer in answers.items():
        if size != winners[0]:
            assert answer == Answer(409, SIZE_MEDIA_TYPE, f"{winners[0]}\n".encode())


# -- the config ------------------------------------------------------------------------------


def test_init_writes_owner_only_keys_and_a_config_that_round_trips(
    witness_dir: Path, log_keys: LogNoteKeys
) -> None:
    for name in ("witness-ed25519.key", "witness-mldsa44.key"):
        assert stat.S_IMODE((witness_dir / name).stat().st_mode) == 0o600
    config = load_witness_config(witness_dir / CONFIG_FILE)
    assert config.name == WITNESS
    assert [log.origin for log in config.logs] == [ORIGIN]
    assert [v.key_id for v in config.logs[0].verifiers] == [v.key_id for v in log_keys.verifiers()]
    vkeys = config.vkeys()
    assert [v.split("+")[0] for v in vkeys] == [WITNESS, WITNESS]
    assert [base64.b64decode(v.split("+", 2)[2])[0] for v in vkeys] == [0x06, 0x04]
    with pytest.raises(ConfigurationError, match="already exists"):
        init_witness(witness_dir, WITNESS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('name = "w"\nnmae = "typo"\n', "unknown key"),
        ("name = 5\n", "must be a string"),
        ('name = "w"\n[[logs]]\norigin = "o"\n', "needs 'origin' and 'vkeys'"),
        ('name = "w"\n[[logs]]\norigin = "o"\nvkeys = ["nope"]\n', "logs\\[0\\]"),
        ('name = "w"\nsubmission_prefix = "witness/"\n', "prefix"),
        ("name = \n", "not TOML"),
    ],
)
def test_bad_configs_are_one_line_errors(text: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        parse_witness_config(text, tmp_path)


def test_a_key_readable_by_others_is_refused(witness_dir: Path) -> None:
    os.chmod(witness_dir / "witness-ed25519.key", 0o644)
    with pytest.raises(ConfigurationError, match="readable by others"):
        load_witness_config(witness_dir / CONFIG_FILE).vkeys()


def test_an_invalid_witness_name_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="key name"):
        init_witness(tmp_path / "w", "has space")
    assert not (tmp_path / "w" / "witness-ed25519.key").exists()


# -- the registry's own checkpoints (SQLite and PostgreSQL) ----------------------------------


def test_the_registrys_checkpoints_are_cosigned_as_its_log_grows(
    registry: Registry, make_creator: CreatorFactory, clock: Clock, tmp_path: Path
) -> None:
    keys = registry.checkpoint_signer.keys
    init_witness(tmp_path / "rw", WITNESS, [keys.vkeys()])
    witness = open_witness(load_witness_config(tmp_path / "rw" / CONFIG_FILE), lambda: NOW)
    try:
        creator = make_creator()
        old = 0
        for goods in (1, 3, 2):
            for _ in range(goods):
                registry.register(registration(creator, clock()))
            head = registry.sequence_all()
            assert head is not None
            with registry.engine.connect() as conn:
                stored = checkpoint_at(conn, head.tree_size)
            assert stored is not None
            proof = registry.consistency_proof(old, head.tree_size) if old else []
            body = format_add_checkpoint(old, proof, stored.to_bytes())
            answer = witness.add_checkpoint(body)
            assert answer.status == 200, answer.body
            note = parse_note(stored.to_bytes() + answer.body)
            verify_note(note, _witness_verifiers(tmp_path / "rw"))  # type: ignore[arg-type]
            # The same head again from the old size: the witness has moved on.
            if old:
                assert witness.add_checkpoint(body) == Answer(
                    409, SIZE_MEDIA_TYPE, f"{head.tree_size}\n".encode()
                )
            old = head.tree_size
        # A checkpoint of the head's size over another root, signed with the log's own keys.
        text = Checkpoint(keys.origin, old, registry.tree_head(old).root[::-1]).text()
        forged = sign_note(text, keys.signers).to_bytes()
        assert witness.add_checkpoint(format_add_checkpoint(old, [], forged)).status == 422
    finally:
        witness.state.close()


# -- property: whatever a (mis)behaving log sends, the witness cosigns one growing tree --------

_FORK_AT = 9
_MAX_SIZE = 24


@pytest.fixture(scope="module")
def signed_views() -> dict[tuple[str, int], bytes]:
    """Every checkpoint of sizes 0..24 of two views that split after leaf 9, log-signed once."""
    keys = LogNoteKeys.from_seeds(ORIGIN, bytes(range(32)), bytes(range(1, 33)))
    views = {"main": _tree(_MAX_SIZE), "fork": _tree(_MAX_SIZE, fork_at=_FORK_AT)}
    signed = {}
    for view, tree in views.items():
        for size in range(_MAX_SIZE + 1):
            text = Checkpoint(ORIGIN, size, tree.root(size)).text()
            signed[(view, size)] = sign_note(text, keys.signers).to_bytes()
    return signed


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["main", "fork"]),
            st.integers(0, _MAX_SIZE),
            st.sampled_from(["current", "current", "zero", "other"]),
            st.integers(0, _MAX_SIZE),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_the_cosigned_sizes_only_grow_along_one_view(
    steps: list[tuple[str, int, str, int]],
    signed_views: dict[tuple[str, int], bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    keys = LogNoteKeys.from_seeds(ORIGIN, bytes(range(32)), bytes(range(1, 33)))
    trees = {"main": _tree(_MAX_SIZE), "fork": _tree(_MAX_SIZE, fork_at=_FORK_AT)}
    directory = tmp_path_factory.mktemp("prop")
    init_witness(directory / "w", WITNESS)
    config = load_witness_config(directory / "w" / CONFIG_FILE)
    witness = Witness(
        config.cosigners(lambda: NOW), {ORIGIN: keys.verifiers()}, WitnessState(directory / "s")
    )
    try:
        cosigned: list[tuple[str, int]] = []
        for view, size, claim, other in steps:
            current = cosigned[-1][1] if cosigned else 0
            old = {"current": current, "zero": 0, "other": other}[claim]
            # The log proves from the old size in its own view (a proof for a fork is its own).
            proof = trees[view].consistency_proof(old, size) if 0 < old < size else []
            answer = witness.add_checkpoint(
                format_add_checkpoint(old, proof, signed_views[(view, size)])
            )
            assert answer.status in (200, 400, 409, 422), answer
            if answer.status == 200:
                cosigned.append((view, size))
            elif answer.status == 409:
                assert answer.body == f"{current}\n".encode()
        # Each cosigned checkpoint extends the one before: the same view, or a size before
        # the split (where both views are the same tree).
        for (view1, size1), (view2, size2) in itertools.pairwise(cosigned):
            assert size1 <= size2
            assert view1 == view2 or size1 <= _FORK_AT, (cosigned, steps)
    finally:
        witness.state.close()
