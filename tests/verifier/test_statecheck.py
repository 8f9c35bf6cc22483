"""The state checks of issue 14 on a log in memory (``tests.verifier.statelog``): a bundle's
entries are complete as of the head or refused naming what the map says is missing; an
absence verifies, a forged one does not; every field of the state, broken, is refused."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from typing import Any

import pytest

from registry.fingerprints import GoodType
from registry.leaf import EntryKind
from registry.statemap import MAX_MAP_PROOF_SIBLINGS, map_key
from tests.verifier.statelog import MemoryLog, absence_document
from verifier.absence import Absence, MalformedAbsence
from verifier.bundle import BundleState
from verifier.errors import BundleInvalid, UntrustedRegistry
from verifier.exportformat import parse_evidence
from verifier.statecheck import check_absence, check_absent, check_complete
from verifier.trust import TrustPolicy

Document = dict[str, Any]
FILE, CODE = GoodType.FILE, GoodType.CODE


class Story:
    """A card registered, sold, revoked; a file registered and resold twice; other goods
    around them; a head committing to it all."""

    def __init__(self) -> None:
        self.log = log = MemoryLog()
        self.card, self.file, self.other = os.urandom(32), os.urandom(32), os.urandom(32)
        log.add(EntryKind.REGISTER, FILE, self.other)
        log.add(EntryKind.REGISTER, CODE, self.card)
        log.add(EntryKind.REGISTER, FILE, self.file)
        self.old = log.commit()  # head 4: the card and the file registered, nothing more
        log.add(EntryKind.TRANSFER, CODE, self.card)
        log.add(EntryKind.TRANSFER, FILE, self.file)
        log.add(EntryKind.REGISTER, FILE, os.urandom(32))
        log.add(EntryKind.TRANSFER, FILE, self.file)
        log.add(EntryKind.REVOKE, CODE, self.card)
        self.head = log.commit()  # head 10

    def check(self, good_type: GoodType, fingerprint: bytes, drop: tuple[int, ...] = ()) -> Any:
        """check_complete of the good's entries under the newest head, some left out."""
        entries = [e for e in self.log.entries_of(good_type, fingerprint) if e[0] not in drop]
        state = self.log.state(self.head, good_type, fingerprint)
        return check_complete(state, self.head.head, good_type, fingerprint, entries)


@pytest.fixture
def story() -> Story:
    return Story()


def _refused(match: str, run: Callable[[], object]) -> str:
    with pytest.raises(BundleInvalid, match=match) as refused:
        run()
    assert refused.value.step == "state"
    return refused.value.detail


# -- completeness -------------------------------------------------------------------------------


def test_all_of_a_goods_entries_are_complete_as_of_the_head(story: Story) -> None:
    finding = story.check(CODE, story.card)
    assert (finding.tree_size, finding.commitment_leaf_index) == (10, 9)
    assert (finding.entry_count, finding.last_leaf_index) == (3, 8)
    assert finding.map_root == story.head.entry.fingerprint
    assert finding.completeness() == "complete as of head 10"
    assert finding.describe() == (
        "complete as of head 10: the state map committed at leaf 9 holds 3 entries of this "
        "good, the last at leaf 8"
    )
    # Under the older head, the card's one entry then is its whole history then.
    old = story.log.state(story.old, CODE, story.card)
    found = check_complete(old, story.old.head, CODE, story.card, [(1, story.log.leaf_hash(1))])
    assert (found.tree_size, found.entry_count, found.last_leaf_index) == (4, 1, 1)


def test_the_revoked_cards_bundle_without_its_revoke_is_refused(story: Story) -> None:
    detail = _refused("incomplete", lambda: story.check(CODE, story.card, drop=(8,)))
    assert detail == (
        "incomplete: the map says this good has 3 entries, the last at leaf 8; the bundle "
        "shows 2, the last at leaf 4: the entry at leaf 8 is missing"
    )


def test_the_resold_files_bundle_without_its_last_transfer_is_refused(story: Story) -> None:
    detail = _refused("incomplete", lambda: story.check(FILE, story.file, drop=(7,)))
    assert detail.endswith("the bundle shows 2, the last at leaf 5: the entry at leaf 7 is missing")
    both = _refused("incomplete", lambda: story.check(FILE, story.file, drop=(5, 7)))
    assert both.endswith(": the entry at leaf 7 is missing (2 entries missing in all)")


def test_a_gap_in_the_middle_is_counted(story: Story) -> None:
    detail = _refused("incomplete", lambda: story.check(FILE, story.file, drop=(5,)))
    assert detail == (
        "incomplete: the map says this good has 3 entries, the last at leaf 7; the bundle "
        "shows 2, the last at leaf 7: 1 entry is missing before leaf 7"
    )


def test_entries_the_map_does_not_hold_are_refused(story: Story) -> None:
    log, key = story.log, (CODE, story.card)
    state = log.state(story.head, *key)
    entries = log.entries_of(*key)
    # Another leaf's hash in place of one of the card's: same count and last leaf, not the map's.
    swapped = [entries[0], (entries[1][0], log.leaf_hash(5)), entries[2]]
    _refused(
        "not the ones the state map holds",
        lambda: check_complete(state, story.head.head, *key, swapped),
    )
    # A leaf at or after the commitment is not one the map covers.
    late = [*entries, (9, log.leaf_hash(9))]
    _refused(
        "not before the state commitment at leaf 9",
        lambda: check_complete(state, story.head.head, *key, late),
    )
    # A good the map says is absent, yet shown with entries (leaves of the log that a
    # bundle's own shape check would find are another good's; here only the map is asked).
    never = os.urandom(32)
    absent = log.state(story.head, FILE, never)
    _refused(
        "the state map says this good has no entries as of head 10, yet the bundle shows 3",
        lambda: check_complete(absent, story.head.head, FILE, never, entries),
    )


# -- which commitment ---------------------------------------------------------------------------


def test_a_commitment_that_is_not_the_heads_last_leaf_is_refused(story: Story) -> None:
    log = story.log
    # The older head's commitment (leaf 3), proved in the newer head: an older map.
    stale = BundleState(
        commitment=log.subject_entry(3, 10),
        value=None,
        map_proof=story.old.map.prove(map_key(FILE, os.urandom(32))),
    )
    _refused(
        "the state commitment at leaf 3 is not the last leaf of head 10 \\(leaf 9\\)",
        lambda: check_absent(stale, story.head.head, FILE, os.urandom(32)),
    )
    # A head signed after a later entry, so its last leaf is a good's entry, not a commitment.
    log.add(EntryKind.TRANSFER, FILE, story.file)
    later = log.sign_head()
    state = log.state(story.head, FILE, story.other)
    _refused(
        "is not the last leaf of head 11",
        lambda: check_absent(state, later, FILE, os.urandom(32)),
    )


# -- absence ------------------------------------------------------------------------------------


def test_a_never_registered_good_is_proved_absent(story: Story) -> None:
    log, never = story.log, os.urandom(32)
    absence = Absence.parse(json.dumps(absence_document(log, story.head, CODE, never)))
    root = log.trust_root()
    report = check_absence(absence, TrustPolicy.of(root), None)
    assert report.status == "chain-not-checked"
    assert report.state.entry_count is None and report.state.commitment_leaf_index == 9
    assert report.summary() == (
        f"code 0x{never.hex()} is not in the log as of head 10 (state map committed at leaf 9; "
        f"head signed by {log.account.address}; checkpoint of head 10 not checked: the trust "
        "root names no witness policy (pinned before issue 15); chain not checked (the proof "
        f"names no anchor yet); trust root {root.label()})"
    )
    answer = report.as_dict()
    assert (answer["registered"], answer["tree_size"], answer["state"]["map_root"]) == (
        False,
        10,
        "0x" + story.head.entry.fingerprint.hex(),
    )
    # The same file is read as evidence, by its format.
    assert parse_evidence(absence.to_json()) == absence
    # A registry no trust root names is refused, as for a bundle.
    with pytest.raises(UntrustedRegistry):
        check_absence(absence, TrustPolicy([]), None)


def test_a_forged_absence_is_refused(story: Story) -> None:
    log, head = story.log, story.head
    card_key = map_key(CODE, story.card)
    # 1. The proof of a neighbouring key: a key whose search ends at the card's leaf proves its
    #    own absence with the card as neighbour; offered for the card itself, it is refused.
    neighbour_of_card = next(
        proof
        for proof in (head.map.prove(os.urandom(32)) for _ in range(10_000))
        if proof.neighbour_key == card_key
    )
    forged = BundleState(commitment=head.entry, value=None, map_proof=neighbour_of_card)
    _refused("does not lead to the root", lambda: check_absent(forged, head.head, CODE, story.card))
    # 2. Another registered good's leaf offered as the neighbour of the card.
    file_key = map_key(FILE, story.file)
    other = head.map.prove(file_key)
    borrowed = BundleState(
        commitment=head.entry,
        value=None,
        map_proof=type(other)(other.bitmap, other.siblings, file_key, head.map.get(file_key)),
    )
    _refused(
        "does not lead to the root", lambda: check_absent(borrowed, head.head, CODE, story.card)
    )
    # 3. The card's own presence proof passed off as an absence.
    presence = BundleState(commitment=head.entry, value=None, map_proof=head.map.prove(card_key))
    _refused("absence does not lead", lambda: check_absent(presence, head.head, CODE, story.card))
    # 4. A stale root: the absence proved against a map from before the good was registered,
    #    under the new head's commitment.
    log.add(EntryKind.REGISTER, FILE, fresh := os.urandom(32))
    newer = log.commit()
    stale = BundleState(
        commitment=newer.entry, value=None, map_proof=head.map.prove(map_key(FILE, fresh))
    )
    _refused("does not lead to the root", lambda: check_absent(stale, newer.head, FILE, fresh))
    # ... while under the old head, where it holds, it is a true absence as of that head.
    assert check_absent(log.state(head, FILE, fresh), head.head, FILE, fresh).tree_size == 10
    # 5. A document that claims a value is no absence proof.
    document = absence_document(log, newer, FILE, fresh)
    with pytest.raises(MalformedAbsence, match=r"state.value is null"):
        Absence.parse(json.dumps(document))


# -- every field of the state, broken -------------------------------------------------------------


def _flip_hex(text: str, nibble: int = -1) -> str:
    index = nibble % len(text)
    return text[:index] + format(int(text[index], 16) ^ 1, "x") + text[index + 1 :]


def _move_lowest_bit(state: Document) -> str:
    """The bitmap with its lowest set bit moved one level deeper: as many siblings, one
    more level to fold."""
    bits = int(state["map_proof"]["bitmap"], 16)
    lowest = bits & -bits
    assert lowest > 1 and not bits & (lowest >> 1)
    return "0x" + format(bits ^ lowest ^ (lowest >> 1), "064x")


def _card_state(story: Story) -> Document:
    return story.log.state(story.head, CODE, story.card).model_dump(mode="json")


def _set(part: str, **fields: object) -> Callable[[Document], None]:
    return lambda state: state[part].update(fields)


def _flip_in(*where: str | int) -> Callable[[Document], None]:
    """Flip one bit of the hex string at that path of the state."""

    def mutate(state: Document) -> None:
        parent: Any = state
        for step in where[:-1]:
            parent = parent[step]
        parent[where[-1]] = _flip_hex(parent[where[-1]])

    return mutate


NOT_THE_ROOT = "does not lead to the root committed at leaf 9"
NOT_HASHED = "payload_hash is not the payload's SHA-256"

#: Each mutation of the card's state under head 10, and (a pattern of) the reason it is
#: refused for.
MUTATIONS: dict[str, tuple[Callable[[Document], None], str]] = {
    "map-root-word": (
        _flip_in("commitment", "fingerprint"),
        "its fingerprint word is not the map root it names",
    ),
    "payload-map-root": (_flip_in("commitment", "payload", "map_root"), NOT_HASHED),
    "payload-covers": (lambda s: s["commitment"]["payload"].update(covers=8), NOT_HASHED),
    "payload-map-name": (
        lambda s: s["commitment"]["payload"].update(map="tracemark-statemap/v2"),
        "only 'tracemark-statemap/v1' is known",
    ),
    "payload-hash": (_flip_in("commitment", "payload_hash"), NOT_HASHED),
    "leaf-index-minus-1": (_set("commitment", leaf_index=8), "is not the last leaf of head 10"),
    "leaf-index-plus-1": (_set("commitment", leaf_index=10), "is not the last leaf of head 10"),
    "commitment-kind": (_set("commitment", kind="KEY_HANDOVER"), "is a KEY_HANDOVER entry"),
    "commitment-actor": (
        _set("commitment", actor="0x" + "11" * 20),
        "not by the head's signer",
    ),
    "commitment-timestamp": (
        lambda s: s["commitment"].update(timestamp=s["commitment"]["timestamp"] + 1),
        "is not in head 10",
    ),
    "commitment-inclusion-proof": (
        _flip_in("commitment", "inclusion_proof", 0),
        "is not in head 10",
    ),
    "value-entry-count": (_set("value", entry_count=2), NOT_THE_ROOT),
    "value-last-leaf-index": (_set("value", last_leaf_index=7), NOT_THE_ROOT),
    "value-history": (_flip_in("value", "history"), NOT_THE_ROOT),
    "value-null": (lambda s: s.update(value=None), NOT_THE_ROOT),
    "proof-sibling": (_flip_in("map_proof", "siblings", 0), NOT_THE_ROOT),
    "proof-sibling-dropped": (
        lambda s: s["map_proof"]["siblings"].pop(),
        r"map proof bitmap marks (\d+) siblings, the proof has (?!\1)",
    ),
    "proof-bitmap-bit-moved": (
        lambda s: s["map_proof"].update(bitmap=_move_lowest_bit(s)),
        NOT_THE_ROOT,
    ),
    "proof-bitmap-bit-added": (
        _flip_in("map_proof", "bitmap"),
        r"map proof bitmap marks (\d+) siblings, the proof has (?!\1)",
    ),
    "proof-neighbour-added": (
        _set("map_proof", neighbour={"key": "0x" + "22" * 32, "value_hash": "0x" + "33" * 32}),
        NOT_THE_ROOT,
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_mutation_of_the_state_is_refused(story: Story, name: str) -> None:
    document = _card_state(story)
    entries = story.log.entries_of(CODE, story.card)
    # The unmutated state parses and checks.
    check_complete(BundleState.model_validate(document), story.head.head, CODE, story.card, entries)
    mutate, reason = MUTATIONS[name]
    mutated = copy.deepcopy(document)
    mutate(mutated)
    assert mutated != document
    # Refused as it is read (a ValidationError is a ValueError), or by the check.
    with pytest.raises((BundleInvalid, ValueError), match=reason):
        state = BundleState.model_validate(mutated)
        check_complete(state, story.head.head, CODE, story.card, entries)


def test_the_state_is_read_bounded_and_strictly(story: Story) -> None:
    document = _card_state(story)
    proof = document["map_proof"]
    too_long = {**proof, "siblings": ["0x" + "44" * 32] * (MAX_MAP_PROOF_SIBLINGS + 1)}
    for broken, reason in (
        ({**document, "extra": 1}, "Extra inputs are not permitted"),
        ({**document, "map_proof": too_long}, "must be a list of at most 256"),
        ({**document, "value": {**document["value"], "entry_count": True}}, "are integers"),
        ({**document, "value": {**document["value"], "entry_count": 0}}, "outside"),
        ({**document, "value": {**document["value"], "more": 1}}, "a map value is an object"),
    ):
        with pytest.raises(ValueError, match=reason):
            BundleState.model_validate(broken)
    assert json.loads(BundleState.model_validate(document).model_dump_json()) == document
