"""The scenario's injected fraud: a leaked batch, a draining bot, a double seller, a laundering
ring and a pirate creator, each with its labels."""

from __future__ import annotations

from collections.abc import Sequence

from bench.scenariobase import MarketBase
from bench.scenarioworld import (
    ANONYMOUS,
    BOT_PLATFORM,
    CODE,
    DAY,
    FILE,
    HOUR,
    PIRATES,
    RETAIL,
    START,
    WHOLESALE,
    Injection,
)
from readmodels import signals as S
from registry.transfers import Party


class InjectedFraud(MarketBase):
    """The injected patterns, scheduled into the market's agenda with their ground truth."""

    leak: Injection
    bot: Injection

    def _leak(self) -> None:
        p, rng = self.p, self.rng
        inj = Injection("leaked-batch", "leak")
        self.injections.append(inj)
        batch = self.batches[self.leaked_batch]
        size = min(p.leak_codes, len(batch) - 1)
        first = rng.randrange(len(batch) - size)
        listed = [fp for _, fp in batch[first : first + size]]
        pirates = ["playmarket"] if p.leak_via_known_platform else list(PIRATES[: p.leak_platforms])
        start = START + self._u(p.days * DAY / 4, p.days * DAY - 6 * DAY)
        for i, fp in enumerate(listed):
            pirate = pirates[i % len(pirates)]
            self.verify(start + p.leak_hours * HOUR * i / size, pirate, fp)
            inj.add_good((CODE, fp))
            if rng.random() < 0.2:
                self._anonymous(start + self._u(HOUR, 2 * DAY), fp)
        for pirate in pirates:
            inj.expect(S.PLATFORM_VELOCITY, S.Subject("platform", pirate))
        self.leak = inj
        revoked_at = start + self._u(DAY, 2 * DAY)
        for fp in listed:
            self._at(revoked_at + self._u(0, 600), "revoke", self._creator_of(fp), fp)
        sample = rng.sample(listed, min(len(listed), 2 * p.leak_sale_attempts))
        for i, fp in enumerate(sample):
            pirate = pirates[i % len(pirates)]
            before = i < p.leak_sale_attempts
            t = (
                start + p.leak_hours * HOUR + self._u(600, 3 * HOUR)
                if before
                else (revoked_at + self._u(2 * HOUR, DAY))
            )
            self.transfer(
                t, pirate, fp, Party(pirate, "stock"), self._user(pirate), 800, tag="fraud"
            )
            code = S.SOLD_BY_NON_HOLDER if before else S.DEAD_GOOD_TRANSFER
            inj.expect(code, S.good_subject((CODE, fp)))

    def _double_seller(self, codes: Sequence[bytes]) -> None:
        """An agent lists each of its codes on three platforms at once, sells it twice, and
        offers the ones already consumed again elsewhere."""
        rng = self.rng
        inj = Injection("double-selling", "double-seller")
        self.injections.append(inj)
        seller = Party("agentnet", "agent-d")
        t = START + self._u(2 * DAY, self.p.days * DAY - 7 * DAY)
        for fp in codes:
            good = (CODE, fp)
            inj.add_good(good)
            t += self._u(60, 600)
            self.verify(t, WHOLESALE, fp)
            self.transfer(
                t + 60, WHOLESALE, fp, Party(None, None), Party(WHOLESALE, "stock"), 1_000
            )
            got = t + self._u(3 * HOUR, DAY)
            self.verify(got - 300, "agentnet", fp)
            self.transfer(got, "agentnet", fp, Party(WHOLESALE, "stock"), seller, 1_050)
            listed = got + self._u(2 * HOUR, DAY)
            first, second, third = rng.sample(RETAIL, 3)
            self.verify(listed, "agentnet", fp)
            self.verify(listed + self._u(300, 1_800), first, fp)
            self.verify(listed + self._u(600, 3_000), second, fp)
            inj.expect(S.CODE_VELOCITY, S.good_subject(good))
            sold = listed + self._u(3_600, 5_400)
            final = rng.random() < 0.5
            # The agent's own platform reports both sales (it alone may: issue 12).
            self.transfer(
                sold, "agentnet", fp, seller, self._user(first), 1_200, final=final, tag="fraud"
            )
            again = sold + self._u(600, 7_200)
            self.transfer(again, "agentnet", fp, seller, self._user(second), 1_150, tag="fraud")
            if final:
                inj.expect(S.DEAD_GOOD_TRANSFER, S.good_subject(good))
                self.verify(again + self._u(HOUR, DAY), third, fp)
                inj.expect(S.OFFERED_BY_NON_HOLDER, S.good_subject(good))
            else:
                inj.expect(S.SOLD_BY_NON_HOLDER, S.good_subject(good))

    def _ring(self, codes: Sequence[bytes]) -> None:
        """A few parties pass the same goods round and round, each time at a higher price."""
        p, rng = self.p, self.rng
        inj = Injection("laundering-ring", "ring")
        self.injections.append(inj)
        platforms = rng.sample(("agentnet", "keyshop", "playmarket"), min(3, p.ring_parties))
        parties = [Party(platforms[i % len(platforms)], f"ring-{i}") for i in range(p.ring_parties)]
        files = [self.free_files.pop() for _ in range(max(1, p.ring_goods - len(codes)))]
        for fp in [*codes, *files]:
            inj.add_good((CODE if fp in self.code_of else FILE, fp))
            inj.expect(
                S.LAUNDERING_RING, S.good_subject((CODE if fp in self.code_of else FILE, fp))
            )
            t = START + self._u(3 * DAY, 6 * DAY)
            price = float(self._price())
            first = parties[0]
            assert first.platform is not None
            self.verify(t - 600, first.platform, fp, via="fingerprint")
            self.transfer(t, first.platform, fp, Party(None, None), first, price, tag="fraud")
            holder = first
            for hop in range(1, p.ring_parties * p.ring_cycles + 1):
                buyer = parties[hop % p.ring_parties]
                t += self._u(2 * HOUR, 12 * HOUR)
                price *= self._u(1.1, 1.3)
                assert buyer.platform is not None
                self.verify(t - self._u(60, 900), buyer.platform, fp, via="fingerprint")
                # Colluding platforms give each other their consent.
                self.transfer(
                    t, buyer.platform, fp, holder, buyer, price, tag="fraud", consent=True
                )
                holder = buyer

    def _pirate(self) -> None:
        """A pirate creator registers copies of another creator's files; the owner re-uploads
        some of its own (idempotent, the honest twin)."""
        p, rng = self.p, self.rng
        inj = Injection("pirate-registration", "pirate")
        self.injections.append(inj)
        victims = [fp for creator, fp in self.files if creator == 0]
        t = START + self._u(3 * DAY, p.days * DAY - 3 * DAY)
        for i, fp in enumerate(rng.sample(victims, min(p.pirate_files, len(victims)))):
            self._at(t + 60 * i, "file", self.pirate, fp, -1 - i)
            inj.add_good((FILE, fp))
            inj.expect(S.DUPLICATE_CLAIM, S.good_subject((FILE, fp)))
        inj.subjects.add(S.Subject("creator", self.pirate.address))
        for fp in rng.sample(victims, 3):
            self._at(
                START + self._u(3 * DAY, p.days * DAY - DAY), "file", self.file_creators[0], fp, 0
            )

    def _bot(self) -> None:
        """Card draining: lookups of guessed codes, a few of which exist (drained)."""
        p, rng = self.p, self.rng
        inj = Injection("draining-bot", f"bot-{p.bot}")
        self.injections.append(inj)
        self.bot = inj
        start = START + self._u(2 * DAY, p.days * DAY - 3 * DAY)
        platform = BOT_PLATFORM if p.bot == "key" else ANONYMOUS
        ips = [f"ip:198.51.{i // 256}.{i % 256}" for i in range(400)]
        for i in range(p.bot_lookups):
            t = start + p.bot_hours * HOUR * i / p.bot_lookups
            if p.bot == "key":
                key = f"key:{BOT_PLATFORM}"
            elif p.bot == "ip":
                key = "ip:203.0.113.7"
            else:
                key = rng.choice(ips)
            if rng.random() < 0.004:
                # A real code: drained once the bot gets its answer (not if refused, 429).
                fp = self.idle.pop()
                self.bot_hits.add(fp)
            else:
                fp = rng.randbytes(32)
            self._at(t, "verify", platform, key, CODE, fp, "code")
        inj.expect(S.PROBE_BURST, S.Subject("key", f"platform:{platform}"))
