"""Where the creator commands send what they signed: one ``CreatorBackend``, two homes.

Without ``--api`` the commands write to the registry's database through the ``Registry``
facade (the operator's mode, ``LocalBackend``); with ``--api URL`` (or
``TRACEMARK_API_URL``) they talk to a registry's HTTP API through ``verifier.client``
(``RemoteBackend``). Either way the signing happens here, on the creator's machine, and
what leaves it is the same: fingerprints and signed messages, never a code. Both backends
answer in the wire shapes (``EntryOut``, ``CodeKeyOut``, a batch's result document), so
``--json`` output is the same in both modes.

Also ``tracemark creator statement``: the royalty statement, read after signing in with
Ethereum with the creator's key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol

import typer
from rich.table import Table

from api.cli.app import (
    JsonFlag,
    app,
    creator_keys,
    emit,
    open_registry,
    out,
    reported,
    state,
)
from registry import errors
from verifier.problems import ProblemNotFound, UnexpectedAnswer
from verifier.timetext import utc_text

# NOTE: the database, the HTTP client and the signed-message types are imported where they are
# used: every command module is imported on every start, ``tracemark verify``'s too.
if TYPE_CHECKING:
    from registry.eip712 import Domain
    from registry.requests import RegistrationRequest, RevocationRequest
    from registry.service import Registry
    from registry.signed import SignedMessage
    from verifier.client import TracemarkClient
    from verifier.schemas import CodeKeyOut, CodeKeyRetireOut, EntryOut, StatementOut

#: Resends of a request the API refused before applying it (429, 503), after Retry-After:
#: a creator registering many files meets the anonymous rate limit, and should get through.
CLI_RETRIES = 5

#: The keys of a bulk batch's result (``registry.batches.BatchResult.as_dict``).
BATCH_RESULT_KEYS = frozenset(
    {
        "record_id",
        "count",
        "registered",
        "already_registered",
        "conflicts",
        "first_leaf_index",
        "tree_size",
        "items_root",
    }
)

Progress = Callable[[int], None]


class CreatorBackend(Protocol):
    """What the creator commands need of a registry, wherever it is."""

    @property
    def domain(self) -> Domain:
        """The EIP-712 domain to sign under."""
        ...

    def now(self) -> int:
        """Unix seconds, for the deadlines of signed messages."""
        ...

    def enroll(self, signed: SignedMessage, code_key: bytes) -> CodeKeyOut: ...

    def retire(self, signed: SignedMessage) -> CodeKeyRetireOut: ...

    def register(self, request: RegistrationRequest) -> EntryOut: ...

    def register_batch(
        self, request: RegistrationRequest, fingerprints: Iterable[bytes], progress: Progress
    ) -> dict[str, Any]:
        """The batch's result document (``BatchResult.as_dict``), once it is in the log."""
        ...

    def revoke(self, request: RevocationRequest) -> EntryOut: ...

    def revoke_batch(
        self, request: RevocationRequest, fingerprints: Iterable[bytes], progress: Progress
    ) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalBackend:
    """The registry's own database, through the ``Registry`` facade (the operator's mode)."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    @property
    def domain(self) -> Domain:
        return self.registry.domain

    def now(self) -> int:
        return self.registry.clock()

    def enroll(self, signed: SignedMessage, code_key: bytes) -> CodeKeyOut:
        from verifier.schemas import CodeKeyOut

        return CodeKeyOut.model_validate(self.registry.enroll_code_key(signed, code_key).as_dict())

    def retire(self, signed: SignedMessage) -> CodeKeyRetireOut:
        from verifier.schemas import CodeKeyRetireOut

        return CodeKeyRetireOut.model_validate(self.registry.retire_code_key(signed).as_dict())

    def register(self, request: RegistrationRequest) -> EntryOut:
        from verifier.schemas import EntryOut

        return EntryOut.model_validate(self.registry.register(request).as_dict())

    def register_batch(
        self, request: RegistrationRequest, fingerprints: Iterable[bytes], progress: Progress
    ) -> dict[str, Any]:
        return self.registry.register_batch(request, fingerprints, progress=progress).as_dict()

    def revoke(self, request: RevocationRequest) -> EntryOut:
        from verifier.schemas import EntryOut

        return EntryOut.model_validate(self.registry.revoke(request).as_dict())

    def revoke_batch(
        self, request: RevocationRequest, fingerprints: Iterable[bytes], progress: Progress
    ) -> dict[str, Any]:
        return self.registry.revoke_batch(request, fingerprints, progress=progress).as_dict()

    def close(self) -> None:
        self.registry.engine.dispose()


class RemoteBackend:
    """A registry's HTTP API, through ``verifier.client``. A bulk batch is uploaded as a
    stream and waited for; its progress is the job's ``processed`` count."""

    def __init__(self, client: TracemarkClient, *, fallback_domain: Domain) -> None:
        self.client = client
        self._fallback_domain = fallback_domain
        self._domain: Domain | None = None

    @property
    def domain(self) -> Domain:
        # NOTE: the API publishes its EIP-712 domain only with a signed tree head; an empty
        # log has none, and then the configured domain (TRACEMARK_CHAIN_ID and
        # TRACEMARK_CONTRACT_ADDRESS) is used. A wrong one is refused by the registry (exit 6).
        if self._domain is None:
            try:
                self._domain = self.client.domain()
            except ProblemNotFound:
                self._domain = self._fallback_domain
        return self._domain

    def now(self) -> int:
        return int(time.time())

    def enroll(self, signed: SignedMessage, code_key: bytes) -> CodeKeyOut:
        return self.client.enroll_code_key(signed, code_key)

    def retire(self, signed: SignedMessage) -> CodeKeyRetireOut:
        return self.client.retire_code_key(signed)

    def register(self, request: RegistrationRequest) -> EntryOut:
        return self.client.register(request)

    def register_batch(
        self, request: RegistrationRequest, fingerprints: Iterable[bytes], progress: Progress
    ) -> dict[str, Any]:
        job = self.client.register_batch(request, fingerprints)
        return self._result(self._wait(job.job_id, progress))

    def revoke(self, request: RevocationRequest) -> EntryOut:
        return self.client.revoke(request)

    def revoke_batch(
        self, request: RevocationRequest, fingerprints: Iterable[bytes], progress: Progress
    ) -> dict[str, Any]:
        job = self.client.revoke_batch(request, fingerprints)
        return self._result(self._wait(job.job_id, progress))

    def _wait(self, job_id: str, progress: Progress) -> dict[str, Any] | None:
        from verifier.clienterrors import JobFailed

        try:
            return self.client.wait_job(job_id, progress=progress).result
        except JobFailed as failed:
            # The exit code of the error itself (4 for an unknown product...), as in local mode.
            raise failed.problem from failed

    @staticmethod
    def _result(result: dict[str, Any] | None) -> dict[str, Any]:
        if result is None or set(result) != BATCH_RESULT_KEYS:
            raise UnexpectedAnswer("the registry's bulk job finished without a batch result")
        return result

    def close(self) -> None:
        self.client.close()


@contextmanager
def open_backend(api_url: str | None) -> Iterator[CreatorBackend]:
    """The API at ``api_url`` when one is given (``--api`` / ``TRACEMARK_API_URL``), else the
    registry's database named by the settings; closed when the command is done."""
    backend: CreatorBackend
    if api_url is not None and api_url.strip():
        from verifier.client import TracemarkClient

        client = TracemarkClient(api_url, max_retries=CLI_RETRIES)
        backend = RemoteBackend(client, fallback_domain=state.settings.domain)
    else:
        backend = LocalBackend(open_registry())
    try:
        yield backend
    finally:
        backend.close()


# -- tracemark creator statement ------------------------------------------------------------------

creator_app = typer.Typer(
    help="A creator's reads from a registry's API, signed in with Ethereum.", no_args_is_help=True
)
app.add_typer(creator_app, name="creator")


def parse_time(text: str | None, what: str) -> int | None:
    """Unix seconds, or an ISO 8601 date or date-time (UTC unless it names its offset)."""
    if text is None:
        return None
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise errors.InvalidInput(
            f"{what} must be Unix seconds or an ISO date such as 2026-01-31"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@creator_app.command("statement")
def statement(
    api: Annotated[
        str,
        typer.Option(
            "--api", envvar="TRACEMARK_API_URL", help="The registry's API, e.g. https://host."
        ),
    ],
    since: Annotated[
        str | None, typer.Option(help="From (Unix seconds or ISO date; default: the start).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Until, excluded (Unix seconds or ISO date; default: now).")
    ] = None,
    period: Annotated[
        Literal["day", "month", "all"], typer.Option(help="Lines per day, month or in all.")
    ] = "month",
    as_csv: Annotated[bool, typer.Option("--csv", help="The statement as CSV.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Your royalty statement: what is owed on your goods, per good, platform and period
    (signs in with Ethereum using your creator key)."""
    from verifier.client import TracemarkClient

    with reported():
        if as_csv and as_json:
            raise errors.InvalidInput("give --csv or --json, not both")
        start = parse_time(since, "--since") or 0
        end = parse_time(until, "--until")
        keys = creator_keys()
        with TracemarkClient(api, max_retries=CLI_RETRIES) as client:
            client.sign_in(keys.account)
            if as_csv:
                text = client.royalty_statement(since=start, until=end, period=period, format="csv")
            else:
                found = client.royalty_statement(since=start, until=end, period=period)
    if as_csv:
        out.file.write(text)
        out.file.flush()
        return
    emit(found.model_dump(), as_json, lambda: _print_statement(found))


@creator_app.command("distribution")
def distribution(
    api: Annotated[
        str,
        typer.Option(
            "--api", envvar="TRACEMARK_API_URL", help="The registry's API, e.g. https://host."
        ),
    ],
    restrict: Annotated[
        list[str] | None,
        typer.Option(
            "--restrict",
            help="Only this platform (repeat for each) may sell your goods first-hand.",
        ),
    ] = None,
    open_to_all: Annotated[
        bool, typer.Option("--open", help="Any platform may sell your goods first-hand again.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Who may sell your goods first-hand (report a sale from you): shown, restricted to named
    distributors, or opened again (signs in with Ethereum using your creator key)."""
    from verifier.client import TracemarkClient

    with reported():
        if restrict and open_to_all:
            raise errors.InvalidInput("give --restrict or --open, not both")
        keys = creator_keys()
        with TracemarkClient(api, max_retries=CLI_RETRIES) as client:
            client.sign_in(keys.account)
            if restrict:
                found = client.set_distribution(restricted=True, platforms=restrict)
            elif open_to_all:
                kept = client.distribution().platforms
                found = client.set_distribution(restricted=False, platforms=kept)
            else:
                found = client.distribution()

    def show() -> None:
        if not found.restricted:
            out.print("open: any platform may sell your goods first-hand", markup=False)
        else:
            names = ", ".join(found.platforms) or "nobody"
            out.print(f"restricted: only {names} may sell your goods first-hand", markup=False)

    emit(found.model_dump(), as_json, show)


def _print_statement(found: StatementOut) -> None:
    def day(seconds: int) -> str:
        return utc_text(seconds, "%Y-%m-%d %H:%M:%S")

    out.print(
        f"royalties of {found.creator}, {day(found.since)} to {day(found.until)} UTC",
        markup=False,
    )
    if not found.lines:
        out.print("nothing owed in this period", markup=False)
        return
    table = Table("period", "good", "platform", "recipient", "amount", "transfers")
    for line in found.lines:
        table.add_row(
            line.period,
            f"{line.good_type} {line.fingerprint}",
            line.platform,
            line.recipient,
            f"{line.amount} {line.currency}",
            str(line.transfers),
        )
    out.print(table)
    for total in found.totals:
        out.print(f"total {total.recipient}: {total.amount} {total.currency}", markup=False)


__all__ = [
    "CreatorBackend",
    "LocalBackend",
    "RemoteBackend",
    "open_backend",
]
