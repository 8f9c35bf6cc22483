"""How large one evidence export may be: the bounds its writer keeps and its parser enforces.

A module of its own, importing nothing, so the command line can name them in its options
without loading the format's models (``tracemark --help`` registers ``export``).
"""

from __future__ import annotations

from typing import Final

MAX_EXPORT_GOODS: Final = 5_000
"""Most goods one export file holds; a larger selection is paged with ``--after``.

Threat: a verifier handed a file of 10^6 goods (a creator's whole catalogue) would parse
gigabytes into memory. 5,000 goods of ordinary history make a file of about 20 MB that a
laptop parses and checks in under a minute.
"""

MAX_EXPORT_ENTRIES: Final = 20_000
"""Most entries (all goods together) one export file holds: signatures to recover and proofs
to walk. A good's own history is bounded as a bundle's (``MAX_BUNDLE_ENTRIES``)."""

MAX_EXPORT_BYTES: Final = 128 * 1024 * 1024
"""Largest export file a parser reads, and the writer's budget for one file (bytes)."""
