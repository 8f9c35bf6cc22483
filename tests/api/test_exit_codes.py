"""Every error exits the ``tracemark`` command with the code its class carries (``exit_code``),
and that is, class by class, the code the ordered table it replaced gave (issue 13, item 5)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator

import pytest
import typer

import anchoring
import api
import readmodels
import registry
import verifier
from anchoring.errors import ChainUnavailable
from api.cli.app import fail
from registry import errors
from registry.errors import LogCorrupt
from verifier.problems import NotAuthorized, RegistryUnreachable

#: The CLI's table before the family carried exit codes: the first class an error is an
#: instance of decides, else 1. A change here changes the README's exit codes.
ORDERED_TABLE: tuple[tuple[type[errors.TracemarkError], int], ...] = (
    (RegistryUnreachable, 14),
    (NotAuthorized, 13),
    (ChainUnavailable, 10),
    (LogCorrupt, 9),
    (errors.ConfigurationError, 8),
    (errors.StorageBusy, 7),
    (errors.SignatureError, 6),
    (errors.Conflict, 5),
    (errors.NotFound, 4),
    (errors.InvalidInput, 3),
)


def _every_error_class() -> Iterator[type[errors.TracemarkError]]:
    for package in (registry, anchoring, verifier, readmodels, api):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    seen: set[type[errors.TracemarkError]] = set()
    pending = [errors.TracemarkError]
    while pending:
        kind = pending.pop()
        if kind not in seen:
            seen.add(kind)
            pending += kind.__subclasses__()
    yield from sorted(seen, key=lambda kind: f"{kind.__module__}.{kind.__qualname__}")


def _by_table(kind: type[errors.TracemarkError]) -> int:
    return next((code for base, code in ORDERED_TABLE if issubclass(kind, base)), 1)


def test_every_error_class_exits_as_the_ordered_table_said() -> None:
    kinds = list(_every_error_class())
    assert len(kinds) > 50  # the walk found the family, not just its root
    differing = {
        f"{kind.__module__}.{kind.__qualname__}": (kind.exit_code, _by_table(kind))
        for kind in kinds
        if kind.exit_code != _by_table(kind)
    }
    assert differing == {}


@pytest.mark.parametrize(("kind", "code"), ORDERED_TABLE)
def test_fail_exits_with_the_class_code(kind: type[errors.TracemarkError], code: int) -> None:
    # An instance without running __init__ (the API's problems take the answer's fields):
    # what ``fail`` reads is the class's code and the detail.
    error = kind.__new__(kind)
    error.detail = "the detail"
    with pytest.raises(typer.Exit) as raised:
        fail(error)
    assert raised.value.exit_code == code
