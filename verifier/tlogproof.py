"""The offline proof ``c2sp.org/tlog-proof@v1``: its text format, and the entry tracemark puts
in its ``extra`` line.

The file (c2sp.org/tlog-proof, "Format"), lines separated by U+000A::

    c2sp.org/tlog-proof@v1
    extra <base64>                  (optional)
    index <N>                       (ASCII decimal, no leading zero unless 0)
    <base64 of 32 bytes>            (0..64 lines: the RFC 6962 audit path, leaf's sibling first)
                                    (an empty line)
    <the checkpoint note, verbatim: body, empty line, signature and cosignature lines>

The spec leaves ``extra`` to the application: tracemark's is ``tracemark-tlog-extra/v1``,
the RFC 8785 JSON of one logged entry of a good (leaf version, kind, good type, fingerprint,
actor, payload hash, timestamp), its payload document (the creator's signed message and its
domain for a REGISTER; the registry's attested TRANSFER document for a TRANSFER), and the
bulk batch proof when the entry is one of a batch. It carries exactly what a verifier needs to
rebuild the leaf hash (the spec's step 1) and to check the creator's signature under the
trusted domain as a native bundle is checked (``verifier.tlogproofcheck``).

NOTE: the spec says "Applications MUST NOT implicitly trust the extra data, as it is not
authenticated". Nothing here is trusted because it was parsed: the leaf hash rebuilt from
the extra must be the one the inclusion proof binds to the checkpoint's root under the log's
signature, so an extra that differs in any byte that matters proves nothing. Being parsed
only means it is well formed: bounded, canonical (one byte string per entry, so a proof
re-emits byte for byte), of the fields and types a bundle entry has.

Bytes inside; the checkpoint stays the bytes it was (its signatures cover them). Pure: no
web3, no ORM, no web framework.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError

from registry.batchproof import BatchProof
from registry.canonicaljson import canonical_json
from registry.edges import Address, GoodTypeField, Hash32, Uint64
from registry.errors import InvalidInput, describe_validation
from registry.leaf import EntryKind
from registry.merkle import MAX_PROOF_LENGTH, MAX_TREE_SIZE
from verifier import boundedjson
from verifier.bundle import MAX_PAYLOAD_BYTES, BundleEntry, EntryKindName

HEADER: Final = "c2sp.org/tlog-proof@v1"
"""The first line of every proof (the spec's magic and version); anything else is refused."""

EXTRA_FORMAT: Final = "tracemark-tlog-extra/v1"
"""The ``format`` of the JSON tracemark writes in the ``extra`` line."""

FILE_EXTENSION: Final = ".tlog-proof"
"""What the spec says proofs SHOULD be stored as."""

MEDIA_TYPE: Final = "text/plain; charset=utf-8"
"""How the API serves one: the format is text, and the spec names no media type."""

MAX_PROOF_LINES: Final = MAX_PROOF_LENGTH
"""Most inclusion proof lines a proof carries: 64, an RFC 6962 audit path of a tree of up to
2^64 leaves. Threat: a file that makes the verifier decode and hash without bound."""

MAX_EXTRA_BYTES: Final = MAX_PAYLOAD_BYTES + 16 * 1024
"""Largest ``extra`` a proof carries, decoded: one payload document (at most
``MAX_PAYLOAD_BYTES``) and the entry's fixed fields and batch proof (under 6 KiB). Threat: a
"huge extra" to decode, parse and hash."""

MAX_CHECKPOINT_BYTES: Final = 64 * 1024
"""Largest checkpoint note a proof carries: a body of a few lines, the log's Ed25519 and
ML-DSA-44 signature lines (~3.3 KiB) and the witnesses' cosignatures (~120 bytes each, ~3.3
KiB for ML-DSA-44 ones). Threat: a note of endless signature lines to verify."""

MAX_TLOG_PROOF_BYTES: Final = 256 * 1024
"""Largest proof file a parser reads: the ``extra`` as base64, the proof lines and the
checkpoint, with room to spare."""

_INDEX: Final = re.compile(r"index (0|[1-9][0-9]{0,19})")
_HASH_LINE_CHARS: Final = 44  # base64 of 32 bytes, with its one "=" of padding


class MalformedTlogProof(InvalidInput):
    """The file is not a ``c2sp.org/tlog-proof@v1`` proof tracemark reads: fetch it again."""

    code = "malformed-tlog-proof"


def _b64decode(text: str, what: str) -> bytes:
    """Standard base64 (RFC 4648 §4), in its one canonical spelling: padded, no other
    character, no bits set past the data (so a parsed proof re-emits byte for byte)."""
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedTlogProof(f"{what} is not standard base64") from None
    if base64.b64encode(data).decode("ascii") != text:
        raise MalformedTlogProof(f"{what} is not in canonical base64")
    return data


@dataclass(frozen=True)
class TlogProof:
    """One ``c2sp.org/tlog-proof@v1`` proof: where the entry is, the audit path to the
    checkpoint's root, the checkpoint note as the log (and its witnesses) signed it, and the
    opaque ``extra`` (tracemark's: ``ProofExtra``)."""

    index: int
    inclusion_proof: tuple[bytes, ...]
    #: The checkpoint note verbatim: its text, an empty line, its signature lines.
    checkpoint: bytes
    extra: bytes | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.index < MAX_TREE_SIZE:
            raise MalformedTlogProof(f"index {self.index} is out of range")
        if len(self.inclusion_proof) > MAX_PROOF_LINES:
            raise MalformedTlogProof(f"an inclusion proof has at most {MAX_PROOF_LINES} lines")
        if any(len(node) != 32 for node in self.inclusion_proof):
            raise MalformedTlogProof("an inclusion proof line is a 32-byte SHA-256 hash")
        if self.extra is not None and len(self.extra) > MAX_EXTRA_BYTES:
            raise MalformedTlogProof(f"the extra data is at most {MAX_EXTRA_BYTES:,} bytes")
        if len(self.checkpoint) > MAX_CHECKPOINT_BYTES:
            raise MalformedTlogProof(f"the checkpoint is at most {MAX_CHECKPOINT_BYTES:,} bytes")
        # A note's text ends with a newline, and its signature lines each end with one.
        if not self.checkpoint.endswith(b"\n") or self.checkpoint.startswith(b"\n"):
            raise MalformedTlogProof("the checkpoint is not a signed note")
        try:
            self.checkpoint.decode("utf-8")
        except UnicodeDecodeError:
            raise MalformedTlogProof("the checkpoint is not UTF-8 text") from None

    def to_bytes(self) -> bytes:
        """The proof file, exactly as the spec lays it out."""
        lines = [HEADER]
        if self.extra is not None:
            lines.append("extra " + base64.b64encode(self.extra).decode("ascii"))
        lines.append(f"index {self.index}")
        lines.extend(base64.b64encode(node).decode("ascii") for node in self.inclusion_proof)
        lines.append("")
        return ("\n".join(lines) + "\n").encode("ascii") + self.checkpoint

    @classmethod
    def parse(cls, data: bytes | str) -> TlogProof:
        """Parse a proof strictly: bounded size, the v1 first line, an ``index`` without
        leading zeros, at most ``MAX_PROOF_LINES`` hashes of 32 bytes in canonical base64, an
        empty line, then a checkpoint note (kept verbatim; its signatures are checked by the
        caller, with the keys it trusts)."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        if len(raw) > MAX_TLOG_PROOF_BYTES:
            raise MalformedTlogProof(f"a tlog-proof is at most {MAX_TLOG_PROOF_BYTES:,} bytes")
        head, separator, checkpoint = raw.partition(b"\n\n")
        if not separator:
            raise MalformedTlogProof("no empty line before the checkpoint")
        try:
            lines = head.decode("ascii").split("\n")
        except UnicodeDecodeError:
            raise MalformedTlogProof("the lines before the checkpoint are not ASCII") from None
        if lines[0] != HEADER:
            shown = repr(lines[0]) if len(lines[0]) <= 64 else "another first line"
            raise MalformedTlogProof(f"not a tlog-proof: {shown}, not {HEADER!r}")
        position = 1
        extra = None
        if position < len(lines) and lines[position].startswith("extra "):
            encoded = lines[position].removeprefix("extra ")
            if len(encoded) > (MAX_EXTRA_BYTES + 2) // 3 * 4:
                raise MalformedTlogProof(f"the extra data is at most {MAX_EXTRA_BYTES:,} bytes")
            extra = _b64decode(encoded, "the extra line")
            position += 1
        if position >= len(lines):
            raise MalformedTlogProof("no index line")
        found = _INDEX.fullmatch(lines[position])
        if found is None:
            raise MalformedTlogProof(
                "the index line is 'index N', N in decimal without leading zeros"
            )
        nodes = lines[position + 1 :]
        if len(nodes) > MAX_PROOF_LINES:
            raise MalformedTlogProof(f"an inclusion proof has at most {MAX_PROOF_LINES} lines")
        proof = []
        for number, line in enumerate(nodes, start=1):
            if len(line) != _HASH_LINE_CHARS:
                raise MalformedTlogProof(f"inclusion proof line {number} is not a 32-byte hash")
            proof.append(_b64decode(line, f"inclusion proof line {number}"))
        return cls(int(found.group(1)), tuple(proof), checkpoint, extra)


# -- tracemark's extra: the logged entry -------------------------------------------------------


class ProofExtra(BaseModel):
    """``tracemark-tlog-extra/v1``: a logged entry of a good as the ``extra`` line carries it
    (a ``verifier.bundle.BundleEntry`` without its leaf index and inclusion proof, which are
    the proof's own ``index`` and hash lines)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["tracemark-tlog-extra/v1"]
    version: StrictInt
    kind: EntryKindName
    good_type: GoodTypeField
    fingerprint: Hash32
    actor: Address
    payload_hash: Hash32
    timestamp: Uint64
    payload: dict[str, Any]
    batch_proof: BatchProof | None

    @classmethod
    def of(cls, entry: BundleEntry) -> ProofExtra:
        """The extra of a bundle's entry."""
        fields = entry.model_dump(exclude={"leaf_index", "inclusion_proof"})
        return cls(format=EXTRA_FORMAT, **fields)

    def to_bytes(self) -> bytes:
        """Its RFC 8785 JSON: the one spelling a parser accepts."""
        return canonical_json(self.model_dump(mode="json"), max_bytes=MAX_EXTRA_BYTES)

    @classmethod
    def parse(cls, data: bytes) -> ProofExtra:
        """Parse an extra strictly: one bounded JSON object in its RFC 8785 form, the v1
        format, no unknown field, every value of its type."""
        document = boundedjson.strict_document(
            data, MAX_EXTRA_BYTES, MalformedTlogProof, "the extra data"
        )
        if not isinstance(document, dict) or document.get("format") != EXTRA_FORMAT:
            raise MalformedTlogProof(f"the extra data is not a {EXTRA_FORMAT} object")
        try:
            canonical = canonical_json(document, max_bytes=MAX_EXTRA_BYTES)
        except InvalidInput as exc:
            raise MalformedTlogProof(f"the extra data: {exc.detail}") from None
        if canonical != data:
            raise MalformedTlogProof("the extra data is not in its RFC 8785 (canonical) form")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise MalformedTlogProof(
                "malformed extra data: " + describe_validation(exc, most=3)
            ) from None

    def entry(self, proof: TlogProof) -> BundleEntry:
        """The entry as a bundle carries it, at the proof's index with its audit path (its
        payload bounded and digested as it is built)."""
        fields = self.model_dump(exclude={"format"})
        try:
            return BundleEntry(
                **fields, leaf_index=proof.index, inclusion_proof=proof.inclusion_proof
            )
        except ValidationError as exc:
            raise MalformedTlogProof(
                "malformed extra data: " + describe_validation(exc, most=3)
            ) from None


#: The entries a tracemark tlog-proof is written for: a good's registration (its bundle) and a
#: transfer (its receipt).
PROVABLE_KINDS: Final = (EntryKind.REGISTER, EntryKind.TRANSFER)


def tlog_proof_of(entry: BundleEntry, checkpoint: bytes) -> TlogProof:
    """The tlog-proof of one logged entry (its leaf index and audit path under the checkpoint's
    size) with the entry in its ``extra``."""
    if entry.kind not in PROVABLE_KINDS:
        raise InvalidInput(
            f"a tlog-proof is written for a REGISTER or TRANSFER, not a {entry.kind.name}"
        )
    return TlogProof(
        index=entry.leaf_index,
        inclusion_proof=tuple(entry.inclusion_proof),
        checkpoint=checkpoint,
        extra=ProofExtra.of(entry).to_bytes(),
    )


def is_tlog_proof(data: bytes) -> bool:
    """Whether a file is a tlog-proof, by its first line (how ``tracemark verify`` tells)."""
    return data.startswith(HEADER.encode("ascii") + b"\n")


__all__ = [
    "EXTRA_FORMAT",
    "FILE_EXTENSION",
    "HEADER",
    "MAX_CHECKPOINT_BYTES",
    "MAX_EXTRA_BYTES",
    "MAX_PROOF_LINES",
    "MAX_TLOG_PROOF_BYTES",
    "MEDIA_TYPE",
    "PROVABLE_KINDS",
    "MalformedTlogProof",
    "ProofExtra",
    "TlogProof",
    "is_tlog_proof",
    "tlog_proof_of",
]
