"""The ``c2sp.org/tlog-proof@v1`` format (``verifier.tlogproof``): the spec's example layout as a
known answer (its elided signatures made real with fixed keys), round trips, tracemark's
``extra``, and every refusal of the parser (bounds, leading zeros, non-canonical base64)."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from registry.canonicaljson import canonical_json
from registry.checkpoint import Checkpoint
from registry.cosignature import CosignerV1
from registry.note import Ed25519Signer, parse_note, verify_note
from verifier.tlogproof import (
    EXTRA_FORMAT,
    HEADER,
    MAX_EXTRA_BYTES,
    MAX_PROOF_LINES,
    MAX_TLOG_PROOF_BYTES,
    MalformedTlogProof,
    ProofExtra,
    TlogProof,
    is_tlog_proof,
)

# c2sp.org/tlog-proof's example, up to its checkpoint's signature lines (which it elides).
SPEC_HEAD = (
    "c2sp.org/tlog-proof@v1\n"
    "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
    "index 73894\n"
    "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
    "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
    "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
    "RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
    "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
    "\n"
)
SPEC_CHECKPOINT_TEXT = (
    "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
)
SPEC_NAMES = ("example.com/fancylog", "witness1.example", "witness2.example", "witness3.example")

# The example with real signatures: Ed25519 keys from SHA-256(name) seeds, the witnesses'
# cosignature/v1 at time 1700000000. Ed25519 is deterministic, so these bytes are fixed;
# ``test_spec_example_signatures_are_real`` makes them again from the seeds.
SPEC_PROOF = (
    SPEC_HEAD
    + SPEC_CHECKPOINT_TEXT
    + "\n"
    + "\u2014 example.com/fancylog 7TVablH9lWqEBCCAegODX8OvlVjzNLWRzvwwA/MoKNho4yEFnCaMwJDJsZTRx"
    "AsgTmbQiY4IlNrxadJMh+eqE5hRAQw=\n"
    "\u2014 witness1.example 8rqXlgAAAABlU/EAmWpo4hj+CzOu9ehKBnSQCKrxEyZv+OpqMCpcZ8hd1L788WhFb5k"
    "ScIV1wpvfo3Ufs9pdFw1nyAfwxvdwQaK6Dg==\n"
    "\u2014 witness2.example 8v3YTwAAAABlU/EA+HChnE2ywjtwWuTMkWwueLe6sV0nGtUvKH+7H/td4Qy1Ca8UEE/"
    "FDN2A2MBlLhxOyKxc6lszVl8gnVYxsy+yDw==\n"
    "\u2014 witness3.example +QqT5QAAAABlU/EAMO3Ngd8+usf983B09+yCExebSwqmwH1lkDBvO1tR/SLB2/4BhMX"
    "pH9y+8FMgRYnTsuvhYjx83wMRLALpKDIOAA==\n"
)
TIMESTAMP = 1_700_000_000


def _key(name: str) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


def _spec_signers() -> tuple[Ed25519Signer, list[CosignerV1]]:
    log = Ed25519Signer(SPEC_NAMES[0], _key(SPEC_NAMES[0]))
    witnesses = [CosignerV1(name, _key(name), clock=lambda: TIMESTAMP) for name in SPEC_NAMES[1:]]
    return log, witnesses


def _spec_proof_made() -> str:
    log, witnesses = _spec_signers()
    lines = [log.sign(SPEC_CHECKPOINT_TEXT), *(w.sign(SPEC_CHECKPOINT_TEXT) for w in witnesses)]
    return SPEC_HEAD + SPEC_CHECKPOINT_TEXT + "\n" + "".join(line.line() for line in lines)


# -- the known answer ------------------------------------------------------------------------


def test_spec_example_signatures_are_real() -> None:
    """The fixed text is the spec's layout with signatures the fixed keys really make, and
    they verify (the key ids of the spec's elided lines are its own: names hash differently)."""
    assert _spec_proof_made() == SPEC_PROOF
    proof = TlogProof.parse(SPEC_PROOF.encode())
    note = parse_note(proof.checkpoint)
    log, witnesses = _spec_signers()
    verified = verify_note(note, [log.verifier(), *(w.verifier() for w in witnesses)])
    assert [v.name for v in verified] == list(SPEC_NAMES)


def test_spec_example_parses_and_re_emits_byte_for_byte() -> None:
    proof = TlogProof.parse(SPEC_PROOF.encode())
    assert proof.index == 73894
    assert proof.extra == base64.b64decode("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ")
    assert proof.extra.startswith(b"age-v1.2.1-darwin-arm64.tar.gz")
    assert len(proof.inclusion_proof) == 5
    assert proof.inclusion_proof[0] == base64.b64decode(
        "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ="
    )
    assert proof.inclusion_proof[-1].hex().startswith("0070a2a17f67")
    checkpoint = Checkpoint.parse(parse_note(proof.checkpoint).text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/fancylog", 109482)
    assert proof.checkpoint == SPEC_PROOF.split("\n\n", 1)[1].encode()
    assert proof.to_bytes() == SPEC_PROOF.encode()
    assert is_tlog_proof(SPEC_PROOF.encode())


def test_without_extra_and_without_proof_lines() -> None:
    """Both are optional: a one-leaf tree's proof is empty, and ``extra`` may be omitted."""
    text = HEADER + "\nindex 0\n\n" + SPEC_PROOF.split("\n\n", 1)[1]
    proof = TlogProof.parse(text)
    assert (proof.index, proof.inclusion_proof, proof.extra) == (0, (), None)
    assert proof.to_bytes() == text.encode()


@given(
    index=st.integers(0, 2**64 - 2),
    proof=st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PROOF_LINES),
    extra=st.none() | st.binary(max_size=300),
)
def test_round_trip(index: int, proof: list[bytes], extra: bytes | None) -> None:
    original = TlogProof(index, tuple(proof), SPEC_PROOF.split("\n\n", 1)[1].encode(), extra)
    data = original.to_bytes()
    assert TlogProof.parse(data) == original
    assert TlogProof.parse(data).to_bytes() == data


# -- refusals ----------------------------------------------------------------------------------


def _mutated(old: str, new: str) -> str:
    assert SPEC_PROOF.count(old) == 1
    return SPEC_PROOF.replace(old, new)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("c2sp.org/tlog-proof@v2" + SPEC_PROOF[len(HEADER) :], "not a tlog-proof"),
        (_mutated("index 73894", "index 073894"), "without leading zeros"),
        (_mutated("index 73894", "index -1"), "without leading zeros"),
        (_mutated("index 73894", "index  73894"), "without leading zeros"),
        (_mutated("index 73894", "index 18446744073709551615"), "out of range"),
        (_mutated("index 73894\n", ""), "index line"),
        (_mutated("extra YWdl", "extra  YWdl"), "base64"),
        (_mutated("extra YWdl", "extra YW=l"), "base64"),
        (
            _mutated(
                "extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ",
                "extra YR==",
            ),
            "canonical",
        ),
        (
            _mutated(
                "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",
                "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlR=",
            ),
            "canonical",
        ),
        (
            _mutated(
                "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=",
                "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPl",
            ),
            "32-byte hash",
        ),
        (
            _mutated(
                "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n",
                "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\r\n",
            ),
            "32-byte hash",
        ),
        (
            _mutated(
                "B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=",
                "B95lDa8R83lS8n0eG-o0buTxRKQTYFi__1U8anccXmA=",
            ),
            "base64",
        ),
        (SPEC_HEAD.rstrip("\n") + "\n", "no empty line"),
        (SPEC_HEAD, "not a signed note"),
        (SPEC_HEAD + "\n" + SPEC_CHECKPOINT_TEXT, "not a signed note"),
        (SPEC_PROOF.rstrip("\n"), "not a signed note"),
        (SPEC_PROOF.encode().replace(b"fancylog\n1", b"fancylog\xff\n1"), "UTF-8"),
        (SPEC_PROOF.replace("index 73894", "index 7\u00b9"), "ASCII"),
    ],
)
def test_refused(text: str | bytes, reason: str) -> None:
    with pytest.raises(MalformedTlogProof, match=reason):
        TlogProof.parse(text)


def test_bounds() -> None:
    nodes = "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
    checkpoint = SPEC_PROOF.split("\n\n", 1)[1]
    at_most = HEADER + "\nindex 1\n" + nodes * MAX_PROOF_LINES + "\n" + checkpoint
    assert len(TlogProof.parse(at_most).inclusion_proof) == MAX_PROOF_LINES
    with pytest.raises(MalformedTlogProof, match="at most 64 lines"):
        TlogProof.parse(HEADER + "\nindex 1\n" + nodes * (MAX_PROOF_LINES + 1) + "\n" + checkpoint)
    huge = base64.b64encode(b"x" * (MAX_EXTRA_BYTES + 1)).decode()
    with pytest.raises(MalformedTlogProof, match="extra data is at most"):
        TlogProof.parse(HEADER + f"\nextra {huge}\nindex 1\n\n" + checkpoint)
    with pytest.raises(MalformedTlogProof, match="tlog-proof is at most"):
        TlogProof.parse(b"x" * (MAX_TLOG_PROOF_BYTES + 1))
    with pytest.raises(MalformedTlogProof, match="extra data is at most"):
        TlogProof(1, (), checkpoint.encode(), b"x" * (MAX_EXTRA_BYTES + 1))
    with pytest.raises(MalformedTlogProof, match="checkpoint is at most"):
        TlogProof(1, (), b"a\n" * 40_000, None)


# -- tracemark's extra ----------------------------------------------------------------------------

EXTRA = {
    "format": EXTRA_FORMAT,
    "version": 1,
    "kind": "REGISTER",
    "good_type": "file",
    "fingerprint": "0x" + "ab" * 32,
    "actor": "0x" + "11" * 20,
    "payload_hash": "0x" + "cd" * 32,
    "timestamp": 1_700_000_000,
    "payload": {"a": [1, 2], "b": "x"},
    "batch_proof": None,
}


def test_extra_parses_only_its_canonical_form() -> None:
    data = canonical_json(EXTRA)
    extra = ProofExtra.parse(data)
    assert extra.to_bytes() == data
    spaced = json.dumps(EXTRA).encode()
    with pytest.raises(MalformedTlogProof, match="canonical"):
        ProofExtra.parse(spaced)
    for key, value, reason in [
        ("format", "tracemark-tlog-extra/v2", "not a tracemark-tlog-extra/v1"),
        ("kind", "DELETE", "kind"),
        ("fingerprint", "0x12", "fingerprint"),
        ("unknown", 1, "unknown"),
    ]:
        with pytest.raises(MalformedTlogProof, match=reason):
            ProofExtra.parse(canonical_json({**EXTRA, key: value}))
    with pytest.raises(MalformedTlogProof, match="one JSON document"):
        ProofExtra.parse(data + b"{}")
    with pytest.raises(MalformedTlogProof, match="extra data is at most"):
        ProofExtra.parse(b" " * (MAX_EXTRA_BYTES + 1))
