"""Creator commands: keys, fingerprints, registering and revoking (signed locally).

The writes go to the registry's database, or with ``--api URL`` to a registry's HTTP API
(``api/cli/remote.py``); only fingerprints and signed messages ever leave this machine.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from api.cli.app import (
    ApiOpt,
    JsonFlag,
    MetadataOpt,
    NewProductOpt,
    PolicyOpt,
    ProductOpt,
    UseOpt,
    app,
    code_keyring,
    creator_keys,
    emit,
    err,
    existing_file,
    json_object,
    keys_app,
    load_metadata,
    load_policy,
    out,
    progress_bar,
    reported,
    state,
)
from api.cli.remote import open_backend
from registry import errors
from registry.fingerprints import (
    GoodType,
    code_fingerprint,
    file_fingerprint_path,
    fingerprint_hex,
    item_fingerprint,
    parse_fingerprint,
    parse_good_type,
    parse_use,
)

# NOTE: registry.creator and registry.codekeys pull in eth_account and the database layer;
# they are imported by the commands that sign, so ``tracemark verify`` starts without them.
if TYPE_CHECKING:
    from registry.codesfile import PreparedBatch


@keys_app.command("new")
def keys_new(as_json: JsonFlag = False) -> None:
    """Create a creator account and a code key (files with owner-only permissions)."""
    from registry.creator import CreatorKeys

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
    """Show the creator's address and its code keys' ids and commitments (never a key)."""
    from registry.codekeyring import key_commitment

    with reported():
        keys = creator_keys()
        commitment = key_commitment(keys.code_key) if keys.code_key else None
    items = [
        {
            "kid": kid,
            "key_commitment": "0x" + key_commitment(key).hex(),
            "current": kid == keys.current_kid,
        }
        for kid, key in sorted(keys.code_keys.items())
    ]
    data = {
        "address": keys.address,
        "code_key_commitment": None if commitment is None else "0x" + commitment.hex(),
        "current_kid": keys.current_kid,
        "code_keys": items,
    }

    def show() -> None:
        out.print(f"creator {data['address']}", markup=False)
        if not keys.code_keys:
            out.print("no code key; run: tracemark keys new", markup=False)
        for item in items:
            mark = "  (current)" if item["current"] else ""
            out.print(f"code key {item['kid']} {item['key_commitment']}{mark}", markup=False)

    emit(data, as_json, show)


@keys_app.command("enroll")
def keys_enroll(api: ApiOpt = None, as_json: JsonFlag = False) -> None:
    """Enrol the current code key with the registry, so platforms can check codes (signed).
    Enrolling a new key (after ``keys rotate``) keeps the older ones: their codes still
    verify until you retire them."""
    from registry.creator import sign_enrollment

    with reported(), open_backend(api) as backend:
        keys = creator_keys()
        signed = sign_enrollment(keys, backend.domain, now=backend.now())
        result = backend.enroll(signed, keys.require_code_key())
    data = {
        "creator": result.creator,
        "status": result.status,
        "key_commitment": result.key_commitment,
        "kid": keys.current_kid,
    }
    emit(
        data,
        as_json,
        lambda: out.print(f"code key {keys.current_kid} {result.status}", markup=False),
    )


@keys_app.command("rotate")
def keys_rotate(as_json: JsonFlag = False) -> None:
    """Make a new code key and make it the current one (older key files are kept). Then run
    ``tracemark keys enroll``; codes registered under the older keys keep verifying."""
    from registry.creator import CreatorKeys

    with reported():
        keys_dir = state.settings.resolved_keys_dir
        previous = creator_keys().current_kid
        kid = CreatorKeys.rotate_code_key(keys_dir)
    data = {"kid": kid, "previous_kid": previous, "keys_dir": str(keys_dir)}
    emit(
        data,
        as_json,
        lambda: out.print(
            f"new current code key {kid} (previous: {previous}); enrol it: tracemark keys enroll",
            markup=False,
        ),
    )


@keys_app.command("retire")
def keys_retire(
    kid: Annotated[
        str, typer.Argument(help="The key's id (tracemark keys show), or its 0x commitment.")
    ],
    api: ApiOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Retire one of your enrolled code keys (signed): the registry destroys its copy and no
    longer looks codes up under it; the goods registered under it keep their history and
    verify by fingerprint."""
    from registry.creator import sign_retirement

    with reported(), open_backend(api) as backend:
        keys = creator_keys()
        commitment = keys.commitment_of(kid)
        signed = sign_retirement(keys, backend.domain, key_commitment=commitment, now=backend.now())
        result = backend.retire(signed)
    data = result.model_dump()
    emit(data, as_json, lambda: out.print(f"code key {result.kid} {result.status}", markup=False))


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
            good_type, value = GoodType.FILE, file_fingerprint_path(existing_file(file))
        elif code is not None:
            text = sys.stdin.readline().rstrip("\n") if code == "-" else code
            key = code_keyring().require_current()
            good_type, value = GoodType.CODE, code_fingerprint(key, text)
        else:
            fields = json_object(str(item), "--item")
            good_type, value = GoodType.ITEM, item_fingerprint(fields)
    data = {"good_type": good_type.name.lower(), "fingerprint": fingerprint_hex(value)}
    emit(data, as_json, lambda: out.print(data["fingerprint"], markup=False))


@app.command()
def register(
    files: Annotated[list[Path], typer.Argument(help="Files to register.")],
    product: ProductOpt = "",
    use: UseOpt = "transferable",
    royalty: PolicyOpt = None,
    metadata: MetadataOpt = None,
    new_product: NewProductOpt = False,
    api: ApiOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Register files: each is fingerprinted locally and signed as one Registration."""
    from registry.creator import sign_registration

    results = []
    with reported(), open_backend(api) as backend:
        keys = creator_keys()
        policy, meta, use_value = load_policy(royalty), load_metadata(metadata), parse_use(use)
        prints = [(path, file_fingerprint_path(existing_file(path))) for path in files]
        for path, value in prints:
            request = sign_registration(
                keys,
                backend.domain,
                good_type=GoodType.FILE,
                fingerprint=value,
                product=product,
                use=use_value,
                royalty_policy=policy,
                metadata=meta,
                now=backend.now(),
                new_product=new_product,
            )
            results.append({"file": str(path), **backend.register(request).model_dump()})
    emit({"entries": results}, as_json, lambda: _print_entries(results))


def _print_entries(results: list[dict[str, Any]]) -> None:
    table = Table("file", "status", "entry")
    table.add_column("fingerprint", no_wrap=True, overflow="fold")
    for row in results:
        table.add_row(row["file"], row["status"], str(row["entry_id"]), row["fingerprint"])
    out.print(table)


def _prepare(codes: Path, key: bytes, skip_invalid: bool, quiet: bool) -> PreparedBatch:
    from registry.codesfile import prepare_code_batch

    with (
        progress_bar(None, "fingerprinting", quiet) as tick,
        existing_file(codes).open(newline="", encoding="utf-8") as source,
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
    api: ApiOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a file of codes as one signed BatchRegistration (codes stay on this machine)."""
    from registry.creator import sign_batch_registration

    with reported(), open_backend(api) as backend:
        keys = creator_keys()
        policy, meta, use_value = load_policy(royalty), load_metadata(metadata), parse_use(use)
        batch = _prepare(codes, keys.require_code_key(), skip_invalid, as_json)
        try:
            request = sign_batch_registration(
                keys,
                backend.domain,
                batch,
                good_type=GoodType.CODE,
                product=product,
                use=use_value,
                royalty_policy=policy,
                metadata=meta,
                now=backend.now(),
                new_product=new_product,
            )
            with progress_bar(batch.count, "registering", as_json) as tick:
                result = backend.register_batch(request, batch.fingerprints(), tick)
        finally:
            batch.close()
    data = {**result, "skipped": [s.__dict__ for s in batch.skipped]}
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
    api: ApiOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Revoke one good (by fingerprint or file), or a batch of codes, with a signature."""
    from registry.creator import sign_batch_revocation, sign_revocation

    with reported():
        if sum(x is not None for x in (fingerprint_, file, codes)) != 1:
            raise errors.InvalidInput("give exactly one of --fingerprint, --file or --codes")
    with reported(), open_backend(api) as backend:
        keys = creator_keys()
        now = backend.now()
        if codes is not None:
            batch = _prepare(codes, keys.require_code_key(), False, as_json)
            try:
                request = sign_batch_revocation(
                    keys, backend.domain, batch, good_type=GoodType.CODE, reason=reason, now=now
                )
                with progress_bar(batch.count, "revoking", as_json) as tick:
                    result = backend.revoke_batch(request, batch.fingerprints(), tick)
            finally:
                batch.close()
            data = {**result, "skipped": []}
            emit(data, as_json, lambda: _print_batch(data, "revoked"))
            return
        if file is not None:
            kind, value = GoodType.FILE, file_fingerprint_path(existing_file(file))
        else:
            kind, value = parse_good_type(good_type), parse_fingerprint(str(fingerprint_))
        one = sign_revocation(
            keys, backend.domain, good_type=kind, fingerprint=value, reason=reason, now=now
        )
        entry = backend.revoke(one).model_dump()
    emit(entry, as_json, lambda: out.print(f"{entry['status']}: entry {entry['entry_id']}"))


# -- the log -----------------------------------------------------------------------------------
