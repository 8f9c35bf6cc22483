"""Only registry/merkle.py writes the RFC 9162 leaf (0x00) and node (0x01) hash prefixes."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["registry", "anchoring", "verifier", "readmodels", "api"]
HASHER = ROOT / "registry" / "merkle.py"
PREFIXES = {b"\x00", b"\x01"}


def _leftmost(node: ast.expr) -> ast.expr:
    # The first operand of a concatenation chain: a + b + c parses as (a + b) + c.
    while isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        node = node.left
    return node


def _prefix_names(tree: ast.Module) -> set[str]:
    """Names bound anywhere in the module to a bare prefix (as ``sha256, p = ..., b"\\x01"``)."""
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            pairs: list[tuple[ast.expr, ast.expr]] = [(target, node.value)]
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs = list(zip(target.elts, node.value.elts, strict=False))
            for name, value in pairs:
                if (
                    isinstance(name, ast.Name)
                    and isinstance(value, ast.Constant)
                    and value.value in PREFIXES
                ):
                    names.add(name.id)
    return names


def _is_sha256(func: ast.expr) -> bool:
    return (isinstance(func, ast.Name) and func.id == "sha256") or (
        isinstance(func, ast.Attribute) and func.attr == "sha256"
    )


def prefixed_hashes(source: str) -> list[int]:
    """Lines where sha256 is called on data that starts with a bare 0x00 or 0x01 byte."""
    tree = ast.parse(source)
    names = _prefix_names(tree)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _is_sha256(node.func) and node.args:
            first = _leftmost(node.args[0])
            if (isinstance(first, ast.Constant) and first.value in PREFIXES) or (
                isinstance(first, ast.Name) and first.id in names
            ):
                lines.append(node.lineno)
    return lines


def test_the_detector_sees_each_spelling() -> None:
    assert prefixed_hashes('sha256(b"\\x00" + data)') == [1]
    assert prefixed_hashes('hashlib.sha256(b"\\x01" + a + b).digest()') == [1]
    assert prefixed_hashes('sha256, p = hashlib.sha256, b"\\x01"\nsha256(p + a + b)') == [2]
    assert prefixed_hashes('sha256(b"tag\\x00" + data)') == []
    assert prefixed_hashes('sha256(tag + b"\\x00" + data)') == []


def test_no_module_but_merkle_writes_the_prefixes() -> None:
    offenders = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == HASHER:
                continue
            for line in prefixed_hashes(path.read_text(encoding="utf-8")):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == [], "hash leaves and nodes with registry.merkle: " + ", ".join(offenders)


def test_merkle_itself_is_seen_by_the_detector() -> None:
    # Guards the guard: if the detector missed merkle.py's own hashing it would miss others'.
    assert prefixed_hashes(HASHER.read_text(encoding="utf-8"))
