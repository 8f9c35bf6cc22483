"""The ``tracemark`` command table: which module registers each command, imported when run.

``tracemark verify`` (or any one command) imports the module that registers it and builds
its click command alone, not the other modules nor the other commands' parameters (typer
builds every registered command at each start, evaluating its annotations): 0.05 s of a
start that the verifier's benchmark counts (``bench/trust_verify_bench.py``).
``--help``, a mistyped command's suggestions, and anything reading the group's ``commands``
(the CLI golden test) import every module first, so the CLI reads exactly as before.

This follows click's documented lazy-group pattern (``list_commands`` and ``get_command``
overridden), building each command through typer's own converters.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final

from typer.core import TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info

if TYPE_CHECKING:
    from typer import Typer
    from typer._click import Command, Context

COMMANDS: Final[dict[str, tuple[str, ...]]] = {
    # Commands, then groups: the order ``tracemark --help`` lists them in.
    "init": ("api.cli.server",),
    "serve": ("api.cli.server",),
    "fingerprint": ("api.cli.creator",),
    "register": ("api.cli.creator",),
    "register-codes": ("api.cli.creator",),
    "revoke": ("api.cli.creator",),
    "status": ("api.cli.chain",),
    "anchor": ("api.cli.chain",),
    "deploy": ("api.cli.chain",),
    "chain": ("api.cli.chain",),
    "verify": ("api.cli.verify",),
    "trace": ("api.cli.trace",),
    "export": ("api.cli.trace",),
    "demo": ("api.cli.demo",),
    "monitor": ("api.cli.monitor",),
    "keys": ("api.cli.creator",),
    "log": ("api.cli.log",),
    "creator": ("api.cli.remote", "api.cli.identity", "api.cli.facevalue"),
    "trust": ("api.cli.trust",),
    "registry-key": ("api.cli.trust",),
    "identities": ("api.cli.identity",),
    "api-keys": ("api.cli.apikeys",),
    "platform-keys": ("api.cli.platformkeys",),
    "tiles": ("api.cli.tiles",),
    "witness": ("api.cli.witness",),
    "credit": ("api.cli.credit",),
    "compliance": ("api.cli.compliance",),
}
"""Every top-level command and group, in ``--help`` order, with the modules that register it
(a group: every module that adds a subcommand to it). A new command is one line here
(``tests/api/test_cli_lazy.py`` fails for a command or module missing from it)."""


def _app() -> Typer:
    from api.cli.app import app

    return app


class LazyGroup(TyperGroup):
    """The root group: a command's modules are imported, and its click command built, when
    that command is asked for (click's lazy group)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._built: set[str] = set()
        super().__init__(*args, **kwargs)

    # NOTE: ``commands`` is what click and typer read for every listing (``--help`` through
    # ``list_commands``, the suggestions for a mistyped name); whoever reads it gets them all.
    @property
    def commands(self) -> MutableMapping[str, Command]:
        for name in COMMANDS:
            self._load(name)
        # And whatever else is registered (by a module imported some other way).
        for name in _registered(_app()):
            self._load(name)
        return self._commands

    @commands.setter
    def commands(self, value: MutableMapping[str, Command]) -> None:
        self._commands = value

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        return self._load(cmd_name)

    def list_commands(self, ctx: Context) -> list[str]:
        loaded = self.commands
        return [
            *(name for name in COMMANDS if name in loaded),
            *(name for name in loaded if name not in COMMANDS),
        ]

    def _load(self, name: str) -> Command | None:
        """The click command of ``name``, its modules imported and it built on first use;
        ``None`` for a name nothing registers."""
        if name in self._built:
            return self._commands.get(name)
        for module in COMMANDS.get(name, ()):
            importlib.import_module(module)
        app = _app()
        info = _registered(app).get(name)
        if info is None:
            return None
        # A group (``keys``) may have been built empty at the start, before the modules that
        # add its subcommands were imported: it is built again now that they are.
        command: Command
        if info[0] == "command":
            command = get_command_from_info(
                info[1],
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
            )
        else:
            command = get_group_from_info(
                info[1],
                pretty_exceptions_short=app.pretty_exceptions_short,
                rich_markup_mode=app.rich_markup_mode,
                suggest_commands=app.suggest_commands,
            )
        self._commands[name] = command
        self._built.add(name)
        return command


def _registered(app: Typer) -> dict[str, tuple[str, Any]]:
    """The commands and groups registered on ``app`` so far, by name, in typer's order."""
    found: dict[str, tuple[str, Any]] = {}
    for command_info in app.registered_commands:
        assert command_info.callback is not None
        name = command_info.name or get_command_name(command_info.callback.__name__)
        found[name] = ("command", command_info)
    for group_info in app.registered_groups:
        if isinstance(group_info.name, str):
            found[group_info.name] = ("group", group_info)
    return found


__all__ = ["COMMANDS", "LazyGroup"]
