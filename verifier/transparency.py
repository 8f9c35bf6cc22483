"""The log as a trust root names it for the transparency ecosystem (issue 15): the origin its
C2SP checkpoints name, the vkeys of the note keys that sign them, and the witness policy
(C2SP tlog-policy text) a checkpoint's cosignatures must satisfy. The ``transparency`` member
of a ``tracemark-trust/v1`` root (``verifier.trust``); ``verifier.checkpointcheck`` checks a
head's checkpoint under it.

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Final

from pydantic import BaseModel, ConfigDict, Field, StrictStr, model_validator

from registry.checkpoint import MAX_ORIGIN_BYTES
from registry.errors import InvalidInput
from registry.note import SIG_ED25519, SIG_MLDSA44_SUBTREE, NoteError, NoteVerifier, parse_vkey

if TYPE_CHECKING:
    from registry.witnesspolicy import WitnessPolicy

MAX_LOG_VKEYS: Final = 4
"""Most note keys a trust root names for the log's checkpoints (the log signs with two).
Threat: a root making every checkpoint check try many keys."""

MAX_WITNESS_POLICY_BYTES: Final = 192 * 1024
"""Largest witness policy text (tlog-policy asks support for 32 witnesses; 32 ML-DSA-44
vkeys are ~58 KB). Threat: a policy that makes parsing or quorum evaluation unbounded."""

LOG_KEY_TYPES: Final = {SIG_ED25519: "Ed25519", SIG_MLDSA44_SUBTREE: "ML-DSA-44"}
"""The signature types a log's checkpoint key may have, and how a report names them."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Transparency(_Model):
    """The log as the transparency ecosystem sees it (issue 15): the origin its checkpoints
    name, the vkeys of the note keys that sign them, and the witness policy (tlog-policy
    text) a checkpoint's cosignatures must satisfy (``quorum none``: no witness asked)."""

    log_origin: Annotated[StrictStr, Field(min_length=1, max_length=MAX_ORIGIN_BYTES)]
    log_vkeys: Annotated[tuple[StrictStr, ...], Field(min_length=1, max_length=MAX_LOG_VKEYS)]
    witness_policy: Annotated[StrictStr, Field(min_length=1, max_length=MAX_WITNESS_POLICY_BYTES)]

    @model_validator(mode="after")
    def _valid(self) -> Transparency:
        if len(self.log_origin.encode()) > MAX_ORIGIN_BYTES:
            raise ValueError(f"log_origin is at most {MAX_ORIGIN_BYTES} bytes")
        seen: set[bytes] = set()
        for verifier in self.log_verifiers:
            if verifier.name != self.log_origin:
                raise ValueError(
                    f"log key {verifier.name!r} is not named by the log's origin "
                    f"{self.log_origin!r} (tlog-checkpoint: the key name is the origin)"
                )
            if verifier.sig_type not in LOG_KEY_TYPES:
                raise ValueError("a log key is an Ed25519 (0x01) or ML-DSA-44 (0x06) vkey")
            if verifier.public_key in seen:
                raise ValueError("a log key is listed twice")
            seen.add(verifier.public_key)
        self.policy  # noqa: B018 - parsed now, so a root with a bad policy cannot exist
        return self

    @cached_property
    def log_verifiers(self) -> tuple[NoteVerifier, ...]:
        """The log's checkpoint keys, parsed from their vkeys."""
        try:
            return tuple(parse_vkey(text) for text in self.log_vkeys)
        except NoteError as exc:
            raise ValueError(f"log_vkeys: {exc.detail}") from None

    def describe_quorum(self) -> str:
        """The witness policy's quorum in words: ``none``, a witness, or k of a group's
        members (nested groups spelled out), as ``tracemark trust add`` shows it."""
        from registry.witnesspolicy import NONE, PolicyGroup

        policy = self.policy
        if policy.quorum == NONE:
            return "none (no witness asked)"
        groups = {group.name: group for group in policy.groups}

        def spell(name: str) -> str:
            group: PolicyGroup | None = groups.get(name)
            if group is None:
                return name
            return f"{group.k} of [{', '.join(spell(member) for member in group.members)}]"

        return f"{spell(policy.quorum)} ({len(policy.witnesses)} witnesses known)"

    @cached_property
    def policy(self) -> WitnessPolicy:
        """The witness policy, parsed (``registry.witnesspolicy``)."""
        from registry.witnesspolicy import parse_policy

        try:
            return parse_policy(self.witness_policy)
        except InvalidInput as exc:
            raise ValueError(f"witness_policy: {exc.detail}") from None


__all__ = ["LOG_KEY_TYPES", "MAX_LOG_VKEYS", "MAX_WITNESS_POLICY_BYTES", "Transparency"]
