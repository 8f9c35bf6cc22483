"""Latency from registration to mined and to final on the embedded default, default settings.

Run: ``.venv/bin/python -m bench.latency_bench [--goods N] [--seconds S]``. What ``serve``
runs (the sequencer, the anchoring worker, anvil with a block a second), in process; goods
registered at random moments over a bounded run; for each, the time until an anchor that
covers it is mined, and final. Reports p50/p99. OpenTimestamps takes hours and Chainpoint
about 90 minutes for the same guarantee. Writes ``bench/results/latency.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path

from eth_account import Account
from sqlalchemy import text

from anchoring.loop import run_anchoring
from anchoring.runtime import start_anchoring
from anchoring.settings import load_anchoring_settings
from bench.common import percentile, save
from registry.creator import CreatorKeys, sign_registration
from registry.fingerprints import GoodType, Use
from registry.royalty import RoyaltyPolicy
from registry.sequencer import run_sequencer
from registry.service import Registry
from registry.settings import load_settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=40.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp))
        registry = Registry.open(settings)
        anchoring = load_anchoring_settings()  # the defaults of the embedded default
        runtime = start_anchoring(registry, settings, anchoring)
        stop = threading.Event()
        threads = [
            threading.Thread(
                target=run_sequencer,
                args=(registry,),
                kwargs={"interval": settings.sequencer_interval, "stop": stop},
            ),
            threading.Thread(
                target=run_anchoring, args=(runtime.worker,), kwargs={"interval": 1.0, "stop": stop}
            ),
        ]
        for thread in threads:
            thread.start()
        creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
        policy = RoyaltyPolicy.parse({"recipients": []})
        rng = random.Random(7)
        registered: dict[bytes, float] = {}
        mined: dict[bytes, float] = {}
        final: dict[bytes, float] = {}
        try:
            moments = sorted(rng.uniform(0, args.seconds) for _ in range(args.goods))
            started = time.monotonic()
            pending = list(moments)
            deadline = started + args.seconds + 60  # bounded: every good final, or give up
            while time.monotonic() < deadline and (pending or len(final) < args.goods):
                now = time.monotonic() - started
                while pending and pending[0] <= now:
                    pending.pop(0)
                    fingerprint = os.urandom(32)
                    registry.register(
                        sign_registration(
                            creator,
                            registry.domain,
                            good_type=GoodType.FILE,
                            fingerprint=fingerprint,
                            product="",
                            use=Use.TRANSFERABLE,
                            royalty_policy=policy,
                            metadata={},
                            now=registry.clock(),
                        )
                    )
                    registered[fingerprint] = time.monotonic()
                _observe(registry, registered, mined, final)
                time.sleep(0.05)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            runtime.close()
    to_mined = [mined[f] - registered[f] for f in mined]
    to_final = [final[f] - registered[f] for f in final]
    data = {
        "goods": args.goods,
        "mined": len(to_mined),
        "final": len(to_final),
        "to_mined_p50_s": statistics.median(to_mined),
        "to_mined_p99_s": percentile(to_mined, 0.99),
        "to_final_p50_s": statistics.median(to_final),
        "to_final_p99_s": percentile(to_final, 0.99),
        "settings": {
            "anchor_max_age_s": anchoring.anchor_max_age,
            "confirmations": anchoring.anchor_confirmations,
            "block_time_s": anchoring.dev_block_time,
        },
    }
    path = save("latency", data)
    print(
        f"{len(to_final)}/{args.goods} goods final; to mined p50 {data['to_mined_p50_s']:.1f} s "
        f"p99 {data['to_mined_p99_s']:.1f} s; to final p50 {data['to_final_p50_s']:.1f} s "
        f"p99 {data['to_final_p99_s']:.1f} s (target: p50 to mined < 10 s)"
    )
    print(f"written to {path}")


def _observe(
    registry: Registry,
    registered: dict[bytes, float],
    mined: dict[bytes, float],
    final: dict[bytes, float],
) -> None:
    """Mark goods whose leaf is covered by a mined / final anchor."""
    with registry.engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT max(CASE WHEN state IN ('mined','final') THEN tree_size END),"
                " max(CASE WHEN state = 'final' THEN tree_size END) FROM anchors"
            )
        ).one()
        covered_mined, covered_final = rows[0] or 0, rows[1] or 0
        leaves = conn.execute(
            text("SELECT fingerprint, leaf_index FROM entries WHERE leaf_index IS NOT NULL")
        ).all()
    now = time.monotonic()
    for fingerprint, leaf_index in leaves:
        fp = bytes(fingerprint)
        if fp not in registered:
            continue
        if leaf_index < covered_mined and fp not in mined:
            mined[fp] = now
        if leaf_index < covered_final and fp not in final:
            final[fp] = now


if __name__ == "__main__":
    main()
