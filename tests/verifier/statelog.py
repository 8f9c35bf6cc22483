"""A log in memory for the state checks' unit tests: real leaves, a real state map over them
(``registry.statemaptree``), real RFC 9162 proofs and heads signed by a real key; no database
and no chain, so every field of the evidence can be set or broken at will.

It follows the registry's rule (issue 14): ``commit()`` appends a STATE_COMMITMENT whose map
holds every good entry at the leaves before it, and signs the head that ends with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount

from registry.eip712 import DEV_DOMAIN
from registry.fingerprints import GoodType
from registry.leaf import LEAF_VERSION, EntryKind, LeafData
from registry.merkle import root_from_leaf_hashes
from registry.payloads import StateCommitmentPayload
from registry.signatures import sign
from registry.statemap import map_key, replay
from registry.statemaptree import StateMap
from registry.treehead import PRIMARY_TYPE, TreeHead, tree_head_message
from tests.registry.merkle_reference import path
from verifier.bundle import BundleState, SubjectEntry
from verifier.trust import TrustRoot

TIMESTAMP = 1_750_000_000


@dataclass
class Commitment:
    """A signed head of the memory log and the map its last leaf commits to."""

    head: TreeHead
    entry: SubjectEntry
    map: StateMap


@dataclass
class MemoryLog:
    account: LocalAccount = field(default_factory=Account.create)
    leaves: list[LeafData] = field(default_factory=list)

    @property
    def signer(self) -> bytes:
        return bytes.fromhex(self.account.address[2:])

    def add(self, kind: EntryKind, good_type: GoodType, fingerprint: bytes) -> int:
        """Append a good's entry (its actor and payload hash random: only its leaf hash
        matters to the map); returns its leaf index."""
        self.leaves.append(
            LeafData(
                version=LEAF_VERSION,
                kind=kind,
                good_type=good_type,
                fingerprint=fingerprint,
                actor=os.urandom(20),
                payload_hash=os.urandom(32),
                timestamp=TIMESTAMP + len(self.leaves),
            )
        )
        return len(self.leaves) - 1

    def leaf_hash(self, leaf_index: int) -> bytes:
        return self.leaves[leaf_index].leaf_hash()

    def entries_of(self, good_type: GoodType, fingerprint: bytes) -> list[tuple[int, bytes]]:
        """The good's (leaf index, leaf hash) pairs in log order, as a bundle shows them."""
        return [
            (index, leaf.leaf_hash())
            for index, leaf in enumerate(self.leaves)
            if (leaf.good_type, leaf.fingerprint) == (good_type, fingerprint)
        ]

    def state_map(self, below: int) -> StateMap:
        """The map of every good entry at the leaves before ``below``."""
        values = replay(
            (map_key(leaf.good_type, leaf.fingerprint), index, leaf.leaf_hash())
            for index, leaf in enumerate(self.leaves[:below])
            if leaf.good_type is not None
        )
        return StateMap(sorted((key, value.value_hash()) for key, value in values.items()))

    def commit(self) -> Commitment:
        """Append the STATE_COMMITMENT of the map of every leaf so far, and sign the head
        that ends with it."""
        covers = len(self.leaves)
        state_map = self.state_map(covers)
        payload = StateCommitmentPayload(map_root=state_map.root(), covers=covers)
        self.leaves.append(
            LeafData(
                version=LEAF_VERSION,
                kind=EntryKind.STATE_COMMITMENT,
                good_type=None,
                fingerprint=state_map.root(),
                actor=self.signer,
                payload_hash=payload.payload_hash(),
                timestamp=TIMESTAMP + covers,
            )
        )
        head = self.sign_head()
        return Commitment(head, self.subject_entry(covers, head.tree_size), state_map)

    def sign_head(self) -> TreeHead:
        """A head over every leaf so far, signed by the log's key."""
        size = len(self.leaves)
        root = root_from_leaf_hashes([leaf.leaf_hash() for leaf in self.leaves])
        timestamp = TIMESTAMP + size
        signature = sign(
            PRIMARY_TYPE, tree_head_message(size, root, timestamp), DEV_DOMAIN, self.account.key
        )
        return TreeHead(
            tree_size=size,
            root=root,
            timestamp=timestamp,
            signature=signature,
            signer=self.signer,
            domain=DEV_DOMAIN,
        )

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> tuple[bytes, ...]:
        hashes = [leaf.leaf_hash() for leaf in self.leaves[:tree_size]]
        return tuple(path(leaf_index, hashes, root_from_leaf_hashes))

    def subject_entry(self, leaf_index: int, tree_size: int) -> SubjectEntry:
        """The STATE_COMMITMENT at ``leaf_index`` as evidence carries it, proved in
        ``tree_size``."""
        leaf = self.leaves[leaf_index]
        assert leaf.kind is EntryKind.STATE_COMMITMENT
        payload = StateCommitmentPayload(map_root=leaf.fingerprint, covers=leaf_index)
        return SubjectEntry(
            version=LEAF_VERSION,
            kind=leaf.kind,
            fingerprint=leaf.fingerprint,
            actor=leaf.actor,
            payload_hash=leaf.payload_hash,
            timestamp=leaf.timestamp,
            leaf_index=leaf_index,
            payload=payload.document(),
            inclusion_proof=self.inclusion_proof(leaf_index, tree_size),
        )

    def state(self, commitment: Commitment, good_type: GoodType, fingerprint: bytes) -> BundleState:
        """The good's value (or absence) in the commitment's map, with its map proof."""
        key = map_key(good_type, fingerprint)
        values = replay(
            (key, index, leaf_hash)
            for index, leaf_hash in self.entries_of(good_type, fingerprint)
            if index < commitment.entry.leaf_index
        )
        return BundleState(
            commitment=commitment.entry,
            value=values.get(key),
            map_proof=commitment.map.prove(key),
        )

    def trust_root(self) -> TrustRoot:
        """A trust root naming this log's key for every size, on the dev domain."""
        return TrustRoot.model_validate(
            {
                "format": "tracemark-trust/v1",
                "name": "memory log",
                "registry_url": "http://127.0.0.1:1",
                "chain_id": DEV_DOMAIN.chain_id,
                "contract": DEV_DOMAIN.verifying_contract,
                "signing_keys": [
                    {
                        "address": self.account.address,
                        "from_size": 1,
                        "until_size": None,
                        "handover_signature": None,
                    }
                ],
                "finality": {"confirmations": 1},
            }
        )


def absence_document(
    log: MemoryLog, commitment: Commitment, good_type: GoodType, fingerprint: bytes
) -> dict[str, Any]:
    """A ``tracemark-absence/v1`` document of the good under the commitment's head, as JSON."""
    state = log.state(commitment, good_type, fingerprint)
    return {
        "format": "tracemark-absence/v1",
        "good": {"good_type": good_type.name.lower(), "fingerprint": "0x" + fingerprint.hex()},
        "tree_head": commitment.head.to_json(),
        "anchor": None,
        "state": state.model_dump(mode="json"),
    }
