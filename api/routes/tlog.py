"""The static read API (C2SP tlog-tiles) under ``/tlog``: the latest published checkpoint, the
Merkle tree as tiles and the entries as bundles, up to that checkpoint's size and no further.

Public like the other log reads (an anonymous caller is charged to its address's budget; an
auditor's key reads at the auditor's rate). The same files ``tracemark tiles publish`` writes
for a CDN: these routes let the registry serve them itself.
"""

from __future__ import annotations

import gzip
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Path, Response
from sqlalchemy import Connection, Engine

from api.deps import Caller, Context
from registry.db import read_transaction
from registry.errors import NotFound
from registry.tlogread import latest_published, read_tile
from registry.tlogtiles import MAX_PATH_CHARS, TileRef, parse_tile_path

router = APIRouter(tags=["auditors"])

PREFIX: Final = "/tlog"
CHECKPOINT_MEDIA_TYPE: Final = "text/plain; charset=utf-8"
TILE_MEDIA_TYPE: Final = "application/octet-stream"
#: The checkpoint changes with every published head: caches may keep it this long (spec:
#: "SHOULD prevent caching beyond a few seconds").
CHECKPOINT_CACHE_CONTROL: Final = "public, max-age=2"
#: A tile or bundle of a given width never changes (spec: "long-lived").
IMMUTABLE_CACHE_CONTROL: Final = "public, max-age=31536000, immutable"
#: Level 6: an entry bundle shrinks about as much as at 9, at a fraction of the time.
GZIP_LEVEL: Final = 6

BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {TILE_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}
}


def _published(conn: Connection) -> tuple[int, bytes]:
    found = latest_published(conn)
    if found is None:
        raise NotFound("the log has published no checkpoint yet")
    return found


def accepts_gzip(accept_encoding: str | None) -> bool:
    """Whether an ``Accept-Encoding`` value admits gzip (RFC 9110 12.5.3: by name or ``*``,
    unless its weight is 0)."""
    weights: dict[str, float] = {}
    for item in (accept_encoding or "").split(","):
        name, _, params = item.partition(";")
        weight = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[name.strip().lower()] = weight
    return weights.get("gzip", weights.get("x-gzip", weights.get("*", 0.0))) > 0


@router.get(
    f"{PREFIX}/checkpoint",
    operation_id="get_tlog_checkpoint",
    summary="The log's latest published checkpoint (C2SP tlog-checkpoint): a signed note, "
    "with the witnesses' cosignatures.",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def checkpoint(ctx: Context, caller: Caller) -> Response:
    with read_transaction(ctx.registry.engine) as conn:
        _, note = _published(conn)
    return Response(
        note,
        media_type=CHECKPOINT_MEDIA_TYPE,
        headers={"Cache-Control": CHECKPOINT_CACHE_CONTROL},
    )


def _resource(ctx: Context, ref: TileRef) -> bytes:
    # Tiles never change once served (full, or partial of a width): a fresh replica may serve
    # them; one past what the replica has published is asked of the primary (``ctx.read``).
    # The checkpoint is the primary's: a client must never see the log's size go back.
    return ctx.read(lambda registry: _tile_on(registry.engine, ref))


def _tile_on(engine: Engine, ref: TileRef) -> bytes:
    with read_transaction(engine) as conn:
        size, _ = _published(conn)
        return read_tile(conn, ref, size)


# NOTE: declared before the tile route, whose ``{tile_path:path}`` would take "entries/..." too.
@router.get(
    PREFIX + "/tile/entries/{bundle_path:path}",
    operation_id="get_tlog_entry_bundle",
    summary="Entry bundle <N>[.p/<W>] (C2SP tlog-tiles): each entry's 224-byte leaf data "
    "after its big-endian uint16 length; gzip when accepted.",
    responses=BINARY_RESPONSE,
)
def entry_bundle(
    bundle_path: Annotated[
        str, Path(description="<N>[.p/<W>], e.g. x001/234.p/17", max_length=MAX_PATH_CHARS)
    ],
    ctx: Context,
    caller: Caller,
    accept_encoding: Annotated[str | None, Header(max_length=1024)] = None,
) -> Response:
    data = _resource(ctx, parse_tile_path("entries/" + bundle_path))
    headers = {"Cache-Control": IMMUTABLE_CACHE_CONTROL, "Vary": "Accept-Encoding"}
    if accepts_gzip(accept_encoding):
        # mtime=0: the same bundle compresses to the same bytes every time (caches agree).
        data = gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)
        headers["Content-Encoding"] = "gzip"
    return Response(data, media_type=TILE_MEDIA_TYPE, headers=headers)


@router.get(
    PREFIX + "/tile/{tile_path:path}",
    operation_id="get_tlog_tile",
    summary="Merkle tree tile <L>/<N>[.p/<W>] (C2SP tlog-tiles): up to 256 hashes of tree "
    "level 8L, each 32 bytes.",
    responses=BINARY_RESPONSE,
)
def tile(
    tile_path: Annotated[
        str,
        Path(description="<L>/<N>[.p/<W>], e.g. 0/x001/x234/067.p/8", max_length=MAX_PATH_CHARS),
    ],
    ctx: Context,
    caller: Caller,
) -> Response:
    ref = parse_tile_path(tile_path)
    if ref.is_entries:  # only the bundle route names them
        raise NotFound("entry bundles are at tile/entries/<N>")
    data = _resource(ctx, ref)
    return Response(
        data, media_type=TILE_MEDIA_TYPE, headers={"Cache-Control": IMMUTABLE_CACHE_CONTROL}
    )


__all__ = ["router"]
