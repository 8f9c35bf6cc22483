"""A registry process for test_durability: writes to a SQLite data dir until it is killed.

Usage: ``python durability_worker.py DATA_DIR``. Each line on stdout acknowledges one write
and is printed (and flushed) only after the call returned, i.e. after the commit:

- ``C <address>``: the creator this worker signs as (printed first);
- ``R <entry_id> <fingerprint hex> <nonce>``: a single registration, queued;
- ``B <record_id> <fingerprint hex>,...``: a bulk batch of codes, sequenced in its commit;
- ``S <tree_size> <root hex>``: a signed tree head.

Not collected by pytest (no ``test_`` prefix). It stops by itself after ``MAX_WRITES`` or
when its stdout is closed, so a crashed test leaves no process behind.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from eth_account import Account

from registry.codesfile import codes_source, prepare_code_batch
from registry.creator import CreatorKeys, sign_batch_registration, sign_registration
from registry.fingerprints import GoodType, Use
from registry.royalty import RoyaltyPolicy
from registry.service import Registry
from registry.settings import load_settings

MAX_WRITES = 100_000
BATCH_EVERY = 7
SEQUENCE_EVERY = 3
BATCH_SIZE = 5


def acknowledge(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(0)  # the test went away


def main(data_dir: Path) -> None:
    registry = Registry.open(load_settings(data_dir=data_dir))
    keys = CreatorKeys(Account.create(), secrets.token_bytes(32))
    policy = RoyaltyPolicy()
    acknowledge(f"C {keys.address}")
    for step in range(1, MAX_WRITES):
        if step % BATCH_EVERY == 0:
            codes = "".join(secrets.token_hex(8) + "\n" for _ in range(BATCH_SIZE))
            batch = prepare_code_batch(codes_source(codes), keys.require_code_key())
            try:
                fingerprints = list(batch.fingerprints())
                request = sign_batch_registration(
                    keys,
                    registry.domain,
                    batch,
                    good_type=GoodType.CODE,
                    product="card",
                    use=Use.SINGLE,
                    royalty_policy=policy,
                    metadata={},
                    now=registry.clock(),
                    new_product=True,
                )
                result = registry.register_batch(request, fingerprints)
            finally:
                batch.close()
            acknowledge(f"B {result.record_id} {','.join(fp.hex() for fp in fingerprints)}")
        else:
            request = sign_registration(
                keys,
                registry.domain,
                good_type=GoodType.FILE,
                fingerprint=secrets.token_bytes(32),
                product="",
                use=Use.TRANSFERABLE,
                royalty_policy=policy,
                metadata={},
                now=registry.clock(),
            )
            entry = registry.register(request)
            nonce = request.signed.message["nonce"]
            acknowledge(f"R {entry.entry_id} {entry.fingerprint.hex()} {nonce}")
        if step % SEQUENCE_EVERY == 0:
            head = registry.sequence()
            if head is not None:
                acknowledge(f"S {head.tree_size} {head.root.hex()}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
