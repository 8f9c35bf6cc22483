"""Trust roots (``tracemark-trust/v1``): what a verifier trusts about one registry.

A check never trusts what the evidence says about itself (STYLE 15): the chain, the anchor
contract and the keys that may sign tree heads come from a trust root the *caller* pinned,
never from a bundle. A trust root names:

- the chain id and the anchor contract (the EIP-712 domain every signature is bound to);
- the registry's signing keys, each with the tree sizes it signs: key ``i`` signs the heads
  of size ``from_size <= size < until_size``. Every key after the first carries the outgoing
  key's EIP-712 ``KeyHandover(newKey, treeSize)`` signature, so a rotation keeps old heads
  valid under the old key and accepts new heads only under the new one;
- how deep a root must be before it counts (``confirmations``, or the network's
  ``finalized`` block);
- the registry's URL, where it serves its own trust root (``/.well-known/tracemark-trust.json``);
- optionally (issue 15), ``transparency``: the log's checkpoint origin, the vkeys of the note
  keys that sign its checkpoints (C2SP signed-note: Ed25519 0x01, ML-DSA-44 0x06) and the
  witness policy (C2SP tlog-policy text) a checkpoint's cosignatures must satisfy. A root
  without it (pinned before issue 15) keeps its fingerprint and its meaning: evidence checked
  under it says its checkpoint was not checked.

Its fingerprint, ``sha256:`` and the SHA-256 of its RFC 8785 JSON, is what a user compares
out of band before pinning it. The format is frozen: unknown fields are refused (an older
verifier refuses a root with ``transparency`` rather than ignore its witness policy).

Pure: no web3, no ORM, no web framework.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from registry.canonicaljson import canonical_json
from registry.edges import Address, SignatureBytes
from registry.eip712 import Domain, checksum_address
from registry.errors import InvalidInput, SignatureError
from registry.signatures import verify_signature
from verifier import boundedjson
from verifier.errors import BundleInvalid, UntrustedRegistry
from verifier.transparency import (
    LOG_KEY_TYPES,
    MAX_LOG_VKEYS,
    MAX_WITNESS_POLICY_BYTES,
    Transparency,
)

FORMAT: Final = "tracemark-trust/v1"
"""The magic and version of a trust root; any other value is refused."""

WELL_KNOWN_PATH: Final = "/.well-known/tracemark-trust.json"
"""Where a registry serves its own trust root."""

MAX_TRUST_ROOT_BYTES: Final = 256 * 1024
"""Largest trust root a parser reads. Threat: a hostile URL answering without end. (64 KiB
before issue 15; an ML-DSA-44 vkey is ~1.8 KB of text, and a witness policy may name 32.)"""

MAX_SIGNING_KEYS: Final = 256
"""Most registry keys one trust root lists (each rotation adds one). Threat: a document that
makes every check walk an unbounded list."""

MAX_CONFIRMATIONS: Final = 10_000
"""Deepest confirmation rule a trust root may ask (about a day and a half of 12 s blocks)."""

MAX_TREE_SIZE: Final = 2**64 - 1


class MalformedTrustRoot(InvalidInput):
    """The document is not a ``tracemark-trust/v1`` trust root: fetch it again from the
    registry, or ask its operator for it."""

    code = "malformed-trust-root"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SigningKey(_Model):
    """A registry key and the head sizes it signs: ``from_size <= size < until_size``."""

    address: Address
    from_size: Annotated[StrictInt, Field(ge=1, le=MAX_TREE_SIZE)]
    #: None while it is the current key.
    until_size: Annotated[StrictInt, Field(ge=2, le=MAX_TREE_SIZE)] | None
    #: The outgoing key's ``KeyHandover(newKey=address, treeSize=from_size)`` signature; None
    #: for the registry's first key.
    handover_signature: SignatureBytes | None

    def signs(self, tree_size: int) -> bool:
        return self.from_size <= tree_size and (
            self.until_size is None or tree_size < self.until_size
        )


class Finality(_Model):
    """When a root counts: ``confirmations`` blocks deep, or at the ``finalized`` block."""

    confirmations: Annotated[StrictInt, Field(ge=1, le=MAX_CONFIRMATIONS)] | None = None
    finalized: StrictBool = False

    @model_validator(mode="after")
    def _one_rule(self) -> Finality:
        if (self.confirmations is None) == (not self.finalized):
            raise ValueError("name exactly one rule: confirmations N, or finalized true")
        return self

    def describe(self) -> str:
        if self.finalized:
            return "the network's finalized block"
        plural = "" if self.confirmations == 1 else "s"
        return f"{self.confirmations} confirmation{plural}"


class TrustRoot(_Model):
    """A ``tracemark-trust/v1`` document: one registry, as a verifier pins it."""

    format: Literal["tracemark-trust/v1"]
    #: The operator's label for the registry; shown, never used to decide anything.
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    registry_url: Annotated[StrictStr, Field(min_length=8, max_length=512)]
    chain_id: Annotated[StrictInt, Field(ge=1)]
    contract: Address
    signing_keys: Annotated[
        tuple[SigningKey, ...], Field(min_length=1, max_length=MAX_SIGNING_KEYS)
    ]
    finality: Finality
    #: Issue 15: the log's checkpoint origin, keys and witness policy; absent from a root
    #: made before (which then keeps its document, and so its fingerprint, byte for byte).
    transparency: Transparency | None = None

    @model_validator(mode="after")
    def _valid(self) -> TrustRoot:
        if not self.registry_url.startswith(("https://", "http://")):
            raise ValueError("registry_url must be an http(s) URL")
        if not self.name.isprintable():
            raise ValueError("name must be printable text")
        _check_key_chain(self.signing_keys, self.domain())
        return self

    # -- what it says ----------------------------------------------------------------------

    def domain(self) -> Domain:
        """The EIP-712 domain every signature of this registry is bound to."""
        return self._domain

    @cached_property
    def _domain(self) -> Domain:
        # Built once (a frozen value): each signed payload of an export compares its domain
        # with it and recovers its signature under it.
        return Domain(chain_id=self.chain_id, verifying_contract=checksum_address(self.contract))

    @property
    def contract_address(self) -> str:
        return checksum_address(self.contract)

    def fingerprint(self) -> str:
        """``sha256:`` and the hex SHA-256 of the RFC 8785 JSON: compare it out of band."""
        return self._fingerprint

    @cached_property
    def _fingerprint(self) -> str:
        # Computed once: every report names it, an export's thousands of goods included.
        return "sha256:" + hashlib.sha256(canonical_json(self.document())).hexdigest()

    def label(self) -> str:
        """How a report names this trust root: its name and a short fingerprint."""
        return f"{self.name} ({self.fingerprint()[:19]})"

    def key_for(self, tree_size: int) -> bytes:
        """The one key that may sign a head of ``tree_size``."""
        for key in self.signing_keys:
            if key.signs(tree_size):
                return key.address
        # Unreachable for a valid root: its keys cover every size from 1 on.
        raise BundleInvalid(
            "tree-head", f"trust root {self.label()} names no key for size {tree_size:,}"
        )

    def key_for_entry(self, leaf_index: int) -> bytes:
        """The key that attests an entry at ``leaf_index`` (a TRANSFER, a creator identity):
        the one that signs the first head holding it, of size ``leaf_index + 1``."""
        return self.key_for(leaf_index + 1)

    def names_key(self, address: bytes) -> bool:
        return any(key.address == address for key in self.signing_keys)

    def check_domain(self, domain: Domain, what: str) -> None:
        """Refuse a signature made for another chain or contract than this registry's."""
        if domain != self.domain():
            raise BundleInvalid(
                "domain",
                f"{what} was signed for chain {domain.chain_id} and contract "
                f"{domain.verifying_contract} ({domain.name} v{domain.version}), not for this "
                f"registry's chain {self.chain_id} and contract {self.contract_address} "
                f"(trust root {self.label()}): a signature carried over from another registry",
            )

    def check_head_signer(self, tree_size: int, signer: bytes) -> None:
        expected = self.key_for(tree_size)
        if signer != expected:
            raise BundleInvalid(
                "tree-head",
                f"head {tree_size:,} is signed by {checksum_address(signer)}, but trust root "
                f"{self.label()} names {checksum_address(expected)} to sign heads of that size",
            )

    # -- the format ------------------------------------------------------------------------

    def document(self) -> dict[str, Any]:
        # A root without ``transparency`` is written exactly as before issue 15 (no null
        # member): its fingerprint is unchanged, so a pinned root stays the same root.
        exclude = {"transparency"} if self.transparency is None else None
        return self.model_dump(mode="json", exclude=exclude)

    def to_json(self) -> str:
        return json.dumps(self.document(), indent=2) + "\n"

    @classmethod
    def parse(cls, data: bytes | str) -> TrustRoot:
        """Parse strictly: bounded size, one JSON object, no duplicate keys, the v1 format."""
        document = boundedjson.strict_document(
            data, MAX_TRUST_ROOT_BYTES, MalformedTrustRoot, "a trust root"
        )
        if not isinstance(document, dict):
            raise MalformedTrustRoot("a trust root is a JSON object")
        if document.get("format") != FORMAT:
            raise MalformedTrustRoot(f"not a trust root: this verifier reads {FORMAT}")
        try:
            return cls.model_validate(document)
        except ValidationError as exc:
            problems = []
            for item in exc.errors(include_url=False, include_input=False)[:3]:
                where = ".".join(str(part) for part in item["loc"])
                message = item["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {message}" if where else message)
            raise MalformedTrustRoot("malformed trust root: " + "; ".join(problems)) from None


def _check_key_chain(keys: tuple[SigningKey, ...], domain: Domain) -> None:
    """The keys cover every size from 1 on without overlap, and each hand-over is signed by
    the key it replaces (so the list is one chain of custody, not a list anyone could extend)."""
    if keys[0].from_size != 1 or keys[0].handover_signature is not None:
        raise ValueError("the first signing key signs from size 1 and has no hand-over")
    if len({key.address for key in keys}) != len(keys):
        raise ValueError("a signing key is listed twice")
    for older, newer in pairwise(keys):
        if older.until_size != newer.from_size:
            raise ValueError(
                f"key {checksum_address(older.address)} ends at {older.until_size}, but the next "
                f"starts at {newer.from_size}"
            )
        if older.until_size is not None and older.until_size <= older.from_size:
            raise ValueError(f"key {checksum_address(older.address)} signs no size")
        if newer.handover_signature is None:
            raise ValueError(f"key {checksum_address(newer.address)} has no hand-over signature")
        message = {"newKey": checksum_address(newer.address), "treeSize": newer.from_size}
        try:
            verify_signature(
                "KeyHandover",
                message,
                domain,
                newer.handover_signature,
                checksum_address(older.address),
            )
        except (SignatureError, InvalidInput) as exc:
            raise ValueError(
                f"the hand-over to {checksum_address(newer.address)} is not signed by "
                f"{checksum_address(older.address)}: {exc.detail}"
            ) from None
    if keys[-1].until_size is not None:
        raise ValueError("the last signing key is the current one: until_size null")


def extends(pinned: TrustRoot, offered: TrustRoot) -> bool:
    """Whether ``offered`` is ``pinned`` after zero or more key hand-overs: the same registry
    (chain, contract), the pinned keys kept (the current one possibly ended where a signed
    hand-over starts the next), the same log keys and witness policy. A root that does not
    extend the pinned one is not an update."""
    return keys_extend(pinned, offered) and same_transparency(pinned, offered)


def keys_extend(pinned: TrustRoot, offered: TrustRoot) -> bool:
    """``extends`` but for ``transparency``: the same registry, its keys one chain of custody
    on from the pinned ones."""
    if (offered.chain_id, offered.contract) != (pinned.chain_id, pinned.contract):
        return False
    old, new = pinned.signing_keys, offered.signing_keys
    if len(new) < len(old):
        return False
    for index, key in enumerate(old):
        candidate = new[index]
        if (candidate.address, candidate.from_size, candidate.handover_signature) != (
            key.address,
            key.from_size,
            key.handover_signature,
        ):
            return False
        if key.until_size is not None and candidate.until_size != key.until_size:
            return False
    return True


def same_transparency(pinned: TrustRoot, offered: TrustRoot) -> bool:
    """Whether both roots name the same log keys and witness policy (or neither names any)."""
    # NOTE: the log's checkpoint keys and the witness policy carry no signed hand-over: a root
    # that changes them (adding them included) is a new trust decision, pinned with --replace
    # after comparing its fingerprint out of band, never taken as an update.
    old_log, new_log = pinned.transparency, offered.transparency
    if old_log is None or new_log is None:
        return old_log is new_log
    return old_log.model_dump() == new_log.model_dump()


# -- the policy a check takes -----------------------------------------------------------------


class TrustPolicy:
    """The trust roots a caller pinned; a check asks it for the one naming the evidence's
    registry, and is refused when there is none (no trust on first use)."""

    def __init__(self, roots: Iterable[TrustRoot]) -> None:
        self.roots: tuple[TrustRoot, ...] = tuple(roots)

    @classmethod
    def of(cls, root: TrustRoot) -> TrustPolicy:
        return cls((root,))

    def root_for(self, domain: Domain) -> TrustRoot:
        """The pinned root for the registry of ``domain`` (chain id and contract)."""
        for root in self.roots:
            if (root.chain_id, root.contract_address) == (
                domain.chain_id,
                domain.verifying_contract,
            ):
                return root
        pinned = "; ".join(
            f"{root.label()}: chain {root.chain_id}, contract {root.contract_address}, "
            f"signed by {checksum_address(root.signing_keys[-1].address)}"
            for root in self.roots
        )
        raise UntrustedRegistry(
            f"no pinned trust root names chain {domain.chain_id} and contract "
            f"{domain.verifying_contract}, the registry this evidence is from "
            + (f"(pinned: {pinned})" if pinned else "(no trust root is pinned)")
            + "; pin its trust root with `tracemark trust add` after comparing its fingerprint"
            " out of band, or pass --trust FILE"
        )


__all__ = [
    "FORMAT",
    "LOG_KEY_TYPES",
    "MAX_CONFIRMATIONS",
    "MAX_LOG_VKEYS",
    "MAX_SIGNING_KEYS",
    "MAX_TRUST_ROOT_BYTES",
    "MAX_WITNESS_POLICY_BYTES",
    "WELL_KNOWN_PATH",
    "Finality",
    "MalformedTrustRoot",
    "SigningKey",
    "Transparency",
    "TrustPolicy",
    "TrustRoot",
    "extends",
    "keys_extend",
    "same_transparency",
]
