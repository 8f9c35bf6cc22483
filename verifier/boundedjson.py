"""Bounded JSON: a document's nesting depth is checked without recursion before ``json.loads``."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final

MAX_JSON_DEPTH: Final = 128
"""Deepest nesting of arrays and objects in any JSON document tracemark parses from outside
(evidence, trust roots, creator statements, royalty policies, metadata, ``--item``).

Threat: ``json.loads`` recurses once per level, in C. Importing py_ecc (eth_account does)
raises the interpreter's recursion limit to 100,000, beyond what the C stack holds, so 150,000
nested brackets crash the process (SIGSEGV, exit 139) instead of raising ``RecursionError``.
Real documents nest under 50 levels (metadata is at most 32 deep, ``MAX_JSON_DEPTH`` of
``registry.fingerprints``, inside a bundle's few levels)."""

_PAIR: Final = re.compile(rb"\[\]")
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in b'[]{}":')
"""Every byte but brackets, braces, quotes and colons: deleted before the strings are found."""
_BRACES_AS_BRACKETS: Final = bytes.maketrans(b"{}", b"[]")


class JsonTooDeep(ValueError):
    """Nested deeper than the bound (a ``ValueError``, as ``json.loads``'s own errors are)."""


def check_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise ``JsonTooDeep`` if ``data`` may nest arrays and objects deeper than ``limit``.

    Linear and in C, no recursion (RFC 8259 §7 strings): every escape is removed (a
    backslash and the character it escapes, paired left to right as a JSON parser pairs
    them), every byte but brackets, braces and quotes is deleted, what lies between quotes is
    dropped; then each pass removes every innermost ``[]`` pair, so a balanced document is
    empty after as many passes as it is deep. Whatever is left unmatched (a truncated or
    malformed document) counts as nesting too, so ``json.loads`` never recurses deeper than
    ``limit``, and a shallow malformed document keeps ``json.loads``'s own error.
    """
    _check_nesting(_outside_strings(_utf8(data)), limit)


def _utf8(data: bytes | str) -> bytes:
    """The document as UTF-8, the encoding the byte scan reads: bytes in another encoding
    ``json.loads`` accepts (UTF-16 or UTF-32, told by ``json.detect_encoding`` as it tells
    them) are re-encoded first, so no bracket or quote of theirs hides from the scan."""
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    encoding = json.detect_encoding(data)
    if encoding == "utf-8":
        return data
    return data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")


def _outside_strings(raw: bytes) -> bytes:
    """The brackets, braces and colons of a UTF-8 JSON text that are not inside a string,
    in order."""
    if b"\\" in raw:  # memchr: most documents have no escape at all
        raw = _without_escapes(raw)
    structure = raw.translate(None, _NOT_STRUCTURE)
    # NOTE: two quotes in a row go first, in one C pass (an empty string, or a string's closing
    # quote and the next one's opening: most strings hold no bracket). Removing two adjacent
    # quotes changes the count of quotes before every remaining byte by an even number, so
    # each bracket stays inside or outside a string as it was; what is left to split is a few
    # pieces, not one per string (0.07 s to 0.01 s on a 15 MB export).
    structure = structure.replace(b'""', b"")
    return b"".join(structure.split(b'"')[::2])


def _without_escapes(raw: bytes) -> bytes:
    """``raw`` without its escapes: each backslash and the byte after it, paired left to
    right (``\\\\`` is one escape, so the quote in ``\\\\"`` ends a string).

    NOTE: one split at the backslashes and one join (the pieces after an escape joined as
    views, not copied): an export's checkpoint notes bring a few escaped newlines, and two
    ``bytes.replace`` over its 15 MB took 0.025 s, this 0.008 s."""
    pieces = raw.split(b"\\")
    kept: list[bytes | memoryview] = [pieces[0]]
    escaped_backslash = False  # the backslash before this piece was escaped by the one before
    for piece in pieces[1:]:
        if escaped_backslash:
            kept.append(piece)
            escaped_backslash = False
        elif piece:
            kept.append(memoryview(piece)[1:])  # the escaped byte goes
        else:
            escaped_backslash = True  # this backslash escapes the next one
    return b"".join(kept)


def _check_nesting(outside: bytes, limit: int) -> None:
    brackets = outside.translate(_BRACES_AS_BRACKETS, b":")
    depth = 0
    while brackets:
        brackets, removed = _PAIR.subn(b"", brackets)
        if not removed:
            break
        depth += 1
        if depth > limit:
            break
    # No "[]" left: the rest is "]...][...[" (unmatched); each "[" may add a level.
    if depth + brackets.count(b"[") > limit:
        raise JsonTooDeep(f"nested deeper than {limit} levels")


def loads(data: bytes | str, limit: int = MAX_JSON_DEPTH, **options: Any) -> Any:
    """``json.loads(data, **options)`` once ``check_depth`` has passed."""
    check_depth(data, limit)
    return json.loads(data, **options)


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An ``object_pairs_hook`` refusing a key given twice: two values for one key would let
    two readers of the same document see two documents. The common case runs in C."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def no_constants(name: str) -> Any:
    """A ``parse_constant`` refusing NaN and the infinities, which JSON does not have."""
    raise ValueError(f"{name} is not JSON")


def strict_loads(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> Any:
    """One JSON document, bounded in depth, with no key given twice and no NaN or infinity:
    how every signed or shipped document (evidence, trust roots) is read. Raises
    ``ValueError`` (``json.JSONDecodeError``, ``JsonTooDeep``, a duplicate key) or
    ``RecursionError``; each parser turns it into its own error.

    NOTE: a key given twice is found by counting, not by a hook per object that sees each
    object's pairs (0.015 s of a 15 MB export): every colon outside a string separates one
    member of an object, so the members the parsed objects hold add up to the colons of the
    text unless a key was given twice (its objects then hold fewer). Only then, or when the
    text does not parse, is it read again with ``unique_keys``, whose error names the key and
    comes in the same order as ever (a duplicate before a syntax error is the duplicate)."""
    outside = _outside_strings(_utf8(data))
    _check_nesting(outside, limit)
    members = 0

    def counted(value: dict[str, Any]) -> dict[str, Any]:
        nonlocal members
        members += len(value)
        return value

    try:
        document = json.loads(data, object_hook=counted, parse_constant=no_constants)
    except ValueError:
        document, members = None, -1
    if members != outside.count(b":"):
        return json.loads(data, object_pairs_hook=unique_keys, parse_constant=no_constants)
    return document


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large document is read (and resume it
    after, unless it was off already); a decorator too.

    NOTE: reading a 15 MB export makes ~10^6 objects (dicts, strings, models, bytes), none of
    them garbage and none in a cycle; the collector, triggered by every 700 new objects, walks
    the growing heap again and again (two full collections), a third of the parse's time.
    Reference counting still frees everything, as always; only the search for cycles waits.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def strict_document(
    data: bytes | str,
    max_bytes: int,
    refuse: Callable[[str], Exception],
    name: str,
    *,
    parsed_name: str | None = None,
) -> Any:
    """A shipped document (evidence, a trust root) read as ``strict_loads`` reads it, after
    its size is checked against ``max_bytes``. ``refuse`` makes the parser's own error, whose
    text names the document (``name``; ``parsed_name`` when it is not yet known which)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise refuse(f"{name} is at most {max_bytes:,} bytes")
    try:
        return strict_loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise refuse(f"{parsed_name or name} must be one JSON document: {exc}") from None


__all__ = [
    "MAX_JSON_DEPTH",
    "JsonTooDeep",
    "check_depth",
    "collector_paused",
    "loads",
    "no_constants",
    "strict_document",
    "strict_loads",
    "unique_keys",
]
