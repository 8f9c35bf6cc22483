"""C2SP tlog-policy: the spec's example policy as a known-answer test, each rule of the file
format broken once (a mutation probe per rule), the quorum evaluated against a reference
formula over every subset, and ``check`` on real Ed25519 cosignatures built by hand from the
tlog-cosignature message (so the test does not trust the cosigner it checks)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from registry.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    Ed25519Signer,
    Note,
    NoteError,
    NoteSignature,
    parse_vkey,
    sign_note,
    vkey,
)
from registry.witnesspolicy import (
    MAX_POLICY_BYTES,
    MAX_WITNESSES,
    InvalidWitnessPolicy,
    QuorumNotReached,
    parse_policy,
)

ORIGIN = "example.com/behind-the-sofa"
CHECKPOINT_TEXT = f"{ORIGIN}\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
NAMES = ["X1", "X2", "X3", "Y1", "Y2", "Y3"]


def _private(seed: int) -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)


def _public(seed: int) -> bytes:
    return _private(seed).public_key().public_bytes_raw()


def _vkey(name: str, sig_type: int, public_key: bytes) -> str:
    """A vkey built from the signed-note spec by hand, not by ``registry.note.vkey``."""
    key_id = hashlib.sha256(name.encode() + b"\n" + bytes([sig_type]) + public_key).digest()[:4]
    material = base64.b64encode(bytes([sig_type]) + public_key).decode()
    return f"{name}+{key_id.hex()}+{material}"


def _witness_vkey(index: int) -> str:
    return _vkey(f"witness.example/{NAMES[index]}", SIG_COSIGNATURE_V1, _public(10 + index))


LOG_VKEY = _vkey(ORIGIN, SIG_ED25519, _public(1))
W = [_witness_vkey(i) for i in range(6)]

# The spec's example, keys filled in, with its blank lines and a comment kept.
EXAMPLE = f"""log {LOG_VKEY}

witness X1 {W[0]}
witness X2 {W[1]}
witness X3 {W[2]}
group X-witnesses 2 X1 X2 X3

witness Y1 {W[3]}
witness Y2 {W[4]}
witness Y3 {W[5]}
# The Y operator's witnesses
group Y-witnesses any Y1 Y2 Y3

group X-and-Y all X-witnesses Y-witnesses
quorum X-and-Y
"""


def test_spec_example_parses_to_its_structure() -> None:
    policy = parse_policy(EXAMPLE)
    assert [log.verifier.name for log in policy.logs] == [ORIGIN]
    assert [w.name for w in policy.witnesses] == NAMES
    assert [w.verifier.name for w in policy.witnesses] == [f"witness.example/{n}" for n in NAMES]
    assert all(w.url is None for w in policy.witnesses)
    assert [(g.name, g.threshold, g.members, g.k) for g in policy.groups] == [
        ("X-witnesses", "2", ("X1", "X2", "X3"), 2),
        ("Y-witnesses", "any", ("Y1", "Y2", "Y3"), 1),
        ("X-and-Y", "all", ("X-witnesses", "Y-witnesses"), 2),
    ]
    assert policy.quorum == "X-and-Y"


def test_spec_example_quorum_matches_the_reference_over_every_subset() -> None:
    policy = parse_policy(EXAMPLE)
    for count in range(len(NAMES) + 1):
        for subset in itertools.combinations(NAMES, count):
            xs = sum(name.startswith("X") for name in subset)
            ys = sum(name.startswith("Y") for name in subset)
            # The spec's own words: two of the X-witnesses and one of the Y-witnesses.
            assert policy.satisfied(subset) == (xs >= 2 and ys >= 1), subset


def test_satisfied_ignores_names_that_are_not_witnesses() -> None:
    policy = parse_policy(EXAMPLE)
    # A group's name is not a witness that cosigned; nor is an unknown name.
    assert not policy.satisfied(["X-witnesses", "Y-witnesses", "X-and-Y", "Z9"])


def test_canonical_text_known_answer_and_round_trip() -> None:
    policy = parse_policy(EXAMPLE)
    expected = (
        f"log {LOG_VKEY}\n"
        + "".join(f"witness {n} {W[i]}\n" for i, n in enumerate(NAMES))
        + "group X-witnesses 2 X1 X2 X3\n"
        "group Y-witnesses any Y1 Y2 Y3\n"
        "group X-and-Y all X-witnesses Y-witnesses\n"
        "quorum X-and-Y\n"
    )
    assert policy.to_text() == expected
    assert parse_policy(policy.to_text()).to_text() == expected


def test_whitespace_tabs_urls_and_a_missing_final_newline() -> None:
    text = (
        f"\t log\t{LOG_VKEY}   https://log.example/ \t\n"
        "   # an indented comment\n"
        " \t \n"
        f"witness\tA {W[0]} https://w.example/a\n"
        f"witness B\t\t{W[1]}\n"
        "group g 02 A B\n"
        "quorum\tg"
    )
    policy = parse_policy(text)
    assert policy.logs[0].url == "https://log.example/"
    assert [(w.name, w.url) for w in policy.witnesses] == [
        ("A", "https://w.example/a"),
        ("B", None),
    ]
    assert policy.groups[0].threshold == "2"  # decimal, written back without the zero
    assert policy.to_text().splitlines()[-2:] == ["group g 2 A B", "quorum g"]


def test_quorum_none_needs_no_witness_and_a_single_witness_quorum() -> None:
    assert parse_policy("quorum none\n").satisfied([])
    single = parse_policy(f"witness A {W[0]}\nquorum A\n")
    assert not single.satisfied([])
    assert single.satisfied(["A"])


def test_names_are_opaque_octets() -> None:
    # "K" and the Kelvin sign (U+212A) are different names; so are "a" and "a\xa0" (a
    # no-break space is not a separator).
    policy = parse_policy(
        f"witness K {W[0]}\nwitness \u212a {W[1]}\nwitness a\u00a0 {W[2]}\n"
        "group g all K \u212a a\u00a0\nquorum g\n".encode()
    )
    assert [w.name for w in policy.witnesses] == ["K", "\u212a", "a\u00a0"]
    assert not policy.satisfied(["K", "\u212a", "a"])
    assert policy.satisfied(["K", "\u212a", "a\u00a0"])
    # A name that is not UTF-8 is still a name, and round-trips.
    raw = f"witness \xff {W[0]}\nquorum \xff\n".encode("latin-1")
    assert parse_policy(raw).to_text().encode("utf-8", "surrogateescape") == raw


BASE = f"witness A {W[0]}\nwitness B {W[1]}\n"

# Each rule of the spec broken once; (probe name, policy text, words the error must say).
MUTATIONS = [
    ("no-quorum", BASE, "quorum line"),
    ("two-quorums", BASE + "quorum A\nquorum B\n", "exactly one quorum"),
    ("quorum-undefined", BASE + "quorum C\n", "not defined"),
    ("quorum-before-definition", "quorum A\n" + BASE, "not defined"),
    ("member-before-definition", f"group g any A B\n{BASE}quorum g\n", "not defined"),
    ("group-refers-to-itself", BASE + "group g any A g\nquorum g\n", "not defined"),
    ("member-twice", BASE + "group g any A A\nquorum g\n", "twice"),
    ("none-as-member", BASE + "group g any A none\nquorum g\n", "'none'"),
    ("witness-named-none", f"witness none {W[0]}\nquorum none\n", "already defined"),
    ("group-named-none", BASE + "group none any A\nquorum A\n", "already defined"),
    ("name-twice", f"witness A {W[0]}\nwitness A {W[1]}\nquorum A\n", "already defined"),
    ("group-named-as-witness", BASE + "group A any B\nquorum A\n", "already defined"),
    ("group-without-members", BASE + "group g any\nquorum A\n", "number of items"),
    ("k-zero", BASE + "group g 0 A B\nquorum g\n", "threshold"),
    ("k-above-n", BASE + "group g 3 A B\nquorum g\n", "threshold"),
    ("k-signed", BASE + "group g +1 A B\nquorum g\n", "threshold"),
    ("k-word", BASE + "group g two A B\nquorum g\n", "threshold"),
    ("k-unicode-digit", BASE + "group g \u00b2 A B\nquorum g\n", "threshold"),
    ("duplicate-witness-key", f"witness A {W[0]}\nwitness B {W[0]}\nquorum A\n", "same key"),
    (
        "duplicate-witness-key-other-name",
        f"witness A {W[0]}\nwitness B {_vkey('other', SIG_COSIGNATURE_V1, _public(10))}\n"
        "quorum A\n",
        "same key",
    ),
    (
        "duplicate-log-key-other-name",
        f"log {LOG_VKEY}\nlog {_vkey('other.example/log', SIG_ED25519, _public(1))}\nquorum none\n",
        "twice",
    ),
    ("witness-with-log-key-type", f"witness A {LOG_VKEY}\nquorum A\n", "cosignature type"),
    ("bad-vkey", f"witness A {W[0][:-4]}AAA=\nquorum A\n", "vkey"),
    ("vkey-wrong-key-id", f"witness A {W[0].replace('+', '+0', 1)[:-1]}\nquorum A\n", "vkey"),
    ("log-without-key", "log\nquorum none\n", "number of items"),
    ("log-extra-item", f"log {LOG_VKEY} https://l/ extra\nquorum none\n", "number of items"),
    ("witness-extra-item", f"witness A {W[0]} https://a/ x\nquorum A\n", "number of items"),
    ("witness-without-key", "witness A\nquorum none\n", "number of items"),
    ("quorum-two-names", BASE + "quorum A B\n", "number of items"),
    ("unknown-line", BASE + "witnesses C\nquorum A\n", "unknown line type"),
    ("keyword-case", BASE + "Quorum A\n", "unknown line type"),
    ("crlf", BASE.replace("\n", "\r\n") + "quorum A\r\n", "0x0d"),
    ("nul", BASE + "quorum A\x00\n", "0x00"),
    ("vertical-tab-separator", BASE + "quorum\x0bA\n", "0x0b"),
    ("form-feed", BASE + "\x0c\nquorum A\n", "0x0c"),
    ("del", BASE + "quorum A\x7f\n", "0x7f"),
]


@pytest.mark.parametrize(
    ("text", "words"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS]
)
def test_each_rule_broken_once_is_refused(text: str, words: str) -> None:
    with pytest.raises(InvalidWitnessPolicy) as raised:
        parse_policy(text)
    assert words in raised.value.detail
    assert "\n" not in raised.value.detail


def test_the_error_names_the_line() -> None:
    with pytest.raises(InvalidWitnessPolicy, match=r"^line 4: "):
        parse_policy(BASE + "# fine\ngroup g 3 A B\nquorum g\n")


def test_size_and_count_limits() -> None:
    with pytest.raises(InvalidWitnessPolicy, match="at most"):
        parse_policy("#" * MAX_POLICY_BYTES + "\nquorum none\n")
    lines = [
        f"witness w{i} {_vkey(f'w{i}', SIG_COSIGNATURE_V1, _public(100 + i))}\n"
        for i in range(MAX_WITNESSES + 1)
    ]
    assert len(parse_policy("".join(lines[:-1]) + "quorum w0\n").witnesses) == MAX_WITNESSES
    with pytest.raises(InvalidWitnessPolicy, match=f"at most {MAX_WITNESSES} witnesses"):
        parse_policy("".join(lines) + "quorum w0\n")


# ---- check: cosignatures on a checkpoint note -------------------------------------------


def _cosign(index: int, text: str = CHECKPOINT_TEXT, timestamp: int = 1679315147) -> NoteSignature:
    """A cosignature/v1 line made from tlog-cosignature's message definition by hand."""
    verifier = parse_vkey(W[index])
    message = f"cosignature/v1\ntime {timestamp}\n{text}".encode()
    signature = struct.pack(">Q", timestamp) + _private(10 + index).sign(message)
    return NoteSignature(verifier.name, verifier.key_id, signature)


def _log_signed() -> Note:
    return sign_note(CHECKPOINT_TEXT, [Ed25519Signer(ORIGIN, _private(1))])


def test_check_returns_the_witnesses_whose_cosignatures_verify() -> None:
    policy = parse_policy(EXAMPLE)
    note = _log_signed().with_signatures(_cosign(0), _cosign(2), _cosign(4))
    assert policy.check(note) == ("X1", "X3", "Y2")


def test_check_below_the_quorum_names_who_is_missing() -> None:
    policy = parse_policy(EXAMPLE)
    note = _log_signed().with_signatures(_cosign(0), _cosign(3))
    with pytest.raises(QuorumNotReached) as raised:
        policy.check(note)
    assert isinstance(raised.value, NoteError)
    assert "cosigned by X1, Y1; missing X2, X3, Y2, Y3" in raised.value.detail


def test_check_a_failing_cosignature_rejects_the_note() -> None:
    policy = parse_policy(EXAMPLE)
    good = _cosign(1)
    flipped = bytearray(good.signature)
    flipped[20] ^= 0x01
    bad = NoteSignature(good.name, good.key_id, bytes(flipped))
    note = _log_signed().with_signatures(_cosign(0), bad, _cosign(2), _cosign(3))
    with pytest.raises(NoteError, match=r"witness\.example/X2"):
        policy.check(note)


def test_check_a_cosignature_of_another_checkpoint_fails() -> None:
    policy = parse_policy(f"witness A {W[0]}\nquorum A\n")
    other = CHECKPOINT_TEXT.replace("20852163", "20852164")
    with pytest.raises(NoteError, match="fails"):
        policy.check(_log_signed().with_signatures(_cosign(0, text=other)))


def test_check_ignores_unknown_lines() -> None:
    policy = parse_policy(f"witness A {W[0]}\nquorum A\n")
    unknown = NoteSignature("stranger.example", 0x01020304, b"\x00" * 8 + b"\x01" * 64)
    # A line with a known name but another key id is unknown too: it is not the witness's key.
    other_id = NoteSignature("witness.example/X1", 0, b"\x00" * 72)
    note = _log_signed().with_signatures(unknown, other_id, _cosign(0))
    assert policy.check(note) == ("A",)


def test_check_requires_a_listed_log_when_the_policy_lists_logs() -> None:
    with_log = parse_policy(f"log {LOG_VKEY}\nwitness A {W[0]}\nquorum A\n")
    without_log = parse_policy(f"witness A {W[0]}\nquorum A\n")
    other_log = sign_note(CHECKPOINT_TEXT, [Ed25519Signer(ORIGIN, _private(2))])
    note = other_log.with_signatures(_cosign(0))
    with pytest.raises(NoteError, match="no log of the policy"):
        with_log.check(note)
    assert without_log.check(note) == ("A",)
    assert with_log.check(_log_signed().with_signatures(_cosign(0))) == ("A",)


def test_check_with_quorum_none_accepts_no_cosignature() -> None:
    assert parse_policy(f"log {LOG_VKEY}\nquorum none\n").check(_log_signed()) == ()


def test_vkeys_written_back_are_the_vkeys_read() -> None:
    # registry.note.vkey re-encodes what parse_vkey read: the canonical text keeps the keys.
    for text in [LOG_VKEY, *W]:
        assert vkey(parse_vkey(text)) == text


def test_ml_dsa_44_witnesses_count_and_a_failing_one_rejects() -> None:
    from cryptography.hazmat.primitives.asymmetric import mldsa

    from registry.cosignature import MLDSA44Cosigner

    cosigner = MLDSA44Cosigner(
        "witness.example/pq",
        mldsa.MLDSA44PrivateKey.from_seed_bytes(b"\x09" * 32),
        clock=lambda: 1679315147,
    )
    policy = parse_policy(f"witness pq {vkey(cosigner.verifier())}\nwitness A {W[0]}\nquorum pq\n")
    line = cosigner.sign(CHECKPOINT_TEXT)
    assert policy.check(_log_signed().with_signatures(line)) == ("pq",)
    with pytest.raises(QuorumNotReached, match="missing pq"):
        policy.check(_log_signed().with_signatures(_cosign(0)))
    # An ML-DSA-44 cosignature of another size under the same key: the note is refused.
    other = cosigner.sign(CHECKPOINT_TEXT.replace("20852163", "20852162"))
    with pytest.raises(NoteError, match=r"witness\.example/pq"):
        policy.check(_log_signed().with_signatures(other))
