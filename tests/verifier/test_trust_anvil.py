"""Issue 11 on a real anvil: a second registry running our own contract, roots that are not
final yet (and a reorganisation), and a registry key hand-over, each checked the way a
stranger checks: a bundle, the chain, and a trust root they pinned.

Registry A is the real one (the dev contract, deployed by anvil's account #0); registry B is a
hostile copy: the same contract bytecode deployed by another wallet on the same chain, its own
signing key, its own creator.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import insert
from typer.testing import CliRunner

from anchoring.chain import Chain
from anchoring.devchain import DevChain
from anchoring.worker import AnchorPolicy, AnchorWorker
from api.cli.app import app
from readmodels.bundles import build_bundle
from registry.canonicaljson import canonical_json
from registry.db import create_db_engine, write_transaction
from registry.eip712 import Domain
from registry.fingerprints import GoodType
from registry.leaf import payload_hash
from registry.log import entries_t
from registry.migrate import upgrade
from registry.records import records_t
from registry.service import Registry
from registry.signatures import sign
from registry.transfers import Party, TransferRequest

# The anchoring tests' real anvil, its account #0, and the dev contract deployed by it.
from tests.anchoring.conftest import chain, devchain, operator  # noqa: F401
from tests.conftest import Clock, CreatorFactory
from tests.registry.helpers import registration
from tests.trust import policy_of, trust_root_of
from verifier.bundle import Bundle
from verifier.bundlereport import COMPLETENESS_NOT_PROVEN
from verifier.errors import BundleInvalid, NotAnchoredYet, NotFinalYet, UntrustedRegistry
from verifier.offline import check_bundle
from verifier.trust import TrustPolicy

pytestmark = pytest.mark.slow

POLICY = AnchorPolicy(max_entries=1, max_age_seconds=0, confirmations=1)


@dataclass
class Side:
    """One registry on the shared anvil, with its own contract and anchoring worker."""

    registry: Registry
    chain: Chain
    worker: AnchorWorker
    devchain: DevChain

    def anchor(self, *, extra_blocks: int = 0) -> None:
        self.worker.run_until_idle()
        if extra_blocks:
            self.devchain.rpc("anvil_mine", hex(extra_blocks))
        self.worker.run_until_idle()


def _registry(tmp_path: Path, name: str, domain: Domain, clock: Clock) -> Registry:
    engine = create_db_engine(f"sqlite:///{tmp_path / f'{name}.db'}")
    upgrade(engine)
    return Registry(
        engine,
        domain=domain,
        account=Account.create(),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )


@pytest.fixture
def real(
    tmp_path: Path,
    chain: Chain,  # noqa: F811 - the fixture imported above
    devchain: DevChain,  # noqa: F811
    operator: LocalAccount,  # noqa: F811
    clock: Clock,
) -> Side:
    domain = Domain(chain_id=chain.chain_id(), verifying_contract=chain.address)
    registry = _registry(tmp_path, "real", domain, clock)
    return Side(registry, chain, AnchorWorker(registry, chain, operator, POLICY), devchain)


@pytest.fixture
def hostile(
    tmp_path: Path,
    real: Side,
    devchain: DevChain,  # noqa: F811
    clock: Clock,
) -> Side:
    """The same contract bytecode, deployed by a fresh wallet: a registry of its own."""
    wallet: LocalAccount = Account.create()
    devchain.rpc("anvil_setBalance", wallet.address, hex(10**20))
    address = Chain.connect(devchain.rpc_url, real.chain.address).deploy(wallet)
    assert address != real.chain.address
    chain_b = Chain.connect(devchain.rpc_url, address)
    domain = Domain(chain_id=chain_b.chain_id(), verifying_contract=chain_b.address)
    registry = _registry(tmp_path, "hostile", domain, clock)
    return Side(registry, chain_b, AnchorWorker(registry, chain_b, wallet, POLICY), devchain)


def _register_file(side: Side, creator_keys: object, clock: Clock, fingerprint: bytes) -> None:
    request = registration(
        creator_keys,  # type: ignore[arg-type]
        clock(),
        fingerprint=fingerprint,
        domain=side.registry.domain,
    )
    side.registry.register(request)
    side.registry.sequence_all()


class Cli:
    """``tracemark verify`` in-process, with its own trust directory."""

    def __init__(self, tmp_path: Path, rpc_url: str) -> None:
        self.tmp_path = tmp_path
        self.runner = CliRunner()
        self.env = {
            "TRACEMARK_DATA_DIR": str(tmp_path / "cli-data"),
            "TRACEMARK_TRUST_DIR": str(tmp_path / "trust"),
            "TRACEMARK_VERIFY_RPC_URL": rpc_url,
            "COLUMNS": "400",
        }

    def __call__(self, *args: str | Path, expect: int) -> tuple[str, str]:
        result = self.runner.invoke(app, [*map(str, args)], env=self.env)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == expect, (
            f"exit {result.exit_code}, not {expect}\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout, result.stderr

    def write(self, name: str, text: str) -> Path:
        path = self.tmp_path / name
        path.write_text(text)
        return path


@pytest.fixture
def cli(tmp_path: Path, devchain: DevChain) -> Iterator[Cli]:  # noqa: F811
    yield Cli(tmp_path, devchain.rpc_url)


# -- (a) a copied fingerprint under the second registry's own creator, and its transfer ------


def test_a_second_registrys_bundle_is_refused_unless_its_own_root_is_trusted(
    real: Side, hostile: Side, clock: Clock, make_creator: CreatorFactory, cli: Cli
) -> None:
    studio, thief = make_creator(), make_creator()
    fingerprint = secrets.token_bytes(32)
    _register_file(real, studio, clock, fingerprint)
    real.anchor()
    # B registers the studio's file as its own creator's, and attests a final sale of it.
    _register_file(hostile, thief, clock, fingerprint)
    hostile.registry.transfer(
        TransferRequest(
            platform="keyshop",
            good_type=GoodType.FILE,
            fingerprint=fingerprint,
            seller=Party(None, None),
            buyer=Party("keyshop", "buyer-1"),
            price=100,
            currency="EUR",
            final=False,
            idempotency_key=None,
        )
    )
    hostile.registry.sequence_all()
    hostile.anchor()
    bundle = build_bundle(hostile.registry, GoodType.FILE, fingerprint)
    real_root, hostile_root = trust_root_of(real.registry), trust_root_of(hostile.registry)

    # With the real registry's trust pinned: refused, naming what was expected.
    with pytest.raises(UntrustedRegistry) as caught:
        check_bundle(bundle, TrustPolicy.of(real_root), hostile.chain)
    assert hostile.chain.address in caught.value.detail
    assert real.chain.address in caught.value.detail
    assert real.registry.address in caught.value.detail
    # With nothing pinned: refused; nothing is trusted on first use.
    with pytest.raises(UntrustedRegistry, match="no trust root is pinned"):
        check_bundle(bundle, TrustPolicy(()), hostile.chain)
    # With the second registry's own root: accepted, and the report says whose root it was.
    report = check_bundle(bundle, TrustPolicy.of(hostile_root), hostile.chain)
    assert report.status == "verified"
    assert report.trust_fingerprint == hostile_root.fingerprint()
    assert [e.kind.name for e in report.entries] == ["REGISTER", "TRANSFER"]

    # The same through the CLI a new user runs.
    bundle_file = cli.write("b.json", bundle.to_json())
    _, err = cli("verify", bundle_file, "--rpc", cli.env["TRACEMARK_VERIFY_RPC_URL"], expect=15)
    assert err.startswith("UNTRUSTED: ") and "no trust root is pinned" in err
    cli("trust", "add", cli.write("real.json", real_root.to_json()), expect=0)
    _, err = cli("verify", bundle_file, expect=15)
    assert real.chain.address in err and hostile.chain.address in err
    out, _ = cli(
        "verify", bundle_file, "--trust", cli.write("b-root.json", hostile_root.to_json()), expect=0
    )
    assert out.startswith("OK: ") and hostile_root.fingerprint()[:19] in out
    # Complete as of its head, as far as the second registry's own signed state map goes: the
    # trust root it was checked under is named on the same line.
    assert f"complete as of head {bundle.tree_head.tree_size:,}" in out
    assert COMPLETENESS_NOT_PROVEN not in out


# -- (b) a creator's signed registration copied into the second registry's log --------------


def test_a_creators_registration_copied_into_another_log_is_refused_under_every_root(
    real: Side, hostile: Side, clock: Clock, make_creator: CreatorFactory
) -> None:
    studio = make_creator()
    fingerprint = secrets.token_bytes(32)
    _register_file(real, studio, clock, fingerprint)
    real.anchor()
    original = build_bundle(real.registry, GoodType.FILE, fingerprint).entry
    # B copies the studio's REGISTER byte for byte (its payload, its signature) into its log,
    # past its own server's checks, as a hostile operator can.
    with write_transaction(hostile.registry.engine) as conn:
        record_id = conn.execute(
            insert(records_t)
            .values(
                primary_type="Registration",
                signer=original.actor,
                nonce=1,
                deadline=0,
                payload=canonical_json(original.payload).decode(),
                payload_hash=payload_hash(original.payload),
                created_at=datetime.now(UTC),
            )
            .returning(records_t.c.id)
        ).scalar_one()
        conn.execute(
            insert(entries_t).values(
                kind=1,
                good_type=int(GoodType.FILE),
                fingerprint=fingerprint,
                actor=original.actor,
                payload_hash=original.payload_hash,
                record_id=record_id,
            )
        )
    hostile.registry.sequence_all()
    hostile.anchor()
    forged = build_bundle(hostile.registry, GoodType.FILE, fingerprint)
    assert forged.entry.payload == original.payload  # the very signature the studio made
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(forged, policy_of(hostile.registry), hostile.chain)
    assert caught.value.step == "domain"
    assert "carried over from another registry" in caught.value.detail
    with pytest.raises(UntrustedRegistry):
        check_bundle(forged, policy_of(real.registry), hostile.chain)
    both = TrustPolicy((trust_root_of(real.registry), trust_root_of(hostile.registry)))
    with pytest.raises(BundleInvalid, match="carried over"):
        check_bundle(forged, both, hostile.chain)


# -- (c) a head of the real log re-signed by another key ----------------------------------------


def test_a_real_head_re_signed_by_another_key_is_refused(
    real: Side, clock: Clock, make_creator: CreatorFactory
) -> None:
    fingerprint = secrets.token_bytes(32)
    _register_file(real, make_creator(), clock, fingerprint)
    real.anchor()
    bundle = build_bundle(real.registry, GoodType.FILE, fingerprint)
    assert check_bundle(bundle, policy_of(real.registry), real.chain).status == "verified"
    other: LocalAccount = Account.create()
    head = bundle.tree_head
    signature = sign("TreeHead", head.message(), real.registry.domain, other.key)
    resigned = bundle.model_copy(
        update={
            "tree_head": head.model_copy(
                update={"signature": signature, "signer": bytes.fromhex(other.address[2:])}
            )
        }
    )
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(Bundle.parse(resigned.to_json()), policy_of(real.registry), real.chain)
    assert caught.value.step == "tree-head"
    assert other.address in caught.value.detail and real.registry.address in caught.value.detail


# -- roots not final yet, then final, then removed by a reorganisation -----------------------


def test_a_root_is_not_final_until_the_trust_roots_depth_and_fails_once_reorged(
    real: Side, clock: Clock, make_creator: CreatorFactory, cli: Cli
) -> None:
    fingerprint = secrets.token_bytes(32)
    _register_file(real, make_creator(), clock, fingerprint)
    real.worker.run_until_idle()  # mined in the newest block: one confirmation
    deep = trust_root_of(real.registry, confirmations=4)
    bundle = build_bundle(real.registry, GoodType.FILE, fingerprint)
    # The registry's worker calls it final at one confirmation; the verifier's pinned trust
    # root asks four, and the verifier alone decides.
    assert bundle.anchor is not None and bundle.anchor.state == "final"
    bare = Bundle.parse(bundle.model_copy(update={"anchor": None}).to_json())  # no block named
    for evidence in (bundle, bare):
        with pytest.raises(NotFinalYet) as caught:
            check_bundle(evidence, TrustPolicy.of(deep), real.chain)
        assert caught.value.report.status == "not-final"
        assert "not final yet" in caught.value.detail and "4 confirmations" in caught.value.detail
    bundle_file = cli.write("mined.json", bundle.to_json())
    root_file = cli.write("deep.json", deep.to_json())
    out, _ = cli("verify", bundle_file, "--trust", root_file, expect=16)
    assert out.startswith("NOT FINAL: ")
    # Enough blocks: final.
    real.devchain.rpc("anvil_mine", hex(3))
    for evidence in (bundle, bare):
        report = check_bundle(evidence, TrustPolicy.of(deep), real.chain)
        assert report.status == "verified" and report.chain is not None and report.chain.final
    cli("verify", bundle_file, "--trust", root_file, expect=0)
    # A reorganisation deeper than the anchor removes it: the pointed evidence now fails.
    assert bundle.anchor.block_number is not None
    depth = real.chain.block_number() - bundle.anchor.block_number + 1
    real.devchain.rpc("anvil_reorg", depth, [])  # the contract's deployment stays
    with pytest.raises(BundleInvalid) as failed:
        check_bundle(bundle, TrustPolicy.of(deep), real.chain)
    assert failed.value.step == "chain" and "holds no root" in failed.value.detail
    _, err = cli("verify", bundle_file, "--trust", root_file, expect=11)
    assert err.startswith("FAIL: ")
    # Without a pointer it is simply not anchored (any more).
    with pytest.raises(NotAnchoredYet):
        check_bundle(bare, TrustPolicy.of(deep), real.chain)


# -- a registry key hand-over ----------------------------------------------------------------


def test_a_key_hand_over_keeps_old_heads_valid_and_refuses_the_old_key_after_it(
    real: Side, clock: Clock, make_creator: CreatorFactory
) -> None:
    creator = make_creator()
    before, after = secrets.token_bytes(32), secrets.token_bytes(32)
    _register_file(real, creator, clock, before)
    real.anchor()
    old_key = real.registry.account
    old_bundle = build_bundle(real.registry, GoodType.FILE, before)
    new_key: LocalAccount = Account.create()
    handover = real.registry.rotate_key(new_key)
    _register_file(real, creator, clock, after)
    real.anchor()
    new_bundle = build_bundle(real.registry, GoodType.FILE, after)
    assert new_bundle.tree_head.tree_size > handover.tree_size
    assert old_bundle.tree_head.tree_size < handover.tree_size

    root = trust_root_of(real.registry)
    assert [k.until_size for k in root.signing_keys] == [handover.tree_size, None]
    policy = TrustPolicy.of(root)
    # Both verify: the old head under the old key, the new head under the new one.
    assert check_bundle(old_bundle, policy, real.chain).head_signer == old_key.address
    assert check_bundle(new_bundle, policy, real.chain).head_signer == new_key.address
    # A bundle of the old good under a head after the hand-over is signed by the new key too.
    refreshed = build_bundle(real.registry, GoodType.FILE, before)
    assert refreshed.tree_head.tree_size >= handover.tree_size
    check_bundle(refreshed, policy, real.chain)
    # A head after the hand-over signed by the old key: refused.
    head = new_bundle.tree_head
    forged = new_bundle.model_copy(
        update={
            "tree_head": head.model_copy(
                update={
                    "signature": sign(
                        "TreeHead", head.message(), real.registry.domain, old_key.key
                    ),
                    "signer": bytes.fromhex(old_key.address[2:]),
                }
            )
        }
    )
    with pytest.raises(BundleInvalid) as caught:
        check_bundle(Bundle.parse(forged.to_json()), policy, real.chain)
    assert caught.value.step == "tree-head" and new_key.address in caught.value.detail
    # The pinned root of before the hand-over is extended by the new one; a root claiming a
    # hand-over signed by someone else does not even parse.
    from verifier.trust import TrustRoot, extends

    pinned_before = TrustRoot.model_validate(
        {
            **root.document(),
            "signing_keys": [{**root.document()["signing_keys"][0], "until_size": None}],
        }
    )
    assert extends(pinned_before, root)
    document = root.document()
    document["signing_keys"][1]["handover_signature"] = (
        "0x"
        + sign(
            "KeyHandover",
            {"newKey": new_key.address, "treeSize": handover.tree_size},
            real.registry.domain,
            Account.create().key,
        ).hex()
    )
    with pytest.raises(Exception, match="hand-over"):
        TrustRoot.parse(json.dumps(document))
    # The log check accepts every head under the key of its size.
    assert real.registry.check_log().problems == []
