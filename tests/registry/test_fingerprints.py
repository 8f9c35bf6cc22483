"""Fingerprints: the published normalisation vectors, code/file/item known answers, refusals.

The vectors are also published as tests/vectors/normalisation.json for other implementations;
regenerate it with ``python -m tests.registry.test_fingerprints`` after a *versioned* change.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import InvalidFingerprint, InvalidInput, MalformedCode
from registry.fingerprints import (
    CODE_DOMAIN,
    DASHES,
    ITEM_DOMAIN,
    MAX_CODE_LENGTH,
    MAX_ITEM_BYTES,
    WHITESPACE,
    CodeFingerprinter,
    GoodId,
    GoodType,
    Use,
    code_fingerprint,
    file_fingerprint,
    file_fingerprint_path,
    fingerprint_hex,
    item_fingerprint,
    normalise_code,
    parse_fingerprint,
    parse_good_type,
    parse_use,
)

VECTORS_FILE = Path(__file__).resolve().parents[1] / "vectors" / "normalisation.json"

# The domain tag, written out here rather than imported, so that editing the constant in
# registry/fingerprints.py fails these tests instead of silently moving every fingerprint.
PUBLISHED_CODE_DOMAIN = b"tracemark/code/v1\x00"
PUBLISHED_ITEM_DOMAIN = b"tracemark/item/v1\x00"

# (name, input, normalised): normalise(code) = upper(remove ws & dashes(NFKC(code))).
NORMALISATION_VECTORS: list[tuple[str, str, str]] = [
    ("ascii-hyphens", "ABCD-1234-EFGH-5678", "ABCD1234EFGH5678"),
    ("lower-to-upper", "abcd-efgh", "ABCDEFGH"),
    ("ascii-spaces", " AB CD  12 ", "ABCD12"),
    ("tab-newline-cr", "AB\tCD\r\n12\n", "ABCD12"),
    ("vertical-tab-form-feed", "AB\vCD\f12", "ABCD12"),
    ("full-width-digits", "１２３４", "1234"),
    ("full-width-letters", "ａｂＣＤ", "ABCD"),
    ("full-width-hyphen-minus", "12\uff0d34", "1234"),
    ("small-hyphen-minus", "12\ufe6334", "1234"),
    ("sharp-s-upper-is-SS", "straße", "STRASSE"),
    ("en-dash", "12\u201334", "1234"),
    ("em-dash", "12\u201434", "1234"),
    ("minus-sign-u2212", "12\u221234", "1234"),
    ("superscript-minus-nfkc-to-u2212", "12\u207b34", "1234"),
    ("hyphen-u2010", "12\u201034", "1234"),
    ("non-breaking-hyphen", "12\u201134", "1234"),
    ("figure-dash", "12\u201234", "1234"),
    ("wave-dash-pd", "AB\u301cCD", "ABCD"),
    ("katakana-double-hyphen-pd", "ア\u30a0イ", "アイ"),
    ("no-break-space", "12\u00a034", "1234"),
    ("narrow-no-break-space", "12\u202f34", "1234"),
    ("ideographic-space", "12\u300034", "1234"),
    ("em-space", "12\u200334", "1234"),
    ("next-line-u0085", "12\u008534", "1234"),
    ("line-and-paragraph-separator", "12\u2028\u202934", "1234"),
    ("ogham-space-mark", "12\u168034", "1234"),
    ("ligature-fi", "\ufb01le", "FILE"),
    ("ligature-ff", "\ufb00", "FF"),
    ("ligature-st", "\ufb06", "ST"),
    ("roman-numeral-twelve", "\u216b", "XII"),
    ("circled-digits", "\u2460\u2461", "12"),
    ("circled-letter", "\u24b6", "A"),
    ("superscript-two", "X\u00b2", "X2"),
    ("combining-acute-composed", "e\u0301", "\u00c9"),
    ("precomposed-e-acute", "\u00e9", "\u00c9"),
    ("angstrom-sign", "\u212b", "\u00c5"),
    ("kelvin-sign", "\u212a", "K"),
    ("micro-sign-to-greek-mu", "\u00b5", "\u039c"),
    ("dotless-i", "\u0131", "I"),
    ("latin-small-i-locale-free", "i", "I"),
    ("greek-final-sigma", "\u03c2", "\u03a3"),
    ("dz-caron-digraph", "\u01c6", "D\u017d"),
    ("j-caron-upper-decomposes", "\u01f0", "J\u030c"),
    ("n-preceded-by-apostrophe", "\u0149", "\u02bcN"),
    ("half-width-katakana", "\uff71", "\u30a2"),
    ("hangul-jamo-composed", "\u1100\u1161", "\uac00"),
    # NFKC turns U+00A8 into space + combining diaeresis; the space is then removed and the
    # result is not renormalised, so the mark stays separate.
    ("spacing-diaeresis-not-recomposed", "E\u00a8", "E\u0308"),
    ("max-length-ascii", "A" * MAX_CODE_LENGTH, "A" * MAX_CODE_LENGTH),
]

# (name, input): refused with MalformedCode.
REFUSED_VECTORS: list[tuple[str, str]] = [
    ("empty", ""),
    ("only-dashes", "---"),
    ("only-whitespace", " \t\u3000\n"),
    ("only-minus-signs", "\u2212\u2013"),
    ("too-long", "A" * (MAX_CODE_LENGTH + 1)),
    ("too-long-with-dashes", "-" * (MAX_CODE_LENGTH + 1)),
    ("nul-cc", "12\x0034"),
    ("unit-separator-cc-not-white-space", "12\x1f34"),
    ("delete-cc", "12\x7f34"),
    ("c1-control", "12\x9b34"),
    ("zero-width-space-cf", "12\u200b34"),
    ("zero-width-joiner-cf", "12\u200d34"),
    ("soft-hyphen-cf", "12\u00ad34"),
    ("right-to-left-override-cf", "12\u202e34"),
    ("byte-order-mark-cf", "\ufeff1234"),
    ("private-use-co", "12\ue00034"),
    ("supplementary-private-use-co", "12\U000f000034"),
    ("unassigned-cn", "12\u037834"),
    ("noncharacter-cn", "12\ufffe34"),
    ("lone-surrogate-cs", "12\ud80034"),
]

CODE_KEY = bytes(range(32))
"""The published test code key: 0x000102...1f."""

CODE_FINGERPRINT_CODES = ["ABCD-1234-EFGH-5678", "abcd1234efgh5678", "１２３４", "straße", "0"]


def expected_code_fingerprint(normalised: str) -> str:
    """The code fingerprint computed from the spec alone, with the stdlib's HMAC."""
    message = PUBLISHED_CODE_DOMAIN + normalised.encode("utf-8")
    return hmac.new(CODE_KEY, message, hashlib.sha256).hexdigest()


def reference_normalise(code: str) -> str:
    """A slow, direct reading of the spec, asking unicodedata at run time."""
    if len(code) > MAX_CODE_LENGTH:
        raise MalformedCode("too long")
    for char in code:
        if unicodedata.category(char).startswith("C") and char not in WHITESPACE:
            raise MalformedCode("forbidden character")
    normalised = "".join(
        char
        for char in unicodedata.normalize("NFKC", code)
        if char not in WHITESPACE and unicodedata.category(char) != "Pd" and char != "\u2212"
    ).upper()
    if not normalised:
        raise MalformedCode("empty")
    return normalised


# -- normalisation --------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "code", "expected"), NORMALISATION_VECTORS)
def test_normalisation_vectors(name: str, code: str, expected: str) -> None:
    assert normalise_code(code) == expected
    assert reference_normalise(code) == expected


@pytest.mark.parametrize(("name", "code"), REFUSED_VECTORS)
def test_refused_codes(name: str, code: str) -> None:
    with pytest.raises(MalformedCode):
        normalise_code(code)
    with pytest.raises(MalformedCode):
        code_fingerprint(CODE_KEY, code)
    with pytest.raises(MalformedCode):
        CodeFingerprinter(CODE_KEY).fingerprint(code)


@pytest.mark.parametrize(
    "code",
    ["SECRET-PIN-7731\u200b", "SECRET-PIN-7731\x00", "SECRET\ue000PIN", "SECRET" * 50],
)
def test_refusal_never_shows_the_code(code: str) -> None:
    with pytest.raises(MalformedCode) as caught:
        normalise_code(code)
    text = str(caught.value) + repr(caught.value) + caught.value.detail
    assert "SECRET" not in text
    assert "PIN" not in text


def test_refusal_says_where_and_what() -> None:
    with pytest.raises(MalformedCode, match=r"category Cf at position 2"):
        normalise_code("12\u200b34")


def test_non_string_code_is_refused() -> None:
    with pytest.raises(MalformedCode):
        normalise_code(b"ABCD")  # type: ignore[arg-type]


def test_character_sets_match_this_unicode_database() -> None:
    # The sets are pinned in the module; on the Unicode version they were taken from they must
    # equal what unicodedata says (a newer Unicode may only add characters, never move these).
    assert all(char.isspace() for char in WHITESPACE)
    python_space = {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}
    # Python's isspace also counts U+001C..U+001F, which Unicode's White_Space does not; they
    # are controls and refused before removal ever matters.
    assert python_space - WHITESPACE == {"\x1c", "\x1d", "\x1e", "\x1f"}
    assert all(unicodedata.category(c) == "Pd" for c in DASHES - {"\u2212"})
    if unicodedata.unidata_version == "14.0.0":
        pd = {chr(c) for c in range(sys.maxunicode + 1) if unicodedata.category(chr(c)) == "Pd"}
        assert pd | {"\u2212"} == DASHES


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=40))
def test_ascii_fast_path_equals_general_path(code: str) -> None:
    _assert_same_as_reference(code)


@settings(max_examples=300)
@given(st.text(max_size=40))
def test_any_text_equals_reference(code: str) -> None:
    _assert_same_as_reference(code)


@settings(max_examples=200)
@given(st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ0123456789abcdefgh- \t\u2013\u00a0", max_size=30))
def test_typical_codes_equal_reference(code: str) -> None:
    _assert_same_as_reference(code)


def _assert_same_as_reference(code: str) -> None:
    try:
        expected = reference_normalise(code)
    except MalformedCode:
        with pytest.raises(MalformedCode):
            normalise_code(code)
        return
    assert normalise_code(code) == expected


# -- code fingerprints ------------------------------------------------------------------------


def test_code_domain_is_the_published_one() -> None:
    assert CODE_DOMAIN == PUBLISHED_CODE_DOMAIN
    assert ITEM_DOMAIN == PUBLISHED_ITEM_DOMAIN


@pytest.mark.parametrize(("name", "code", "expected"), NORMALISATION_VECTORS)
def test_code_fingerprint_known_answers(name: str, code: str, expected: str) -> None:
    want = expected_code_fingerprint(expected)
    assert code_fingerprint(CODE_KEY, code).hex() == want
    assert CodeFingerprinter(CODE_KEY).fingerprint(code).hex() == want


def test_code_fingerprint_literal_vectors() -> None:
    # Pinned bytes (computed once with Python's hmac module from the spec), so that a change
    # to the domain tag, the key handling or the encoding cannot slip through.
    assert code_fingerprint(CODE_KEY, "ABCD-1234-EFGH-5678") == bytes.fromhex(
        "5950c301c669726d9ddf6811db2578913ba8de69acc646774888ecf80db6357b"
    )
    assert code_fingerprint(CODE_KEY, "straße") == bytes.fromhex(
        "8aaa6c533a94cce4764ab360da77598c0269580537ab410dbc09d753264e1f62"
    )


def test_equivalent_spellings_share_a_fingerprint() -> None:
    spellings = ["ABCD-1234", "abcd 1234", "ＡＢＣＤ－１２３４", "ab\u2013cd\u00a012\u221234"]
    assert len({code_fingerprint(CODE_KEY, code) for code in spellings}) == 1


@settings(max_examples=200)
@given(key=st.binary(min_size=32, max_size=32), code=st.text(min_size=1, max_size=40))
def test_fingerprinter_equals_stdlib_hmac(key: bytes, code: str) -> None:
    try:
        normalised = reference_normalise(code)
    except MalformedCode:
        return
    want = hmac.new(key, PUBLISHED_CODE_DOMAIN + normalised.encode(), hashlib.sha256).digest()
    fingerprinter = CodeFingerprinter(key)
    assert fingerprinter.fingerprint(code) == want
    assert fingerprinter.fingerprint_many([code, code]) == [want, want]
    assert code_fingerprint(key, code) == want


@pytest.mark.parametrize("key", [b"", bytes(31), bytes(33), "0" * 32, bytearray(32)])
def test_code_key_must_be_32_bytes(key: object) -> None:
    with pytest.raises(InvalidInput, match="32 bytes"):
        code_fingerprint(key, "ABCD")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="32 bytes"):
        CodeFingerprinter(key)  # type: ignore[arg-type]


def test_fingerprinter_repr_hides_the_key() -> None:
    key = bytes.fromhex("ab" * 32)
    assert "ab" not in repr(CodeFingerprinter(key)).lower().replace("fingerprinter", "")


def test_fingerprint_many_stops_at_first_malformed_code() -> None:
    with pytest.raises(MalformedCode):
        CodeFingerprinter(CODE_KEY).fingerprint_many(["ABCD", "\u200b", "EFGH"])


# -- files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 1024 * 1024, 3 * 1024 * 1024 + 17])
def test_file_fingerprint_equals_sha256sum(tmp_path: Path, size: int) -> None:
    path = tmp_path / "good.bin"
    path.write_bytes(os.urandom(size))
    output = subprocess.run(
        ["sha256sum", str(path)], check=True, capture_output=True, text=True
    ).stdout
    expected = output.split()[0]
    assert file_fingerprint_path(path).hex() == expected
    with path.open("rb") as stream:
        assert file_fingerprint(stream).hex() == expected


def test_file_fingerprint_size_limit() -> None:
    data = b"x" * 1000
    assert file_fingerprint(io.BytesIO(data), max_bytes=1000) == hashlib.sha256(data).digest()
    with pytest.raises(InvalidInput, match="larger than the limit of 999 bytes"):
        file_fingerprint(io.BytesIO(data), max_bytes=999)
    with pytest.raises(InvalidInput):
        file_fingerprint(io.BytesIO(data), max_bytes=-1)


def test_file_fingerprint_stops_reading_past_the_limit() -> None:
    class Endless(io.RawIOBase):
        reads = 0

        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            self.reads += 1
            return b"\x00" * size

    stream = Endless()
    with pytest.raises(InvalidInput):
        file_fingerprint(stream, max_bytes=3 * 1024 * 1024)  # type: ignore[arg-type]
    assert stream.reads == 4


# -- items ------------------------------------------------------------------------------------

ITEM_FIELDS = {
    "game": "Example Quest",
    "item": "sword-of-dawn",
    "serial": 42,
    "attrs": {"rarity": "legendary", "level": 7.5},
    "\ufb33": 2,
    "\U0001f600": 1,
}
# RFC 8785 §3.2.3: keys sorted by UTF-16 code units, so U+1F600 (D83D DE00) sorts before
# U+FB33 although its code point is larger.
ITEM_CANONICAL = (
    '{"attrs":{"level":7.5,"rarity":"legendary"},"game":"Example Quest",'
    '"item":"sword-of-dawn","serial":42,"\U0001f600":1,"\ufb33":2}'
).encode()


def test_item_fingerprint_vector() -> None:
    expected = hashlib.sha256(PUBLISHED_ITEM_DOMAIN + ITEM_CANONICAL).digest()
    assert item_fingerprint(ITEM_FIELDS) == expected
    # Key order in the input does not matter.
    assert item_fingerprint(dict(reversed(list(ITEM_FIELDS.items())))) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {},
        [("a", 1)],
        "item",
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": 2**53},
        {"a": -(2**53)},
        {1: "a"},
        {"a": b"bytes"},
        {"a": {1, 2}},
        {"a": "\ud800"},
        {"\ud800": 1},
        {"a": "x" * MAX_ITEM_BYTES},
    ],
)
def test_item_fingerprint_refuses(fields: object) -> None:
    with pytest.raises(InvalidInput):
        item_fingerprint(fields)  # type: ignore[arg-type]


def test_item_fingerprint_refuses_deep_nesting() -> None:
    nested: object = 1
    for _ in range(10_000):
        nested = [nested]
    with pytest.raises(InvalidInput, match="nested deeper"):
        item_fingerprint({"a": nested})


def test_item_fingerprint_accepts_finite_floats_and_tuples() -> None:
    assert (
        item_fingerprint({"a": (1, 2.0, 1e21)})
        == hashlib.sha256(PUBLISHED_ITEM_DOMAIN + b'{"a":[1,2,1e+21]}').digest()
    )


# -- edge forms -------------------------------------------------------------------------------


def test_fingerprint_hex_round_trip() -> None:
    fingerprint = bytes(range(32))
    text = fingerprint_hex(fingerprint)
    assert text == "0x" + fingerprint.hex()
    assert parse_fingerprint(text) == fingerprint
    assert parse_fingerprint(text.upper().replace("0X", "0x")) == fingerprint
    assert parse_fingerprint("0X" + fingerprint.hex()) == fingerprint


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("ab" * 32, "start with 0x"),
        ("0x" + "ab" * 31, "this one has 62"),
        ("0x" + "ab" * 33, "this one has 66"),
        ("0x" + "g" + "a" * 63, "hex digits"),
        ("0x" + " " * 64, "hex digits"),
        ("0x" + "a" * 63 + "\n", "hex digits"),
        ("0x" + "١" * 64, "hex digits"),  # Arabic-Indic digit: int() would take it
        (b"0x" + b"a" * 64, "string"),
        (None, "string"),
    ],
)
def test_parse_fingerprint_refuses(text: object, reason: str) -> None:
    with pytest.raises(InvalidFingerprint, match=reason):
        parse_fingerprint(text)  # type: ignore[arg-type]


def test_parse_fingerprint_never_echoes_input() -> None:
    with pytest.raises(InvalidFingerprint) as caught:
        parse_fingerprint("0xSECRET-PIN-1234")
    assert "SECRET" not in str(caught.value)


@pytest.mark.parametrize("value", [bytes(31), bytes(33), "00" * 32])
def test_fingerprint_hex_refuses(value: object) -> None:
    with pytest.raises(InvalidFingerprint):
        fingerprint_hex(value)  # type: ignore[arg-type]


def test_good_id() -> None:
    good = GoodId(2, bytes(32))  # type: ignore[arg-type]
    assert good.good_type is GoodType.CODE
    assert good == GoodId(GoodType.CODE, bytes(32))
    assert str(good) == "code:0x" + "00" * 32
    for good_type, fingerprint in [(4, bytes(32)), (True, bytes(32)), (1, bytes(31)), (1, "")]:
        with pytest.raises(InvalidInput):
            GoodId(good_type, fingerprint)  # type: ignore[arg-type]


def test_parse_names() -> None:
    assert [parse_good_type(n) for n in ("file", "code", "item")] == list(GoodType)
    assert [parse_use(n) for n in ("single", "transferable")] == list(Use)
    assert [int(t) for t in GoodType] == [1, 2, 3]
    assert [int(u) for u in Use] == [1, 2]
    for bad in ("FILE", "files", "", "1"):
        with pytest.raises(InvalidInput, match="expected one of file, code, item"):
            parse_good_type(bad)
    with pytest.raises(InvalidInput, match="single, transferable"):
        parse_use("multi")


# -- the published vectors file ---------------------------------------------------------------


def vectors_document() -> dict[str, object]:
    return {
        "format": "tracemark-normalisation-vectors/v1",
        "description": (
            "normalise(code) = upper(remove White_Space and Pd + U+2212 (NFKC(code))); codes "
            "with a character of category C* other than White_Space, longer than "
            f"{MAX_CODE_LENGTH} characters, or empty after normalisation are refused. "
            "code fingerprint = HMAC-SHA256(code_key, code_domain || UTF-8(normalised))."
        ),
        "unicode_version": unicodedata.unidata_version,
        "max_code_length": MAX_CODE_LENGTH,
        "code_domain_hex": PUBLISHED_CODE_DOMAIN.hex(),
        "code_key_hex": CODE_KEY.hex(),
        "normalise": [
            {
                "name": name,
                "input": code,
                "normalised": expected,
                "code_fingerprint": expected_code_fingerprint(expected),
            }
            for name, code, expected in NORMALISATION_VECTORS
        ],
        "refused": [{"name": name, "input": code} for name, code in REFUSED_VECTORS],
    }


def render_vectors() -> str:
    # ASCII escapes: invisible and confusable characters stay unambiguous in the file.
    return json.dumps(vectors_document(), indent=2, ensure_ascii=True) + "\n"


def test_published_vectors_file_is_current() -> None:
    assert VECTORS_FILE.read_text(encoding="utf-8") == render_vectors()


def test_published_vectors_file_is_self_consistent() -> None:
    document = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
    key = bytes.fromhex(document["code_key_hex"])
    for vector in document["normalise"]:
        assert normalise_code(vector["input"]) == vector["normalised"]
        assert code_fingerprint(key, vector["input"]).hex() == vector["code_fingerprint"]
    for vector in document["refused"]:
        with pytest.raises(MalformedCode):
            normalise_code(vector["input"])


# -- canonical JSON: the fast path against the rfc8785 reference -----------------------------

_JSON_KEYS = st.text(st.characters(), max_size=4)
_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats()
    | st.text(st.characters(), max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.dictionaries(_JSON_KEYS, children, max_size=4)
    ),
    max_leaves=20,
)


def _both(value: object) -> tuple[object, object]:
    """``canonical_json`` and the rfc8785 reference: bytes, or the error each raises."""
    from registry import canonicaljson

    def run(function: Any) -> object:
        try:
            return function(value)
        except InvalidInput as exc:
            return ("error", exc.detail)

    return run(canonicaljson.canonical_json), run(canonicaljson._reference_canonical_json)


@settings(max_examples=500, deadline=None)
@given(_JSON_VALUES)
def test_canonical_json_equals_the_reference(value: object) -> None:
    fast, reference = _both(value)
    assert fast == reference


@pytest.mark.parametrize(
    "value",
    [
        # Every escape rule of RFC 8785 §3.2.2.2: controls, quote, backslash, DEL, non-ASCII.
        "".join(map(chr, range(0x80))),
        {chr(c): c for c in range(0x80)},
        "\u00e9\u2028\ufffd\U0001f600",
        # §3.2.3: keys sort by UTF-16 code unit; an astral key sorts below U+E000..U+FFFF.
        {"\U0001f600": 1, "\ufffd": 2, "\ue000": 3, "a": 4, "": 5},
        # Unpaired surrogates, as a value and as a key: the reference's error.
        "\ud800",
        {"\udc00": 1},
        # The integer range (I-JSON) on both sides of its bounds, floats, enums, tuples.
        [2**53 - 1, -(2**53 - 1), 2**53, -(2**53)],
        [0.5, 1e21, -0.0, 1e-7],
        {"type": GoodType.FILE, "use": Use.SINGLE},
        (1, (2, [3])),
        # Non-string keys and nesting at and over MAX_JSON_DEPTH.
        {1: "a"},
        functools.reduce(lambda inner, _: [inner], range(32), []),
        functools.reduce(lambda inner, _: [inner], range(33), []),
        functools.reduce(lambda inner, _: {"k": inner}, range(33), "x"),
        functools.reduce(lambda inner, _: {"k": inner}, range(34), "x"),
    ],
)
def test_canonical_json_edge_cases_equal_the_reference(value: object) -> None:
    fast, reference = _both(value)
    assert fast == reference


if __name__ == "__main__":
    VECTORS_FILE.parent.mkdir(parents=True, exist_ok=True)
    VECTORS_FILE.write_text(render_vectors(), encoding="utf-8")
    print(f"wrote {VECTORS_FILE}")
