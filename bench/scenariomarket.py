"""The scenario's market played against a real registry, and one run of it read back as the
rules see it."""

from __future__ import annotations

import hashlib
import random
import secrets
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_account import Account
from sqlalchemy import Engine, event

from api.ratelimit import CODE_LOOKUP, RateLimited
from bench.scenariofraud import InjectedFraud
from bench.scenariohonest import HonestMarket
from bench.scenarioworld import (
    ANONYMOUS,
    BOT_PLATFORM,
    CODE,
    DAY,
    HOUR,
    POLICY,
    START,
    MarketParams,
    ScenarioRun,
    SimClock,
)
from readmodels import signals as S
from readmodels.marketreads import read_inputs
from readmodels.riskindex import RiskIndex, flags_from
from registry import merkle
from registry.codesfile import PreparedBatch
from registry.creator import (
    CreatorKeys,
    sign_batch_registration,
    sign_registration,
    sign_revocation,
)
from registry.db import create_db_engine
from registry.eip712 import DEV_DOMAIN
from registry.errors import NotFound
from registry.fingerprints import GoodType, Use
from registry.handover import HandoverRequest, NotTheHolder
from registry.migrate import upgrade
from registry.service import Registry
from registry.telemetry import VerificationRecord as Telemetry
from registry.transfers import DoubleSale, GoodConsumed, GoodRevoked, Party, TransferRequest


class Market(HonestMarket, InjectedFraud):
    """Plans a market's actions in time order, then plays them against a real registry."""

    def plan(self) -> None:
        p, rng = self.p, self.rng
        for index in range(len(self.batches)):
            if index != self.launch_batch:
                self._at(START + 60 + index, "batch", index)
        for i, (creator, fp) in enumerate(self.files):
            self._at(START + self._u(HOUR, 2 * DAY), "file", self.file_creators[creator], fp, i)
        # Codes for each use, drawn from the regular batches (never the leaked one).
        regular = [i for i in range(len(self.batches)) if i not in (self.leaked_batch,)]
        regular.remove(self.launch_batch)
        pool = [fp for i in regular for _, fp in self.batches[i]]
        used: set[bytes] = set()

        def take_block(size: int) -> list[bytes]:
            for _ in range(100):
                batch = self.batches[rng.choice(regular)]
                if len(batch) <= size:
                    continue
                start = rng.randrange(len(batch) - size)
                block = [fp for _, fp in batch[start : start + size]]
                if not used.intersection(block):
                    used.update(block)
                    return block
            block = [fp for fp in pool if fp not in used][:size]
            used.update(block)
            return block

        sold = 0
        while sold < p.sold_codes:
            size = min(p.sold_codes - sold, rng.randint(40, 200))
            self._wholesale(take_block(size), START + self._u(0.3 * DAY, p.days * DAY - 5 * DAY))
            sold += size
        self._launch_day()
        self._onboarding(take_block(p.onboarding))
        self._file_trades()
        damaged = take_block(20)
        for fp in damaged:
            self._at(START + 3 * DAY + self._u(0, HOUR), "revoke", self._creator_of(fp), fp)
        # Injected patterns take their codes now; what is left is idle stock.
        self._leak()
        self._double_seller(take_block(p.double_sold))
        self._ring(take_block(max(1, p.ring_goods // 2)))
        self._pirate()
        self.idle = [fp for fp in pool if fp not in used]
        rng.shuffle(self.idle)
        self._bot()
        self._background()

    # -- playing it ---------------------------------------------------------------------------

    def run(self) -> None:
        self.actions.sort(key=lambda a: (a[0], a[1]))
        for at, _, kind, data in self.actions:
            if at > self.clock.now:
                self.clock.now = at
            getattr(self, f"_do_{kind}")(*data)
            if len(self.telemetry) >= 2_000:
                self._flush()
        self._flush()
        self.registry.sequence_all()
        self.clock.now = self.horizon + DAY
        if self.p.bot != "distributed":
            for flag in self.limiter.flags():
                if flag.key in (f"key:{BOT_PLATFORM}", "ip:203.0.113.7"):
                    self.bot.expect(S.PROBE_BURST, S.Subject("key", flag.key))
        leak = self.batch_records[self.leaked_batch]
        self.leak.expect(S.BATCH_VELOCITY, S.Subject("batch", f"batch:{leak}"))

    def _flush(self) -> None:
        if self.telemetry:
            self.registry.record_verifications(self.telemetry)
            self.telemetry = []

    def _do_batch(self, index: int) -> None:
        fps = [fp for _, fp in self.batches[index]]
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the PreparedBatch
        builder = merkle.RootBuilder()
        for fp in fps:
            spool.write(fp)
            builder.append(hashlib.sha256(b"\x00" + fp).digest())
        prepared = PreparedBatch(spool, len(fps), builder.root())
        creator = self.batch_creator[index]
        request = sign_batch_registration(
            self.creators[creator],
            DEV_DOMAIN,
            prepared,
            good_type=GoodType.CODE,
            product=f"card-{creator}",
            use=Use.SINGLE,
            royalty_policy=POLICY,
            metadata={"lot": index},
            now=self.clock(),
            new_product=self._new_product(self.creators[creator], f"card-{creator}"),
        )
        result = self.registry.register_batch(request, prepared.fingerprints())
        prepared.close()
        self.batch_records[index] = result.record_id
        self.live.update(fps)

    def _new_product(self, keys: CreatorKeys, product: str) -> bool:
        if (keys.address, product) in self.products:
            return False
        self.products.add((keys.address, product))
        return True

    def _do_file(self, keys: CreatorKeys, fp: bytes, index: int) -> None:
        product = "art" if index >= 0 else "copies"
        request = sign_registration(
            keys,
            DEV_DOMAIN,
            good_type=GoodType.FILE,
            fingerprint=fp,
            product=product,
            use=Use.TRANSFERABLE,
            royalty_policy=POLICY,
            metadata={},
            now=self.clock(),
            new_product=self._new_product(keys, product),
        )
        self.registry.register(request)
        self.live.add(fp)

    def _do_revoke(self, keys: CreatorKeys, fp: bytes) -> None:
        request = sign_revocation(
            keys,
            DEV_DOMAIN,
            good_type=GoodType.CODE,
            fingerprint=fp,
            reason="leaked",
            now=self.clock(),
        )
        self.registry.revoke(request)
        self.revoked.add(fp)

    def _do_verify(self, platform: str, key: str, good_type: int, fp: bytes, via: str) -> None:
        try:
            if via == "code":
                if platform == ANONYMOUS:
                    self.limiter.check(CODE_LOOKUP, key)
                self.limiter.ensure_probe_budget(key)
        except RateLimited:
            self.outcomes["verify-refused-429"] += 1
            return
        if fp in self.revoked:
            verdict = "revoked"
        elif fp in self.consumed:
            verdict = "consumed"
        elif fp in self.live:
            verdict = "authentic"
        else:
            verdict = "unknown"
        self.telemetry.append(Telemetry(self.clock(), platform, good_type, fp, via, verdict))
        self.outcomes["verifications"] += 1
        if fp in self.bot_hits:
            self.bot.add_good((CODE, fp))
        if via == "code" and verdict == "unknown":
            try:
                self.limiter.record_probe_failure(key)
            except RateLimited:
                self.outcomes["probe-flagged-429"] += 1

    def _authorized(self, request: TransferRequest, seller: Party) -> TransferRequest:
        """The request with the holding platform's hand-over authorization, if it still holds
        the good (else as it is: the registry refuses it, as it should)."""
        assert seller.platform is not None and seller.reference is not None
        try:
            issued = self.registry.authorize_handover(
                HandoverRequest(
                    platform=seller.platform,
                    good_type=request.good_type,
                    fingerprint=request.fingerprint,
                    reference=seller.reference,
                    buyer_platform=request.platform,
                )
            )
        except (NotTheHolder, NotFound):
            return request  # it moved meanwhile
        if request.idempotency_key is not None:
            self._authorizations[request.idempotency_key] = issued.token
        return replace(request, authorization=issued.token)

    def _do_transfer(self, request: TransferRequest, tag: str, consent: bool) -> None:
        seller = request.seller
        if (
            consent
            and seller.platform is not None
            and seller.reference is not None
            and seller.platform != request.platform
        ):
            # A cross-platform resale with the holding platform's consent: its one-time
            # hand-over authorization (issue 12). Honest trades and colluding rings have it; a
            # non-holder selling what another platform holds has none, and is refused.
            known = self._authorizations.get(request.idempotency_key or "")
            if known is not None:  # a retry: the same request, the same token
                request = replace(request, authorization=known)
            else:
                request = self._authorized(request, seller)
        try:
            receipt = self.registry.transfer(request)
        except (DoubleSale, GoodConsumed, GoodRevoked, NotTheHolder) as refusal:
            self.outcomes[f"{tag}-refused-{refusal.code}"] += 1
            return
        self.outcomes[f"{tag}-accepted"] += 1
        if receipt.final:
            self.consumed.add(request.fingerprint)


def _fast_sqlite(engine: Engine) -> None:
    # NOTE: a benchmark database: durability is not what is measured here (SQLite's
    # synchronous=FULL costs each of the ~10^4 transfers an fsync).
    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()


def run_scenario(
    params: MarketParams,
    seed: int,
    *,
    mix: str = "base",
    workdir: Path,
    db_url: str | None = None,
    market_class: Callable[[MarketParams, int, Registry, SimClock], Market] | None = None,
) -> ScenarioRun:
    """Simulate one market into a fresh registry and read back what the rules see.
    ``market_class`` makes the market (default ``Market``; ``bench.launderscenario`` adds
    its laundering patterns to it)."""
    started = time.perf_counter()
    engine = create_db_engine(db_url or f"sqlite:///{workdir / f'scenario-{seed}.db'}")
    if engine.dialect.name == "sqlite":
        _fast_sqlite(engine)
    upgrade(engine)
    clock = SimClock()
    registry = Registry(
        engine,
        domain=DEV_DOMAIN,
        account=Account.from_key(random.Random(seed).randbytes(32)),
        master_key=secrets.token_bytes(32),
        clock=clock,
    )
    market = (market_class or Market)(params, seed, registry, clock)
    market.plan()
    planned = time.perf_counter()
    market.run()
    simulated = time.perf_counter()
    inputs, _ = read_inputs(engine, since=START, probe_flags=flags_from(market.limiter.flags()))
    read = time.perf_counter()
    # What the API's background refresh costs on this market: a first build, then a top-up
    # with nothing new (the rules and the score are recomputed either way).
    index = RiskIndex.build(engine, clock.now, lookback=clock.now - START)
    built = time.perf_counter()
    index.refreshed(clock.now)
    refreshed = time.perf_counter()
    engine.dispose()
    stats = {
        "codes": sum(len(b) for b in market.batches),
        "files": len(market.files),
        "transfers": len(inputs.transfers),
        "refused_attempts": len(inputs.attempts),
        "verifications": len(inputs.verifications),
        "outcomes": dict(sorted(market.outcomes.items())),
        "plan_s": round(planned - started, 2),
        "simulate_s": round(simulated - planned, 2),
        "read_s": round(read - simulated, 2),
        "risk_index_build_s": round(built - read, 2),
        "risk_index_refresh_s": round(refreshed - built, 2),
        "risk_index_goods": len(index),
    }
    unexpected = sum(n for k, n in market.outcomes.items() if k.startswith("honest-refused"))
    stats["unexpected_honest_refusals"] = unexpected
    return ScenarioRun(seed, mix, params, inputs, market.injections, clock.now, START, stats)
