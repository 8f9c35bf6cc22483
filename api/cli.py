"""The ``tracemark`` command: creators register and revoke, operators run and inspect the log.

Until the HTTP API exists the commands call the registry's service layer on the database
directly (the operator's mode). Exit codes (README): 0 ok, 1 internal error, 2 usage,
3 invalid input, 4 not found, 5 conflict, 6 signature refused, 7 database busy,
8 configuration, 9 the stored log contradicts itself.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from registry import errors
from registry.audit import LogCorrupt
from registry.codekeys import key_commitment
from registry.creator import (
    CreatorKeys,
    PreparedBatch,
    prepare_code_batch,
    sign_batch_registration,
    sign_batch_revocation,
    sign_enrollment,
    sign_registration,
    sign_revocation,
)
from registry.fingerprints import (
    GoodType,
    Use,
    code_fingerprint,
    file_fingerprint_path,
    fingerprint_hex,
    item_fingerprint,
    parse_fingerprint,
    parse_good_type,
    parse_use,
)
from registry.merkle import hash_leaf, verify_consistency, verify_inclusion
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.settings import Settings, load_settings

EXIT_CODES: dict[type[errors.TracemarkError], int] = {
    LogCorrupt: 9,
    errors.ConfigurationError: 8,
    errors.StorageBusy: 7,
    errors.SignatureError: 6,
    errors.Conflict: 5,
    errors.NotFound: 4,
    errors.InvalidInput: 3,
}

app = typer.Typer(
    name="tracemark",
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
    settings: Settings


state = State()


@app.callback()
def _main(
    data_dir: Annotated[
        Path | None, typer.Option(help="State directory [env: TRACEMARK_DATA_DIR]")
    ] = None,
    keys_dir: Annotated[
        Path | None, typer.Option(help="Creator keys [env: TRACEMARK_KEYS_DIR]")
    ] = None,
) -> None:
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if keys_dir is not None:
        overrides["keys_dir"] = keys_dir
    try:
        state.settings = load_settings(**overrides)
    except ValidationError as exc:
        names = sorted({"TRACEMARK_" + str(e["loc"][0]).upper() for e in exc.errors() if e["loc"]})
        # The message names the settings, never their values (one may be a key).
        fail(errors.ConfigurationError(f"invalid setting(s): {', '.join(names)}"))


def fail(exc: errors.TracemarkError) -> NoReturn:
    code = next((c for kind, c in EXIT_CODES.items() if isinstance(exc, kind)), 1)
    err.print(f"error: {exc.detail}", markup=False)
    raise typer.Exit(code)


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
    return Registry.open(state.settings)


def creator_keys() -> CreatorKeys:
    return CreatorKeys.load(state.settings.resolved_keys_dir)


def read_json_file(path: Path | None, what: str) -> Any:
    if path is None:
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise errors.InvalidInput(f"{what} {path}: {exc}") from exc


def load_policy(path: Path | None) -> RoyaltyPolicy:
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


# -- setup ---------------------------------------------------------------------------------------


@app.command()
def init(as_json: JsonFlag = False) -> None:
    """Create the data dir, the registry key and the database (idempotent)."""
    with reported():
        registry = open_registry()
        data = {
            "data_dir": str(state.settings.data_dir),
            "database": registry.engine.url.render_as_string(hide_password=True),
            "registry_address": registry.address,
            "domain": registry.domain.as_dict(),
        }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"registry {data['registry_address']} ready in {data['data_dir']}", markup=False
        ),
    )


@keys_app.command("new")
def keys_new(as_json: JsonFlag = False) -> None:
    """Create a creator account and a code key (files with owner-only permissions)."""
    with reported():
        keys = CreatorKeys.create(state.settings.resolved_keys_dir)
    data = {"address": keys.address, "keys_dir": str(state.settings.resolved_keys_dir)}
    emit(
        data,
        as_json,
        lambda: out.print(
            f"creator {keys.address}; keys in {data['keys_dir']} (keep them secret)", markup=False
        ),
    )


@keys_app.command("show")
def keys_show(as_json: JsonFlag = False) -> None:
    """Show the creator's address and the commitment to its code key (never the key)."""
    with reported():
        keys = creator_keys()
        commitment = key_commitment(keys.code_key) if keys.code_key else None
    data = {
        "address": keys.address,
        "code_key_commitment": None if commitment is None else "0x" + commitment.hex(),
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"creator {data['address']}\ncode key commitment {data['code_key_commitment']}",
            markup=False,
        ),
    )


@keys_app.command("enroll")
def keys_enroll(as_json: JsonFlag = False) -> None:
    """Enrol the code key with the registry, so platforms can check codes (signed)."""
    with reported():
        registry = open_registry()
        keys = creator_keys()
        signed = sign_enrollment(keys, registry.domain, now=registry.clock())
        result = registry.enroll_code_key(signed, keys.require_code_key())
    data = {
        "creator": result.creator,
        "status": result.status,
        "key_commitment": "0x" + result.key_commitment.hex(),
    }
    emit(data, as_json, lambda: out.print(f"code key {result.status}", markup=False))


# -- fingerprints and registration ---------------------------------------------------------------


@app.command()
def fingerprint(
    file: Annotated[Path | None, typer.Argument(help="A file to fingerprint.")] = None,
    code: Annotated[
        str | None,
        typer.Option(help="A code to fingerprint under your code key; '-' reads it from stdin."),
    ] = None,
    item: Annotated[str | None, typer.Option(help="An item's identifying fields as JSON.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the fingerprint of a file, a code or an item (computed locally)."""
    with reported():
        chosen = [x for x in (file, code, item) if x is not None]
        if len(chosen) != 1:
            raise errors.InvalidInput("give exactly one of FILE, --code or --item")
        if file is not None:
            good_type, value = GoodType.FILE, file_fingerprint_path(_existing(file))
        elif code is not None:
            text = sys.stdin.readline().rstrip("\n") if code == "-" else code
            key = creator_keys().require_code_key()
            good_type, value = GoodType.CODE, code_fingerprint(key, text)
        else:
            fields = _json_object(str(item), "--item")
            good_type, value = GoodType.ITEM, item_fingerprint(fields)
    data = {"good_type": good_type.name.lower(), "fingerprint": fingerprint_hex(value)}
    emit(data, as_json, lambda: out.print(data["fingerprint"], markup=False))


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise errors.InvalidInput(f"{path} is not a readable file")
    return path


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise errors.InvalidInput(f"{what} is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise errors.InvalidInput(f"{what} must be a JSON object")
    return value


@app.command()
def register(
    files: Annotated[list[Path], typer.Argument(help="Files to register.")],
    product: ProductOpt = "",
    use: UseOpt = "transferable",
    royalty: PolicyOpt = None,
    metadata: MetadataOpt = None,
    new_product: NewProductOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Register files: each is fingerprinted locally and signed as one Registration."""
    results = []
    with reported():
        registry = open_registry()
        keys = creator_keys()
        policy, meta, use_value = load_policy(royalty), load_metadata(metadata), parse_use(use)
        prints = [(path, file_fingerprint_path(_existing(path))) for path in files]
        for path, value in prints:
            request = sign_registration(
                keys,
                registry.domain,
                good_type=GoodType.FILE,
                fingerprint=value,
                product=product,
                use=use_value,
                royalty_policy=policy,
                metadata=meta,
                now=registry.clock(),
                new_product=new_product,
            )
            results.append({"file": str(path), **registry.register(request).as_dict()})
    emit({"entries": results}, as_json, lambda: _print_entries(results))


def _print_entries(results: list[dict[str, Any]]) -> None:
    table = Table("file", "status", "entry")
    table.add_column("fingerprint", no_wrap=True, overflow="fold")
    for row in results:
        table.add_row(row["file"], row["status"], str(row["entry_id"]), row["fingerprint"])
    out.print(table)


@contextmanager
def progress_bar(total: int | None, label: str, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal; silent when piped or with --json."""
    if quiet or not err.is_terminal:
        yield lambda _done: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def _prepare(codes: Path, key: bytes, skip_invalid: bool, quiet: bool) -> PreparedBatch:
    with (
        progress_bar(None, "fingerprinting", quiet) as tick,
        _existing(codes).open(newline="", encoding="utf-8") as source,
    ):
        try:
            return prepare_code_batch(source, key, skip_invalid=skip_invalid, progress=tick)
        except UnicodeDecodeError as exc:
            raise errors.InvalidInput(f"{codes} is not UTF-8 text: {exc.reason}") from exc


@app.command("register-codes")
def register_codes(
    codes: Annotated[Path, typer.Argument(help="Codes: one per line, or CSV with a code column.")],
    product: ProductOpt,
    use: UseOpt = "single",
    royalty: PolicyOpt = None,
    metadata: MetadataOpt = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Register the good lines and report the bad ones.")
    ] = False,
    new_product: NewProductOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Register a file of codes as one signed BatchRegistration (codes stay on this machine)."""
    with reported():
        registry = open_registry()
        keys = creator_keys()
        policy, meta, use_value = load_policy(royalty), load_metadata(metadata), parse_use(use)
        batch = _prepare(codes, keys.require_code_key(), skip_invalid, as_json)
        try:
            request = sign_batch_registration(
                keys,
                registry.domain,
                batch,
                good_type=GoodType.CODE,
                product=product,
                use=use_value,
                royalty_policy=policy,
                metadata=meta,
                now=registry.clock(),
                new_product=new_product,
            )
            with progress_bar(batch.count, "registering", as_json) as tick:
                result = registry.register_batch(request, batch.fingerprints(), progress=tick)
        finally:
            batch.close()
    data = {**result.as_dict(), "skipped": [s.__dict__ for s in batch.skipped]}
    emit(data, as_json, lambda: _print_batch(data, "registered"))


def _print_batch(data: dict[str, Any], verb: str) -> None:
    out.print(
        f"{data['registered']:,} {verb}, {data['already_registered']:,} already done, "
        f"{data['conflicts']:,} conflicts; log size {data['tree_size']:,}",
        markup=False,
    )
    for bad in data["skipped"]:
        err.print(f"skipped line {bad['line']}: {bad['reason']}", markup=False)


@app.command()
def revoke(
    reason: Annotated[str, typer.Option(help="Why (public, travels in proofs).")],
    fingerprint_: Annotated[
        str | None, typer.Option("--fingerprint", help="The good's 0x fingerprint.")
    ] = None,
    good_type: Annotated[str, typer.Option("--type", help="file, code or item.")] = "code",
    file: Annotated[Path | None, typer.Option(help="Revoke this file.")] = None,
    codes: Annotated[Path | None, typer.Option(help="Revoke every code of this file.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke one good (by fingerprint or file), or a batch of codes, with a signature."""
    with reported():
        if sum(x is not None for x in (fingerprint_, file, codes)) != 1:
            raise errors.InvalidInput("give exactly one of --fingerprint, --file or --codes")
        registry = open_registry()
        keys = creator_keys()
        now = registry.clock()
        if codes is not None:
            batch = _prepare(codes, keys.require_code_key(), False, as_json)
            try:
                request = sign_batch_revocation(
                    keys, registry.domain, batch, good_type=GoodType.CODE, reason=reason, now=now
                )
                result = registry.revoke_batch(request, batch.fingerprints())
            finally:
                batch.close()
            data = {**result.as_dict(), "skipped": []}
            emit(data, as_json, lambda: _print_batch(data, "revoked"))
            return
        if file is not None:
            kind, value = GoodType.FILE, file_fingerprint_path(_existing(file))
        else:
            kind, value = parse_good_type(good_type), parse_fingerprint(str(fingerprint_))
        one = sign_revocation(
            keys, registry.domain, good_type=kind, fingerprint=value, reason=reason, now=now
        )
        entry = registry.revoke(one).as_dict()
    emit(entry, as_json, lambda: out.print(f"{entry['status']}: entry {entry['entry_id']}"))


# -- the log -----------------------------------------------------------------------------------


def _head_dict(registry: Registry) -> dict[str, Any]:
    head = registry.latest_tree_head()
    if head is None:
        raise errors.NotFound("the log is empty: no tree head signed yet")
    return {
        "tree_size": head.tree_size,
        "root": "0x" + head.root.hex(),
        "timestamp": head.timestamp,
        "signer": registry.address,
        "signature": "0x" + head.signature.hex(),
        "domain": head.domain.as_dict(),
    }


@log_app.command("head")
def log_head(as_json: JsonFlag = False) -> None:
    """The latest signed tree head."""
    with reported():
        data = _head_dict(open_registry())
    emit(
        data,
        as_json,
        lambda: out.print(
            f"size {data['tree_size']:,} root {data['root']} at {data['timestamp']}", markup=False
        ),
    )


@log_app.command("sequence")
def log_sequence(as_json: JsonFlag = False) -> None:
    """Integrate every queued entry now and sign a head (what `serve` does continuously)."""
    with reported():
        registry = open_registry()
        registry.sequence_all()
        data = _head_dict(registry)
    emit(data, as_json, lambda: out.print(f"size {data['tree_size']:,} root {data['root']}"))


@log_app.command("check")
def log_check(as_json: JsonFlag = False) -> None:
    """Rebuild the log from its entries; compare with the stored tree and every signed head."""
    with reported():
        report = open_registry().check_log()
        data = {
            "tree_size": report.tree_size,
            "heads_checked": report.heads_checked,
            "problems": report.problems,
            "ok": not report.problems,
        }
        if not report.problems:
            summary = f"ok: {report.tree_size:,} leaves, {report.heads_checked:,} heads agree"
            emit(data, as_json, lambda: out.print(summary))
            return
        if as_json:
            out.print_json(json.dumps(data))
        for problem in report.problems:
            err.print(f"problem: {problem}", markup=False)
        if report.problems:
            raise LogCorrupt(f"{len(report.problems)} problem(s) in the log")


@log_app.command("proof")
def log_proof(
    index: Annotated[int | None, typer.Option(help="Leaf index to prove.")] = None,
    fingerprint_: Annotated[
        str | None, typer.Option("--fingerprint", help="Prove this good's REGISTER entry.")
    ] = None,
    good_type: Annotated[str, typer.Option("--type", help="file, code or item.")] = "file",
    size: Annotated[int | None, typer.Option(help="Tree size (default: latest head).")] = None,
    from_size: Annotated[
        int | None, typer.Option("--from", help="Consistency proof from this size.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """An inclusion proof (by --index or --fingerprint) or a consistency proof (--from)."""
    with reported():
        registry = open_registry()
        head = registry.latest_tree_head()
        if head is None:
            raise errors.NotFound("the log is empty: no tree head signed yet")
        target = registry.tree_head(size) if size is not None else head
        if from_size is not None:
            proof = registry.consistency_proof(from_size, target.tree_size)
            old_root = registry.tree_head(from_size).root if from_size else b""
            if from_size:
                verify_consistency(from_size, target.tree_size, proof, old_root, target.root)
            data: dict[str, Any] = {"from": from_size, "to": target.tree_size}
        else:
            leaf_index = _leaf_index(registry, index, fingerprint_, good_type)
            entry = registry.entry_at(leaf_index)
            proof = registry.inclusion_proof(leaf_index, target.tree_size)
            verify_inclusion(
                hash_leaf(entry.leaf_data()), leaf_index, target.tree_size, proof, target.root
            )
            data = {
                "leaf_index": leaf_index,
                "tree_size": target.tree_size,
                "entry": entry.as_dict(),
                "leaf_data": "0x" + entry.leaf_data().hex(),
            }
            if entry.position is not None:
                data["batch_proof"] = registry.batch_proof(entry).as_dict()
        data.update({"root": "0x" + target.root.hex(), "proof": ["0x" + p.hex() for p in proof]})
    emit(data, as_json, lambda: out.print_json(json.dumps(data)))


def _leaf_index(registry: Registry, index: int | None, fp: str | None, good_type: str) -> int:
    if (index is None) == (fp is None):
        raise errors.InvalidInput("give exactly one of --index or --fingerprint")
    if index is not None:
        return index
    history = registry.history(parse_good_type(good_type), parse_fingerprint(str(fp)))
    for entry in history:
        if entry.kind.name == "REGISTER":
            if entry.leaf_index is None:
                raise errors.NotFound("the good is queued and not yet in a signed tree head")
            return entry.leaf_index
    raise errors.NotFound(f"no {good_type} {fp} is registered")


# -- serving -------------------------------------------------------------------------------------


@app.command()
def serve() -> None:
    """Run the registry: the sequencer, logging each new signed tree head, until Ctrl-C."""
    from registry.sequencer import run_sequencer

    logging.basicConfig(
        level=state.settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # alembic announces every plugin at INFO on each start; only its warnings matter here.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    with reported():
        registry = open_registry()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    logging.getLogger("tracemark").info(
        "registry %s serving %s (data in %s); Ctrl-C stops",
        registry.address,
        registry.engine.url.render_as_string(hide_password=True),
        state.settings.data_dir,
    )
    run_sequencer(registry, interval=state.settings.sequencer_interval, stop=stop)
    logging.getLogger("tracemark").info("stopped")


def main() -> None:
    app()


__all__ = ["Use", "app", "main"]
