"""The ``tracemark`` command line is frozen: a refactor changes no command, option or exit code.

``tests/golden/cli_v1.json`` is every command with its parameters (names, flags, whether
required, default) and the documented exit codes, as they were before the structure work
(issue 13). Regenerate it only for a deliberate change:
``.venv/bin/python -m tests.api.test_cli_golden > tests/golden/cli_v1.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from api.cli import EXIT_CODES, app

GOLDEN = Path(__file__).parent.parent / "golden" / "cli_v1.json"


def _command(command: Any) -> dict[str, Any]:
    described: dict[str, Any] = {
        "params": [
            {
                "name": param.name,
                "flags": sorted([*param.opts, *param.secondary_opts]),
                "required": param.required,
                "multiple": param.multiple,
                "default": repr(param.default) if not callable(param.default) else "<callable>",
                "envvar": param.envvar if isinstance(param.envvar, str) else None,
            }
            for param in command.params
            if param.name != "help"
        ]
    }
    # typer vendors its own click: a group is whatever has subcommands.
    if hasattr(command, "commands"):
        described["commands"] = {
            name: _command(sub) for name, sub in sorted(command.commands.items())
        }
    return described


def current_cli() -> dict[str, Any]:
    return {
        "commands": _command(typer.main.get_command(app)),
        "exit_codes": sorted({cls.__name__: code for cls, code in EXIT_CODES.items()}.values()),
    }


def test_the_command_line_is_unchanged() -> None:
    assert current_cli() == json.loads(GOLDEN.read_text(encoding="utf-8"))


if __name__ == "__main__":
    print(json.dumps(current_cli(), indent=1, sort_keys=True))
