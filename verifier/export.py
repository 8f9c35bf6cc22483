"""Evidence exports ``tracemark-export/v1``: many goods' proofs in one file that stands alone.

An export is, per good, a proof bundle without its head (the REGISTER entry and the later
entries, each with its payload, leaf index and inclusion proof, and its batch proof), proved
under one of the export's signed tree heads; the heads, in ascending size, each with the
anchor the registry says holds it and an RFC 9162 consistency proof from each head to the
next. So a third party checks, with the file and any RPC endpoint of the chain alone: every
leaf, payload and signature; every inclusion; every head's signature; that the heads are one
append-only log; and that the contract holds each anchored head's root.

Per good the head is the smallest anchored head covering all the good's logged entries (so
each good carries the earliest evidence of its whole history), else the largest anchored head
covering its registration (later entries are counted as pending, as in a bundle), else the
latest signed head (not anchored yet: not evidence against the chain yet).

The entry model and every check of a good are the bundle's (``verifier.bundle``,
``verifier.offline.check_bundle``): an export adds the heads' chain of consistency.

Bounded: a file holds at most ``MAX_EXPORT_GOODS`` goods, ``MAX_EXPORT_ENTRIES`` entries and
``MAX_EXPORT_BYTES`` bytes; a larger selection is paged (``next_after``, ``--after``), and it
is written as it is read (one good at a time), never held in memory whole.
"""

from __future__ import annotations

import csv
import json
import os
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, ValidationError

from registry.eip712 import checksum_address
from registry.errors import InvalidInput, InvalidProof, NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.merkle import MAX_TREE_SIZE, verify_consistency
from verifier import boundedjson
from verifier.bundle import (
    ANCHORED_STATES,
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_ENTRIES,
    Address,
    AnchorPointer,
    Bundle,
    BundleEntry,
    GoodRef,
    MalformedBundle,
    Proof,
    SignedTreeHead,
    Uint64,
    _bundle_entry,
    _describe,
    _payloads,
    _signed_head,
)
from verifier.bundle import (
    FORMAT as BUNDLE_FORMAT,
)
from verifier.bundle import (
    FORMATS as BUNDLE_FORMATS,
)
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet
from verifier.offline import (
    COMPLETENESS_NOT_PROVEN,
    AnchorView,
    ChainFinding,
    CheckCache,
    Status,
    check_bundle,
    check_head_on_chain,
)
from verifier.trust import TrustPolicy, TrustRoot

if TYPE_CHECKING:
    from registry.service import LoggedEntry, Registry

FORMAT: Final = "tracemark-export/v1"
"""The magic and version of this format; any other value is refused, never guessed at."""

MAX_EXPORT_GOODS: Final = 5_000
"""Most goods one export file holds; a larger selection is paged with ``--after``.

Threat: a verifier handed a file of 10^6 goods (a creator's whole catalogue) would parse
gigabytes into memory. 5,000 goods of ordinary history make a file of about 20 MB that a
laptop parses and checks in under a minute.
"""

MAX_EXPORT_ENTRIES: Final = 20_000
"""Most entries (all goods together) one export file holds: signatures to recover and proofs
to walk. A good's own history is bounded as a bundle's (``MAX_BUNDLE_ENTRIES``)."""

MAX_EXPORT_BYTES: Final = 128 * 1024 * 1024
"""Largest export file a parser reads, and the writer's budget for one file (bytes)."""

#: The writer stops adding goods once the goods alone take this much, leaving room for the
#: heads and consistency proofs (at most one head a good: well under 16 MiB).
_GOODS_BUDGET: Final = MAX_EXPORT_BYTES - 16 * 1024 * 1024

#: Goods read from the database at a time while selecting a creator's goods or a period's.
_PAGE: Final = 500

#: Payload documents kept while writing (a bulk batch's one payload serves all its goods).
_PAYLOAD_CACHE: Final = 256

CSV_COLUMNS: Final = (
    "good_type",
    "fingerprint",
    "creator",
    "registered_leaf",
    "revoked",
    "transfers",
    "last_holder_platform",
    "anchored_head",
    "pending_entries",
)
"""The summary's columns, one line a good, from the evidence in the file: ``last_holder_
platform`` is ``creator`` until a transfer; ``anchored_head`` is empty while not anchored."""


class MalformedExport(InvalidInput):
    """The file is not a ``tracemark-export/v1`` document: fix or re-export it."""

    code = "malformed-export"


# -- the format -------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


TreeSize = Annotated[StrictInt, Field(ge=1, le=MAX_TREE_SIZE)]
GoodText = Annotated[StrictStr, Field(pattern=r"^(file|code|item):0x[0-9a-fA-F]{64}$")]


class ExportGood(_Model):
    """One good's evidence: a bundle whose head is the export's head of ``tree_size``."""

    good: GoodRef
    tree_size: TreeSize
    entry: BundleEntry
    later_entries: Annotated[tuple[BundleEntry, ...], Field(max_length=MAX_BUNDLE_ENTRIES - 1)]
    #: The good's entries the registry holds that are not under this head (said by the
    #: server: proves nothing).
    pending_entries: Annotated[StrictInt, Field(ge=0)]

    @property
    def entries(self) -> tuple[BundleEntry, ...]:
        return (self.entry, *self.later_entries)


class ConsistencyLink(_Model):
    """RFC 9162 consistency proof that the head of ``to_size`` extends that of ``from_size``."""

    from_size: TreeSize
    to_size: TreeSize
    proof: Proof


class Selection(_Model):
    """What was asked for (exactly one of goods, creator, since) and which page this is."""

    goods: Annotated[tuple[GoodText, ...], Field(max_length=MAX_EXPORT_GOODS)] | None
    creator: Address | None
    #: The date asked for, as given, and as Unix seconds (UTC).
    since: Annotated[StrictStr, Field(max_length=64)] | None
    since_time: Uint64 | None
    after: Uint64 | None
    limit: Annotated[StrictInt, Field(ge=1, le=MAX_EXPORT_GOODS)]


class Export(_Model):
    """A ``tracemark-export/v1`` document."""

    format: Literal["tracemark-export/v1"]
    exported_at: Uint64
    #: The registry that says it exported this (checked: the heads' signer).
    registry: Address
    selection: Selection
    goods: Annotated[tuple[ExportGood, ...], Field(max_length=MAX_EXPORT_GOODS)]
    #: Pass as ``--after`` for the next file of the same selection; null on the last.
    next_after: Uint64 | None
    heads: Annotated[tuple[SignedTreeHead, ...], Field(max_length=MAX_EXPORT_GOODS)]
    anchors: Annotated[tuple[AnchorPointer, ...], Field(max_length=MAX_EXPORT_GOODS)]
    consistency: Annotated[tuple[ConsistencyLink, ...], Field(max_length=MAX_EXPORT_GOODS)]

    @classmethod
    def parse(cls, data: bytes | str) -> Export:
        evidence = parse_evidence(data)
        if not isinstance(evidence, Export):
            raise MalformedExport(f"this is a {evidence.format} bundle, not an export")
        return evidence


def parse_evidence(data: bytes | str) -> Bundle | Export:
    """A bundle or an export, by its ``format``, parsed strictly (one JSON parse): bounded
    size, one value, no duplicate keys, no NaN, no unknown fields, every value in range."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_EXPORT_BYTES:
        raise MalformedExport(f"an export is at most {MAX_EXPORT_BYTES:,} bytes")
    try:
        document = boundedjson.strict_loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError
        raise MalformedExport(f"evidence must be one JSON document: {exc}") from None
    found = document.get("format") if isinstance(document, dict) else None
    if found in BUNDLE_FORMATS:
        if len(raw) > MAX_BUNDLE_BYTES:
            raise MalformedBundle(f"a bundle is at most {MAX_BUNDLE_BYTES:,} bytes")
        try:
            return Bundle.model_validate(document)
        except ValidationError as exc:
            raise MalformedBundle(_describe(exc)) from None
    if found == FORMAT:
        try:
            return Export.model_validate(document)
        except ValidationError as exc:
            described = _describe(exc).removeprefix("malformed bundle: ")
            raise MalformedExport(f"malformed export: {described}") from None
    shown = repr(found) if isinstance(found, str) and len(found) <= 64 else "missing"
    raise MalformedBundle(
        f"unknown evidence format {shown}; this verifier reads "
        f"{', '.join(BUNDLE_FORMATS)} and {FORMAT}"
    )


# -- writing one (server side) ----------------------------------------------------------------


@dataclass(frozen=True)
class ExportSelection:
    """Which goods to export: listed ones, a creator's, or those with an entry since a time;
    ``after`` is the previous file's ``next_after``."""

    goods: tuple[tuple[GoodType, bytes], ...] = ()
    creator: str | None = None
    since: int | None = None
    since_text: str | None = None
    after: int | None = None
    limit: int = MAX_EXPORT_GOODS

    def __post_init__(self) -> None:
        chosen = sum((bool(self.goods), self.creator is not None, self.since is not None))
        if chosen != 1:
            raise InvalidInput("select goods one way: listed goods, a creator, or a date")
        if not 1 <= self.limit <= MAX_EXPORT_GOODS:
            raise InvalidInput(f"an export file holds 1 to {MAX_EXPORT_GOODS:,} goods")
        if len(self.goods) > self.limit:
            raise InvalidInput(
                f"{len(self.goods):,} goods listed; one export holds at most {self.limit:,}"
            )

    def document(self) -> dict[str, Any]:
        return {
            "goods": [f"{t.name.lower()}:{fingerprint_hex(fp)}" for t, fp in self.goods]
            if self.goods
            else None,
            "creator": self.creator,
            "since": self.since_text,
            "since_time": self.since,
            "after": self.after,
            "limit": self.limit,
        }


@dataclass
class ExportResult:
    """What was written."""

    json_path: Path
    csv_path: Path
    goods: int = 0
    entries: int = 0
    heads: list[int] = field(default_factory=list)
    anchored_heads: list[int] = field(default_factory=list)
    #: Goods selected whose registration is still queued: nothing to prove yet.
    skipped_queued: int = 0
    next_after: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "json": str(self.json_path),
            "csv": str(self.csv_path),
            "goods": self.goods,
            "entries": self.entries,
            "heads": self.heads,
            "anchored_heads": self.anchored_heads,
            "skipped_queued": self.skipped_queued,
            "next_after": self.next_after,
        }


def write_export(
    registry: Registry, selection: ExportSelection, out_dir: Path, *, name: str = "tracemark-export"
) -> ExportResult:
    """Write ``<name>.json`` and ``<name>.csv`` into ``out_dir``: the selected goods, streamed
    one at a time (each file appears whole, by rename, or not at all)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    result = ExportResult(out_dir / f"{name}.json", out_dir / f"{name}.csv")
    partial_json = out_dir / f".{name}.json.partial"
    partial_csv = out_dir / f".{name}.csv.partial"
    writer = _Writer(registry)
    try:
        with (
            partial_json.open("w", encoding="utf-8") as out,
            partial_csv.open("w", encoding="utf-8", newline="") as summary,
        ):
            rows = csv.writer(summary)
            rows.writerow(CSV_COLUMNS)
            head = {
                "format": FORMAT,
                "exported_at": registry.clock(),
                "registry": registry.address,
                "selection": selection.document(),
            }
            out.write(json.dumps(head)[:-1] + ', "goods": [\n')
            written = 0
            for cursor, good_type, fingerprint in _candidates(registry, selection):
                if result.goods >= selection.limit:
                    result.next_after = writer.last_cursor
                    break
                good = writer.good(good_type, fingerprint, explicit=bool(selection.goods))
                if good is None:
                    result.skipped_queued += 1
                    continue
                text = good.model_dump_json()
                size = len(text.encode("utf-8"))
                if written + size > _GOODS_BUDGET or (
                    result.entries + len(good.entries) > MAX_EXPORT_ENTRIES
                ):
                    if selection.goods:
                        raise InvalidInput("the listed goods do not fit one export: list fewer")
                    result.next_after = writer.last_cursor
                    break
                out.write((",\n" if result.goods else "") + text)
                written += size
                writer.keep(good, cursor)
                rows.writerow(_csv_row(good, writer.anchored(good.tree_size)))
                result.goods += 1
                result.entries += len(good.entries)
            heads, anchors, links = writer.heads_and_links()
            out.write('\n], "next_after": ' + json.dumps(result.next_after))
            out.write(', "heads": [' + ", ".join(h.model_dump_json() for h in heads) + "]")
            out.write(', "anchors": [' + ", ".join(a.model_dump_json() for a in anchors) + "]")
            out.write(', "consistency": [' + ", ".join(c.model_dump_json() for c in links))
            out.write("]}\n")
        os.replace(partial_json, result.json_path)
        os.replace(partial_csv, result.csv_path)
    finally:
        partial_json.unlink(missing_ok=True)
        partial_csv.unlink(missing_ok=True)
    result.heads = [h.tree_size for h in heads]
    result.anchored_heads = [a.tree_size for a in anchors]
    return result


def _csv_row(good: ExportGood, anchored: bool) -> list[str]:
    revoked = any(e.kind is EntryKind.REVOKE for e in good.entries)
    transfers = [e for e in good.entries if e.kind is EntryKind.TRANSFER]
    holder = "creator"
    if transfers:
        buyer = (transfers[-1].payload.get("transfer") or {}).get("buyer") or {}
        holder = str(buyer.get("platform") or "creator")
    return [
        good.good.good_type.name.lower(),
        fingerprint_hex(good.good.fingerprint),
        checksum_address(good.entry.actor),
        str(good.entry.leaf_index),
        "yes" if revoked else "no",
        str(len(transfers)),
        holder,
        str(good.tree_size) if anchored else "",
        str(good.pending_entries),
    ]


def _candidates(
    registry: Registry, selection: ExportSelection
) -> Iterator[tuple[int, GoodType, bytes]]:
    """(cursor, good type, fingerprint) of the selected goods, in order, each once."""
    from sqlalchemy import select, text

    from registry.db import read_transaction
    from registry.eip712 import address_bytes
    from registry.log import entries_t

    c = entries_t.c
    if selection.goods:
        for i, (good_type, fingerprint) in enumerate(selection.goods):
            yield i, good_type, fingerprint
        return
    after = selection.after if selection.after is not None else -1
    if selection.creator is not None:
        creator = address_bytes(selection.creator)
        while True:
            # "kind = 1" as a literal: the partial index (actor, id) of creators' goods.
            with read_transaction(registry.engine) as conn:
                rows = conn.execute(
                    select(c.id, c.good_type, c.fingerprint)
                    .where(text("kind = 1"), c.actor == creator, c.id > after)
                    .order_by(c.id)
                    .limit(_PAGE)
                ).all()
            for row in rows:
                yield int(row.id), GoodType(int(row.good_type)), bytes(row.fingerprint)
            if len(rows) < _PAGE:
                return
            after = int(rows[-1].id)
    assert selection.since is not None
    seen: set[tuple[int, bytes]] = set()
    with read_transaction(registry.engine) as conn:
        start = max(after + 1, _first_leaf_since(conn, registry, selection.since))
    while True:
        with read_transaction(registry.engine) as conn:
            rows = conn.execute(
                select(c.leaf_index, c.good_type, c.fingerprint)
                .where(c.leaf_index >= start)
                .order_by(c.leaf_index)
                .limit(_PAGE)
            ).all()
        for row in rows:
            key = (int(row.good_type), bytes(row.fingerprint))
            if key not in seen:
                seen.add(key)
                yield int(row.leaf_index), GoodType(key[0]), key[1]
        if len(rows) < _PAGE:
            return
        start = int(rows[-1].leaf_index) + 1


def _first_leaf_since(conn: Any, registry: Registry, since: int) -> int:
    """The first leaf stamped at or after ``since``: a binary search on the leaf index, since
    the sequencer's time never goes back (``registry.log.sequencer_time``)."""
    from sqlalchemy import func, select

    from registry.log import entries_t

    c = entries_t.c
    low = 0
    high = int(conn.execute(select(func.max(c.leaf_index))).scalar() or -1) + 1
    while low < high:
        middle = (low + high) // 2
        stamp = conn.execute(select(c.timestamp).where(c.leaf_index == middle)).scalar_one()
        if int(stamp) < since:
            low = middle + 1
        else:
            high = middle
    return low


class _Writer:
    """Builds each good's evidence and remembers the heads it used."""

    def __init__(self, registry: Registry) -> None:
        from sqlalchemy import select

        from anchoring.models import AnchorRecord
        from registry.db import read_transaction
        from registry.log import heads_t

        self.registry = registry
        a = AnchorRecord.__table__.c  # type: ignore[attr-defined]
        # The anchored sizes the registry signed a head of (exact size and root), ascending.
        with read_transaction(registry.engine) as conn:
            self.anchored_sizes = sorted(
                {
                    int(size)
                    for size in conn.execute(
                        select(a.tree_size)
                        .join(
                            heads_t,
                            (heads_t.c.tree_size == a.tree_size) & (heads_t.c.root == a.root),
                        )
                        .where(a.state.in_(ANCHORED_STATES))
                    ).scalars()
                }
            )
        self.heads: dict[int, SignedTreeHead] = {}
        self.anchors: dict[int, AnchorPointer] = {}
        self.last_cursor: int | None = None
        self.latest: int | None = None
        self._anchored = set(self.anchored_sizes)
        self._payload_cache: dict[int, dict[str, Any]] = {}

    def anchored(self, size: int) -> bool:
        return size in self.anchors

    def good(self, good_type: GoodType, fingerprint: bytes, *, explicit: bool) -> ExportGood | None:
        """The good's evidence, or None (bulk) for a good whose registration is queued."""
        from registry.db import read_transaction
        from verifier.trace import register_entry

        what = f"{good_type.name.lower()} {fingerprint_hex(fingerprint)}"
        with read_transaction(self.registry.engine) as conn:
            register = register_entry(conn, good_type, fingerprint)
            others = _other_entries(conn, good_type, fingerprint) if register else []
        if register is None:
            raise NotFound(f"no {what} is registered")
        if register.leaf_index is None:
            if explicit:
                raise NotFound(f"{what} is registered but still queued: no proof until logged")
            return None
        logged = [register, *(e for e in others if e.leaf_index is not None)]
        if len(logged) > MAX_BUNDLE_ENTRIES:
            raise InvalidInput(
                f"{what} has {len(logged):,} entries; an export carries at most "
                f"{MAX_BUNDLE_ENTRIES:,} a good (as a bundle does)"
            )
        size = self._head_size(register.leaf_index, max(e.leaf_index or 0 for e in logged))
        under = [e for e in logged if (e.leaf_index or 0) < size]
        payloads = self._payloads({e.record_id for e in under})
        built = [_bundle_entry(self.registry, e, payloads, size) for e in under]
        return ExportGood(
            good=GoodRef(good_type=good_type, fingerprint=fingerprint),
            tree_size=size,
            entry=built[0],
            later_entries=tuple(built[1:]),
            pending_entries=1 + len(others) - len(under),
        )

    def _payloads(self, record_ids: set[int]) -> dict[int, dict[str, Any]]:
        """Payload documents by record, cached: every good of a bulk batch shares one."""
        missing = record_ids - self._payload_cache.keys()
        if missing:
            if len(self._payload_cache) > _PAYLOAD_CACHE:
                self._payload_cache.clear()
            self._payload_cache.update(_payloads(self.registry, missing))
        return {i: self._payload_cache[i] for i in record_ids}

    def keep(self, good: ExportGood, cursor: int) -> None:
        """The good is in the file: its head (and its anchor) go in too."""
        self.last_cursor = cursor
        size = good.tree_size
        if size not in self.heads:
            head = _signed_head(self.registry.tree_head(size))
            self.heads[size] = head
            if size in self._anchored:
                self.anchors[size] = self._pointer(head)

    def _head_size(self, register_leaf: int, last_leaf: int) -> int:
        """The size of the head a good is proved under."""
        sizes = self.anchored_sizes
        # The smallest anchored head covering every logged entry of the good ...
        i = bisect_right(sizes, last_leaf)
        if i < len(sizes):
            return sizes[i]
        # ... else the largest covering its registration ...
        if sizes and sizes[-1] > register_leaf:
            return sizes[-1]
        # ... else the latest signed head: not anchored yet.
        if self.latest is None or self.latest <= last_leaf:  # the log grew meanwhile
            latest = self.registry.latest_tree_head()
            assert latest is not None  # a logged entry is under a signed head
            self.latest = latest.tree_size
        return self.latest

    def _pointer(self, head: SignedTreeHead) -> AnchorPointer:
        from sqlalchemy import select

        from anchoring.models import AnchorRecord
        from registry.db import read_transaction

        a = AnchorRecord.__table__.c  # type: ignore[attr-defined]
        with read_transaction(self.registry.engine) as conn:
            row = conn.execute(
                select(a.tx_hash, a.block_number, a.state)
                .where(a.tree_size == head.tree_size, a.root == head.root)
                .where(a.state.in_(ANCHORED_STATES))
                .order_by(a.id.desc())
                .limit(1)
            ).one()
        domain = head.domain.domain()
        return AnchorPointer(
            chain_id=domain.chain_id,
            contract=bytes.fromhex(domain.verifying_contract[2:]),
            tree_size=head.tree_size,
            tx_hash=None if row.tx_hash is None else bytes(row.tx_hash),
            block_number=row.block_number,
            state=row.state,
        )

    def heads_and_links(
        self,
    ) -> tuple[list[SignedTreeHead], list[AnchorPointer], list[ConsistencyLink]]:
        sizes = sorted(self.heads)
        links = [
            ConsistencyLink(
                from_size=a,
                to_size=b,
                proof=tuple(self.registry.consistency_proof(a, b)),
            )
            for a, b in pairwise(sizes)
        ]
        anchors = [self.anchors[s] for s in sizes if s in self.anchors]
        return [self.heads[s] for s in sizes], anchors, links


def _other_entries(conn: Any, good_type: GoodType, fingerprint: bytes) -> list[LoggedEntry]:
    """The good's entries but its REGISTER, in log order (queued last), through the partial
    index of goods' events; at most one more than a good may carry, to tell it is too many."""
    from sqlalchemy import select, text

    from registry.log import entries_t
    from registry.service import LoggedEntry

    c = entries_t.c
    rows = conn.execute(
        select(entries_t)
        .where(text("kind <> 1"), c.good_type == int(good_type), c.fingerprint == fingerprint)
        .order_by(c.leaf_index.is_(None), c.leaf_index, c.id)
        .limit(MAX_BUNDLE_ENTRIES)
    ).all()
    return [LoggedEntry.from_row(row._mapping) for row in rows]


# -- checking one -----------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadFinding:
    """One head of the export, and what the chain said of it (None: not checked)."""

    tree_size: int
    claimed_anchor: bool
    chain: ChainFinding | None


_KIND_WORDS: Final = {
    "REGISTER": ("registration", "registrations"),
    "TRANSFER": ("transfer", "transfers"),
    "REVOKE": ("revocation", "revocations"),
    "CONFLICT": ("conflicting claim", "conflicting claims"),
}


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def _anchored_head(head: HeadFinding) -> str:
    chain = head.chain
    if chain is None or chain.block_number is None or chain.confirmations is None:
        return f"head {head.tree_size:,}"
    return (
        f"head {head.tree_size:,} at block {chain.block_number:,} "
        f"({_count(chain.confirmations, 'confirmation', 'confirmations')})"
    )


@dataclass(frozen=True)
class ExportReport:
    """Exactly what an export proved, under which trust root."""

    goods: int
    #: Entries proved, by kind name (REGISTER, TRANSFER, ...).
    entries: dict[str, int]
    heads: tuple[HeadFinding, ...]
    #: The keys that signed the heads, in head order, each once.
    head_signers: tuple[str, ...]
    chain_id: int | None
    contract: str | None
    #: The trust root the check used (None for an empty export: nothing to check under one).
    trust_root: str | None
    trust_fingerprint: str | None
    chain_checked: bool
    pending_entries: int
    next_after: int | None

    @property
    def status(self) -> Status:
        """``verified`` when the chain holds the largest head's root at the trust root's
        depth: the consistency proofs then put every head, and so every entry, inside it."""
        if not self.chain_checked:
            return "chain-not-checked"
        last = self.heads[-1].chain if self.heads else None
        if last is None or not last.anchored:
            return "not-anchored"
        return "verified" if last.final else "not-final"

    def summary(self) -> str:
        """One line: exactly what was proved, and what was not."""
        if not self.heads:
            return "an empty export: no goods, nothing proved"
        count = sum(self.entries.values())
        kinds = ", ".join(
            _count(self.entries[kind], *_KIND_WORDS[kind])
            for kind in _KIND_WORDS
            if self.entries.get(kind)
        )
        sizes = ", ".join(f"{h.tree_size:,}" for h in self.heads)
        parts = [
            f"{_count(self.goods, 'good', 'goods')} ({_count(count, 'entry', 'entries')}: "
            f"{kinds}) under {_count(len(self.heads), 'head', 'heads')} (size {sizes}) "
            f"signed by {', '.join(self.head_signers)}"
        ]
        if len(self.heads) > 1:
            parts.append(
                f"heads consistent: one append-only log from size "
                f"{self.heads[0].tree_size:,} to {self.heads[-1].tree_size:,}"
            )
        if self.chain_checked:
            where = f"on chain {self.chain_id} in contract {self.contract}"
            anchored = [h for h in self.heads if h.chain is not None and h.chain.anchored]
            if anchored:
                parts.append(f"anchored {where}: " + ", ".join(map(_anchored_head, anchored)))
            missing = ", ".join(f"{h.tree_size:,}" for h in self.heads if h not in anchored)
            if missing and self.status in ("verified", "not-final"):
                parts.append(f"head {missing} not anchored itself, but inside the anchored last")
            elif missing:
                parts.append(f"not anchored {where} yet: head {missing}")
            last = self.heads[-1].chain
            if last is not None and last.anchored:
                state = "final" if last.final else "NOT final yet"
                parts.append(f"the last head is {state} by the trust root's rule ({last.rule})")
        else:
            claimed = ", ".join(f"{h.tree_size:,}" for h in self.heads if h.claimed_anchor)
            parts.append(f"chain not checked (the export says anchored: head {claimed or 'none'})")
        parts.append(f"trust root {self.trust_root}")
        if self.pending_entries:
            parts.append(
                f"the registry reports {_count(self.pending_entries, 'more entry', 'more entries')}"
                " of these goods not under these heads"
            )
        if self.next_after is not None:
            parts.append(f"one page of a selection: the next starts --after {self.next_after}")
        parts.append(COMPLETENESS_NOT_PROVEN)
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "status": self.status,
            "summary": self.summary(),
            "goods": self.goods,
            "entries": dict(sorted(self.entries.items())),
            "head_signers": list(self.head_signers),
            "chain_id": self.chain_id,
            "contract": self.contract,
            "trust_root": self.trust_root,
            "trust_fingerprint": self.trust_fingerprint,
            "heads": [
                {
                    "tree_size": h.tree_size,
                    "claimed_anchor": h.claimed_anchor,
                    "anchored": None if h.chain is None else h.chain.anchored,
                    "final": None if h.chain is None else h.chain.final,
                    "block_number": None if h.chain is None else h.chain.block_number,
                    "confirmations": None if h.chain is None else h.chain.confirmations,
                }
                for h in self.heads
            ],
            "pending_entries": self.pending_entries,
            "next_after": self.next_after,
            "complete": False,
            "completeness": COMPLETENESS_NOT_PROVEN,
        }


def check_export(export: Export, trust: TrustPolicy, chain: AnchorView | None) -> ExportReport:
    """Check a whole export under the caller's trust policy; return what it proves, or raise.

    Steps: (0) the trust root the caller pinned for the export's registry (else
    ``UntrustedRegistry``); (1) its shape: heads ascending, of one registry, each used by a
    good, anchors and consistency proofs naming consecutive heads; (2) the consistency proof
    from each head to the next; (3) every good as a bundle under its head (``check_bundle``:
    leaves, payloads, signatures under the trusted domain, batch proofs, inclusion, the head's
    signer and signature, the anchor pointer); (4) with a chain, every head against the
    trusted contract, the last at the trust root's depth (else ``NotAnchoredYet`` /
    ``NotFinalYet`` with the report so far). Raises ``BundleInvalid`` for evidence that does
    not verify; transport failures of the chain propagate: they prove nothing.
    """
    checker = _ExportChecker(export)
    if not export.heads:
        return checker.report(None, chain_checked=chain is not None)
    root = trust.root_for(export.heads[0].domain.domain())
    checker.run(root, chain)
    report = checker.report(root, chain_checked=chain is not None)
    if chain is not None:
        last = report.heads[-1].chain
        assert last is not None
        if not last.anchored:
            raise NotAnchoredYet(last.describe(report.heads[-1].tree_size), report)
        if not last.final:
            raise NotFinalYet(last.describe(report.heads[-1].tree_size), report)
    return report


class _ExportChecker:
    def __init__(self, export: Export) -> None:
        self.export = export
        self.entries: dict[str, int] = {}
        self.findings: dict[int, ChainFinding] = {}

    def report(self, root: TrustRoot | None, *, chain_checked: bool) -> ExportReport:
        export = self.export
        anchored = {a.tree_size for a in export.anchors}
        signers = tuple(dict.fromkeys(checksum_address(h.signer) for h in export.heads))
        return ExportReport(
            goods=len(export.goods),
            entries=dict(self.entries),
            heads=tuple(
                HeadFinding(h.tree_size, h.tree_size in anchored, self.findings.get(h.tree_size))
                for h in export.heads
            ),
            head_signers=signers,
            chain_id=None if root is None else root.chain_id,
            contract=None if root is None else root.contract_address,
            trust_root=None if root is None else root.label(),
            trust_fingerprint=None if root is None else root.fingerprint(),
            chain_checked=chain_checked,
            pending_entries=sum(g.pending_entries for g in export.goods),
            next_after=export.next_after,
        )

    def run(self, root: TrustRoot, chain: AnchorView | None) -> None:
        export = self.export
        heads = {h.tree_size: h for h in export.heads}
        anchors = {a.tree_size: a for a in export.anchors}
        # 1. The shape: what refers to what, and one registry the trust root names.
        _check_shape(export, heads)
        if not root.names_key(export.registry):
            raise BundleInvalid(
                "shape",
                f"the export names registry {checksum_address(export.registry)}, a key trust "
                f"root {root.label()} does not name",
            )
        # 2. The heads are one append-only log: each extends the one before.
        for link in export.consistency:
            older, newer = heads[link.from_size], heads[link.to_size]
            try:
                verify_consistency(
                    older.tree_size, newer.tree_size, link.proof, older.root, newer.root
                )
            except (InvalidProof, InvalidInput) as exc:
                raise BundleInvalid(
                    "consistency",
                    f"head {newer.tree_size:,} does not extend head {older.tree_size:,}: "
                    f"{exc.detail}",
                ) from None
        # 3. Every good, as the bundle it is under its head (the same checks, the same code).
        policy = TrustPolicy.of(root)
        cache = CheckCache()  # a batch's payload and signature, a head: checked once
        for good in export.goods:
            bundle = Bundle(
                format=BUNDLE_FORMAT,
                good=good.good,
                entry=good.entry,
                later_entries=good.later_entries,
                pending_entries=good.pending_entries,
                tree_head=heads[good.tree_size],
                anchor=anchors.get(good.tree_size),
            )
            try:
                report = check_bundle(bundle, policy, None, cache=cache)
            except BundleInvalid as exc:
                name = (
                    f"{good.good.good_type.name.lower()} {fingerprint_hex(good.good.fingerprint)}"
                )
                raise BundleInvalid(exc.step, f"{name}: {exc.detail}") from None
            for proved in report.entries:
                self.entries[proved.kind.name] = self.entries.get(proved.kind.name, 0) + 1
        # 4. The chain: the trusted contract's root for each head's size is the head's root.
        if chain is not None:
            for head in export.heads:
                self.findings[head.tree_size] = check_head_on_chain(
                    head, anchors.get(head.tree_size), root, chain
                )


def _check_shape(export: Export, heads: dict[int, SignedTreeHead]) -> None:
    def fail(detail: str) -> BundleInvalid:
        return BundleInvalid("shape", detail)

    sizes = [h.tree_size for h in export.heads]
    if sizes != sorted(set(sizes)):
        raise fail("the heads are not in strictly ascending size")
    if export.heads:
        # One log: one domain. The signers may differ across a key rotation; each head's
        # signer is checked against the trust root with its signature (``check_head``).
        first = export.heads[0]
        for head in export.heads[1:]:
            if head.domain != first.domain:
                raise fail(
                    f"head {head.tree_size:,} is of another registry or contract than head "
                    f"{first.tree_size:,}: an export holds one log"
                )
    seen: set[tuple[GoodType, bytes]] = set()
    used: set[int] = set()
    for good in export.goods:
        key = (good.good.good_type, good.good.fingerprint)
        name = f"{key[0].name.lower()} {fingerprint_hex(key[1])}"
        if key in seen:
            raise fail(f"{name} is in the export twice")
        seen.add(key)
        if good.tree_size not in heads:
            raise fail(
                f"{name} is proved under head {good.tree_size:,}, which is not among the "
                f"export's heads ({', '.join(f'{s:,}' for s in sizes) or 'none'})"
            )
        used.add(good.tree_size)
    unused = [s for s in sizes if s not in used]
    if unused:
        raise fail(f"head {unused[0]:,} proves nothing in this export")
    anchor_sizes = [a.tree_size for a in export.anchors]
    if anchor_sizes != sorted(set(anchor_sizes)):
        raise fail("the anchors are not in strictly ascending size")
    for size in anchor_sizes:
        if size not in heads:
            raise fail(f"an anchor names head {size:,}, which is not among the export's heads")
    expected = list(pairwise(sizes))
    links = [(link.from_size, link.to_size) for link in export.consistency]
    if links != expected:
        missing = next((pair for pair in expected if pair not in links), None)
        detail = (
            f"no consistency proof from head {missing[0]:,} to head {missing[1]:,}"
            if missing is not None
            else "the consistency proofs do not link each head to the next"
        )
        raise fail(detail)


__all__ = [
    "CSV_COLUMNS",
    "FORMAT",
    "MAX_EXPORT_BYTES",
    "MAX_EXPORT_ENTRIES",
    "MAX_EXPORT_GOODS",
    "ConsistencyLink",
    "Export",
    "ExportGood",
    "ExportReport",
    "ExportResult",
    "ExportSelection",
    "HeadFinding",
    "MalformedExport",
    "Selection",
    "check_export",
    "parse_evidence",
    "write_export",
]
