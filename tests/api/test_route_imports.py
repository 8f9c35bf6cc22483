"""Route modules take shared dependencies from ``api.deps`` only, never from another route
module, and webhooks never import a route (issue 13), proved over the source with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

API = Path(__file__).resolve().parents[2] / "api"
ROUTES = sorted((API / "routes").glob("*.py"))
WEBHOOKS = sorted((API / "webhooks").glob("*.py"))

#: The dependency callables a route uses: they come from ``api.deps`` (which takes them from
#: ``api.auth`` and ``api.context``), so every route reads them from the one place.
DEPENDENCIES = frozenset(
    {
        "authenticated",
        "authenticated_signed_write",
        "caller",
        "context",
        "require_creator",
        "require_scope",
        "CurrentPrincipal",
    }
)


def imports(path: Path) -> list[tuple[str, str | None]]:
    """Each ``(module, name)`` the file imports (``name`` None for ``import module``),
    including imports inside functions."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.extend((node.module, alias.name) for alias in node.names)
    return found


def names_a_route(module: str, name: str | None) -> bool:
    if module == "api.routes" or module.startswith("api.routes."):
        return True
    return module == "api" and name == "routes"


def test_the_sources_are_there() -> None:
    assert len(ROUTES) > 5
    assert len(WEBHOOKS) > 3


def test_no_route_module_imports_another_route() -> None:
    offenders = [
        f"{path.name}: {module} {name or ''}".strip()
        for path in ROUTES
        for module, name in imports(path)
        if names_a_route(module, name)
    ]
    assert offenders == []


def test_route_modules_take_shared_dependencies_from_api_deps() -> None:
    offenders = [
        f"{path.name}: {name} from {module}"
        for path in ROUTES
        for module, name in imports(path)
        if name in DEPENDENCIES and module != "api.deps"
    ]
    assert offenders == []
    assert any(module == "api.deps" for path in ROUTES for module, _ in imports(path))


def test_webhooks_never_import_a_route() -> None:
    offenders = [
        f"{path.name}: {module} {name or ''}".strip()
        for path in WEBHOOKS
        for module, name in imports(path)
        if names_a_route(module, name) or module in ("api.app", "api.routertable")
    ]
    assert offenders == []
