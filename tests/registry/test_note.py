"""Signed notes, checkpoints and the log's note keys: known answers from the specs and the Go
reference implementation, mutation probes, and round trips."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import struct
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa
from hypothesis import given
from hypothesis import strategies as st

from registry.checkpoint import Checkpoint, open_checkpoint
from registry.cosignature import (
    CosignatureV1Verifier,
    CosignerV1,
    MLDSA44CosignatureVerifier,
    MLDSA44Cosigner,
    cosignature_timestamp,
    cosignature_v1_message,
    subtree_v1_message,
)
from registry.logkeys import (
    ED25519_KEY_FILE,
    MLDSA44_KEY_FILE,
    default_log_origin,
    load_log_note_keys,
)
from registry.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Ed25519Signer,
    Note,
    NoteError,
    NoteSignature,
    key_id,
    parse_note,
    parse_signature_lines,
    parse_vkey,
    sign_note,
    verify_note,
    vkey,
)

# golang.org/x/mod/sumdb/note's note_test.go: the PeterNeumann key, text and signature.
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_SIGNATURE_LINE = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdng"
    "otpRZb6KE6RyyBwJnAM=\n"
)
GO_NOTE = GO_TEXT + "\n" + GO_SIGNATURE_LINE

# c2sp.org/signed-note's own example.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi"
    "2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# c2sp.org/tlog-checkpoint's example text and tlog-cosignature's example witness line.
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_COSIGNATURE_LINE = (
    "\u2014 witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrD"
    "JsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


def _go_signer() -> Ed25519Signer:
    material = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert material[0] == SIG_ED25519
    return Ed25519Signer("PeterNeumann", ed25519.Ed25519PrivateKey.from_private_bytes(material[1:]))


def _ed25519(seed: int) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _mldsa(seed: int) -> mldsa.MLDSA44PrivateKey:
    return mldsa.MLDSA44PrivateKey.from_seed_bytes(bytes([seed]) * 32)


# -- known answers -------------------------------------------------------------------------------


def test_go_reference_note_verifies_and_our_signer_reproduces_it_byte_for_byte() -> None:
    verifier = parse_vkey(GO_VKEY)
    assert (verifier.name, verifier.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert vkey(verifier) == GO_VKEY
    note = parse_note(GO_NOTE)
    assert note.text == GO_TEXT
    assert verify_note(note, [verifier]) == (verifier,)
    signer = _go_signer()
    assert signer.key_id == 0xC74F20A3
    assert sign_note(GO_TEXT, [signer]).to_bytes() == GO_NOTE.encode()


def test_signed_note_spec_example_verifies() -> None:
    verifier = parse_vkey(SPEC_VKEY)
    note = parse_note(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert verify_note(note, [verifier]) == (verifier,)
    assert note.to_bytes() == SPEC_NOTE.encode()


def test_key_id_is_the_recommended_hash() -> None:
    public = parse_vkey(GO_VKEY).public_key
    digest = hashlib.sha256(b"PeterNeumann\n\x01" + public).digest()
    assert key_id("PeterNeumann", SIG_ED25519, public) == struct.unpack(">I", digest[:4])[0]


def test_spec_cosignature_line_carries_its_timestamp() -> None:
    (line,) = parse_signature_lines(SPEC_COSIGNATURE_LINE)
    assert line.name == "witness.example.com/w1"
    # tlog-cosignature's example message says "time 1679315147".
    assert cosignature_timestamp(line.signature) == 1679315147
    assert line.line() == SPEC_COSIGNATURE_LINE


def test_cosignature_v1_message_is_the_spec_layout() -> None:
    assert cosignature_v1_message(SPEC_CHECKPOINT, 1679315147) == (
        b"cosignature/v1\ntime 1679315147\n" + SPEC_CHECKPOINT.encode()
    )


def test_subtree_v1_message_is_the_spec_struct() -> None:
    checkpoint = Checkpoint.parse(SPEC_CHECKPOINT)
    message = subtree_v1_message("w", 7, checkpoint)
    expected = (
        b"subtree/v1\n\x00"
        + b"\x01w"
        + (7).to_bytes(8, "big")
        + bytes([len("example.com/behind-the-sofa")])
        + b"example.com/behind-the-sofa"
        + (0).to_bytes(8, "big")
        + (20852163).to_bytes(8, "big")
        + checkpoint.root
    )
    assert message == expected


def test_deterministic_cosignature_v1_known_answer() -> None:
    # Ed25519 is deterministic: a fixed key, time and checkpoint give one line, pinned here
    # so a change of the signed message's layout cannot pass unnoticed.
    cosigner = CosignerV1("witness.example/w1", _ed25519(7), clock=lambda: 1679315147)
    line = cosigner.sign(SPEC_CHECKPOINT)
    message = cosignature_v1_message(SPEC_CHECKPOINT, 1679315147)
    _ed25519(7).public_key().verify(line.signature[8:], message)
    assert line.signature[:8] == (1679315147).to_bytes(8, "big")
    assert line.key_id == key_id(
        "witness.example/w1", SIG_COSIGNATURE_V1, _ed25519(7).public_key().public_bytes_raw()
    )


# -- parsing refusals ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        GO_TEXT,  # no signature block
        GO_TEXT + "\n",  # blank line, no signatures
        GO_TEXT + "\n" + GO_SIGNATURE_LINE[:-1],  # last line without newline
        GO_TEXT + "\n" + GO_SIGNATURE_LINE.replace("\u2014 ", "- "),  # not an em dash
        GO_TEXT + "\n" + GO_SIGNATURE_LINE.replace("PeterNeumann", "Peter+Neumann"),
        GO_TEXT + "\n" + "\u2014 PeterNeumann AAAA\n",  # too short for a key id and signature
        GO_TEXT + "\n" + "\u2014 PeterNeumann not*base64\n",
        GO_TEXT.replace("problem,", "problem,\x07") + "\n" + GO_SIGNATURE_LINE,  # control char
        b"\xff\xfe\n\n" + GO_SIGNATURE_LINE.encode(),  # not UTF-8
        GO_TEXT + "\n" + GO_SIGNATURE_LINE * 65,  # too many signatures
    ],
)
def test_malformed_notes_are_refused(data: str | bytes) -> None:
    with pytest.raises(NoteError):
        parse_note(data)


@pytest.mark.parametrize(
    "text",
    [
        GO_VKEY.replace("+c74f20a3+", "+c74f20a4+"),  # wrong key id
        GO_VKEY.replace("+c74f20a3+", "+C74F20A3+"),  # upper-case hex
        GO_VKEY.replace("+ARpc", "+Arpc"),  # another key: id no longer matches
        GO_VKEY.replace("+ARpc", "+BRpc"),  # unknown type byte
        "PeterNeumann+c74f20a3",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        GO_VKEY[:-4],  # truncated key
    ],
)
def test_malformed_vkeys_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(text)


# -- verification rules --------------------------------------------------------------------------


def test_every_byte_of_the_text_is_signed() -> None:
    verifier = parse_vkey(GO_VKEY)
    for index in range(len(GO_TEXT)):
        if GO_TEXT[index] == "\n":
            continue
        mutated = GO_TEXT[:index] + chr(ord(GO_TEXT[index]) ^ 1) + GO_TEXT[index + 1 :]
        with pytest.raises(NoteError):
            verify_note(parse_note(mutated + "\n" + GO_SIGNATURE_LINE), [verifier])


def test_unknown_lines_are_ignored_and_a_known_bad_line_rejects() -> None:
    verifier = parse_vkey(GO_VKEY)
    stranger = Ed25519Signer("PeterNeumann", _ed25519(9))  # same name, other key id
    note = parse_note(GO_NOTE).with_signatures(stranger.sign(GO_TEXT))
    assert verify_note(note, [verifier]) == (verifier,)
    good = note.signatures[0]
    forged = NoteSignature(good.name, good.key_id, bytes(64))
    with pytest.raises(NoteError, match="fails"):
        verify_note(note.with_signatures(forged), [verifier])


def test_a_note_no_known_key_signed_is_refused() -> None:
    other = Ed25519Signer("Other", _ed25519(3)).verifier()
    with pytest.raises(NoteError, match="no signature from a known key"):
        verify_note(parse_note(GO_NOTE), [other])


def test_with_signatures_drops_exact_duplicates() -> None:
    note = parse_note(GO_NOTE)
    assert note.with_signatures(note.signatures[0]) == note


def test_sign_note_refuses_texts_a_checkpoint_never_has() -> None:
    signer = _go_signer()
    for text in ("no newline", "a\n\nb\n", "\nleading\n", "bell\x07\n"):
        with pytest.raises(NoteError):
            sign_note(text, [signer])


# -- cosignatures --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ed25519", "mldsa44"])
def test_cosignatures_verify_and_bind_name_time_and_checkpoint(kind: str) -> None:
    if kind == "ed25519":
        cosigner: CosignerV1 | MLDSA44Cosigner = CosignerV1(
            "w.example/1", _ed25519(1), clock=lambda: 1700000000
        )
    else:
        cosigner = MLDSA44Cosigner("w.example/1", _mldsa(1), clock=lambda: 1700000000)
    verifier = cosigner.verifier()
    assert parse_vkey(vkey(verifier)).key_id == verifier.key_id
    line = cosigner.sign(SPEC_CHECKPOINT)
    assert verifier.verify(SPEC_CHECKPOINT, line.signature)
    assert cosignature_timestamp(line.signature) == 1700000000
    # Another time, another checkpoint, one flipped byte: all refused.
    later = (1700000001).to_bytes(8, "big") + line.signature[8:]
    assert not verifier.verify(SPEC_CHECKPOINT, later)
    other = SPEC_CHECKPOINT.replace("20852163", "20852164")
    assert not verifier.verify(other, line.signature)
    flipped = line.signature[:-1] + bytes([line.signature[-1] ^ 1])
    assert not verifier.verify(SPEC_CHECKPOINT, flipped)
    assert not verifier.verify(SPEC_CHECKPOINT, line.signature[:-1])


def test_mldsa_cosignature_commits_to_the_cosigner_name() -> None:
    key = _mldsa(2)
    line = MLDSA44Cosigner("w.example/a", key, clock=lambda: 5).sign(SPEC_CHECKPOINT)
    renamed = MLDSA44CosignatureVerifier("w.example/b", key.public_key().public_bytes_raw())
    assert not renamed.verify(SPEC_CHECKPOINT, line.signature)


def test_an_ed25519_cosignature_is_not_a_plain_note_signature() -> None:
    key = _ed25519(4)
    line = CosignerV1("w", key, clock=lambda: 1).sign(SPEC_CHECKPOINT)
    plain = Ed25519Signer("w", key).verifier()
    assert not plain.verify(SPEC_CHECKPOINT, line.signature[8:])
    assert CosignatureV1Verifier("w", key.public_key().public_bytes_raw()).verify(
        SPEC_CHECKPOINT, line.signature
    )


def test_cosigners_sign_only_checkpoints() -> None:
    with pytest.raises(NoteError):
        CosignerV1("w", _ed25519(5)).sign("not a checkpoint\n")


# -- checkpoints ---------------------------------------------------------------------------------


def test_spec_checkpoint_parses_and_prints_back() -> None:
    checkpoint = Checkpoint.parse(SPEC_CHECKPOINT)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == SPEC_CHECKPOINT


@pytest.mark.parametrize(
    "text",
    [
        "origin\n10\n",  # no root
        "origin\n010\n" + base64.b64encode(bytes(32)).decode() + "\n",  # leading zero
        "origin\n-1\n" + base64.b64encode(bytes(32)).decode() + "\n",
        "origin\n10\n" + base64.b64encode(bytes(31)).decode() + "\n",  # short root
        "origin\n10\n" + base64.b64encode(bytes(32)).decode(),  # no final newline
        "origin\n10\n" + base64.b64encode(bytes(32)).decode() + "\n\n",  # empty extension
        "\n10\n" + base64.b64encode(bytes(32)).decode() + "\n",  # empty origin
        "origin\n１０\n" + base64.b64encode(bytes(32)).decode() + "\n",  # non-ASCII digits
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


@given(
    size=st.integers(min_value=0, max_value=2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(st.text(alphabet="abc xyz=", min_size=1, max_size=8), max_size=2),
)
def test_checkpoint_text_round_trips(size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint("log.example/x", size, root, tuple(extensions))
    assert Checkpoint.parse(checkpoint.text()) == checkpoint


# -- the log's keys ------------------------------------------------------------------------------


def test_log_keys_are_created_once_0600_and_sign_verifiable_checkpoints(tmp_path: Path) -> None:
    keys = load_log_note_keys(tmp_path, "127.0.0.1:8000/tlog")
    for name in (ED25519_KEY_FILE, MLDSA44_KEY_FILE):
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
    again = load_log_note_keys(tmp_path, "127.0.0.1:8000/tlog")
    assert again.vkeys() == keys.vkeys()
    checkpoint = Checkpoint("127.0.0.1:8000/tlog", 3, hashlib.sha256(b"r").digest())
    note = sign_note(checkpoint.text(), keys.signers)
    assert len(note.signatures) == 2
    opened, _ = open_checkpoint(note.to_bytes(), keys.verifiers(), origin="127.0.0.1:8000/tlog")
    assert opened == checkpoint
    with pytest.raises(NoteError, match="not"):
        open_checkpoint(note.to_bytes(), keys.verifiers(), origin="other.example/tlog")
    # Each of the two lines alone verifies (a verifier may know only one type).
    for signature, verifier in zip(note.signatures, keys.verifiers(), strict=True):
        assert verify_note(Note(note.text, (signature,)), [verifier]) == (verifier,)
    # The secrets never appear in the key objects' text.
    seed = (tmp_path / ED25519_KEY_FILE).read_text().strip()
    assert seed not in repr(keys) and seed not in "".join(keys.vkeys())


def test_default_origin_is_the_scheme_less_url_prefix() -> None:
    assert default_log_origin("http://127.0.0.1:8000") == "127.0.0.1:8000/tlog"
    assert default_log_origin("https://registry.example.com/") == "registry.example.com/tlog"


def test_a_cosigner_refuses_the_other_types_key() -> None:
    with pytest.raises(NoteError):
        CosignerV1("w", _mldsa(1))
    with pytest.raises(NoteError):
        MLDSA44Cosigner("w", _ed25519(1))
