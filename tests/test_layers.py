"""The import direction: api → readmodels → verifier → anchoring → registry, nothing back up.

Every module of each package is parsed (not imported), so an import inside a function or
under ``TYPE_CHECKING`` counts as much as one at the top: each is a dependency all the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Lowest first: a package may import the ones before it, never one after it.
LAYERS = ("registry", "anchoring", "verifier", "readmodels", "api")


def _imported(path: Path, package: str, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in the file, relative ones resolved."""
    found = []
    module_parts = path.relative_to(root).with_suffix("").parts
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module_parts[: len(module_parts) - node.level]
                found.append((node.lineno, base[0] if base else package))
            elif node.module is not None:
                found.append((node.lineno, node.module.split(".")[0]))
    return found


def test_no_package_imports_one_above_it() -> None:
    violations = []
    for rank, package in enumerate(LAYERS):
        above = set(LAYERS[rank + 1 :])
        files = sorted((ROOT / package).rglob("*.py"))
        assert files, f"no modules found in {package}/"
        for path in files:
            for line, imported in _imported(path, package):
                if imported in above:
                    where = path.relative_to(ROOT)
                    violations.append(f"{where}:{line} ({package}) imports {imported}")
    assert violations == []


def test_the_scan_sees_imports_inside_functions_and_type_checking(tmp_path: Path) -> None:
    # Mutation probe: a module with the kinds of import a real violation could hide as.
    (tmp_path / "registry").mkdir()
    planted = tmp_path / "registry" / "probe.py"
    planted.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from readmodels import trace\n"
        "def later():\n"
        "    import api.app\n"
        "    from verifier.bundle import Bundle\n",
        encoding="utf-8",
    )
    found = {name for _, name in _imported(planted, "registry", root=tmp_path)}
    assert {"readmodels", "api", "verifier"} <= found
