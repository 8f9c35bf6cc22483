"""The bundle's 0x-hex fields: exactly ``0x`` and 2n hex digits, nothing else (the parser uses
``bytes.fromhex``, which skips whitespace: the fixed length must still refuse it)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from registry.edges import parse_hex_of

HEX = set(string.hexdigits)
parse = parse_hex_of(4)


@given(
    st.text(alphabet=string.hexdigits + " \t\n\r\x0b\x0cxg+-\u0661\u00a0", min_size=8, max_size=8)
)
def test_a_field_is_accepted_exactly_when_it_is_hex_digits(body: str) -> None:
    text = "0x" + body
    if set(body) <= HEX:
        assert parse(text) == bytes.fromhex(body)
    else:
        with pytest.raises(ValueError, match="must be 0x and 8 hex digits"):
            parse(text)


@pytest.mark.parametrize("text", ["0X01020304", "01020304", "0x0102030", "0x010203040", ""])
def test_wrong_prefix_or_length_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse(text)
