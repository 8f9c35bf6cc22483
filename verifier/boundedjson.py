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
_NOT_STRUCTURE: Final = bytes(b for b in range(256) if b not in b'[]{}"')
"""Every byte but brackets, braces and quotes: deleted before the strings are found."""
_BRACES_AS_BRACKETS: Final = bytes.maketrans(b"{}", b"[]")


class JsonTooDeep(ValueError):
    """Nested deeper than the bound (a ``ValueError``, as ``json.loads``'s own errors are)."""


def check_depth(data: bytes | str, limit: int = MAX_JSON_DEPTH) -> None:
    """Raise ``JsonTooDeep`` if ``data`` may nest arrays and objects deeper than ``limit``.

    Linear and in C, no recursion (RFC 8259 §7 strings): escaped backslashes, then escaped
    quotes are removed (left to right, as a JSON parser pairs them), every byte but brackets,
    braces and quotes is deleted, what lies between quotes is dropped; then each pass removes
    every innermost ``[]`` pair, so a balanced document is empty after as many passes as it
    is deep. Whatever is left unmatched (a truncated or malformed document) counts as nesting
    too, so ``json.loads`` never recurses deeper than ``limit``, and a shallow malformed
    document keeps ``json.loads``'s own error.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if b"\\" in raw:  # memchr: most documents have no escape at all
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = raw.translate(None, _NOT_STRUCTURE)
    # NOTE: two quotes in a row go first, in one C pass (an empty string, or a string's closing
    # quote and the next one's opening: most strings hold no bracket). Removing two adjacent
    # quotes changes the count of quotes before every remaining byte by an even number, so
    # each bracket stays inside or outside a string as it was; what is left to split is a few
    # pieces, not one per string (0.07 s to 0.01 s on a 15 MB export).
    structure = structure.replace(b'""', b"")
    outside_strings = b"".join(structure.split(b'"')[::2])
    brackets = outside_strings.translate(_BRACES_AS_BRACKETS)
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
    ``RecursionError``; each parser turns it into its own error."""
    return loads(data, limit, object_pairs_hook=unique_keys, parse_constant=no_constants)


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
