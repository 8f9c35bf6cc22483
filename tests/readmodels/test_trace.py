"""A good's trace (``readmodels.trace``): its whole history in log order, as JSON, a table and a
Mermaid graph, on SQLite and PostgreSQL; anchors on a real anvil; the bounds of a long
history; ``tracemark trace`` on the operator's database."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from eth_account import Account
from rich.console import Console
from sqlalchemy import Engine
from typer.testing import CliRunner

import readmodels.trace as trace_module
from api.cli import app
from readmodels.trace import build_trace, trace_mermaid, trace_table
from registry.creator import CreatorKeys, sign_revocation
from registry.eip712 import DEV_DOMAIN
from registry.errors import NotFound
from registry.fingerprints import GoodType, Use
from registry.handover import HandoverRequest
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.settings import load_settings
from registry.telemetry import VerificationRecord
from registry.transfers import GoodConsumed, Party, TransferRequest
from tests.conftest import START, Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.verifier.conftest import World
from verifier.schemas import (
    TraceAnchoredOut,
    TraceConflictOut,
    TraceOmittedOut,
    TraceOut,
    TraceRefusedOut,
    TraceRegisteredOut,
    TraceRevokedOut,
    TraceTransferredOut,
    TraceVerifiedOut,
)

POLICY = RoyaltyPolicy.parse(
    {"recipients": [{"address": "0x" + "a1" * 20, "bps": 750, "label": "studio"}]}
)


@pytest.fixture
def db_registry(engine: Engine, clock: Clock) -> Registry:
    """A registry on SQLite and on PostgreSQL (this folder's ``registry`` is SQLite only)."""
    return Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


def short(registry: Registry, platform: str, reference: str) -> str:
    return f"{platform}:{registry.reference_hash(platform, reference).hex()[:8]}"


def creator_party() -> Party:
    return Party(None, None)


@dataclass
class Market:
    """A code registered by ``creator``, claimed again by ``pirate``, verified on two
    platforms, sold to an agent on cardhub, then by the agent to a player on keyshop (final)."""

    registry: Registry
    creator: CreatorKeys
    pirate: CreatorKeys
    code: bytes
    #: Where the entries landed, as the registry said when it logged them (each head ends
    #: with a state commitment leaf, so they are not consecutive).
    conflict_leaf: int
    sale_leaves: tuple[int, int]


def record(registry: Registry, at: int, platform: str, fingerprint: bytes, via: str) -> None:
    registry.record_verifications(
        [VerificationRecord(at, platform, int(GoodType.CODE), fingerprint, via, "authentic")]
    )


def build_market(registry: Registry, clock: Clock, make_creator: CreatorFactory) -> Market:
    creator, pirate, code = make_creator(), make_creator(), os.urandom(32)
    registry.register(
        registration(
            creator,
            clock(),
            fingerprint=code,
            good_type=GoodType.CODE,
            product="30-day-card",
            use=Use.SINGLE,
            policy=POLICY,
        )
    )
    first_head = registry.sequence_all()
    assert first_head is not None
    clock.advance(10)
    pirate_claim = registration(
        pirate, clock(), fingerprint=code, good_type=GoodType.CODE, product="card", use=Use.SINGLE
    )
    assert registry.register(pirate_claim).status == "conflict"
    registry.sequence_all()
    clock.advance(10)
    record(registry, clock(), "cardhub", code, "code")
    record(registry, clock(), "keyshop", code, "fingerprint")
    # The same second as the verifications: a good is checked before it is sold.
    agent = Party("cardhub", "agent-7")
    sale = registry.transfer(
        TransferRequest("cardhub", GoodType.CODE, code, creator_party(), agent, 1000, "EUR")
    )
    clock.advance(10)
    record(registry, clock(), "keyshop", code, "code")
    clock.advance(10)
    player = Party("keyshop", "player-1")
    # Cardhub consents, once, that keyshop may move its agent's code (issue 12).
    consent = registry.authorize_handover(
        HandoverRequest("cardhub", GoodType.CODE, code, "agent-7", "keyshop")
    )
    final = registry.transfer(
        TransferRequest(
            "keyshop",
            GoodType.CODE,
            code,
            agent,
            player,
            2500,
            "EUR",
            final=True,
            authorization=consent.token,
        )
    )
    # The claim is the first entry after the registration's head.
    conflict_leaf = first_head.tree_size
    return Market(
        registry, creator, pirate, code, conflict_leaf, (sale.leaf_index, final.leaf_index)
    )


def test_a_goods_whole_history_in_log_order_and_who_was_first(
    db_registry: Registry, clock: Clock, make_creator: CreatorFactory
) -> None:
    market = build_market(db_registry, clock, make_creator)
    trace = build_trace(db_registry, GoodType.CODE, market.code)

    kinds = [(e.kind, getattr(e, "leaf_index", None)) for e in trace.events]
    sale, final_sale = market.sale_leaves
    assert kinds == [
        ("registered", 0),
        ("conflict", market.conflict_leaf),
        ("verified", None),
        ("verified", None),
        ("transferred", sale),
        ("verified", None),
        ("transferred", final_sale),
    ]
    times = [e.at for e in trace.events if not isinstance(e, TraceOmittedOut)]
    assert times == sorted(t or 0 for t in times)

    registered = trace.events[0]
    assert isinstance(registered, TraceRegisteredOut)
    assert registered.creator == market.creator.address == trace.creator
    assert registered.signed_type == "Registration" and len(registered.signature) == 132
    assert (registered.product, registered.use) == ("30-day-card", "single")
    assert [(r.bps, r.label) for r in registered.royalty_policy] == [(750, "studio")]

    verified = [e for e in trace.events if isinstance(e, TraceVerifiedOut)]
    assert [(v.platform, v.via) for v in verified] == [
        ("cardhub", "code"),
        ("keyshop", "fingerprint"),
        ("keyshop", "code"),
    ]
    assert (trace.verifications.times, trace.verifications.platforms) == (3, 2)
    assert trace.verifications.first_at == START + 20
    assert {p.platform: p.times for p in trace.verified_by} == {"keyshop": 2, "cardhub": 1}

    first, final = (e for e in trace.events if isinstance(e, TraceTransferredOut))
    agent = short(db_registry, "cardhub", "agent-7")
    player = short(db_registry, "keyshop", "player-1")
    assert (first.platform, first.seller.label, first.buyer.label) == ("cardhub", "creator", agent)
    assert (first.price, first.currency, first.final, first.royalties) == ("1000", "EUR", False, [])
    assert (final.seller.label, final.buyer.label, final.final) == (agent, player, True)
    # 7.5 % of 2,500 is 187.5: the floor to the studio, the dust to the seller.
    assert [(s.bps, s.amount) for s in final.royalties] == [(750, "187")]
    assert final.seller_amount == "2313"
    receipt = db_registry.receipt(final.transfer_id or 0)
    assert final.receipt_signature == "0x" + receipt.signature.hex()
    assert final.transfer_hash == "0x" + receipt.transfer_hash.hex()
    # Parties are a platform and a short hash: the platforms' references never show.
    assert "agent-7" not in trace.model_dump_json() and "player-1" not in trace.model_dump_json()

    # The pirate's claim is only an event in the first creator's trace: log order decides.
    conflict = trace.events[1]
    assert isinstance(conflict, TraceConflictOut)
    assert conflict.claimant == market.pirate.address
    assert (conflict.first_creator, conflict.first_leaf_index) == (market.creator.address, 0)
    assert conflict.first_by_log_order == market.creator.address
    assert (
        f"{market.creator.address} was first (log order: leaf 0 before leaf "
        f"{market.conflict_leaf})" in conflict.summary
    )

    assert trace.status == "consumed"
    assert (trace.holder.platform, trace.holder.label) == ("keyshop", player)
    assert (trace.counts.entries, trace.counts.transfers, trace.counts.conflicts) == (4, 2, 1)
    # The trace is its own wire model: it survives a round trip through JSON.
    assert TraceOut.model_validate_json(trace.model_dump_json()) == trace


def test_refused_transfers_are_in_the_history_as_evidence(
    db_registry: Registry, clock: Clock, make_creator: CreatorFactory
) -> None:
    """A double sale and a sale after consumption were refused: nothing in the log, but an
    auditor sees both, by time, with who reported what and why."""
    market = build_market(db_registry, clock, make_creator)
    clock.advance(10)
    agent, victim = Party("cardhub", "agent-7"), Party("gamemart", "victim")
    with pytest.raises(GoodConsumed):
        db_registry.transfer(
            TransferRequest("cardhub", GoodType.CODE, market.code, agent, victim, 900, "EUR")
        )
    trace = build_trace(db_registry, GoodType.CODE, market.code)
    assert [e.kind for e in trace.events][-2:] == ["transferred", "refused"]
    refused = trace.events[-1]
    assert isinstance(refused, TraceRefusedOut)
    assert (refused.platform, refused.reason) == ("cardhub", "consumed")
    assert (refused.seller.label, refused.buyer.label) == (
        short(db_registry, "cardhub", "agent-7"),
        short(db_registry, "gamemart", "victim"),
    )
    final = trace.events[-2]
    assert isinstance(final, TraceTransferredOut)
    assert refused.earlier_transfer_id == final.transfer_id
    assert (trace.counts.refused, trace.counts.refused_shown) == (1, 1)
    assert trace.counts.entries == 4  # the refusal wrote nothing to the log
    assert "victim" not in trace.model_dump_json()
    assert "refused (consumed)" in " ".join(
        str(cell) for column in trace_table(trace).columns for cell in column._cells
    )


def test_the_graph_and_mermaid_name_every_hop(
    db_registry: Registry, clock: Clock, make_creator: CreatorFactory
) -> None:
    market = build_market(db_registry, clock, make_creator)
    trace = build_trace(db_registry, GoodType.CODE, market.code)
    agent = short(db_registry, "cardhub", "agent-7")
    player = short(db_registry, "keyshop", "player-1")

    nodes = {n.id: (n.kind, n.label) for n in trace.graph.nodes}
    assert nodes["creator"][0] == "creator"
    assert nodes[f"cardhub:0x{agent.split(':')[1]}"] == ("holder", agent)
    assert nodes[f"keyshop:0x{player.split(':')[1]}"] == ("end_user", f"end user {player}")
    assert nodes[f"claimant:{market.pirate.address}"][0] == "claimant"
    edges = [(e.source, e.target, e.kind, e.label) for e in trace.graph.edges]
    assert edges == [
        (
            f"claimant:{market.pirate.address}",
            "creator",
            "conflict",
            f"later claim at leaf {market.conflict_leaf}",
        ),
        ("creator", f"cardhub:0x{agent[8:]}", "transfer", "1. cardhub: 1000 EUR"),
        (
            f"cardhub:0x{agent[8:]}",
            f"keyshop:0x{player[8:]}",
            "final",
            "2. keyshop: 2500 EUR, consumed",
        ),
    ]

    text = trace_mermaid(trace)
    lines = text.splitlines()
    assert lines[0] == "graph LR"
    assert f'(("end user {player}"))' in text  # the end user, drawn round
    assert f'["{agent}"]' in text
    assert '-->|"1. cardhub: 1000 EUR"|' in text
    assert '==>|"2. keyshop: 2500 EUR, consumed"|' in text  # consumption, drawn thick
    assert f'-.->|"later claim at leaf {market.conflict_leaf}"|' in text
    end_user = next(i for i, n in enumerate(trace.graph.nodes) if n.kind == "end_user")
    assert f"  class n{end_user} end_user" in lines

    table = Console(width=240, record=True)
    table.print(trace_table(trace))
    shown = table.export_text()
    for word in ("registered", "conflict", "verified", "transferred", "consumed", agent, player):
        assert word in shown


def test_a_creator_sees_only_their_own_goods_and_others_look_missing(
    db_registry: Registry, clock: Clock, make_creator: CreatorFactory
) -> None:
    owner, other, good, missing = make_creator(), make_creator(), os.urandom(32), os.urandom(32)
    db_registry.register(registration(owner, clock(), fingerprint=good))
    with pytest.raises(NotFound) as unknown:
        build_trace(db_registry, GoodType.FILE, missing)
    with pytest.raises(NotFound) as theirs:
        build_trace(db_registry, GoodType.FILE, good, creator=other.address)
    assert unknown.value.detail.replace(missing.hex(), "X") == theirs.value.detail.replace(
        good.hex(), "X"
    )
    # Still queued: the trace says so, with no leaf and no time yet.
    mine = build_trace(db_registry, GoodType.FILE, good, creator=owner.address)
    assert (mine.creator, mine.status) == (owner.address, "queued")
    (only,) = mine.events
    assert isinstance(only, TraceRegisteredOut) and (only.leaf_index, only.at) == (None, None)


def test_a_revocation_and_labels_that_could_break_out_of_mermaid(
    db_registry: Registry, clock: Clock, creator: CreatorKeys
) -> None:
    good = os.urandom(32)
    db_registry.register(registration(creator, clock(), fingerprint=good))
    registered_head = db_registry.sequence_all()
    assert registered_head is not None
    clock.advance(5)
    reason = 'leaked "lot" 7 |x| <script>]'
    db_registry.revoke(
        sign_revocation(
            creator,
            DEV_DOMAIN,
            good_type=GoodType.FILE,
            fingerprint=good,
            reason=reason,
            now=clock(),
        )
    )
    db_registry.sequence_all()
    trace = build_trace(db_registry, GoodType.FILE, good)

    revoked = trace.events[-1]
    assert isinstance(revoked, TraceRevokedOut)
    # The revocation is the first entry after the registration's head.
    revocation_leaf = registered_head.tree_size
    assert (revoked.reason, revoked.by, revoked.leaf_index) == (
        reason,
        creator.address,
        revocation_leaf,
    )
    assert trace.status == "revoked" and trace.holder.creator
    assert trace.graph.edges[-1].kind == "revocation"
    assert trace.graph.nodes[-1].label == f"revoked: {reason}"

    text = trace_mermaid(trace)
    line = next(line for line in text.splitlines() if "revoked" in line and "{{" in line)
    # Only the label's own delimiters are raw; the reason's quote, pipe, brackets are codes.
    assert line.endswith('{{"revoked: leaked #34;lot#34; 7 #124;x#124; #60;script#62;#93;"}}')
    assert "<script>" not in text


def test_a_long_history_is_cut_in_the_middle_and_says_how_much(
    db_registry: Registry, clock: Clock, creator: CreatorKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace_module, "MAX_TRACE_ENTRIES", 4)
    monkeypatch.setattr(trace_module, "MAX_TRACE_VERIFICATIONS", 4)
    good = os.urandom(32)
    db_registry.register(registration(creator, clock(), fingerprint=good))
    db_registry.sequence_all()
    checks = [
        VerificationRecord(
            clock() + i, f"p{i}", int(GoodType.FILE), good, "fingerprint", "authentic"
        )
        for i in range(1, 8)
    ]
    db_registry.record_verifications(checks)
    holder, sold_at = creator_party(), []
    for n in range(5):  # an item handed round five times
        clock.advance(10)
        buyer = Party("cardhub", f"owner-{n}")
        receipt = db_registry.transfer(
            TransferRequest("cardhub", GoodType.FILE, good, holder, buyer)
        )
        sold_at.append(receipt.leaf_index)
        holder = buyer

    trace = build_trace(db_registry, GoodType.FILE, good)
    counts = trace.counts
    assert (counts.entries, counts.entries_shown) == (6, 4)
    assert (counts.verifications, counts.verifications_shown) == (7, 4)
    omitted = [e for e in trace.events if isinstance(e, TraceOmittedOut)]
    assert [(o.what, o.count) for o in omitted] == [("verifications", 3), ("entries", 2)]
    # The first and the last: registration, first transfer | cut | the last two transfers.
    leaves = [e.leaf_index for e in trace.events if isinstance(e, TraceTransferredOut)]
    assert leaves == [sold_at[0], sold_at[3], sold_at[4]]
    platforms = [e.platform for e in trace.events if isinstance(e, TraceVerifiedOut)]
    assert platforms == ["p1", "p2", "p6", "p7"]
    # The graph bridges the cut with an edge that says so.
    assert [e.kind for e in trace.graph.edges] == ["transfer", "omitted", "transfer", "transfer"]
    assert trace.graph.edges[1].label == "2 entries left out"
    entries_gap = next(i for i, e in enumerate(trace.events) if getattr(e, "what", "") == "entries")
    assert trace.events[entries_gap + 1] == next(
        e for e in trace.events if isinstance(e, TraceTransferredOut) and e.leaf_index == sold_at[3]
    )


def test_anchors_come_after_the_entries_they_cover(world: World) -> None:
    """On a real anvil: the first anchor covering each entry, with its transaction, block and
    confirmations counted from the block the caller saw."""
    registry, clock = world.registry, world.clock
    good = world.register_file()
    registered_head = registry.latest_tree_head()
    assert registered_head is not None
    world.anchor()
    clock.advance(10)
    registry.record_verifications(
        [VerificationRecord(clock(), "cardhub", int(GoodType.FILE), good, "file", "authentic")]
    )
    sale = registry.transfer(
        TransferRequest("cardhub", GoodType.FILE, good, creator_party(), Party("cardhub", "a"))
    )
    sold_head = registry.latest_tree_head()
    assert sold_head is not None
    world.anchor()
    clock.advance(10)
    registry.transfer(
        TransferRequest(
            "cardhub", GoodType.FILE, good, Party("cardhub", "a"), Party("cardhub", "b")
        )
    )  # not anchored yet: the worker did not run

    block = world.chain.block_number()
    trace = build_trace(registry, GoodType.FILE, good, chain_block=block)
    kinds = [e.kind for e in trace.events]
    assert kinds == ["registered", "anchored", "verified", "transferred", "anchored", "transferred"]
    first, second = (e for e in trace.events if isinstance(e, TraceAnchoredOut))
    # Each anchor is of the head its entry was sequenced into (which ends with the state
    # commitment, so its size is one more than the entries it holds).
    assert (first.tree_size, first.covers, first.state) == (registered_head.tree_size, [0], "final")
    assert (second.tree_size, second.covers) == (sold_head.tree_size, [sale.leaf_index])
    assert first.chain_id == 31337 and first.contract == world.chain.address
    for anchor in (first, second):
        assert anchor.tx_hash is not None and anchor.block_number is not None
        receipt = world.chain.receipt(bytes.fromhex(anchor.tx_hash[2:]))
        assert receipt is not None and int(receipt["blockNumber"]) == anchor.block_number
        assert anchor.confirmations == block - anchor.block_number + 1
    assert trace.chain_block == block


def _cli(data_dir: Path) -> Callable[..., str]:
    runner = CliRunner()
    env = {"TRACEMARK_DATA_DIR": str(data_dir), "TRACEMARK_API_URL": None, "COLUMNS": "250"}

    def run(*args: str, expect: int = 0) -> str:
        result = runner.invoke(app, list(args), env=env)
        assert result.exit_code == expect, (result.exit_code, result.stdout, result.stderr)
        return result.stdout if expect == 0 else result.stderr

    return run


def test_the_trace_command_on_the_operators_database(
    tmp_path: Path, make_creator: CreatorFactory
) -> None:
    data_dir = tmp_path / "data"
    clock = Clock()
    registry = Registry.open(load_settings(data_dir=data_dir), clock=clock)
    market = build_market(registry, clock, make_creator)
    registry.engine.dispose()
    trace = _cli(data_dir)
    fingerprint = "0x" + market.code.hex()

    table = trace("trace", "--type", "code", "--fingerprint", fingerprint)
    assert "registered" in table and "transferred" in table and "consumed" in table
    as_json = TraceOut.model_validate(
        json.loads(trace("trace", "--type", "code", "--fingerprint", fingerprint, "--json"))
    )
    assert [e.kind for e in as_json.events][:2] == ["registered", "conflict"]
    mermaid = trace("trace", "--type", "code", "--fingerprint", fingerprint, "--mermaid")
    assert mermaid.startswith("graph LR\n") and "2500 EUR, consumed" in mermaid
    missing = trace("trace", "--type", "code", "--fingerprint", "0x" + "00" * 32, expect=4)
    assert missing.startswith("error: no code 0x") and missing.count("\n") == 1
    bad = trace("trace", "--type", "coin", "--fingerprint", fingerprint, expect=3)
    assert bad.startswith("error: ")
