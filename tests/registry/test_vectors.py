"""transparency-dev/merkle's RFC 6962 proof vectors: exactly the wantErr: false cases verify."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from registry.errors import InvalidInput, InvalidProof, ProofOutOfRange
from registry.merkle import verify_consistency, verify_inclusion

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "rfc6962-transparency-dev"
REJECTED = (InvalidProof, ProofOutOfRange, InvalidInput)


def _cases(kind: str) -> list[Any]:
    files = sorted((VECTORS / kind).rglob("*.json"))
    return [pytest.param(path, id=str(path.relative_to(VECTORS / kind))) for path in files]


def _load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text())
    return case


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(case: dict[str, Any]) -> list[bytes]:
    return [_b64(element) for element in case["proof"] or []]


def test_vectors_are_vendored() -> None:
    assert (VECTORS / "LICENSE").is_file()
    assert len(_cases("inclusion")) == 86
    assert len(_cases("consistency")) == 84


@pytest.mark.parametrize("path", _cases("inclusion"))
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)

    def verify() -> None:
        verify_inclusion(
            _b64(case["leafHash"]),
            case["leafIdx"],
            case["treeSize"],
            _proof(case),
            _b64(case["root"]),
        )

    if case["wantErr"]:
        with pytest.raises(REJECTED):
            verify()
    else:
        verify()


@pytest.mark.parametrize("path", _cases("consistency"))
def test_consistency_vector(path: Path) -> None:
    case = _load(path)

    def verify() -> None:
        verify_consistency(
            case["size1"],
            case["size2"],
            _proof(case),
            _b64(case["root1"]),
            _b64(case["root2"]),
        )

    if case["wantErr"]:
        with pytest.raises(REJECTED):
            verify()
    else:
        verify()
