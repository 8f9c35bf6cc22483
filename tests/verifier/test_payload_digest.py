"""The kit's payload digest: remembered by the payload's exact value, never wrong for it.

``verifier.bundle.payload_digest`` keeps a memo keyed by the payload's ``marshal`` bytes (an
export's thousands of copies of a batch's one payload are encoded canonically once). A hit
must be exactly the digest of the RFC 8785 form, including for the values where sorted JSON
and RFC 8785 differ (keys beyond the Basic Multilingual Plane sort by UTF-16 code units in
RFC 8785), and a value that is not JSON (a key that is not text) must be refused even when
a JSON value of the same text was remembered.
"""

from __future__ import annotations

import copy
import hashlib
import marshal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.canonicaljson import SORTED_COMPACT_JSON, canonical_json
from registry.errors import InvalidInput
from verifier import bundle
from verifier.bundle import payload_digest

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4)
    ),
    max_leaves=12,
)


def _expected(payload: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical_json(payload)).digest()


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=6), JSON_VALUES, max_size=5))
def test_a_digest_is_the_canonical_digest_first_time_and_from_the_memo(
    payload: dict[str, Any],
) -> None:
    expected = _expected(payload)
    assert payload_digest(payload) == expected
    assert payload_digest(copy.deepcopy(payload)) == expected  # a copy, as an export has


def test_keys_beyond_the_bmp_get_the_rfc_8785_digest_first_time_and_from_the_memo() -> None:
    # Sorted by code point, U+FFFF comes first; by UTF-16 code units (RFC 8785), U+1F600
    # (D83D DE00) does: the two forms differ, and the memo gives the RFC 8785 one.
    payload = {"\uffff": 1, "\U0001f600": 2}
    sorted_text = SORTED_COMPACT_JSON.encode(payload)
    assert canonical_json(payload) != sorted_text.encode("utf-8")
    assert payload_digest(payload) == _expected(payload)
    assert payload_digest(dict(payload)) == _expected(payload)
    assert bundle._DIGESTS[marshal.dumps(payload, 2)] == _expected(payload)


def test_a_remembered_digest_is_keyed_by_the_exact_value() -> None:
    payload = {"b": [1, "x", None], "a": {"c": True}}
    payload_digest(payload)
    assert bundle._DIGESTS[marshal.dumps(payload, 2)] == _expected(payload)
    # A value of the same sorted JSON text but other types is another key.
    assert marshal.dumps({"b": [1.0, "x", None], "a": {"c": 1}}, 2) not in bundle._DIGESTS


def test_a_value_marshal_cannot_write_is_digested_and_not_remembered() -> None:
    class Text(str):
        pass

    payload = {Text("a"): Text("b")}
    before = dict(bundle._DIGESTS)
    assert payload_digest(payload) == _expected({"a": "b"})
    assert before == bundle._DIGESTS


def test_values_that_differ_only_in_type_get_their_own_digests() -> None:
    # 1 and 1.0 and true: three JSON texts, three canonical forms.
    digests = {payload_digest({"v": value}) for value in (1, 1.5, True, "1")}
    assert len(digests) == 4


@pytest.mark.parametrize(
    ("plain", "python_built"),
    [
        ({"1": "x"}, {1: "x"}),
        ({"true": 1}, {True: 1}),
        ({"null": 1}, {None: 1}),
        ({"1.5": 1}, {1.5: 1}),
        ({"a": {"2": [1]}}, {"a": {2: [1]}}),
    ],
    ids=["int-key", "bool-key", "none-key", "float-key", "nested-int-key"],
)
def test_a_key_that_is_not_text_is_refused_even_when_its_text_form_was_seen(
    plain: dict[str, Any], python_built: dict[Any, Any]
) -> None:
    # The sorted JSON text of {1: "x"} is that of {"1": "x"}: a memo keyed by it took a
    # Python-built payload that is not JSON for the one that is, and gave its digest.
    assert payload_digest(plain) == _expected(plain)
    with pytest.raises(InvalidInput, match="keys must be strings"):
        canonical_json(python_built)
    with pytest.raises(InvalidInput, match="keys must be strings"):
        payload_digest(python_built)
