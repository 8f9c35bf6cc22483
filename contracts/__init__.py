"""Solidity sources and their committed compiled artifacts; data any package reads.

``contracts/build.mjs`` compiles ``TracemarkAnchor.sol`` with the pinned npm ``solc``;
``make test`` recompiles and fails when the committed ``TracemarkAnchor.json`` differs, so
running tracemark never needs a compiler.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

ANCHOR_ARTIFACT = Path(__file__).with_name("TracemarkAnchor.json")


@cache
def anchor_artifact() -> dict[str, Any]:
    """The compiled anchor contract: ``abi``, ``bytecode``, ``deployedBytecode``, compiler."""
    artifact: dict[str, Any] = json.loads(ANCHOR_ARTIFACT.read_text())
    return artifact


__all__ = ["ANCHOR_ARTIFACT", "anchor_artifact"]
