"""Issue 14 end to end: bundles and absence proofs fetched from the real API (uvicorn on a
loopback port) over a registry anchored on anvil, checked by ``tracemark verify`` with the
registry's trust root pinned.

A revoked card's bundle and a resold file's bundle say "complete as of head N"; with the
REVOKE (or the last TRANSFER) deleted they are refused, naming the entry the state map says is
missing; a fingerprint never registered gets a verifiable "not registered as of head N" (exit
17); a forged absence is refused (exit 11)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from anchoring.devchain import free_port
from api.app import create_app
from api.cli.verify import EXIT_BUNDLE_INVALID, EXIT_NOT_ANCHORED, EXIT_NOT_REGISTERED
from registry.fingerprints import GoodType
from registry.statemap import map_key
from registry.transfers import Party, TransferRequest
from tests.serving import serving
from tests.trust import policy_of
from tests.verifier.conftest import Story
from tests.verifier.test_verify_cli import Verify
from verifier.bundle import FORMAT_V4, Bundle
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.client import ProblemConflict, TracemarkClient
from verifier.errors import BundleInvalid
from verifier.offline import check_bundle
from verifier.statecheck import check_absence

pytestmark = pytest.mark.slow

Document = dict[str, Any]


@pytest.fixture
def verify(tmp_path: Any) -> Verify:
    return Verify(tmp_path)


@pytest.fixture
def api(story: Story) -> Iterator[TracemarkClient]:
    """The real API over the story's registry, on a loopback port."""
    with serving(create_app(story.world.registry), free_port()) as url:
        client = TracemarkClient(url)
        try:
            yield client
        finally:
            client.close()


def _resell(story: Story, fingerprint: bytes) -> None:
    """The file sold by its creator to an agent, then by the agent to a player; anchored."""
    agent = Party("cardhub", "agent-7")
    for seller, buyer in ((Party(None, None), agent), (agent, Party("cardhub", "player-1"))):
        story.world.registry.transfer(
            TransferRequest(
                platform="cardhub",
                good_type=GoodType.FILE,
                fingerprint=fingerprint,
                seller=seller,
                buyer=buyer,
                price=None,
                currency=None,
                final=False,
            )
        )
    story.world.registry.sequence_all()
    story.world.anchor()


def _document(api: TracemarkClient, good_type: GoodType, fingerprint: bytes) -> Document:
    bundle = api.proof_bundle(good_type, fingerprint)
    assert bundle.format == FORMAT_V4 and bundle.state is not None and bundle.anchor is not None
    return dict(json.loads(bundle.to_json()))


def _complete_as_of(document: Document) -> str:
    return f"complete as of head {document['tree_head']['tree_size']:,}"


def test_a_revoked_card_is_complete_and_refused_without_its_revoke(
    story: Story, api: TracemarkClient, verify: Verify
) -> None:
    rpc = story.world.devchain.rpc_url
    verify.pin(story.world.registry)
    document = _document(api, GoodType.CODE, story.codes[2])
    assert [e["kind"] for e in (document["entry"], *document["later_entries"])] == [
        "REGISTER",
        "REVOKE",
    ]
    revoke = document["later_entries"][0]["leaf_index"]
    done = verify(verify.write(document, "card.json"), "--rpc", rpc, expect=0)
    line = done.stdout
    assert line.startswith("OK: ") and "revoked by" in line
    assert f"; {_complete_as_of(document)}: the state map committed at leaf " in line
    assert COMPLETENESS_NOT_PROVEN not in line
    report = json.loads(
        verify(verify.write(document, "card.json"), "--json", "--rpc", rpc, expect=0).stdout
    )
    assert (report["complete"], report["completeness"]) == (True, _complete_as_of(document))
    assert report["state"]["entry_count"] == 2 and report["state"]["last_leaf_index"] == revoke

    # The seller deletes the REVOKE entry: the map says it is missing.
    stripped = {**document, "later_entries": []}
    failed = verify(
        verify.write(stripped, "stripped.json"), "--rpc", rpc, expect=EXIT_BUNDLE_INVALID
    )
    register = document["entry"]["leaf_index"]
    assert failed.stdout == ""
    assert failed.stderr.startswith(
        f"FAIL: incomplete: the map says this good has 2 entries, the last at leaf {revoke:,}; "
        f"the bundle shows 1, the last at leaf {register:,}: the entry at leaf {revoke:,} is "
        "missing"
    )
    # Offline too, and as JSON: the failed step is the state map's.
    as_json = verify(verify.write(stripped, "stripped.json"), "--json", expect=EXIT_BUNDLE_INVALID)
    assert json.loads(as_json.stdout)["failed_step"] == "state"


def test_a_resold_file_is_complete_and_refused_without_its_last_transfer(
    story: Story, api: TracemarkClient, verify: Verify
) -> None:
    _resell(story, story.plain_file)
    document = _document(api, GoodType.FILE, story.plain_file)
    kinds = [e["kind"] for e in (document["entry"], *document["later_entries"])]
    assert kinds == ["REGISTER", "TRANSFER", "TRANSFER"]
    first, last = (e["leaf_index"] for e in document["later_entries"])
    verify.pin(story.world.registry)
    rpc = story.world.devchain.rpc_url
    ok = verify(verify.write(document, "file.json"), "--rpc", rpc, expect=0).stdout
    assert f"{_complete_as_of(document)}: the state map committed at leaf " in ok
    assert f"holds 3 entries of this good, the last at leaf {last:,}" in ok

    stripped = {**document, "later_entries": document["later_entries"][:1]}
    refused = verify(
        verify.write(stripped, "stripped.json"), "--rpc", rpc, expect=EXIT_BUNDLE_INVALID
    ).stderr
    assert refused.startswith(
        f"FAIL: incomplete: the map says this good has 3 entries, the last at leaf {last:,}; "
        f"the bundle shows 2, the last at leaf {first:,}: the entry at leaf {last:,} is missing"
    )
    # The first transfer deleted instead: a gap in the middle is counted.
    gap = {**document, "later_entries": document["later_entries"][1:]}
    refused = verify(verify.write(gap, "gap.json"), expect=EXIT_BUNDLE_INVALID).stderr
    assert f": 1 entry is missing before leaf {last:,}" in refused


def test_a_commitment_other_than_the_heads_last_leaf_is_refused(
    story: Story, api: TracemarkClient
) -> None:
    """The state of an older head (its commitment and map proof), moved under the newer head
    the rest of the bundle is proved in, is refused: it is not the newer head's last leaf."""
    world = story.world
    old = Bundle.parse(api.proof_bundle(GoodType.CODE, story.codes[2]).to_json())
    _resell(story, story.plain_file)  # a newer anchored head
    new = api.proof_bundle(GoodType.CODE, story.codes[2])
    assert old.state is not None and new.tree_head.tree_size > old.tree_head.tree_size
    moved = json.loads(new.to_json())
    moved["state"] = json.loads(old.to_json())["state"]
    moved["state"]["commitment"]["inclusion_proof"] = [
        "0x" + node.hex()
        for node in world.registry.inclusion_proof(
            old.state.commitment.leaf_index, new.tree_head.tree_size
        )
    ]
    with pytest.raises(BundleInvalid, match="is not the last leaf of head") as refused:
        check_bundle(Bundle.parse(json.dumps(moved)), policy_of(world.registry), world.chain)
    assert refused.value.step == "state"
    # The new bundle as built verifies, complete.
    report = check_bundle(new, policy_of(world.registry), world.chain)
    assert report.completeness == f"complete as of head {new.tree_head.tree_size:,}"


def test_a_never_registered_fingerprint_is_proved_absent(
    story: Story, api: TracemarkClient, verify: Verify
) -> None:
    world = story.world
    rpc = world.devchain.rpc_url
    never = os.urandom(32)
    absence = api.absence_proof(GoodType.CODE, never)
    assert absence.anchor is not None and absence.state.value is None
    size = absence.tree_head.tree_size
    report = check_absence(absence, policy_of(world.registry), world.chain)
    assert report.status == "verified" and report.tree_size == size
    root = verify.pin(world.registry)

    path = verify.write(json.loads(absence.to_json()), "absence.json")
    done = verify(path, "--rpc", rpc, expect=EXIT_NOT_REGISTERED)
    assert done.stderr == ""
    assert done.stdout.startswith(
        f"NOT REGISTERED: code 0x{never.hex()} is not in the log as of head {size:,} (state map "
        f"committed at leaf {size - 1:,}; head signed by {world.registry.address}; checkpoint "
        f"{size:,} signed by the log (Ed25519, ML-DSA-44); not witnessed (the trust root's "
        f"witness policy asks none); head {size:,} anchored on chain 31337"
    )
    assert done.stdout.rstrip().endswith(f"; trust root {root.label()})")
    answer = json.loads(verify(path, "--rpc", rpc, "--json", expect=EXIT_NOT_REGISTERED).stdout)
    assert (answer["status"], answer["registered"], answer["tree_size"]) == (
        "verified",
        False,
        size,
    )
    # Without a chain: checked, but not yet evidence (12), as a bundle.
    offline = verify(path, expect=EXIT_NOT_ANCHORED).stdout
    assert offline.startswith("NOT REGISTERED: ") and "(pass --rpc URL to check it)" in offline

    # A registered good has no absence proof: 409, pointing at its bundle.
    with pytest.raises(ProblemConflict, match="/proof"):
        api.absence_proof(GoodType.CODE, story.codes[0])


def test_a_forged_absence_is_refused(story: Story, api: TracemarkClient, verify: Verify) -> None:
    world = story.world
    rpc = world.devchain.rpc_url
    verify.pin(world.registry)
    card = story.codes[2]
    card_key = map_key(GoodType.CODE, card)
    # An honest absence proof of a key whose search ends at the card's own leaf (one sharing
    # the card's path down to its leaf): its map proof names the card as neighbour. Offered as
    # the card's absence, it is refused.
    bundle = api.proof_bundle(GoodType.CODE, card)
    assert bundle.state is not None
    depth = bundle.state.map_proof.depth
    other = next(
        fingerprint
        for fingerprint in iter(lambda: os.urandom(32), None)
        if _shared_bits(map_key(GoodType.CODE, fingerprint), card_key) >= depth
    )
    honest = api.absence_proof(GoodType.CODE, other)
    assert honest.state.map_proof.neighbour_key == card_key
    check_absence(honest, policy_of(world.registry), world.chain)  # true for its own key
    forged = json.loads(honest.to_json())
    forged["good"]["fingerprint"] = "0x" + card.hex()
    refused = verify(verify.write(forged, "forged.json"), "--rpc", rpc, expect=EXIT_BUNDLE_INVALID)
    assert refused.stderr.startswith(f"FAIL: the state map proof of code 0x{card.hex()}'s absence")
    # The card's own presence proof, its value deleted, passed off as an absence.
    document = json.loads(bundle.to_json())
    presence = {
        "format": "tracemark-absence/v1",
        "good": document["good"],
        "tree_head": document["tree_head"],
        "anchor": document["anchor"],
        "state": {**document["state"], "value": None},
    }
    refused = verify(verify.write(presence, "presence.json"), expect=EXIT_BUNDLE_INVALID)
    assert "absence does not lead to the root committed at leaf" in refused.stderr


def _shared_bits(a: bytes, b: bytes) -> int:
    """How many leading bits two keys share."""
    return 256 - (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_length()
