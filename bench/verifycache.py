"""The verify benchmark's registry: built once and cached, with its sample of goods and its keys."""

from __future__ import annotations

import json
import random
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import sign_code_batch

FORMAT = 1
PRODUCT = "bench-card"
PLATFORMS = 4


def default_cache(goods: int) -> Path:
    return Path(tempfile.gettempdir()) / "tracemark-verify-bench" / f"goods-{goods}"


def open_registry(data_dir: Path) -> Any:
    from registry.service import Registry
    from registry.settings import load_settings

    return Registry.open(load_settings(data_dir=data_dir, database_url="", master_key=None))


def load_or_build(cache: Path, goods: int, keys: int, sample: int) -> dict[str, Any]:
    """The cached registry's description; built first if missing or made differently."""
    meta_path = cache / "bench.json"
    if meta_path.exists():
        meta = json.loads(meta_path.read_text())
        want = {"format": FORMAT, "goods": goods, "keys": keys, "sample": min(sample, goods)}
        if all(meta.get(k) == v for k, v in want.items()):
            print(f"using the cached registry in {cache}")
            return dict(meta)
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True, mode=0o700)
    print(f"building a registry of {goods:,} goods in {cache} (once) ...", flush=True)
    started = time.perf_counter()
    meta = _build(cache, goods, keys, sample)
    meta_path.write_text(json.dumps(meta))
    meta_path.chmod(0o600)
    print(f"built in {time.perf_counter() - started:.0f} s", flush=True)
    return meta


def _build(cache: Path, goods: int, n_keys: int, sample: int) -> dict[str, Any]:
    from eth_account import Account

    from api.apikeys import create_api_key
    from bench.ingest_bench import write_codes
    from registry.codesfile import prepare_code_batch
    from registry.creator import CreatorKeys, sign_enrollment
    from registry.fingerprints import CodeFingerprinter

    registry = open_registry(cache / "data")
    creator = CreatorKeys(Account.create(), secrets.token_bytes(32))
    code_key = creator.require_code_key()
    registry.enroll_code_key(
        sign_enrollment(creator, registry.domain, now=registry.clock()), code_key
    )
    codes_path = cache / "codes.csv"
    write_codes(codes_path, goods)
    with codes_path.open(newline="") as source:
        batch = prepare_code_batch(source, code_key)
    request = sign_code_batch(registry, creator, batch, product=PRODUCT, new_product=True)
    result = registry.register_batch(request, batch.fingerprints())
    batch.close()
    assert result.registered == goods
    chosen = set(random.Random(2).sample(range(goods), min(sample, goods)))
    fingerprinter = CodeFingerprinter(code_key)
    pairs = []
    with codes_path.open() as lines:
        for index, line in enumerate(lines):
            if index in chosen:
                code = line.strip()
                pairs.append([code, "0x" + fingerprinter.fingerprint(code).hex()])
    codes_path.unlink()
    api_keys = [
        create_api_key(
            registry.engine,
            f"bench-platform-{i % PLATFORMS}",
            ["verify"],
            f"verify bench {i}",
            registry.clock(),
        )[0]
        for i in range(n_keys)
    ]
    registry.engine.dispose()
    return {
        "format": FORMAT,
        "goods": goods,
        "keys": n_keys,
        "sample": len(pairs),
        "creator": creator.address,
        "product": PRODUCT,
        "api_keys": api_keys,
        "pairs": pairs,
    }


TELEMETRY_TABLES = (
    "verification_events",
    "verification_counts",
    "verification_events_by_good",
    "event_index_state",
    "verification_fold_state",  # the fold's mark: back to 0 with the events it counted
)


def reset_telemetry(cache: Path) -> None:
    """Every run starts from the same database: no verification rows from earlier runs."""
    import sqlite3

    conn = sqlite3.connect(cache / "data" / "registry.db")
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    with conn:
        for table in TELEMETRY_TABLES:
            if table in tables:  # a cache made before a migration added one
                conn.execute(f"DELETE FROM {table}")
    conn.close()
