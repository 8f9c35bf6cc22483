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


# -- a key given twice: found by counting members against the colons outside strings --------

_keys = st.text(alphabet='ab:"\\{}[],', max_size=3)
_scalars = st.none() | st.booleans() | st.integers() | st.text(alphabet='a:"\\{}[],', max_size=4)


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(key)}:{value}" for key, value in pairs) + "}"


#: JSON texts whose objects are written pair by pair, so a key may come twice at any depth.
texts: Any = st.recursive(
    _scalars.map(json.dumps),
    lambda inner: (
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]")
        | st.lists(st.tuples(_keys, inner), max_size=4).map(_object)
    ),
    max_leaves=30,
)


def _outcome(parse: Any, text: str | bytes) -> Any:
    try:
        return ("value", parse(text))
    except ValueError as exc:
        return ("refused", str(exc))


def _pair_by_pair(text: str | bytes) -> Any:
    """What strict_loads did before counting: every object's pairs seen by unique_keys."""
    boundedjson.check_depth(text)
    return json.loads(
        text, object_pairs_hook=boundedjson.unique_keys, parse_constant=boundedjson.no_constants
    )


@given(texts, st.sampled_from(["utf-8", "utf-16", "utf-32-be", "str"]))
def test_a_key_given_twice_is_refused_as_the_pair_by_pair_reader_refused_it(
    text: str, encoding: str
) -> None:
    data = text if encoding == "str" else text.encode(encoding)
    assert _outcome(boundedjson.strict_loads, data) == _outcome(_pair_by_pair, data)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 2}',
        '{"a:b": 1, "a:b": 2}',
        '{"x": "\\\\", "x": 1}',
        '{"q\\"": ":", "q\\"": 1}',
        '[{"ok": {"deep": [{"k": 1, "k": 1}]}}]',
        '{"a": {"b": 1}, "a": {"b": 1}}',
    ],
    ids=["top", "colon-in-key", "escaped-backslash", "escaped-quote", "deep", "equal-values"],
)
def test_a_key_given_twice_is_named(text: str) -> None:
    with pytest.raises(ValueError, match="duplicate key"):
        boundedjson.strict_loads(text)


@pytest.mark.parametrize(
    "text",
    ['{"a:b": ":", "c": "::"}', '{"x\\":": "\\":", "y": [":"]}', '{"":{"":[]}}'],
    ids=["colons-in-strings", "escaped-quotes-and-colons", "empty-keys"],
)
def test_colons_in_strings_are_not_members(text: str) -> None:
    assert boundedjson.strict_loads(text) == json.loads(text)


def test_a_key_given_twice_before_a_syntax_error_is_the_error() -> None:
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        boundedjson.strict_loads('[{"a": 1, "a": 2}, oops]')
    with pytest.raises(json.JSONDecodeError):
        boundedjson.strict_loads('[oops, {"a": 1, "a": 2}]')


def test_a_utf16_document_is_scanned_as_its_text() -> None:
    # A UTF-16 document's brackets are two bytes, its quote's byte may come from another
    # character (U+2200 is 00 22 in UTF-16LE): read as bytes the scan would miss nesting.
    deep = '["\u2200", ' + "[" * 5_000 + "]" * 5_001
    with pytest.raises(boundedjson.JsonTooDeep):
        boundedjson.strict_loads(deep.encode("utf-16-le"))
    twice = '["\u2200", {"a": 1, "a": 2}]'
    with pytest.raises(ValueError, match="duplicate key"):
        boundedjson.strict_loads(twice.encode("utf-16"))
    assert boundedjson.strict_loads('{"\u2200": [1]}'.encode("utf-16")) == {"\u2200": [1]}


def test_a_document_without_a_key_given_twice_is_read_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The count must be exact (colons in keys, values and escapes are not members), else
    # every document would be read twice.
    def never(pairs: Any) -> Any:
        raise AssertionError("read again pair by pair")

    monkeypatch.setattr(boundedjson, "unique_keys", never)
    text = '{"a:b": ":", "c\\":": ["\\\\", ":", {"d": "::"}], "e": {}}'
    assert boundedjson.strict_loads(text) == json.loads(text)
    assert boundedjson.strict_loads(text.encode("utf-16")) == json.loads(text)
