"""The kit's payload digest: remembered by the payload's sorted JSON text, never wrong for it.

``verifier.bundle.payload_digest`` keeps a memo keyed by the payload's compact, sorted JSON
(an export's thousands of copies of a batch's one payload are encoded canonically once). A
hit must be exactly the digest of the RFC 8785 form, including for the values where sorted
JSON and RFC 8785 differ (keys beyond the Basic Multilingual Plane sort by UTF-16 code
units in RFC 8785), which must never be remembered by their sorted text.
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from registry.canonicaljson import SORTED_COMPACT_JSON, canonical_json
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


def test_keys_beyond_the_bmp_are_never_remembered_by_their_sorted_text() -> None:
    # Sorted by code point, U+FFFF comes first; by UTF-16 code units (RFC 8785), U+1F600
    # (D83D DE00) does: the two forms differ, so the sorted text must not be a memo key.
    payload = {"\uffff": 1, "\U0001f600": 2}
    sorted_text = SORTED_COMPACT_JSON.encode(payload)
    assert canonical_json(payload) != sorted_text.encode("utf-8")
    assert payload_digest(payload) == _expected(payload)
    assert sorted_text not in bundle._DIGESTS
    assert payload_digest(dict(payload)) == _expected(payload)


def test_a_remembered_text_is_the_canonical_form_of_its_payload() -> None:
    payload = {"b": [1, "x", None], "a": {"c": True}}
    payload_digest(payload)
    text = SORTED_COMPACT_JSON.encode(payload)
    assert bundle._DIGESTS[text] == _expected(payload)
    assert canonical_json(payload) == text.encode("utf-8")


def test_values_that_differ_only_in_type_get_their_own_digests() -> None:
    # 1 and 1.0 and true: three JSON texts, three canonical forms.
    digests = {payload_digest({"v": value}) for value in (1, 1.5, True, "1")}
    assert len(digests) == 4
