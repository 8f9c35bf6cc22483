"""Writing an evidence export (``verifier.exportformat``) from the registry: the SQL writer.

Per good the head is the smallest anchored head covering all the good's logged entries (so
each good carries the earliest evidence of its whole history), else the largest anchored head
covering its registration (later entries are counted as pending, as in a bundle), else the
latest signed head (not anchored yet: not evidence against the chain yet). The file is
written as it is read (one good at a time), never held in memory whole, and a CSV summary
goes with it.

NOTE: the registry's storage (sqlalchemy) is imported when the writer runs, not with the
module: the command line imports this module for every command.
"""

from __future__ import annotations

import csv
import json
import os
from bisect import bisect_right
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from anchoring.states import ANCHORED
from readmodels.bundles import anchor_pointer, bundle_entry, head_checkpoint, read_payloads
from readmodels.exportselection import ExportSelection, selected_goods
from registry.eip712 import checksum_address
from registry.errors import InvalidInput, NotFound
from registry.fingerprints import GoodType, fingerprint_hex
from registry.leaf import EntryKind
from registry.transferpayload import TransferPayload
from registry.treehead import TreeHead
from verifier.bundle import (
    MAX_BUNDLE_ENTRIES,
    AnchorPointer,
    GoodRef,
)
from verifier.exportformat import (
    FORMAT_V2,
    MAX_EXPORT_BYTES,
    MAX_EXPORT_ENTRIES,
    ConsistencyLink,
    ExportGood,
)

if TYPE_CHECKING:
    from registry.entries import LoggedEntry
    from registry.service import Registry

#: The writer stops adding goods once the goods alone take this much, leaving room for the
#: heads and consistency proofs (at most one head a good: well under 16 MiB).
_GOODS_BUDGET: Final = MAX_EXPORT_BYTES - 16 * 1024 * 1024

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
    registry: Registry,
    selection: ExportSelection,
    out_dir: Path,
    *,
    name: str = "tracemark-export",
    credit: bool = False,
) -> ExportResult:
    """Write ``<name>.json`` and ``<name>.csv`` into ``out_dir``: the selected goods, streamed
    one at a time (each file appears whole, by rename, or not at all). ``credit``: add the
    registry's credit facts as of the export's time (``readmodels.creditexport``)."""
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
            exported_at = registry.clock()
            head = {
                "format": FORMAT_V2,
                "exported_at": exported_at,
                "registry": registry.address,
                "selection": selection.document(),
            }
            out.write(json.dumps(head)[:-1] + ', "goods": [\n')
            written = 0
            for cursor, good_type, fingerprint in selected_goods(registry, selection):
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
            checkpoints = [head_checkpoint(registry, h.tree_size) for h in heads]
            out.write('], "checkpoints": ' + json.dumps(checkpoints, ensure_ascii=False))
            if credit:
                from readmodels.creditexport import write_credit_facts

                write_credit_facts(registry, out, as_of=exported_at)
            out.write("}\n")
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
        buyer = TransferPayload.from_document(transfers[-1].payload).buyer
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


class _Writer:
    """Builds each good's evidence and remembers the heads it used."""

    def __init__(self, registry: Registry) -> None:
        from sqlalchemy import select

        from anchoring.models import anchors_t
        from registry.db import read_transaction
        from registry.log import heads_t

        self.registry = registry
        a = anchors_t.c
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
                        .where(a.state.in_(ANCHORED))
                    ).scalars()
                }
            )
        self.heads: dict[int, TreeHead] = {}
        self.anchors: dict[int, AnchorPointer] = {}
        self.last_cursor: int | None = None
        self.latest: int | None = None
        self._anchored = set(self.anchored_sizes)
        self._payload_cache: dict[int, dict[str, Any]] = {}

    def anchored(self, size: int) -> bool:
        return size in self.anchors

    def good(self, good_type: GoodType, fingerprint: bytes, *, explicit: bool) -> ExportGood | None:
        """The good's evidence, or None (bulk) for a good whose registration is queued."""
        from readmodels.trace import register_entry
        from registry.db import read_transaction

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
        built = [bundle_entry(self.registry, e, payloads, size) for e in under]
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
            self._payload_cache.update(read_payloads(self.registry, missing))
        return {i: self._payload_cache[i] for i in record_ids}

    def keep(self, good: ExportGood, cursor: int) -> None:
        """The good is in the file: its head (and its anchor) go in too."""
        self.last_cursor = cursor
        size = good.tree_size
        if size not in self.heads:
            head = self.registry.tree_head(size)
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

    def _pointer(self, head: TreeHead) -> AnchorPointer:
        from sqlalchemy import select

        from anchoring.models import anchors_t
        from registry.db import read_transaction

        a = anchors_t.c
        with read_transaction(self.registry.engine) as conn:
            row = conn.execute(
                select(a.tx_hash, a.block_number, a.state)
                .where(a.tree_size == head.tree_size, a.root == head.root)
                .where(a.state.in_(ANCHORED))
                .order_by(a.id.desc())
                .limit(1)
            ).one()
        return anchor_pointer(head, row)

    def heads_and_links(
        self,
    ) -> tuple[list[TreeHead], list[AnchorPointer], list[ConsistencyLink]]:
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

    from registry.entries import LoggedEntry
    from registry.log import entries_t

    c = entries_t.c
    rows = conn.execute(
        select(entries_t)
        .where(text("kind <> 1"), c.good_type == int(good_type), c.fingerprint == fingerprint)
        .order_by(c.leaf_index.is_(None), c.leaf_index, c.id)
        .limit(MAX_BUNDLE_ENTRIES)
    ).all()
    return [LoggedEntry.from_row(row._mapping) for row in rows]


# ExportSelection (``readmodels.exportselection``) is importable from here too: the command
# line, the compliance report, benchmarks and tests hand one to ``write_export``.
__all__ = ["CSV_COLUMNS", "ExportResult", "ExportSelection", "write_export"]
