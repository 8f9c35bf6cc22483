"""The proof bundle ``tracemark-bundle/v1``..``/v4``: its JSON format and its parser.

A bundle carries everything needed to check one good against the chain without the server
(DESIGN.md, "Proof bundle"): the good's REGISTER entry and its later entries (REVOKE,
TRANSFER, CONFLICT), each with its leaf fields, its full payload document, its leaf index and
its RFC 9162 inclusion proof under one signed tree head; that head; a pointer to the head's
anchor; and, for a good registered or revoked in a bulk batch, the proof that the creator's
one signature covers this very fingerprint; and (v3) the good's value in the state map the
head's last leaf commits to, which proves the entries shown are all the good's entries under
that head (issue 14); and (v4) the head's C2SP checkpoint, signed by the log and cosigned by
its witnesses (issue 15). ``verifier.offline`` checks it; the server builds it
(``readmodels.bundles.build_bundle``).

Bytes inside, ``0x``-hex at the edges. The format is frozen: unknown fields and unknown
format strings are refused, and a new layout is a new ``format`` string, never an edit.

NOTE: this module stays pure (no web3, no ORM, no web framework) so that a platform can parse
and check bundles with nothing but the chain.
"""

from __future__ import annotations

import hashlib
import marshal
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    StrictInt,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from registry.batchproof import BatchProof
from registry.canonicaljson import canonical_json
from registry.edges import (
    Address,
    GoodTypeField,
    Hash32,
    Proof,
    Uint64,
    parse_hash32,
    to_hex,
)
from registry.errors import InvalidInput, InvalidProof, describe_validation
from registry.leaf import LEAF_VERSION, EntryKind, LeafData
from registry.merkle import MAX_TREE_SIZE
from registry.statemap import MapProof, MapValue
from registry.treehead import TreeHead
from verifier import boundedjson
from verifier.checkpointcheck import CheckpointText

FORMAT: Final = "tracemark-bundle/v1"
"""The first layout; still read (every bundle made before v2 keeps verifying), no longer made."""

FORMAT_V2: Final = "tracemark-bundle/v2"
"""v1 and ``creator_identity``: the creator's newest CREATOR_IDENTITY entry under the head,
with its inclusion proof (issue 11), or null. Still read, no longer made."""

FORMAT_V3: Final = "tracemark-bundle/v3"
"""v2 and ``state``: the head's STATE_COMMITMENT entry and the good's value in the map it
commits to, with its map proof (issue 14), or null for a head that ends in no commitment (a
log from before the state map). Still read, no longer made."""

FORMAT_V4: Final = "tracemark-bundle/v4"
"""v3 and ``checkpoint``: the head's C2SP checkpoint as a signed note (the log's signature
lines and its witnesses' cosignatures; issue 15), or null for a head the registry holds no
checkpoint of. What ``build_bundle`` makes."""

FORMATS: Final = (FORMAT, FORMAT_V2, FORMAT_V3, FORMAT_V4)

MAX_BUNDLE_BYTES: Final = 8 * 1024 * 1024
"""Largest bundle file a parser reads, in bytes.

Threat: a verifier fed an endless or gigantic file (a hostile seller's "evidence") would
allocate and hash without bound. 8 MiB holds ``MAX_BUNDLE_ENTRIES`` entries of ordinary size.
"""

MAX_BUNDLE_ENTRIES: Final = 1_024
"""Most entries (the REGISTER entry and its later entries together) one bundle carries.

Threat: the same as ``MAX_BUNDLE_BYTES``, counted in signatures to recover and proofs to
walk. A good with a longer history (an item resold over a thousand times) is out of scope for
v1 bundles: ``build_bundle`` refuses it rather than cut its history short.
"""

MAX_PAYLOAD_BYTES: Final = 64 * 1024
"""Largest payload document of one entry, as RFC 8785 JSON.

A payload holds one signed message, its domain, a royalty policy of at most 16 recipients
and at most 4 KiB of metadata: far below this. Threat: a payload crafted to be hashed
expensively, or to inflate the report.
"""


class MalformedBundle(InvalidInput):
    """The file is not a ``tracemark-bundle`` document: fix or re-export it."""

    code = "malformed-bundle"


# -- edge types: 0x-hex outside, bytes inside (``registry.edges``), and the entry kind ------


def _entry_kind(value: object) -> EntryKind:
    if isinstance(value, EntryKind):
        return value
    if isinstance(value, str) and value in EntryKind.__members__:
        return EntryKind[value]
    raise ValueError("must be one of REGISTER, REVOKE, TRANSFER, CONFLICT, DELIVERY")


EntryKindName = Annotated[
    EntryKind, BeforeValidator(_entry_kind), PlainSerializer(lambda v: v.name, return_type=str)
]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# -- payload documents: bounded, and hashed once as each entry is read ------------------------


_DIGESTS: dict[bytes, bytes] = {}
_DIGESTS_MAX: Final = 4_096
"""Distinct payloads the memo keeps before it starts over (a memory bound only: a miss
costs the canonical encoding again)."""

_MEMO_KEY_VERSION: Final = 2
"""``marshal`` format 2: no back-references (format 3 on marks objects seen twice, so the
same value could give two keys), floats as their 8 bytes."""


def payload_digest(payload: dict[str, Any]) -> bytes:
    """SHA-256 of the payload's RFC 8785 JSON (``leaf.payload_hash``), refusing one over
    ``MAX_PAYLOAD_BYTES``.

    Remembered by the payload's exact value: its ``marshal`` bytes (format 2, in C, ~3 us
    for a batch payload). Each good of a bulk batch carries its own copy of the batch's one
    payload, and the canonical form costs several times that to check and encode.

    NOTE: the key must tell apart every two values the canonical encoder does: marshal
    writes each object's exact type (``1``, ``"1"``, ``True``, ``1.0`` and a list differ;
    a subclass, bytes or a set has no key or one no JSON value shares) and reads back the
    same value, so a hit is the same value, whose canonical form (or refusal) is the same.
    Sorted JSON text was not such a key: ``{1: "x"}`` and ``{"1": "x"}`` share it, so a
    payload built in Python with a key that is not text took the digest of the JSON one.
    Key order is kept: the same object in another order is a miss, never a wrong hit.
    """
    try:
        key: bytes | None = marshal.dumps(payload, _MEMO_KEY_VERSION)
    except ValueError:  # not marshal's types (a subclass, a cycle): never remembered
        key = None
    found = _DIGESTS.get(key) if key is not None else None
    if found is None:
        found = hashlib.sha256(canonical_json(payload, max_bytes=MAX_PAYLOAD_BYTES)).digest()
        if key is not None:
            if len(_DIGESTS) >= _DIGESTS_MAX:
                _DIGESTS.clear()
            _DIGESTS[key] = found
    return found


# -- the format -------------------------------------------------------------------------------


class GoodRef(_Model):
    """Which good the bundle is about."""

    good_type: GoodTypeField
    fingerprint: Hash32


class _LoggedEntry(_Model):
    """What every entry a document carries checks: its leaf version, and a payload bounded
    in size and canonical (the fields themselves are declared by each subclass, in format
    order)."""

    _payload_sha256: bytes = PrivateAttr(default=b"")
    if TYPE_CHECKING:  # declared by each subclass, in its place in the format's order
        version: int
        kind: EntryKind
        fingerprint: bytes
        actor: bytes
        payload_hash: bytes
        timestamp: int
        payload: dict[str, Any]

    @field_validator("version", check_fields=False)
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != LEAF_VERSION:
            raise ValueError(f"unknown leaf version; only {LEAF_VERSION} exists")
        return value

    @model_validator(mode="after")
    def _digest_payload(self) -> Self:
        # Computed once, as the entry is read, and kept with it: the check needs it several
        # times an entry, and each of a bulk batch's goods carries its own copy of the
        # batch's one payload, so a memo by value would encode it again to look it up.
        try:
            self._payload_sha256 = payload_digest(self.payload)
        except InvalidInput as exc:
            raise ValueError(f"payload: {exc.detail}") from None
        return self

    @property
    def payload_sha256(self) -> bytes:
        """The SHA-256 of the payload's RFC 8785 JSON, as read (``payload_digest``)."""
        # NOTE: read from pydantic's store of private attributes, not through its
        # ``__getattr__`` (3 us a read; checking an export reads it twice an entry).
        private = self.__pydantic_private__
        assert private is not None  # the model has a private attribute: pydantic sets it
        digest: bytes = private["_payload_sha256"]
        return digest

    def leaf(self) -> LeafData:
        """The leaf as committed to the log, from the fields carried here (an entry about a
        subject, not a good, has no good type: its word is 0)."""
        return LeafData(
            version=self.version,
            kind=self.kind,
            good_type=getattr(self, "good_type", None),
            fingerprint=self.fingerprint,
            actor=self.actor,
            payload_hash=self.payload_hash,
            timestamp=self.timestamp,
        )


class BundleEntry(_LoggedEntry):
    """One log entry: its leaf fields, its payload document, where it is, and the proofs."""

    version: StrictInt
    kind: EntryKindName
    good_type: GoodTypeField
    fingerprint: Hash32
    actor: Address
    payload_hash: Hash32
    timestamp: Uint64
    leaf_index: Annotated[StrictInt, Field(ge=0, lt=MAX_TREE_SIZE)]
    #: The entry's payload document; its RFC 8785 SHA-256 is (or, in a batch, seeds) the
    #: leaf's ``payload_hash``.
    payload: dict[str, Any]
    inclusion_proof: Proof
    #: Present for an entry of a bulk batch (BatchRegistration, BatchRevocation), else null.
    batch_proof: BatchProof | None


class SubjectEntry(_LoggedEntry):
    """A log entry about a subject, not a good (``leaf.SUBJECT_KINDS``): its leaf fields
    (good_type word 0), its payload document, where it is, and its inclusion proof."""

    version: StrictInt
    kind: EntryKindName
    fingerprint: Hash32
    actor: Address
    payload_hash: Hash32
    timestamp: Uint64
    leaf_index: Annotated[StrictInt, Field(ge=0, lt=MAX_TREE_SIZE)]
    payload: dict[str, Any]
    inclusion_proof: Proof


def _map_value(value: object) -> MapValue:
    if isinstance(value, MapValue):
        return value
    if not isinstance(value, dict) or set(value) != {"entry_count", "last_leaf_index", "history"}:
        raise ValueError("a map value is an object of entry_count, last_leaf_index and history")
    count, last = value["entry_count"], value["last_leaf_index"]
    if type(count) is not int or type(last) is not int:  # a bool is not a count
        raise ValueError("a map value's entry_count and last_leaf_index are integers")
    try:
        return MapValue(count, last, parse_hash32(value["history"]))
    except InvalidInput as exc:
        raise ValueError(exc.detail) from None


def _map_value_json(value: MapValue) -> dict[str, Any]:
    return {
        "entry_count": value.entry_count,
        "last_leaf_index": value.last_leaf_index,
        "history": to_hex(value.history),
    }


def _map_proof(value: object) -> MapProof:
    # MapProof.from_json bounds the siblings (MAX_MAP_PROOF_SIBLINGS) before reading one.
    if isinstance(value, MapProof):
        return value
    try:
        return MapProof.from_json(value)
    except InvalidProof as exc:
        raise ValueError(exc.detail) from None


#: A good's value in the state map (``registry.statemap.MapValue``), validated as it is read.
MapValueField = Annotated[
    MapValue,
    PlainValidator(_map_value),
    PlainSerializer(_map_value_json),
    WithJsonSchema({"type": "object"}),
]
#: A compressed map proof (``registry.statemap.MapProof``) in its JSON form, bounded.
MapProofField = Annotated[
    MapProof,
    PlainValidator(_map_proof),
    PlainSerializer(MapProof.to_json),
    WithJsonSchema({"type": "object"}),
]


class BundleState(_Model):
    """What the state map says of one good under a head (issue 14): the head's last leaf, a
    STATE_COMMITMENT entry carrying the map's root, and the good's value in that map (null:
    the good is not in it) with the map proof of that value, or of its absence."""

    commitment: SubjectEntry
    value: MapValueField | None
    map_proof: MapProofField


class AnchorPointer(_Model):
    """Where the registry says the head was anchored. Only a pointer: a verifier takes the
    root from the contract itself (THREATS 8), and uses this to find the block."""

    chain_id: Annotated[StrictInt, Field(ge=1)]
    contract: Address
    tree_size: Annotated[StrictInt, Field(ge=1, le=MAX_TREE_SIZE)]
    #: Null for a head adopted from the chain after a restore (no transaction of ours).
    tx_hash: Hash32 | None
    block_number: Uint64 | None
    state: Literal["mined", "final"]


class Bundle(_Model):
    """A ``tracemark-bundle/v1``..``/v4`` document (v2 adds ``creator_identity``, v3 adds
    ``state``, v4 adds ``checkpoint``)."""

    format: Literal[
        "tracemark-bundle/v1", "tracemark-bundle/v2", "tracemark-bundle/v3", "tracemark-bundle/v4"
    ]
    good: GoodRef
    #: The good's REGISTER entry.
    entry: BundleEntry
    #: The good's other entries under the same head, in log order.
    later_entries: Annotated[tuple[BundleEntry, ...], Field(max_length=MAX_BUNDLE_ENTRIES - 1)]
    #: The good's entries the registry holds that are not under this head yet (still queued,
    #: or logged after it): a later bundle carries them. Said by the server, proves nothing.
    pending_entries: Annotated[StrictInt, Field(ge=0)]
    tree_head: TreeHead
    anchor: AnchorPointer | None
    #: v2: the creator's newest CREATOR_IDENTITY entry under the head (a verified or lapsed
    #: name), or null when it never proved one. Absent from v1 documents.
    creator_identity: SubjectEntry | None = None
    #: v3: the good's value in the state map the head commits to, proving the entries above
    #: are all of its entries under the head; null for a head that ends in no commitment.
    #: Absent from v1 and v2 documents.
    state: BundleState | None = None
    #: v4: the head's C2SP checkpoint (tlog-checkpoint) as a signed note: the log's signature
    #: lines and the witnesses' cosignatures (issue 15); null when the registry holds none
    #: for the head. Absent from v1..v3 documents.
    checkpoint: CheckpointText | None = None

    @model_validator(mode="before")
    @classmethod
    def _layout_of_its_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = data.get("format")
            newer = _NEWER_FIELDS.get(found, ()) if isinstance(found, str) else ()
            for field in ("creator_identity", "state", "checkpoint"):
                if field in newer and field in data:
                    raise ValueError(f"{found} has no {field} (a later format has)")
                if found in FORMATS and field not in newer and field not in data:
                    raise ValueError(f"{found} names {field} (null when none)")
        return data

    @property
    def entries(self) -> tuple[BundleEntry, ...]:
        return (self.entry, *self.later_entries)

    def to_json(self) -> str:
        """The bundle as JSON text (2-space indented, keys in format order)."""
        exclude = set(_NEWER_FIELDS[self.format]) or None
        return self.model_dump_json(indent=2, exclude=exclude) + "\n"

    @classmethod
    def parse(cls, data: bytes | str) -> Bundle:
        """Parse bundle JSON strictly: bounded size, one value, no duplicate keys, no NaN,
        a known format string, no unknown fields, every value of its type and range."""
        document = boundedjson.strict_document(data, MAX_BUNDLE_BYTES, MalformedBundle, "a bundle")
        if not isinstance(document, dict):
            raise MalformedBundle("a bundle is a JSON object")
        if document.get("format") not in FORMATS:
            found = document.get("format")
            shown = repr(found) if isinstance(found, str) and len(found) <= 64 else "missing"
            raise MalformedBundle(
                f"unknown bundle format {shown}; this verifier reads {', '.join(FORMATS)}"
            )
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise MalformedBundle("malformed bundle: " + describe_validation(exc, most=3)) from None


#: The fields a format has not got (added by a later version), left out when it is written.
_NEWER_FIELDS: Final = {
    FORMAT: ("creator_identity", "state", "checkpoint"),
    FORMAT_V2: ("state", "checkpoint"),
    FORMAT_V3: ("checkpoint",),
    FORMAT_V4: (),
}


__all__ = [
    "FORMAT",
    "FORMATS",
    "FORMAT_V2",
    "FORMAT_V3",
    "FORMAT_V4",
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_ENTRIES",
    "MAX_PAYLOAD_BYTES",
    "AnchorPointer",
    "BatchProof",
    "Bundle",
    "BundleEntry",
    "BundleState",
    "GoodRef",
    "MalformedBundle",
    "MapProofField",
    "MapValueField",
    "SubjectEntry",
]
