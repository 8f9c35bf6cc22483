"""Reading a codes file (``prepare_code_batch``): one code per line, or a CSV whose header
names its code column; anything in between is refused with its line number, never guessed."""

from __future__ import annotations

import io
import os

import pytest

from registry.codesfile import MAX_CSV_LINE, PreparedBatch, codes_source, prepare_code_batch
from registry.errors import InvalidInput
from registry.fingerprints import code_fingerprint

KEY = os.urandom(32)


def _read(text: str, *, skip_invalid: bool = False) -> PreparedBatch:
    return prepare_code_batch(codes_source(text), KEY, skip_invalid=skip_invalid)


def _codes_of(batch: PreparedBatch) -> list[bytes]:
    try:
        return list(batch.fingerprints())
    finally:
        batch.close()


def _prints(*codes: str) -> list[bytes]:
    return [code_fingerprint(KEY, code) for code in codes]


def _refused(text: str, *, skip_invalid: bool = False) -> str:
    with pytest.raises(InvalidInput) as caught:
        _read(text, skip_invalid=skip_invalid)
    return caught.value.detail


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("id,serial\n1,PA-X-1\n", id="comma"),
        pytest.param("id;serial\n1;PA-X-1\n", id="semicolon"),
        pytest.param("id\tserial\n1\tPA-X-1\n", id="tab"),
        pytest.param("id|serial\n1|PA-X-1\n", id="pipe"),
        pytest.param("\n\nserial,label\nPA-X-1,x\n", id="after-blank-lines"),
    ],
)
def test_a_header_naming_no_code_column_is_refused_with_its_line(text: str) -> None:
    detail = _refused(text)
    line = text.count("\n", 0, text.index("serial")) + 1
    assert detail.startswith(f"line {line}: ") and "names no code column" in detail
    assert "code, pin, key" in detail
    assert _refused(text, skip_invalid=True) == detail  # a file, not a line, is wrong


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("\ufeffcode\nPA-X-1\n", id="csv"),
        pytest.param("\ufeffPA-X-1\nPA-X-2\n", id="one-per-line"),
    ],
)
def test_a_byte_order_mark_is_named(text: str) -> None:
    detail = _refused(text, skip_invalid=True)
    assert detail.startswith("line 1: ") and "UTF-8 byte order mark" in detail
    assert "PA" not in detail


def test_a_quoted_field_left_open_is_refused_with_its_line() -> None:
    text = 'PA-X-1\n"PA-X-2\nPA-X-3\nPA-X-4\n'
    for skip in (False, True):
        detail = _refused(text, skip_invalid=skip)
        assert detail.startswith("line 2: ") and "quoted field is left open" in detail
    assert "line 3: " in _refused('code,label\nPA-X-1,a\nPA-X-2,"b\nPA-X-3,c\n')
    assert "line 2: " in _refused('code\n"PA-X-1"x\n')  # text after the closing quote


def test_each_delimiter_and_header_name_takes_its_column() -> None:
    codes = ("PA-X-1", "PA-X-2")
    for header, sep in (("serial,code", ","), ("serial;PIN", ";"), ("serial\tKey", "\t")):
        rows = "".join(f"{n}{sep}{code}\n" for n, code in enumerate(codes))
        assert _codes_of(_read(f"{header}\n{rows}")) == _prints(*codes)
    assert _codes_of(_read("code\nPA-X-1\nPA-X-2\n")) == _prints(*codes)  # one column
    assert _codes_of(_read('"Code"\n"PA-X-1"\n')) == _prints("PA-X-1")


def test_one_code_per_line_and_a_quoted_comma() -> None:
    assert _codes_of(_read("PA-X-1\n\n  \nPA-X-2")) == _prints("PA-X-1", "PA-X-2")
    assert _codes_of(_read('PA-X-1\n"PA,X-2"\n')) == _prints("PA-X-1", "PA,X-2")


def test_a_line_with_another_number_of_fields_is_refused_or_skipped() -> None:
    # One code per line: a comma later on means the header was forgotten or a code is cut.
    detail = _refused("PA-X-1\nPA-X-2,PA-X-3\n")
    assert detail.startswith("line 2: 2 fields in a file of one code per line")
    # A CSV: a row wider or narrower than its header would shift the code column.
    assert _refused("id,code\n1,PA-X-1\n2,3,PA-X-2\n").startswith(
        "line 3: 3 fields, but the header has 2"
    )
    assert _refused("id,code\n1\n").startswith("line 2: 1 fields, but the header has 2")
    batch = _read("id,code\n1,PA-X-1\n2,3,PA-X-2\n4,PA-X-4\n", skip_invalid=True)
    assert [bad.line for bad in batch.skipped] == [3]
    assert _codes_of(batch) == _prints("PA-X-1", "PA-X-4")


def test_a_line_longer_than_the_bound_is_refused_or_skipped_in_bounded_memory() -> None:
    long_line = "W" * (10 * MAX_CSV_LINE)
    text = f"PA-X-1\n{long_line}\nPA-X-2\n"
    detail = _refused(text)
    assert detail.startswith("line 2: the line is longer than") and "W" not in detail
    batch = _read(text, skip_invalid=True)
    assert [bad.line for bad in batch.skipped] == [2]
    assert _codes_of(batch) == _prints("PA-X-1", "PA-X-2")


def test_crlf_line_ends_from_a_spreadsheet() -> None:
    source = io.TextIOWrapper(io.BytesIO(b"serial,code\r\n1,PA-X-1\r\n2,PA-X-2\r\n"), newline="")
    batch = prepare_code_batch(source, KEY)
    assert _codes_of(batch) == _prints("PA-X-1", "PA-X-2")
