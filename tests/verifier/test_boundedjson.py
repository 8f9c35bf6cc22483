"""``verifier.boundedjson``: the depth check agrees with a naive scanner on every document, and
each parser a platform calls directly refuses a deep document before ``json.loads`` sees it."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.errors import InvalidInput
from verifier import boundedjson
from verifier.bundle import Bundle
from verifier.exportformat import parse_evidence
from verifier.identity import CreatorStatement
from verifier.trust import TrustRoot


def _reference_depth(text: str) -> int:
    """The naive character-by-character scanner the fast check must agree with."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _passes(text: str, limit: int) -> bool:
    try:
        boundedjson.check_depth(text, limit)
    except boundedjson.JsonTooDeep:
        return False
    return True


tricky_text = st.text(alphabet='[]{}"\\abn/', max_size=12)
values: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=40,
)


@given(values, st.integers(min_value=0, max_value=12), st.booleans())
def test_the_check_agrees_with_a_naive_scanner(value: Any, limit: int, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert _passes(text, limit) == (_reference_depth(text) <= limit)
    assert _passes(text.encode(), limit) == (_reference_depth(text) <= limit)


@given(values, st.integers(min_value=1, max_value=10_000))
def test_a_truncated_document_never_passes_deeper_than_the_limit(value: Any, cut: int) -> None:
    text = json.dumps(value)[:cut]
    if _reference_depth(text) > 4:
        assert not _passes(text, 4)


def test_brackets_in_strings_and_escapes_do_not_count() -> None:
    assert _passes('["]]]]]]", "\\"[[[[", "\\\\", [[]]]', 3)
    assert not _passes('["\\\\"' + ", [" * 5 + "]" * 6, 3)
    assert not _passes("[" * 200 + "}", 128)  # malformed and deep: refused before json sees it
    assert _passes('{"a": [1, 2', 128)  # malformed and shallow: json.loads says why


@pytest.mark.parametrize(
    "parse",
    [Bundle.parse, parse_evidence, TrustRoot.parse, CreatorStatement.parse],
    ids=["bundle", "evidence", "trust-root", "creator-statement"],
)
def test_each_parser_refuses_a_deep_document_before_parsing(parse: Any) -> None:
    deep = "[" * 5_000 + "]" * 5_000
    with pytest.raises(InvalidInput, match="nested deeper than 128 levels"):
        parse(deep)


def test_adjacent_quotes_leave_brackets_where_they_were() -> None:
    # check_depth drops two quotes in a row first (an empty string, or one string's end and
    # the next one's start): brackets inside strings must stay inside, those outside outside.
    assert _passes('["[[[[", "", "]]]]", "", "["]', 1)
    assert _passes('{"[[":"]]","":"","[":""}', 1)
    assert not _passes('["", [[""]], ""]', 2)
    assert _passes('["", [[""]], ""]', 3)
    assert not _passes('["\\"", "", [["\\\\", ""]]]', 2)


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_while_reading_and_restored_after(enabled: bool) -> None:
    (gc.enable if enabled else gc.disable)()
    try:
        with boundedjson.collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(InvalidInput):
            parse_evidence(b'{"format": "tracemark-export/v1", "goods": 1}')
        assert gc.isenabled() is enabled
    finally:
        gc.enable()
