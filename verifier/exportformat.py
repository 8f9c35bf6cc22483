"""The evidence export ``tracemark-export/v1``: its JSON format and its parser.

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
``MAX_EXPORT_BYTES`` bytes; a larger selection is paged (``next_after``, ``--after``).
``verifier.export`` checks one; the server writes one (``readmodels.exports``).

``tracemark-export/v2`` (issue 15) adds ``checkpoints``: for each head, in the heads' order,
its C2SP checkpoint as a signed note (the log's signatures and the witnesses' cosignatures),
or null for a head the registry holds no checkpoint of. v1 files are still read.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from registry.edges import GOOD_TEXT_PATTERN, Address, Proof, Uint64
from registry.errors import InvalidInput, describe_validation
from registry.merkle import MAX_TREE_SIZE
from registry.treehead import TreeHead
from verifier import boundedjson
from verifier.absence import FORMATS as ABSENCE_FORMATS
from verifier.absence import MAX_ABSENCE_BYTES, Absence, MalformedAbsence
from verifier.bundle import (
    FORMATS as BUNDLE_FORMATS,
)
from verifier.bundle import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_ENTRIES,
    AnchorPointer,
    Bundle,
    BundleEntry,
    GoodRef,
    MalformedBundle,
)
from verifier.checkpointcheck import CheckpointText
from verifier.exportlimits import MAX_EXPORT_BYTES, MAX_EXPORT_ENTRIES, MAX_EXPORT_GOODS

FORMAT: Final = "tracemark-export/v1"
"""The first layout; still read (every export made before issue 15 keeps verifying)."""

FORMAT_V2: Final = "tracemark-export/v2"
"""v1 and ``checkpoints`` (issue 15): what ``write_export`` makes. Any other value than these
two is refused, never guessed at."""

FORMATS: Final = (FORMAT, FORMAT_V2)


class MalformedExport(InvalidInput):
    """The file is not a ``tracemark-export`` document: fix or re-export it."""

    code = "malformed-export"


# -- the format -------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


TreeSize = Annotated[StrictInt, Field(ge=1, le=MAX_TREE_SIZE)]

GoodText = Annotated[StrictStr, Field(pattern=GOOD_TEXT_PATTERN)]


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


#: Most credit facts one export carries (``credit``; about 120 bytes each).
MAX_CREDIT_FACTS: Final = 1_000_000

PlatformText = Annotated[StrictStr, Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")]


class CreditFact(_Model):
    """One fact a credit formula reads (``registry.creditfacts``), as the registry says it: not
    proven by the log (refusals and refunds are not logged entries)."""

    kind: Literal["sale", "refund", "fake-delivery", "bad-sale", "dead-good", "overdue"]
    platform: PlatformText
    seller_platform: PlatformText | None
    #: The seller's keyed reference hash (``0x`` + 64 hex), null when none (a creator's sale).
    seller: Annotated[StrictStr, Field(pattern=r"^0x[0-9a-f]{64}$")] | None
    at: Uint64


class CreditFacts(_Model):
    """What recomputes every platform's and seller's credit score (issue 18 item 1): an
    optional, additive member of a v2 export, written only when asked (``--credit``)."""

    #: The formula the facts were read under (``registry.credit.FORMULAS``).
    formula: Literal["credit/v1", "credit/v2"]
    as_of: Uint64
    overdue_after: Uint64
    facts: Annotated[tuple[CreditFact, ...], Field(max_length=MAX_CREDIT_FACTS)]


class Export(_Model):
    """A ``tracemark-export/v1`` or ``/v2`` document (v2 adds ``checkpoints``)."""

    format: Literal["tracemark-export/v1", "tracemark-export/v2"]
    exported_at: Uint64
    #: The registry that says it exported this (checked: the heads' signer).
    registry: Address
    selection: Selection
    goods: Annotated[tuple[ExportGood, ...], Field(max_length=MAX_EXPORT_GOODS)]
    #: Pass as ``--after`` for the next file of the same selection; null on the last.
    next_after: Uint64 | None
    heads: Annotated[tuple[TreeHead, ...], Field(max_length=MAX_EXPORT_GOODS)]
    anchors: Annotated[tuple[AnchorPointer, ...], Field(max_length=MAX_EXPORT_GOODS)]
    consistency: Annotated[tuple[ConsistencyLink, ...], Field(max_length=MAX_EXPORT_GOODS)]
    #: v2: each head's checkpoint (a signed note, or null), in the order of ``heads``.
    #: Absent from v1 documents.
    checkpoints: (
        Annotated[tuple[CheckpointText | None, ...], Field(max_length=MAX_EXPORT_GOODS)] | None
    ) = None
    #: Credit facts (``CreditFacts``), when the export was asked for them; absent otherwise.
    credit: CreditFacts | None = None

    @model_validator(mode="before")
    @classmethod
    def _layout_of_its_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = data.get("format")
            if found == FORMAT and "checkpoints" in data:
                raise ValueError(f"{FORMAT} has no checkpoints (a later format has)")
            if found == FORMAT_V2 and not isinstance(data.get("checkpoints"), list):
                raise ValueError(f"{FORMAT_V2} names checkpoints (a list, null for a head)")
        return data

    def checkpoint_of(self, index: int) -> str | None:
        """The checkpoint of the ``index``-th head (None: none, or a v1 export)."""
        return None if self.checkpoints is None else self.checkpoints[index]

    @classmethod
    def parse(cls, data: bytes | str) -> Export:
        evidence = parse_evidence(data)
        if not isinstance(evidence, Export):
            what = "bundle" if isinstance(evidence, Bundle) else "document"
            raise MalformedExport(f"this is a {evidence.format} {what}, not an export")
        return evidence


@boundedjson.collector_paused()
def parse_evidence(data: bytes | str) -> Bundle | Export | Absence:
    """A bundle, an export or an absence proof, by its ``format``, parsed strictly (one JSON
    parse): bounded size, one value, no duplicate keys, no NaN, no unknown fields, every value
    in range."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    document = boundedjson.strict_document(
        raw, MAX_EXPORT_BYTES, MalformedExport, "an export", parsed_name="evidence"
    )
    found = document.get("format") if isinstance(document, dict) else None
    if found in BUNDLE_FORMATS:
        if len(raw) > MAX_BUNDLE_BYTES:
            raise MalformedBundle(f"a bundle is at most {MAX_BUNDLE_BYTES:,} bytes")
        try:
            return Bundle.model_validate(document)
        except ValidationError as exc:
            raise MalformedBundle("malformed bundle: " + describe_validation(exc, most=3)) from None
    if found in ABSENCE_FORMATS:
        if len(raw) > MAX_ABSENCE_BYTES:
            raise MalformedAbsence(f"an absence proof is at most {MAX_ABSENCE_BYTES:,} bytes")
        return Absence.from_document(document)
    if found in FORMATS:
        try:
            return Export.model_validate(document)
        except ValidationError as exc:
            described = describe_validation(exc, most=3)
            raise MalformedExport(f"malformed export: {described}") from None
    shown = repr(found) if isinstance(found, str) and len(found) <= 64 else "missing"
    raise MalformedBundle(
        f"unknown evidence format {shown}; this verifier reads "
        f"{', '.join(BUNDLE_FORMATS)}, {', '.join(FORMATS)} and {', '.join(ABSENCE_FORMATS)}"
    )


__all__ = [
    "FORMAT",
    "FORMATS",
    "FORMAT_V2",
    "MAX_CREDIT_FACTS",
    "MAX_EXPORT_BYTES",
    "MAX_EXPORT_ENTRIES",
    "MAX_EXPORT_GOODS",
    "ConsistencyLink",
    "CreditFact",
    "CreditFacts",
    "Export",
    "ExportGood",
    "MalformedExport",
    "Selection",
    "parse_evidence",
]
