"""The absence proof ``tracemark-absence/v1`` and ``/v2``: its JSON format and its parser.

An absence proof says that a good is not in the log as of a signed (and anchored) head: the
head, the pointer to its anchor, and the head's last leaf, a STATE_COMMITMENT entry whose
map root the good's key is absent from, with the map proof of that absence (issue 14). It is
checked with the head, trust and chain steps of a bundle (``verifier.statecheck``); the
server builds it (``readmodels.bundles.build_absence``). v2 (issue 15) adds ``checkpoint``: the
head's C2SP checkpoint with its witnesses' cosignatures, checked as a bundle's is.

The format is frozen like the bundle's: unknown fields and unknown format strings are
refused, and a new layout is a new ``format`` string.

NOTE: pure (no web3, no ORM, no web framework), as the rest of the verifier kit.
"""

from __future__ import annotations

from typing import Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from registry.errors import InvalidInput, describe_validation
from registry.treehead import TreeHead
from verifier import boundedjson
from verifier.bundle import AnchorPointer, BundleState, GoodRef
from verifier.checkpointcheck import CheckpointText

FORMAT: Final = "tracemark-absence/v1"
"""The first layout; still read, no longer made."""

FORMAT_V2: Final = "tracemark-absence/v2"
"""v1 and ``checkpoint`` (issue 15): what ``build_absence`` makes. Any other value than these
two is refused, never guessed at."""

FORMATS: Final = (FORMAT, FORMAT_V2)

MAX_ABSENCE_BYTES: Final = 512 * 1024
"""Largest absence proof a parser reads, in bytes.

Threat: a verifier fed a gigantic "proof" would allocate without bound. An absence proof is a
head, a pointer, one small STATE_COMMITMENT entry with an inclusion proof of at most 64
hashes and a map proof of at most 256 siblings: about 25 KiB at most in its JSON form, and
(v2) a checkpoint of at most ``MAX_CHECKPOINT_CHARS`` (128 Ki characters, up to 3 bytes each).
"""


class MalformedAbsence(InvalidInput):
    """The file is not a ``tracemark-absence`` document: fix or fetch it again."""

    code = "malformed-absence"


class Absence(BaseModel):
    """A ``tracemark-absence/v1`` or ``/v2`` document: the good, the head, its anchor pointer,
    the state map's proof that the good is not in it, and (v2) the head's checkpoint."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: Literal["tracemark-absence/v1", "tracemark-absence/v2"]
    good: GoodRef
    tree_head: TreeHead
    anchor: AnchorPointer | None
    #: The head's STATE_COMMITMENT entry and the map proof of the good's absence (value null).
    state: BundleState
    #: v2: the head's C2SP checkpoint as a signed note with its witnesses' cosignatures, or
    #: null for a head the registry holds none of. Absent from v1 documents.
    checkpoint: CheckpointText | None = None

    @model_validator(mode="before")
    @classmethod
    def _layout_of_its_version(cls, data: Any) -> Any:
        if isinstance(data, dict):
            found = data.get("format")
            if found == FORMAT and "checkpoint" in data:
                raise ValueError(f"{FORMAT} has no checkpoint (a later format has)")
            if found == FORMAT_V2 and "checkpoint" not in data:
                raise ValueError(f"{FORMAT_V2} names checkpoint (null when none)")
        return data

    @model_validator(mode="after")
    def _absent(self) -> Self:
        if self.state.value is not None:
            raise ValueError("an absence proof's state.value is null (the good is not in the map)")
        return self

    def to_json(self) -> str:
        """The document as JSON text (2-space indented, keys in format order)."""
        exclude = {"checkpoint"} if self.format == FORMAT else None
        return self.model_dump_json(indent=2, exclude=exclude) + "\n"

    @classmethod
    def parse(cls, data: bytes | str) -> Absence:
        """Parse strictly: bounded size, one value, no duplicate keys, no NaN, the format
        string, no unknown fields, every value of its type and range."""
        document = boundedjson.strict_document(
            data, MAX_ABSENCE_BYTES, MalformedAbsence, "an absence proof"
        )
        if not isinstance(document, dict) or document.get("format") not in FORMATS:
            raise MalformedAbsence(
                f"an absence proof is a JSON object of format {' or '.join(FORMATS)}"
            )
        return cls.from_document(document)

    @classmethod
    def from_document(cls, document: object) -> Absence:
        """The document, already parsed as JSON, through this type; ``MalformedAbsence``
        names what is wrong."""
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            raise MalformedAbsence(
                "malformed absence proof: " + describe_validation(exc, most=3)
            ) from None


__all__ = ["FORMAT", "FORMATS", "FORMAT_V2", "MAX_ABSENCE_BYTES", "Absence", "MalformedAbsence"]
