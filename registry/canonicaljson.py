"""RFC 8785 (JCS) canonical JSON: the bytes behind every payload hash and item fingerprint.

CONSENSUS-CRITICAL: payload hashes in every leaf and item fingerprints are SHA-256 of these
bytes; a change orphans every entry already logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import rfc8785

from registry.errors import InvalidInput

MAX_JSON_DEPTH = 32
"""Deepest nesting of JSON values accepted for canonicalisation.

The RFC 8785 serialiser recurses; without a bound a crafted nested value exhausts the stack.
"""


def canonical_json(value: object, *, max_bytes: int | None = None) -> bytes:
    """The RFC 8785 (JCS) serialisation of a JSON value, bounded and with clear errors.

    Accepts None, bool, int (I-JSON range, RFC 8785 §3.2.2.3), finite float, str, lists and
    tuples, and mappings with string keys, nested at most ``MAX_JSON_DEPTH`` deep. Raises
    ``InvalidInput`` for anything else, or when the result is longer than ``max_bytes``.
    """
    try:
        document = _fast_canonical_json(value)
    except _NotFast:
        document = _reference_canonical_json(value)
    if max_bytes is not None and len(document) > max_bytes:
        raise InvalidInput(f"canonical JSON is larger than the limit of {max_bytes} bytes")
    return document


def _reference_canonical_json(value: object) -> bytes:
    """RFC 8785 by the ``rfc8785`` package: every value, and the errors ``canonical_json``
    documents."""
    plain = _plain_json(value, 0)
    try:
        return rfc8785.dumps(plain)  # type: ignore[arg-type]
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:
        # The library's messages quote the offending value; name only what kind it was.
        raise InvalidInput(f"value is not canonical JSON ({type(exc).__name__})") from exc


class _NotFast(Exception):
    """The value holds something the fast path leaves to ``_reference_canonical_json``."""


_SAFE_INTEGER: Final = 2**53 - 1
"""RFC 8785 §3.2.2.3 (I-JSON): larger integers are refused by the reference serialiser."""

SORTED_COMPACT_JSON: Final = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)
"""Compact JSON with sorted keys, in C: RFC 8785 itself for the values the fast path takes
(``_fast_canonical_json``), and a cheap exact key for a memo of canonical forms."""


def _fast_canonical_json(value: object) -> bytes:
    """RFC 8785 of the values where it is exactly the standard library's compact, sorted,
    UTF-8 JSON (the C encoder: several times faster); raises ``_NotFast`` for the rest.

    NOTE: consensus-critical (payload hashes). It takes only exact dicts with str keys of
    the Basic Multilingual Plane (where sorting by code point, as ``sort_keys`` does, equals
    RFC 8785 §3.2.3's sorting by UTF-16 code unit), lists, tuples, str, bool, None and ints
    within ±(2^53 - 1), no deeper than ``MAX_JSON_DEPTH``. Its string escapes are those of
    §3.2.2.2 (quote and backslash; backspace, form feed, newline, return and tab by letter;
    other controls as lower-case u00xx; DEL and everything beyond ASCII unescaped, as UTF-8).
    Floats, subclasses (enums), other mappings, unpaired
    surrogates, and anything invalid go to the reference serialiser, which gives the same
    bytes or the documented error. ``tests/registry/test_fingerprints.py`` compares the two.
    """
    _check_fast(value, 0)
    try:
        return SORTED_COMPACT_JSON.encode(value).encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate: the reference names the error
        raise _NotFast from None


def _check_fast(value: object, depth: int) -> None:
    if depth > MAX_JSON_DEPTH:
        raise _NotFast
    if not _is_fast_scalar(value):
        _check_fast_container(value, depth)


def _is_fast_scalar(value: object) -> bool:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    return kind is int and -_SAFE_INTEGER <= value <= _SAFE_INTEGER  # type: ignore[operator]


def _check_fast_container(value: object, depth: int) -> None:
    kind = type(value)
    if kind is dict:
        items = value.values()  # type: ignore[attr-defined]
        for key in value:  # type: ignore[attr-defined]
            if type(key) is not str or (not key.isascii() and max(key) > "\uffff"):
                raise _NotFast
    elif kind is list or kind is tuple:
        items = value
    else:
        raise _NotFast
    if depth >= MAX_JSON_DEPTH and items:  # its members would be too deep
        raise _NotFast
    for item in items:
        if not _is_fast_scalar(item):
            _check_fast_container(item, depth + 1)


def _plain_json(value: object, depth: int) -> object:
    """A copy of ``value`` made of dicts and lists only, checked for depth and key types."""
    if depth > MAX_JSON_DEPTH:
        raise InvalidInput(f"JSON value nested deeper than {MAX_JSON_DEPTH} levels")
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        plain: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput("JSON object keys must be strings")
            plain[key] = _plain_json(item, depth + 1)
        return plain
    if isinstance(value, list | tuple):
        return [_plain_json(item, depth + 1) for item in value]
    raise InvalidInput(f"{type(value).__name__} is not a JSON value")


__all__ = ["MAX_JSON_DEPTH", "SORTED_COMPACT_JSON", "canonical_json"]
