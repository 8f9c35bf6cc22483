"""Schemathesis CLI hooks for ``scripts/fuzz_api.py``: bodies for the media types the CLI
cannot serialise by itself (the bulk routes' NDJSON streams), as the unit tests do."""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

#: A first line that looks like a signed request or not, then lines that look like fingerprints.
_line = st.one_of(
    st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
    st.text(max_size=80).filter(lambda line: "\n" not in line),
)
schemathesis.openapi.media_type(
    "application/x-ndjson",
    st.lists(_line, max_size=6).map(lambda lines: "\n".join(lines).encode()),
)
