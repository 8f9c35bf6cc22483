"""The operator's end-to-end check of a log (THREATS 10): rebuild it from the entries.

Steps, numbered as in ``check_log``: (1) leaf indices are exactly 0..size-1, (2) every
entry's leaf decodes as format v1, (3) the root rebuilt from the leaves equals the root the
stored tiles give, at every signed head, (4) every head's signature recovers the registry's
address under the domain stored with it, (5) the state map the good entries replay to has the
root every STATE_COMMITMENT carries, with the payload stored for it (issue 14,
``registry.statemapaudit``), and every head since the first commitment ends with one. Streams
the entries: memory stays flat but for the state map, which holds every good.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Connection, select

from registry import log, merkle, registrykeys
from registry.eip712 import Domain, checksum_address, digest
from registry.errors import InvalidInput
from registry.errors import LogCorrupt as LogCorrupt  # re-exported: it was defined here
from registry.leaf import EntryKind, encode_leaf
from registry.log import entries_t, heads_t
from registry.payloads import StateCommitmentPayload
from registry.records import records_t
from registry.signatures import Signature, recover_signer
from registry.statemapaudit import MapAuditor
from registry.treehead import PRIMARY_TYPE, tree_head_message


@dataclass
class LogReport:
    tree_size: int = 0
    heads_checked: int = 0
    problems: list[str] = field(default_factory=list)
    #: STATE_COMMITMENT entries whose map root was replayed (agreeing or not: see problems).
    commitments_checked: int = 0


def check_log(conn: Connection, registry_address: str) -> LogReport:
    """Rebuild the log from its entries and compare with its tiles and signed heads, each
    head signed by the key that signs heads of its size (``registry_address`` when the
    database records no key periods yet)."""
    report = LogReport(tree_size=log.tree_size(conn))
    periods = registrykeys.key_periods(conn)
    head_sizes = {
        int(size): (bytes(root), int(ts), bytes(sig), domain)
        for size, root, ts, sig, domain in conn.execute(
            select(
                heads_t.c.tree_size,
                heads_t.c.root,
                heads_t.c.timestamp,
                heads_t.c.signature,
                heads_t.c.domain,
            )
        )
    }
    payloads = _commitment_payloads(conn, report)
    c = entries_t.c
    rows = conn.execution_options(yield_per=10_000).execute(
        select(
            c.leaf_index, c.kind, c.good_type, c.fingerprint, c.actor, c.payload_hash, c.timestamp
        )
        .where(c.leaf_index.is_not(None))
        .order_by(c.leaf_index)
    )
    builder, auditor = merkle.RootBuilder(), MapAuditor()
    for leaf_index, kind, good_type, fingerprint, actor, payload_hash, timestamp in rows:
        # 1. Contiguous indices.
        if leaf_index != builder.size:
            report.problems.append(f"leaf index {builder.size} is missing (next is {leaf_index})")
            break
        leaf = encode_leaf(
            kind, good_type, bytes(fingerprint), bytes(actor), bytes(payload_hash), timestamp
        )
        # 2. A valid v1 leaf: the map auditor decodes it as strictly as LeafData.decode.
        # 5. The map the good entries give has the root a commitment carries (the auditor
        # goes on with the entries' map after a disagreement, so each one is reported).
        try:
            auditor.advance(leaf_index, leaf, payloads.get(leaf_index))
        except LogCorrupt as exc:
            report.problems.append(str(exc))
        builder.append(merkle.hash_leaf(leaf))
        expected = registrykeys.key_for(periods, builder.size) if periods else None
        _check_head(
            conn,
            report,
            builder,
            head_sizes,
            registry_address if expected is None else checksum_address(expected),
        )
        # 5. Since the first commitment, every head ends with one.
        last = auditor.last_commitment
        if builder.size in head_sizes and last is not None and last != leaf_index:
            report.problems.append(
                f"head {builder.size}: its last leaf is not a state commitment (leaf {last} is)"
            )
    report.commitments_checked = auditor.commitments
    if builder.size != report.tree_size and not report.problems:
        report.problems.append(
            f"log_state says {report.tree_size} leaves but {builder.size} are sequenced"
        )
    return report


def _commitment_payloads(conn: Connection, report: LogReport) -> dict[int, StateCommitmentPayload]:
    """The payload stored for each STATE_COMMITMENT, by leaf index: one a head, held whole as
    the heads are. One that does not parse is a problem; its leaf is still replayed."""
    c = entries_t.c
    rows = conn.execute(
        select(c.leaf_index, records_t.c.payload)
        .join(records_t, records_t.c.id == c.record_id)
        .where(c.kind == int(EntryKind.STATE_COMMITMENT), c.leaf_index.is_not(None))
    )
    payloads = {}
    for leaf_index, document in rows:
        try:
            payloads[int(leaf_index)] = StateCommitmentPayload.from_json(document)
        except InvalidInput as exc:
            report.problems.append(
                f"state commitment at leaf {leaf_index}: its stored payload is refused ({exc})"
            )
    return payloads


def _check_head(
    conn: Connection,
    report: LogReport,
    builder: merkle.RootBuilder,
    heads: dict[int, tuple[bytes, int, bytes, str]],
    registry_address: str,
) -> None:
    head = heads.get(builder.size)
    if head is None:
        return
    root, timestamp, signature, domain = head
    rebuilt = builder.root()
    # 3. The entries, the tiles and the signed head agree on the root.
    if rebuilt != root:
        report.problems.append(f"head {builder.size}: signed root differs from the entries")
    if log.root_at(conn, builder.size) != rebuilt:
        report.problems.append(f"head {builder.size}: the tiles' root differs from the entries")
    # 4. The registry signed it.
    message = tree_head_message(builder.size, root, timestamp)
    signed_by = recover_signer(
        digest(PRIMARY_TYPE, message, Domain.from_dict(json.loads(domain))),
        Signature.parse(signature),
    )
    if signed_by != registry_address:
        report.problems.append(f"head {builder.size}: signed by {signed_by}, not the registry")
    report.heads_checked += 1
