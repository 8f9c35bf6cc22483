"""``tracemark monitor``: follow a log through its static API (C2SP tlog-tiles), no account.

Each verified checkpoint prints one line (``checkpoint N (from M): K events``) and each entry
that concerns a watched creator or good one line (its kind: REGISTER, CONFLICT, REVOKE,
TRANSFER, CREATOR_IDENTITY, KEY_HANDOVER); with ``--json``, one JSON object a line. A split
view, a rollback, or tiles that rewrite verified history or miss the signed root print
``ALARM: <kind>: <detail>`` and exit ``EXIT_ALARM`` (18), leaving the state where it was.
"""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, NoReturn

import typer

from api.cli.app import JsonFlag, app, err, out, reported
from registry import errors

if TYPE_CHECKING:
    from verifier import monitor as monitoring
    from verifier import tlogclient
    from verifier.monitor import StepReport
    from verifier.tiledtree import LogInconsistent

EXIT_ALARM: Final = 18
"""The log contradicts itself or what this monitor verified: split view, rollback, tiles."""

EXIT_CHECKPOINT_INVALID: Final = 11
"""The log's checkpoint does not verify under the pinned vkeys (as a bundle that does not)."""

MIN_INTERVAL: Final = 1.0
"""Shortest wait between two checkpoints when following (seconds): the spec lets a log's
checkpoint be cached a few seconds, so polling faster only asks the same question again."""

MAX_GOODS_FILE_BYTES: Final = 64 * 1024 * 1024
"""Largest ``--goods`` file read (a million fingerprints in hex is 67 MB): a mistaken file
read whole into memory is the threat."""


def _fingerprints(values: list[str], goods_file: Path | None) -> list[bytes]:
    from registry.fingerprints import parse_fingerprint

    texts = list(values)
    if goods_file is not None:
        try:
            with goods_file.open("rb") as stream:
                data = stream.read(MAX_GOODS_FILE_BYTES + 1)
        except OSError as exc:
            raise errors.InvalidInput(f"cannot read {goods_file}: {exc.strerror}") from None
        if len(data) > MAX_GOODS_FILE_BYTES:
            raise errors.InvalidInput(f"{goods_file} is larger than {MAX_GOODS_FILE_BYTES:,} bytes")
        texts += [line.strip() for line in data.decode("ascii", "replace").splitlines()]
    return [parse_fingerprint(text) for text in texts if text and not text.startswith("#")]


def _creators(values: list[str]) -> list[bytes]:
    from registry.eip712 import address_bytes

    return [address_bytes(value) for value in values]


def _platforms(values: list[str]) -> list[str]:
    from registry.parties import check_platform_id

    return [check_platform_id(value) for value in values]


def _alarm(exc: LogInconsistent, as_json: bool) -> NoReturn:
    if as_json:
        document = {
            "type": "alarm",
            "kind": exc.kind,
            "detail": exc.detail,
            "checkpoints": [note.decode() for note in exc.evidence],
        }
        out.print(json.dumps(document), markup=False)
    else:
        out.print(f"ALARM: {exc.kind}: {exc.detail}", markup=False)
    raise typer.Exit(EXIT_ALARM)


def _emit(report: StepReport, as_json: bool) -> None:
    # Entries first, then the checkpoint that proved them: a reader that stops at the
    # checkpoint line has seen every entry of the step.
    for event in report.events:
        if as_json:
            out.print(json.dumps({"type": "event", **event.to_json()}), markup=False)
        else:
            out.print(event.line(), markup=False)
    if as_json:
        out.print(json.dumps({"type": "checkpoint", **report.to_json()}), markup=False)
    else:
        out.print(
            f"checkpoint {report.checkpoint.size} (from {report.old_size}): "
            f"{len(report.events)} events, {report.goods_added} goods of watched creators",
            markup=False,
        )


def _emit_witness(
    follower: monitoring.Monitor, witness: tlogclient.TlogClient, as_json: bool
) -> None:
    from verifier.witnesswatch import check_witness

    state = follower.state
    if state.checkpoint is None or state.note is None:
        return
    view = check_witness(witness, follower.client, follower.verifiers, state.checkpoint, state.note)
    if as_json:
        out.print(json.dumps({"type": "witness", **view.to_json()}), markup=False)
    else:
        size = "" if view.size is None else f" size {view.size}"
        detail = f" ({view.detail})" if view.detail else ""
        out.print(f"witness {view.url}: {view.status}{size}{detail}", markup=False)


@app.command()
def monitor(
    url: Annotated[str, typer.Argument(metavar="URL", help="The log's prefix (tlog-tiles).")],
    state: Annotated[
        Path, typer.Option("--state", metavar="DIR", help="Where the monitor keeps its state.")
    ],
    vkey: Annotated[
        list[str] | None,
        typer.Option(
            "--vkey",
            metavar="VKEY",
            help="A vkey of the log (signed-note); pinned in the state at the first run.",
        ),
    ] = None,
    origin: Annotated[
        str | None,
        typer.Option(
            help="The log's checkpoint origin; default: the saved one, or URL without its scheme."
        ),
    ] = None,
    creator: Annotated[
        list[str] | None,
        typer.Option("--creator", metavar="0x..", help="Watch this creator's goods."),
    ] = None,
    good: Annotated[
        list[str] | None,
        typer.Option("--good", metavar="0x..", help="Watch this good (a platform's)."),
    ] = None,
    goods: Annotated[
        Path | None,
        typer.Option("--goods", metavar="FILE", help="Watch the goods listed, one a line."),
    ] = None,
    platform: Annotated[
        list[str] | None,
        typer.Option(
            "--platform",
            metavar="ID",
            help="Watch the attestation keys enrolled in this platform's name.",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            metavar="URL",
            help="A witness's monitoring prefix (tlog-witness): its cosigned checkpoint of this "
            "log must be the same tree as the one verified here, or consistent with it.",
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="One checkpoint, then exit.")] = False,
    interval: Annotated[
        float, typer.Option(help="Seconds between checkpoints when following.")
    ] = 60.0,
    as_json: JsonFlag = False,
) -> None:
    """Follow a log through its static API: verify each checkpoint (pinned vkeys) and its
    consistency with the last one seen, read every new entry, and report what concerns the
    watched creators, goods and platforms' attestation keys. Exit 18 with an ALARM line on a
    split view, a rollback or tiles that contradict the log's signatures; 11 if the
    checkpoint does not verify."""
    from verifier.monitor import CheckpointInvalid, Monitor
    from verifier.monitorstate import LogIdentity, StateDir
    from verifier.problems import RegistryUnreachable, UnexpectedAnswer
    from verifier.tiledtree import LogInconsistent
    from verifier.tlogclient import TlogClient

    with reported(), ExitStack() as stack:
        watched_goods = _fingerprints(good or [], goods)
        creators = _creators(creator or [])
        client = stack.enter_context(TlogClient(url))
        witnesses = [stack.enter_context(TlogClient(p, parallel=1)) for p in witness or ()]
        state_dir = stack.enter_context(StateDir(state))
        given = LogIdentity(
            prefix=client.prefix,
            origin=origin or "",
            vkeys=tuple(vkey or ()),
            creators=tuple(creators),
        )
        follower = Monitor(
            client, state_dir, state_dir.load(given), watched_goods, _platforms(platform or [])
        )
        wait = max(MIN_INTERVAL, interval)
        while True:
            try:
                follower.step(lambda report: _emit(report, as_json))
                for witness_client in witnesses:
                    _emit_witness(follower, witness_client, as_json)
            except LogInconsistent as exc:
                _alarm(exc, as_json)
            except CheckpointInvalid as exc:
                err.print(f"FAIL: {exc.detail}", markup=False)
                raise typer.Exit(EXIT_CHECKPOINT_INVALID) from None
            except (RegistryUnreachable, UnexpectedAnswer) as exc:
                if once:
                    raise
                # Following: a log briefly away is retried at the next interval.
                err.print(f"warning: {exc.detail}", markup=False)
            if once:
                return
            time.sleep(wait)


__all__ = ["EXIT_ALARM", "EXIT_CHECKPOINT_INVALID", "monitor"]
