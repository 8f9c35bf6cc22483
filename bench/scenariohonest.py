"""The scenario's honest market: agent chains, launch day, onboarding, file trades and the
background lookups (hard negatives included)."""

from __future__ import annotations

from collections.abc import Sequence

from bench.scenariobase import MarketBase
from bench.scenarioworld import (
    AGENTS_1,
    AGENTS_2,
    ART,
    DAY,
    HOUR,
    LAUNCH_SHOP,
    NEWSHOP,
    REDEEMER,
    RETAIL,
    START,
    WHOLESALE,
)
from registry.transfers import Party


class HonestMarket(MarketBase):
    """The honest actors' trades and lookups, scheduled into the market's agenda."""

    def _wholesale(self, block: Sequence[bytes], t: float, *, to: str = WHOLESALE) -> None:
        """The wholesaler buys a block of codes from their creator, then they go down the
        agent levels to end users."""
        for fp in block:
            t += self._u(5, 30)
            self.verify(t, to, fp)
            bought = t + self._u(10, 120)
            price = self._price()
            self.transfer(bought, to, fp, Party(None, None), Party(to, "stock"), price)
            if to == WHOLESALE:
                self._chain(fp, Party(to, "stock"), bought, price)

    def _chain(self, fp: bytes, holder: Party, t: float, price: float) -> None:
        rng, p = self.rng, self.p
        end = self.horizon - DAY
        declined = False
        for level, (platforms, chance) in enumerate(((AGENTS_1, 0.85), (AGENTS_2, 0.6))):
            if rng.random() > chance:
                break
            nxt = t + self._u(3 * HOUR, 3 * DAY)
            if nxt > end:
                return
            buyer = Party(rng.choice(platforms), f"agent-{level}-{rng.randrange(40)}")
            if not declined and rng.random() < p.declined and nxt - t > 8 * HOUR:
                declined = True
                others = [
                    x for x in RETAIL + AGENTS_2 if x not in (holder.platform, buyer.platform)
                ]
                self.verify(self._u(t + 3 * HOUR, nxt - 3 * HOUR), rng.choice(others), fp)
            assert buyer.platform is not None
            self.verify(nxt - self._u(60, 1_800), buyer.platform, fp)
            price *= self._u(1.02, 1.06)
            self.transfer(nxt, buyer.platform, fp, holder, buyer, price)
            self._support(nxt, holder, fp)
            if rng.random() < p.refunds:
                back = nxt + self._u(HOUR, DAY)
                self.transfer(back, buyer.platform, fp, buyer, holder, price)
                nxt = back
                buyer = holder
            holder, t = buyer, nxt
        if rng.random() > 0.8:
            return
        final = t + self._u(HOUR, 4 * DAY)
        if final > end:
            return
        shop = rng.choice(RETAIL)
        self.verify(final - self._u(30, 900), shop, fp)
        self.transfer(
            final, shop, fp, holder, self._user(shop), price * self._u(1.02, 1.1), final=True
        )
        self._support(final, holder, fp)
        if rng.random() < p.anonymous_checks:
            self._anonymous(final + self._u(60, 2 * DAY), fp)

    def _support(self, t: float, seller: Party, fp: bytes) -> None:
        if seller.platform is not None and self.rng.random() < self.p.support:
            self.verify(t + self._u(600, DAY), seller.platform, fp, via="fingerprint")

    def _launch_day(self) -> None:
        """A new batch registered in the morning and sold by one retailer the same day."""
        p, rng = self.p, self.rng
        day = START + rng.randint(p.days // 3, p.days // 2) * DAY
        self._at(day + 8 * HOUR, "batch", self.launch_batch)
        codes = [fp for _, fp in self.batches[self.launch_batch]]
        rng.shuffle(codes)
        for i, fp in enumerate(codes[: int(p.launch_sales * (1 + p.abandoned))]):
            t = day + 9 * HOUR + 12 * HOUR * i / p.launch_sales + self._u(0, 60)
            self.verify(t, LAUNCH_SHOP, fp)
            if rng.random() < p.abandoned:
                continue
            user = self._user(LAUNCH_SHOP)
            self.transfer(
                t + self._u(30, 300), LAUNCH_SHOP, fp, Party(None, None), user, 1_000, final=True
            )
            if rng.random() < p.anonymous_checks:
                self._anonymous(t + self._u(600, DAY), fp)

    def _onboarding(self, block: Sequence[bytes]) -> None:
        """A new platform's first purchase: hundreds of codes verified and bought in an hour."""
        t = START + self.rng.randint(4, self.p.days - 4) * DAY + 10 * HOUR
        self._wholesale(block, t, to=NEWSHOP)

    def _file_trades(self) -> None:
        p, rng = self.p, self.rng
        for _ in range(p.file_chains):
            if not self.free_files:
                break
            fp = self.free_files.pop()
            t = START + self._u(3 * DAY, p.days * DAY - 6 * DAY)
            holder, price = Party(None, None), float(self._price())
            previous: Party | None = None
            for hop in range(rng.randint(1, 5)):
                t += self._u(6 * HOUR, 3 * DAY)
                if t > self.horizon - DAY:
                    break
                if previous is not None and rng.random() < p.buy_back:
                    buyer, price = previous, price * self._u(1.05, 1.3)
                else:
                    platform = rng.choice(ART)
                    buyer = Party(platform, f"collector-{rng.randrange(60)}")
                    price *= self._u(0.8, 1.25)
                if buyer == holder:
                    continue
                assert buyer.platform is not None
                self.verify(
                    t - self._u(60, 3_600),
                    buyer.platform,
                    fp,
                    via=rng.choice(("file", "fingerprint")),
                )
                self.transfer(t, buyer.platform, fp, holder, buyer, price)
                previous, holder = holder if hop else None, buyer

    def _background(self) -> None:
        """All day long: a redemption service checks shop-bought codes (which it never
        acquires), and people check cards anonymously."""
        p, rng = self.p, self.rng
        t: float = START + DAY
        while True:
            t += rng.expovariate(p.redeem_per_hour / HOUR)
            if t > self.horizon:
                break
            self.verify(t, REDEEMER, rng.choice(self.idle))
        t = START + DAY
        while True:
            t += rng.expovariate(p.anonymous_per_hour / HOUR)
            if t > self.horizon:
                break
            self._anonymous(t, rng.choice(self.idle))
