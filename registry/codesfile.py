"""A creator's codes file read locally: one code per line or a CSV, fingerprinted and spooled.

Codes never leave this module's caller: each line is normalised and HMAC'd under the
creator's code key, and only fingerprints (spooled to a temporary file, 32 bytes each) and
their items root leave it.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from registry import merkle
from registry.errors import InvalidInput, MalformedCode
from registry.fingerprints import CodeFingerprinter

#: A bulk file's line may be long (several CSV columns), but not unbounded.
MAX_CSV_LINE = 4_096


@dataclass
class BadLine:
    line: int
    reason: str


@dataclass
class PreparedBatch:
    """Fingerprints of a bulk file, spooled to disk in upload order, with their items root."""

    spool: IO[bytes]
    count: int
    items_root: bytes
    skipped: list[BadLine] = field(default_factory=list)

    def fingerprints(self) -> Iterator[bytes]:
        self.spool.seek(0)
        read = self.spool.read
        while chunk := read(32 * 4096):
            for offset in range(0, len(chunk), 32):
                yield chunk[offset : offset + 32]

    def close(self) -> None:
        self.spool.close()


CODE_COLUMNS = ("code", "pin", "key")
"""Header names of the column that holds the codes, in order of preference (case-insensitive)."""

CSV_DELIMITERS = (",", ";", "\t", "|")
"""A first line holding one of these (the first found is the file's delimiter) is a CSV
header, and must name a code column; a first line holding none is a code, and the file holds
one code per line.

Threat: a CSV whose header names no code column (``id,serial``) read as one code per line
registers its header and first column ("id", "1") as codes, and exits 0; a tab- or
semicolon-separated one registers whole rows, whose separators the code normalisation
removes or keeps."""

UTF8_BOM = "\ufeff"


def _code_column(header: list[str]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    for name in CODE_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    return None


def _fields(text: str, delimiter: str, line: int) -> list[str]:
    """One line's fields; quotes are only parsed when the line holds one (the common case is
    a plain split). A quoted field never spans lines: one left open refuses the file."""
    if '"' not in text:
        return text.split(delimiter)
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error:
        raise InvalidInput(
            f'line {line}: a quoted field is left open (a " without its closing ", or text '
            f"after it); nothing was registered"
        ) from None


def _numbered_lines(source: IO[str]) -> Iterator[tuple[int, str | None]]:
    """``(line number, text without its line end)``, or ``None`` for a line longer than
    ``MAX_CSV_LINE`` (its rest is read and dropped, so memory stays bounded)."""
    number = 0
    while text := source.readline(MAX_CSV_LINE + 1):
        number += 1
        if len(text) > MAX_CSV_LINE and not text.endswith(("\n", "\r")):
            while (rest := source.readline(MAX_CSV_LINE)) and not rest.endswith(("\n", "\r")):
                pass
            yield number, None
        else:
            yield number, text.rstrip("\r\n")


def prepare_code_batch(
    source: IO[str],
    code_key: bytes,
    *,
    skip_invalid: bool = False,
    progress: Any = None,
) -> PreparedBatch:
    """Read codes (one per line, or a CSV whose header names a ``code`` column), fingerprint
    each locally, and compute the items root.

    The first non-blank line decides the format (README, "tracemark register-codes"): if it
    holds a ``CSV_DELIMITERS`` character it is a CSV header and must name a ``CODE_COLUMNS``
    column; if it is one field named ``code``, ``pin`` or ``key``, a one-column CSV; otherwise
    the file holds one code per line (read as a one-column CSV, so a code holding a comma is
    quoted). Refused whole, whatever ``skip_invalid``, with the line number: a file starting
    with a UTF-8 byte order mark (NOTE: named rather than stripped, so that what is registered
    is exactly what the file says), a header naming no code column, a quoted field left open
    (a spreadsheet would read the lines after it into that field). A malformed or repeated
    code, a line longer than ``MAX_CSV_LINE`` or with another number of fields than the header
    rejects the whole file too, unless ``skip_invalid``, which leaves such lines out and
    reports them. Blank lines are ignored.
    """
    fingerprinter = CodeFingerprinter(code_key)
    builder = merkle.RootBuilder()
    spool = tempfile.TemporaryFile(prefix="tracemark-batch-")  # noqa: SIM115 - owned by result
    seen: dict[bytes, int] = {}
    skipped: list[BadLine] = []
    delimiter: str | None = None  # None until the first non-blank line is read
    width, column, has_header = 1, 0, False
    write = spool.write
    append = builder.append
    hash_leaf = merkle.hash_leaf

    try:
        for line, text in _numbered_lines(source):
            if line == 1 and text is not None and text.startswith(UTF8_BOM):
                raise InvalidInput(
                    "line 1: the file starts with a UTF-8 byte order mark (U+FEFF); save it "
                    "as UTF-8 without a BOM; nothing was registered"
                )
            problem = None
            if text is None:
                problem = f"the line is longer than {MAX_CSV_LINE:,} characters"
            else:
                if delimiter is None:
                    if not text.strip():
                        continue
                    found = [d for d in CSV_DELIMITERS if d in text]
                    delimiter = found[0] if found else ","
                    header = _fields(text, delimiter, line)
                    named = _code_column(header)
                    if found and named is None:
                        shown = "tab" if delimiter == "\t" else repr(delimiter)
                        raise InvalidInput(
                            f"line {line}: the first line holds a {shown}, so it is a CSV "
                            f"header, but it names no code column ({', '.join(CODE_COLUMNS)}); "
                            f"nothing was registered"
                        )
                    if named is not None:
                        width, column, has_header = len(header), named, True
                        continue
                row = _fields(text, delimiter, line)
                if all(not cell.strip() for cell in row):
                    continue
                if len(row) != width:
                    problem = (
                        f"{len(row)} fields, but the header has {width}"
                        if has_header
                        else f"{len(row)} fields in a file of one code per line (its first "
                        f"line holds no {', '.join(map(repr, CSV_DELIMITERS))}); quote a code "
                        f"that holds a comma"
                    )
                else:
                    try:
                        fingerprint = fingerprinter.fingerprint(row[column])
                    except MalformedCode as exc:
                        problem = exc.detail
                    else:
                        if fingerprint in seen:
                            problem = f"the same code as line {seen[fingerprint]}"
            if problem is not None:
                if not skip_invalid:
                    raise InvalidInput(f"line {line}: {problem}; nothing was registered")
                skipped.append(BadLine(line, problem))
                continue
            seen[fingerprint] = line
            write(fingerprint)
            append(hash_leaf(fingerprint))
            if progress is not None and builder.size % 10_000 == 0:
                progress(builder.size)
    except BaseException:
        spool.close()
        raise
    if builder.size == 0:
        spool.close()
        raise InvalidInput("the file holds no codes")
    spool.flush()
    return PreparedBatch(spool, builder.size, builder.root(), skipped)


def codes_source(text: str) -> IO[str]:
    """An in-memory codes file (tests, small batches)."""
    return io.StringIO(text)
