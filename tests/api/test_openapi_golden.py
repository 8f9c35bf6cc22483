"""The OpenAPI document is frozen: a refactor may rename a schema, nothing else (issue 13).

``tests/golden/openapi_v1.json`` is the document as it was before the structure work. Both
sides are compared with every ``$ref`` replaced by the schema it names (without the schema's
own title, which is its class name), so a renamed or merged model passes and a changed
route, parameter, status, field or constraint fails. Regenerate the golden file only for a
deliberate change of the API:
``.venv/bin/python -m tests.api.test_openapi_golden > tests/golden/openapi_v1.json``, then
``npm run generate --prefix clients/js`` (the TypeScript client's types are made from it, and
tests/clients fails while they lag it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import create_engine

from api.app import create_app
from registry.eip712 import DEV_DOMAIN
from registry.service import Registry

GOLDEN = Path(__file__).parent.parent / "golden" / "openapi_v1.json"


def current_openapi() -> dict[str, Any]:
    # Only the document is rendered: an in-memory engine nothing connects to.
    registry = Registry(
        create_engine("sqlite://"),
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=bytes(32),
    )
    return create_app(registry).openapi()


def without_schema_names(document: dict[str, Any]) -> Any:
    """The document with each ``$ref`` inlined and each named schema's title dropped."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [inline(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/components/schemas/"):
            name = reference.rsplit("/", 1)[1]
            if name in seen:  # a recursive schema: the cycle is marked, not expanded
                return {"$recursive": len(seen) - seen.index(name)}
            target = dict(schemas[name])
            if target.get("title") == name:
                del target["title"]
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return inline({**target, **rest}, (*seen, name))
        return {key: inline(value, seen) for key, value in node.items()}

    body = {key: value for key, value in document.items() if key != "components"}
    components = {
        key: value for key, value in document.get("components", {}).items() if key != "schemas"
    }
    return inline({**body, "components": components}, ())


def test_the_openapi_document_is_unchanged_but_for_schema_names() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    assert without_schema_names(current_openapi()) == without_schema_names(golden)


def test_the_comparison_sees_a_changed_field() -> None:
    # Mutation probe: the normal form must not hide a change inside a referenced schema.
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    changed = json.loads(GOLDEN.read_text(encoding="utf-8"))
    name, schema = next(
        (name, schema)
        for name, schema in sorted(changed["components"]["schemas"].items())
        if schema.get("properties")
    )
    field = sorted(schema["properties"])[0]
    schema["properties"][field] = {"type": "boolean"}
    assert without_schema_names(changed) != without_schema_names(golden), name


def test_the_comparison_allows_a_renamed_schema() -> None:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    name = next(
        name
        for name, schema in sorted(golden["components"]["schemas"].items())
        if schema.get("title") == name
    )
    text = GOLDEN.read_text(encoding="utf-8").replace(
        f'"#/components/schemas/{name}"', '"#/components/schemas/Renamed"'
    )
    renamed = json.loads(text)
    schema = renamed["components"]["schemas"].pop(name)
    renamed["components"]["schemas"]["Renamed"] = {**schema, "title": "Renamed"}
    assert without_schema_names(renamed) == without_schema_names(golden)


if __name__ == "__main__":
    print(json.dumps(current_openapi(), indent=1, sort_keys=True))
