"""The ``tracemark`` command's frame: apps, settings, errors and exit codes, output.

A command lives in a module of ``api/cli/`` that registers it on ``app`` (or on a group of
it); the module is imported only when its command runs (``api.cli.lazy``). A new command (or
group) needs one line in ``api.cli.lazy.COMMANDS``, in its place in ``--help``::

    "witness": ("api.cli.witness",),
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import typer
from rich.console import Console

from anchoring.errors import ChainUnavailable
from api.cli.lazy import LazyGroup
from registry import errors
from registry.errors import LogCorrupt
from verifier import boundedjson
from verifier.problems import NotAuthorized, RegistryUnreachable

# NOTE: the frame is imported by every command (and ``--help`` imports every command module),
# so the frame and the command modules import heavy dependencies (the database, the HTTP
# client, eth_account, web3) inside the commands that use them: ``tracemark verify`` starts
# without them (tests/api/test_cli_imports.py).
if TYPE_CHECKING:
    from registry.codekeyring import CodeKeyring
    from registry.creator import CreatorKeys
    from registry.royalty import RoyaltyPolicy
    from registry.service import Registry
    from registry.settings import Settings

#: The exit codes the frame answers, each the ``exit_code`` its class carries (the error family,
#: as ``api/errors.py`` reads ``http_status``); a subclass exits as its nearest class that
#: names one. ``verify`` adds 11, 12, 15, 16 and 17 (``api/cli/verify.py``), ``monitor`` 18
#: (an alarm) and 11 (``api/cli/monitor.py``).
EXIT_CODES: dict[type[errors.TracemarkError], int] = {
    kind: kind.exit_code
    for kind in (
        RegistryUnreachable,
        NotAuthorized,
        ChainUnavailable,
        LogCorrupt,
        errors.ConfigurationError,
        errors.StorageBusy,
        errors.SignatureError,
        errors.Conflict,
        errors.NotFound,
        errors.InvalidInput,
    )
}

app = typer.Typer(
    name="tracemark",
    cls=LazyGroup,
    help="Provenance registry for digital goods: fingerprints, an append-only log, anchors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
keys_app = typer.Typer(help="A creator's account and code key.", no_args_is_help=True)
log_app = typer.Typer(help="The log: signed tree heads and proofs.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(log_app, name="log")

# soft_wrap: a line is never broken at the console width (an error stays one line, a
# fingerprint stays copyable) when the output is piped.
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)


class State:
    """The settings of this run, read on first use: a command that needs none (``--help``,
    ``fingerprint FILE``, ``verify``) does not pay for pydantic-settings."""

    overrides: dict[str, Any]
    _settings: Settings | None = None
    #: Set by a command that leaves nothing to clean up (``verify`` reads, checks and
    #: prints): the ``tracemark`` program then ends without tearing the interpreter down
    #: (``api.cli.main``).
    ends_without_teardown: bool = False
    #: True in the ``tracemark`` program itself (``api.cli.main``), not when the command line
    #: is run in another process's Python (tests, ``CliRunner``).
    is_program: bool = False

    def __init__(self) -> None:
        self.overrides = {}
        self._left_to_exit: list[object] = []

    def leave_to_exit(self, value: object) -> None:
        """Keep ``value`` alive to the end of the ``tracemark`` program, so it is never freed
        object by object: the program ends without teardown and the OS takes the memory back
        at once (an export's ~10^6 objects took ~0.03 s to free). Elsewhere (a test's
        process) it is freed as usual."""
        if self.is_program:
            self._left_to_exit.append(value)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from pydantic import ValidationError

            from registry.settings import load_settings

            try:
                self._settings = load_settings(**self.overrides)
            except ValidationError as exc:
                locations = (e["loc"] for e in exc.errors())
                names = sorted({"TRACEMARK_" + str(loc[0]).upper() for loc in locations if loc})
                # The message names the settings, never their values (one may be a key).
                fail(errors.ConfigurationError(f"invalid setting(s): {', '.join(names)}"))
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        self._settings = value


state = State()


@app.callback()
def _main(
    data_dir: Annotated[
        Path | None,
        typer.Option(envvar="TRACEMARK_DATA_DIR", help="Where the registry keeps its state."),
    ] = None,
    keys_dir: Annotated[
        Path | None, typer.Option(envvar="TRACEMARK_KEYS_DIR", help="Where the creator's keys are.")
    ] = None,
) -> None:
    state.overrides = {}
    state._settings = None
    state.ends_without_teardown = False
    if data_dir is not None:
        state.overrides["data_dir"] = data_dir
    if keys_dir is not None:
        state.overrides["keys_dir"] = keys_dir


def fail(exc: errors.TracemarkError) -> NoReturn:
    err.print(f"error: {exc.detail}", markup=False)
    raise typer.Exit(exc.exit_code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn tracemark errors into one line on stderr and a documented exit code."""
    try:
        yield
    except errors.TracemarkError as exc:
        fail(exc)


def emit(data: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        out.print_json(json.dumps(data))
    else:
        human()


def open_registry() -> Registry:
    from registry.service import Registry

    return Registry.open(state.settings)


def creator_keys() -> CreatorKeys:
    from registry.creator import CreatorKeys

    return CreatorKeys.load(state.settings.resolved_keys_dir)


def code_keyring() -> CodeKeyring:
    """The creator's code keys alone: what fingerprinting a code needs, without loading the
    account (eth_account)."""
    from registry.codekeyring import CodeKeyring

    return CodeKeyring.load(state.settings.resolved_keys_dir)


MAX_JSON_INPUT_BYTES: Final = 1024 * 1024
"""Largest JSON file or option value the CLI reads for a royalty policy, metadata or an
``--item`` (evidence and trust roots have their own bounds, ``MAX_EXPORT_BYTES`` and
``MAX_TRUST_ROOT_BYTES``). Threat: a mistaken or crafted file read whole into memory; real
ones are a few KiB (metadata is at most ``MAX_METADATA_BYTES`` once canonical)."""


def parse_json(data: bytes | str, what: str, max_bytes: int = MAX_JSON_INPUT_BYTES) -> Any:
    """The one way the CLI parses JSON it is handed (a file's bytes or an option's value):
    bounded in size, then in nesting depth without recursion (``verifier.boundedjson``),
    then ``json.loads``; anything else is ``InvalidInput``, exit 3, one line."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if len(raw) > max_bytes:
        raise errors.InvalidInput(f"{what} is larger than {max_bytes:,} bytes")
    try:
        return boundedjson.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise errors.InvalidInput(f"{what} is not JSON: {exc}") from None


def read_json_file(path: Path | None, what: str) -> Any:
    """A JSON file, read at most ``MAX_JSON_INPUT_BYTES`` + 1 bytes, parsed by ``parse_json``."""
    if path is None:
        return None
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_JSON_INPUT_BYTES + 1)
    except OSError as exc:
        raise errors.InvalidInput(f"cannot read the {what} {path}: {exc.strerror}") from None
    return parse_json(data, f"{what} {path}")


def load_policy(path: Path | None) -> RoyaltyPolicy:
    from registry.royalty import RoyaltyPolicy

    document = read_json_file(path, "royalty policy")
    return RoyaltyPolicy.parse(document if document is not None else {"recipients": []})


def load_metadata(path: Path | None) -> dict[str, Any]:
    document = read_json_file(path, "metadata")
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise errors.InvalidInput(f"metadata {path} must hold a JSON object")
    return document


JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
ProductOpt = Annotated[str, typer.Option(help="Product slug, e.g. 30-day-card.")]
UseOpt = Annotated[str, typer.Option(help="single or transferable.")]
PolicyOpt = Annotated[Path | None, typer.Option(help="Royalty policy JSON file.")]
MetadataOpt = Annotated[Path | None, typer.Option(help="Public metadata JSON file.")]
NewProductOpt = Annotated[
    bool, typer.Option("--new-product", help="Start a new product with this registration.")
]
ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        envvar="TRACEMARK_API_URL",
        help="Send to the registry's HTTP API at this URL (signing stays here); "
        "without it, write to the registry's database directly.",
    ),
]


# -- setup ---------------------------------------------------------------------------------------


def existing_file(path: Path) -> Path:
    if not path.is_file():
        raise errors.InvalidInput(f"{path} is not a readable file")
    return path


def json_object(text: str, what: str) -> dict[str, Any]:
    value = parse_json(text, what)
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"{what} must be a JSON object")
    return value


@contextmanager
def progress_bar(total: int | None, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silent when piped or with --json."""
    if quiet or not err.is_terminal:
        yield lambda _done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)
