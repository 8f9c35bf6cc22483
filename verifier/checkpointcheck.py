"""Checking the checkpoint a bundle or export carries for its head (issue 15): the log's
signature under the trust root's keys, the same size and root as the head, and the witness
quorum of the trust root's policy.

Nothing the checkpoint says of itself is trusted (STYLE 15): the origin, the log's keys and
the witness policy are the pinned trust root's. Unknown signature lines are ignored and a
known key's bad signature rejects the note (C2SP signed-note); the cosignatures are counted
by the policy (C2SP tlog-policy, ``registry.witnesspolicy``). Steps, as the code numbers them:

1. the trust root names the log's checkpoint keys (a root pinned before issue 15 does not:
   the checkpoint is then not checked, and the finding says so);
2. a checkpoint is there, unless the policy asks no witness (``quorum none``): evidence made
   before issue 15 then still verifies, and says its head was not witnessed;
3. it is a signed note of the trust root's origin, signed by one of the log's keys;
4. its size and root are the head's;
5. its cosignatures satisfy the policy's quorum.

Failures raise ``BundleInvalid`` at step ``checkpoint`` (1-4) or ``witness`` (5).

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import Field, StrictStr

from registry.checkpoint import open_checkpoint
from registry.note import NoteError
from registry.treehead import TreeHead
from registry.witnesspolicy import NONE, WitnessPolicy
from verifier.errors import BundleInvalid
from verifier.trust import LOG_KEY_TYPES, TrustRoot

MAX_CHECKPOINT_CHARS: Final = 128 * 1024
"""Largest checkpoint note a bundle or export carries for one head, in characters: the log's
two signatures and 32 ML-DSA-44 cosignatures (~3.3 KB of text each) fit with room to spare.
Threat: a note crafted to make the check parse and verify without bound."""


#: A head's checkpoint as evidence carries it: a signed note's text, bounded. (pydantic's
#: string validation already refuses an unpaired surrogate, which no UTF-8 can hold.)
CheckpointText = Annotated[StrictStr, Field(max_length=MAX_CHECKPOINT_CHARS)]


def _utf8(text: str) -> str:
    # signed-note: "Signed notes MUST be valid UTF-8". A caller that built its evidence in
    # Python, not from JSON, may hand in a string with an unpaired surrogate: refused here,
    # never a UnicodeEncodeError out of the check.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a checkpoint note must be valid UTF-8 (an unpaired surrogate)") from None
    return text


@dataclass(frozen=True)
class WitnessFinding:
    """What a head's checkpoint proved: which log keys signed it, and who cosigned it."""

    tree_size: int
    #: The trust root names the log's checkpoint keys (False: pinned before issue 15).
    checked: bool
    #: The evidence carries a checkpoint for the head.
    has_checkpoint: bool
    #: The log keys whose signature verified, by type ("Ed25519", "ML-DSA-44").
    log_signatures: tuple[str, ...] = ()
    #: The policy's witnesses whose cosignature verified, in the policy's order.
    witnessed_by: tuple[str, ...] = ()
    #: How many witnesses the trust root's policy names.
    witnesses: int = 0
    #: The policy asks no cosignature (``quorum none``).
    quorum_none: bool = True

    @property
    def witnessed(self) -> bool:
        """The head's checkpoint was cosigned as the policy asks (never by ``quorum none``
        alone: no witness, no statement)."""
        return bool(self.witnessed_by) and not self.quorum_none

    def describe(self) -> str:
        size = f"{self.tree_size:,}"
        if not self.checked:
            return (
                f"checkpoint of head {size} not checked: the trust root names no witness "
                "policy (pinned before issue 15)"
            )
        if not self.has_checkpoint:
            return (
                f"head {size} not witnessed: the evidence carries no checkpoint, and the trust "
                "root's witness policy asks none"
            )
        signed = f"checkpoint {size} signed by the log ({', '.join(self.log_signatures)})"
        cosigners = ", ".join(self.witnessed_by)
        if self.quorum_none:
            if self.witnessed_by:
                return (
                    f"{signed}, cosigned by {len(self.witnessed_by)} of {self.witnesses}: "
                    f"{cosigners} (the trust root's policy asks no quorum)"
                )
            return f"{signed}; not witnessed (the trust root's witness policy asks none)"
        return f"{signed}, witnessed by {len(self.witnessed_by)} of {self.witnesses}: {cosigners}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "checked": self.checked,
            "checkpoint": self.has_checkpoint,
            "log_signatures": list(self.log_signatures),
            "witnessed": self.witnessed,
            "witnessed_by": list(self.witnessed_by),
            "witnesses": self.witnesses,
            "quorum": "none" if self.quorum_none else "policy",
            "summary": self.describe(),
        }


def check_checkpoint(checkpoint: str | None, head: TreeHead, root: TrustRoot) -> WitnessFinding:
    """Check ``checkpoint`` (a signed note's text, or None) for ``head`` under ``root``;
    return what it proved or raise ``BundleInvalid`` (steps ``checkpoint``, ``witness``)."""
    size = head.tree_size
    log = root.transparency
    # 1. The trust root names the log's checkpoint keys; one pinned before issue 15 does not.
    if log is None:
        return WitnessFinding(size, checked=False, has_checkpoint=checkpoint is not None)
    policy = log.policy
    witnesses = len(policy.witnesses)
    quorum_none = _asks_none(policy)
    # 2. A checkpoint, unless the policy asks no witness (evidence made before issue 15).
    if checkpoint is None:
        if quorum_none:
            return WitnessFinding(
                size, checked=True, has_checkpoint=False, witnesses=witnesses, quorum_none=True
            )
        raise BundleInvalid(
            "checkpoint",
            f"the evidence carries no checkpoint for head {size:,}, but trust root "
            f"{root.label()} asks a quorum of its {witnesses} witnesses to cosign every head "
            "(evidence made before issue 15 verifies only under a policy of quorum none)",
        )
    if len(checkpoint) > MAX_CHECKPOINT_CHARS:
        raise BundleInvalid(
            "checkpoint", f"the checkpoint of head {size:,} is over {MAX_CHECKPOINT_CHARS:,} chars"
        )
    # 3. A note of the trust root's origin, signed by one of the log's keys (unknown lines
    #    ignored; a known key's bad signature rejects it).
    try:
        parsed, note = open_checkpoint(_utf8(checkpoint), log.log_verifiers, origin=log.log_origin)
    except (NoteError, ValueError) as exc:
        detail = exc.detail if isinstance(exc, NoteError) else str(exc)
        raise BundleInvalid(
            "checkpoint",
            f"the checkpoint of head {size:,} does not verify under trust root "
            f"{root.label()}'s log keys: {detail}",
        ) from None
    known = {(v.name, v.key_id): v for v in log.log_verifiers}
    signed_by = tuple(
        dict.fromkeys(
            LOG_KEY_TYPES[known[(s.name, s.key_id)].sig_type]
            for s in note.signatures
            if (s.name, s.key_id) in known
        )
    )
    # 4. The checkpoint is the head: the same size and root.
    if parsed.size != size or parsed.root != head.root:
        raise BundleInvalid(
            "checkpoint",
            f"the checkpoint (size {parsed.size:,}, root 0x{parsed.root.hex()}) is not head "
            f"{size:,} (root 0x{head.root.hex()})",
        )
    # 5. The cosignatures satisfy the trust root's witness policy.
    try:
        cosigned = tuple(policy.check(note))
    except NoteError as exc:
        raise BundleInvalid(
            "witness",
            f"the checkpoint of head {size:,} is not witnessed as trust root {root.label()} "
            f"asks: {exc.detail}",
        ) from None
    return WitnessFinding(
        size,
        checked=True,
        has_checkpoint=True,
        log_signatures=signed_by,
        witnessed_by=cosigned,
        witnesses=witnesses,
        quorum_none=quorum_none,
    )


def _asks_none(policy: WitnessPolicy) -> bool:
    """Whether a policy's quorum is ``none`` (no cosignature at all satisfies it)."""
    return policy.quorum == NONE


__all__ = ["MAX_CHECKPOINT_CHARS", "CheckpointText", "WitnessFinding", "check_checkpoint"]
