"""Following a log through its static API: verify each checkpoint, catch up, report the goods.

One ``Monitor.step``:

1. fetch the checkpoint and open it under the vkeys pinned in the state (``CheckpointInvalid``
   otherwise);
2. compare it with the last one verified: a smaller size is a rollback, the same size with
   another root a split view (``LogInconsistent``: an alarm, and the state does not move);
3. fetch the new entry bundles and level-0 tiles (bundle N and tile N together), check that
   each bundle's leaves hash to its tile and that the first tile starts with the edge verified
   before, then the tiles above; the extended edge must fold to the checkpoint's root, which
   proves the new tree extends the old one (a consistency proof computed from the tiles);
4. scan the new leaves for what concerns the watched creators and goods;
5. hand the report to the caller, then save the state (so a crash repeats a report, never
   loses one, and a state never claims entries it did not verify).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from registry.attestations import platform_key_subject
from registry.checkpoint import Checkpoint, open_checkpoint
from registry.eip712 import checksum_address
from registry.errors import InvalidInput
from registry.leaf import EntryKind, LeafData, subject_fingerprint
from registry.note import NoteError
from registry.tlogtiles import TileRef
from verifier.errors import VerificationError
from verifier.monitorstate import MonitorState, StateDir
from verifier.tiledtree import (
    ENTRY_RECORD,
    TILE_WIDTH,
    EdgeExtension,
    LogInconsistent,
    bundle_leaf_hashes,
    parse_bundle,
)
from verifier.tlogclient import TlogClient

# Where a leaf's fields sit in a bundle record (uint16 length, then the ABI words of
# registry.leaf.encode_leaf): kind is the last byte of word 1, the fingerprint word 3, the
# actor the last 20 bytes of word 4.
_KIND_AT = 2 + 63
_FINGERPRINT_AT = 2 + 96
_ACTOR_AT = 2 + 140


class CheckpointInvalid(VerificationError):
    """The log's checkpoint does not verify under the pinned vkeys or origin: not a statement
    of the log's at all (a wrong URL, a key rotation, or someone in between)."""

    code = "checkpoint-invalid"
    diagnostics = "Check the log's URL and vkeys: nothing from it was accepted."

    def __init__(self, detail: str) -> None:
        super().__init__(detail, step="checkpoint")


@dataclass(frozen=True, slots=True)
class Event:
    """One entry that concerns a watched creator or good."""

    event: str  # the entry kind's name
    leaf_index: int
    leaf: LeafData | None  # None for a leaf that does not decode
    owner: bytes | None  # the watched creator whose good (or identity) it is
    reason: str

    def to_json(self) -> dict[str, Any]:
        leaf = self.leaf
        return {
            "event": self.event,
            "leaf_index": self.leaf_index,
            "good_type": None if leaf is None or leaf.good_type is None else leaf.good_type.name,
            "fingerprint": None if leaf is None else "0x" + leaf.fingerprint.hex(),
            "actor": None if leaf is None else leaf.actor_address,
            "owner": None if self.owner is None else checksum_address(self.owner),
            "timestamp": None if leaf is None else leaf.timestamp,
            "payload_hash": None if leaf is None else "0x" + leaf.payload_hash.hex(),
            "reason": self.reason,
        }

    def line(self) -> str:
        fields = self.to_json()
        return (
            f"{self.event} leaf {self.leaf_index}: {self.reason}; fingerprint "
            f"{fields['fingerprint']} actor {fields['actor']}"
        )


@dataclass(frozen=True)
class StepReport:
    """What one step verified (``old_size`` to ``checkpoint.size``) and found."""

    old_size: int
    checkpoint: Checkpoint
    events: tuple[Event, ...]
    goods_added: int

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.checkpoint.origin,
            "old_size": self.old_size,
            "size": self.checkpoint.size,
            "root": base64.b64encode(self.checkpoint.root).decode(),
            "events": len(self.events),
            "goods_added": self.goods_added,
        }


class Watch:
    """The goods and creators watched, and the scan of new leaves for them."""

    def __init__(
        self,
        creators: Sequence[bytes],
        owners: dict[bytes, bytes],
        goods: Iterable[bytes] = (),
        platforms: Iterable[str] = (),
    ) -> None:
        self.creators = tuple(creators)
        self.owners = owners  # fingerprint -> the watched creator who registered it
        self.goods = frozenset(goods)  # a platform's goods, watched whoever registered them
        self.identities = {
            subject_fingerprint(EntryKind.CREATOR_IDENTITY, creator): creator
            for creator in self.creators
        }
        # A platform's attestation keys: every PLATFORM_KEY entry (kind 10) in its name, so
        # that a key it did not enroll (the operator's, or a thief's with its API key) is seen.
        self.platforms = {platform_key_subject(platform): platform for platform in platforms}
        self.keys: set[bytes] = (
            set(owners) | self.goods | set(self.identities) | set(self.platforms)
        )
        self.added: list[tuple[bytes, bytes]] = []
        self.events: list[Event] = []

    def scan(self, bundle: bytes, first_index: int, start: int) -> None:
        """Scan the leaves of a checked ``bundle`` (leaf ``first_index`` first) from ``start``."""
        skip = start - first_index
        # NOTE: the common case is a bundle with nothing watched in it; each test below runs
        # in C (find, slicing, set.isdisjoint), and only candidate leaves are decoded.
        candidates: set[int] = set()
        fresh: set[bytes] = set()
        for creator in self.creators:
            at = bundle.find(creator, _ACTOR_AT + skip * ENTRY_RECORD)
            while at != -1:
                position, offset = divmod(at - _ACTOR_AT, ENTRY_RECORD)
                if offset == 0:
                    candidates.add(position)
                    record = position * ENTRY_RECORD
                    if bundle[record + _KIND_AT] == EntryKind.REGISTER:
                        fresh.add(bundle[record + _FINGERPRINT_AT : record + _FINGERPRINT_AT + 32])
                at = bundle.find(creator, at + 1)
        kinds = bundle[_KIND_AT + skip * ENTRY_RECORD :: ENTRY_RECORD]
        at = kinds.find(EntryKind.KEY_HANDOVER)
        while at != -1:
            candidates.add(skip + at)
            at = kinds.find(EntryKind.KEY_HANDOVER, at + 1)
        fingerprints = [
            bundle[o : o + 32]
            for o in range(_FINGERPRINT_AT + skip * ENTRY_RECORD, len(bundle), ENTRY_RECORD)
        ]
        keys = self.keys
        if not keys.isdisjoint(fingerprints) or not fresh.isdisjoint(fingerprints):
            # NOTE: never keys | fresh: a copy of every watched key per bundle is quadratic
            # when a creator watches the million goods it registers.
            candidates.update(
                skip + j for j, fp in enumerate(fingerprints) if fp in keys or fp in fresh
            )
        creators, register = frozenset(self.creators), EntryKind.REGISTER
        owners, added, goods = self.owners, self.added, self.goods
        for position in sorted(candidates):
            record = position * ENTRY_RECORD
            fingerprint = bundle[record + _FINGERPRINT_AT : record + _FINGERPRINT_AT + 32]
            actor = bundle[record + _ACTOR_AT : record + _ACTOR_AT + 20]
            if (
                bundle[record + _KIND_AT] == register
                and actor in creators
                and fingerprint not in keys
                and fingerprint not in goods
            ):
                # A watched creator's new good, reported to no one: recorded without decoding
                # the whole leaf (catching up on one's own million goods).
                owners[fingerprint] = actor
                keys.add(fingerprint)
                added.append((fingerprint, actor))
                continue
            self._apply(first_index + position, bundle[record + 2 : record + ENTRY_RECORD])

    def _apply(self, leaf_index: int, data: bytes) -> None:
        try:
            leaf = LeafData.decode(data)
        except InvalidInput as exc:
            self.events.append(Event("UNREADABLE", leaf_index, None, None, exc.detail))
            return
        kind, fingerprint, actor = leaf.kind, leaf.fingerprint, leaf.actor
        owner = self.owners.get(fingerprint)
        if kind is EntryKind.KEY_HANDOVER:
            self._report(leaf_index, leaf, None, "the registry's signing key was handed over")
        elif kind is EntryKind.CREATOR_IDENTITY:
            creator = self.identities.get(fingerprint)
            if creator is not None:
                self._report(leaf_index, leaf, creator, "an identity attested for the creator")
        elif kind is EntryKind.REGISTER:
            if owner is None and actor in self.creators:
                self.owners[fingerprint] = actor
                self.keys.add(fingerprint)
                self.added.append((fingerprint, actor))
                if fingerprint in self.goods:
                    self._report(leaf_index, leaf, actor, "a watched good registered")
            elif owner is not None and owner != actor:
                self._report(leaf_index, leaf, owner, "registered again by someone else")
            elif owner is None and fingerprint in self.goods:
                self._report(leaf_index, leaf, None, "a watched good registered")
        elif kind is EntryKind.CONFLICT:
            if owner is not None and owner != actor:
                self._report(leaf_index, leaf, owner, "claimed by another creator")
            elif owner is None and actor in self.creators:
                self._report(leaf_index, leaf, actor, "your claim: someone registered it first")
            elif owner is None and fingerprint in self.goods:
                self._report(leaf_index, leaf, None, "a watched good claimed again")
        elif kind is EntryKind.PLATFORM_KEY:
            platform = self.platforms.get(fingerprint)
            if platform is not None:
                self._report(
                    leaf_index,
                    leaf,
                    None,
                    f"an attestation key enrolled for platform {platform}: check that it is yours",
                )
        elif kind is EntryKind.REVOKE and (owner is not None or fingerprint in self.goods):
            self._report(leaf_index, leaf, owner, "revoked")
        elif kind is EntryKind.TRANSFER and (owner is not None or fingerprint in self.goods):
            self._report(leaf_index, leaf, owner, "changed hands")

    def _report(self, leaf_index: int, leaf: LeafData, owner: bytes | None, why: str) -> None:
        self.events.append(Event(leaf.kind.name, leaf_index, leaf, owner, why))


class Monitor:
    """Follows the log at ``client`` from the state in ``state`` (see the module's steps)."""

    def __init__(
        self,
        client: TlogClient,
        state_dir: StateDir,
        state: MonitorState,
        goods: Iterable[bytes],
        platforms: Iterable[str] = (),
    ) -> None:
        self.client, self.state_dir, self.state = client, state_dir, state
        self.verifiers = state.log.verifiers()
        self.goods = frozenset(goods)
        self.platforms = tuple(platforms)
        self._owners = state_dir.goods(state.goods)

    def step(self, deliver: Callable[[StepReport], None]) -> StepReport:
        """One verified step; ``deliver`` sees the report before the state is saved."""
        note = self.client.checkpoint()
        # 1. The checkpoint, under the pinned keys and origin.
        try:
            checkpoint, _ = open_checkpoint(note, self.verifiers, origin=self.state.log.origin)
        except NoteError as exc:
            raise CheckpointInvalid(f"the log's checkpoint does not verify: {exc.detail}") from None
        old, edge = self.state.checkpoint, self.state.edge
        # 2. Against the last one verified.
        evidence = (self.state.note or b"", note)
        if old is not None and checkpoint.size < old.size:
            raise LogInconsistent(
                "rollback",
                f"the log serves size {checkpoint.size} after size {old.size} was verified",
                evidence,
            )
        if old is not None and checkpoint.size == old.size:
            if checkpoint.root != old.root:
                raise LogInconsistent(
                    "split-view",
                    f"two checkpoints of size {old.size} with different roots: "
                    f"{base64.b64encode(old.root).decode()} verified before, "
                    f"{base64.b64encode(checkpoint.root).decode()} now",
                    evidence,
                )
            report = StepReport(old.size, checkpoint, (), 0)
            deliver(report)
            return report
        watch = Watch(self.state.log.creators, dict(self._owners), self.goods, self.platforms)
        new_edge = edge
        if checkpoint.size > edge.size:
            # 3. and 4. The new entries, tiles and the edge.
            extension = EdgeExtension(edge, checkpoint.size)
            refs = []
            for index, width in extension.level0:
                refs += [TileRef(None, index, width), TileRef(0, index, width)]
            bodies = self.client.resources(refs)
            for index, width in extension.level0:
                bundle = parse_bundle(next(bodies), width)
                tile = next(bodies)
                extension.add_level0(index, tile, bundle_leaf_hashes(bundle))
                first = index * TILE_WIDTH
                watch.scan(bundle, first, max(first, edge.size))
            new_edge = extension.finish(
                lambda wanted: self.client.resources([TileRef(*w) for w in wanted])
            )
        if new_edge.root() != checkpoint.root:
            raise LogInconsistent(
                "tiles",
                f"the tiles of size {checkpoint.size} do not hash to the root the log signed",
            )
        # 5. Report, then save.
        report = StepReport(edge.size, checkpoint, tuple(watch.events), len(watch.added))
        deliver(report)
        self.state = self.state_dir.commit(self.state, note, checkpoint, new_edge, watch.added)
        self._owners = watch.owners
        return report


__all__ = ["CheckpointInvalid", "Event", "Monitor", "StepReport", "Watch"]
