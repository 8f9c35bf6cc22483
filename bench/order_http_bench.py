"""Issue 17's benchmark over HTTP: the order cycle with three upline levels against a plain
transfer, in the server's CPU, on one `tracemark serve` in the same run.

Run: ``.venv/bin/python -m bench.order_http_bench [--goods N] [--rounds R] [--database
sqlite|postgres] [--postgres-url URL]``. Writes ``bench/results/orders_http.json`` (a PostgreSQL
run its ``postgres`` part). The server is `tracemark serve` on a loopback port over a fresh
SQLite (no chain: anchoring off; the sequencer's idle poll every 5 s), so its process's CPU
(``/proc/<pid>/stat``, all its threads: uvicorn, routes, the in-process database) is the
server's whole cost; with ``--database postgres`` over a fresh schema (``bench.pgschema``), and
the server's CPU is its process's plus its PostgreSQL backends' (by ``application_name``),
both reported. Set up as ``bench.order_bench``: codes registered by the creator's CLI
over HTTP with a royalty policy (8 %), the creator's rebate policy of three levels (3/2/1 %)
set through its session, cardhub's tree with the seller three levels down, the seller buying
every good first-hand (not measured). Ours, through the typed client: open, deliver (the code),
confirm: three requests. Peer, interleaved, the order rotating each round: one plain transfer
of the same sale (the seller to a buyer at the same price). Median over rounds of the server's
CPU per operation; each run checks the orders' royalty and three rebate lines are due.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.loopback import NotServing, free_port, wait_until_serving
from bench.order_bench import save_part
from bench.pgschema import BackendCpu, fresh_schema, postgres_url
from bench.processcpu import live_cpu_seconds
from registry.creator import CreatorKeys
from registry.fingerprints import CodeFingerprinter
from verifier.client import TracemarkClient

TRACEMARK = str(Path(sys.executable).parent / "tracemark")
PRODUCT = "bench-card"
PRICE = 1_999
ROYALTY = {"recipients": [{"address": "0x" + "5a" * 20, "bps": 800, "label": "studio"}]}
REBATE_LEVELS = [300, 200, 100]
TREE = [("top", None), ("region", "top"), ("city", "region"), ("seller", "city")]


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([TRACEMARK, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"tracemark {args[0]}: {done.stderr}")
    return done.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--goods", type=int, default=20, help="operations of each kind a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres-url", default=None, help="else TRACEMARK_TEST_POSTGRES_URL")
    args = parser.parse_args()
    if args.database == "postgres":
        admin_url = postgres_url(args.postgres_url)
        with fresh_schema(admin_url) as (url, schema):
            backends = BackendCpu(admin_url, schema)
            try:
                _serve_and_measure(args, url, backends)
            finally:
                backends.close()
    else:
        _serve_and_measure(args, None, None)


def _serve_and_measure(
    args: argparse.Namespace, database_url: str | None, backends: BackendCpu | None
) -> None:
    n = args.goods
    total = 2 * n * args.rounds

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("TRACEMARK_") or k == "TRACEMARK_SQLITE_SYNC"
        }
        env.update(
            {
                "TRACEMARK_DATA_DIR": str(home / "server"),
                "TRACEMARK_KEYS_DIR": str(home / "creator-keys"),
                "TRACEMARK_API_PORT": str(port),
                "TRACEMARK_SEQUENCER_INTERVAL": "5",
                "TRACEMARK_TRUST_DIR": str(home / "trust"),
            }
        )
        if database_url:
            env["TRACEMARK_DATABASE_URL"] = database_url
        log = (home / "serve.log").open("w")
        server = subprocess.Popen([TRACEMARK, "serve"], env=env, stderr=log)
        try:
            try:
                wait_until_serving(server, port, seconds=90, interval=0.3, log=home / "serve.log")
            except NotServing as exc:
                raise SystemExit(str(exc)) from None
            result = _measure(url, env, home, server.pid, n, args.rounds, total, backends)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            finally:
                if server.poll() is None:
                    server.kill()
                log.close()

    result_db = {k[3:]: v for k, v in result.items() if k.startswith("db_")}
    cycle, transfer = statistics.median(result["order"]), statistics.median(result["transfer"])
    load = os.getloadavg()[0]
    print(f"{'operation (server CPU, HTTP)':<52}{'CPU ms (median)':>18}")
    print(f"{'order cycle: open, deliver, confirm (3 levels)':<52}{cycle * 1e3:>18.2f}")
    print(f"{'plain transfer (peer)':<52}{transfer * 1e3:>18.2f}")
    if backends:
        print(
            "of which PostgreSQL backends: "
            + ", ".join(f"{k} {statistics.median(v) * 1e3:.2f}" for k, v in result_db.items())
        )
    print(f"ratio: {cycle / transfer:.2f}  (load average {load:.1f})")
    extra: dict[str, object] = {}
    if backends:
        # The server's CPU above is the serve process's plus these, per operation (medians).
        extra["postgres_backends_cpu_ms"] = {
            k: round(statistics.median(v) * 1e3, 3) for k, v in result_db.items()
        }
    save_part(
        "orders_http",
        args.database,
        {
            "database": args.database,
            "goods_per_round": n,
            "rounds": args.rounds,
            "rebate_levels_bps": REBATE_LEVELS,
            "royalty_bps": 800,
            "price": PRICE,
            "order_cycle_server_cpu_ms": round(cycle * 1e3, 3),
            "transfer_server_cpu_ms": round(transfer * 1e3, 3),
            "ratio": round(cycle / transfer, 3),
            "rounds_order_ms": [round(x * 1e3, 3) for x in result["order"]],
            "rounds_transfer_ms": [round(x * 1e3, 3) for x in result["transfer"]],
            "load_average": round(load, 2),
            **extra,
        },
    )


def _measure(
    url: str,
    env: dict[str, str],
    home: Path,
    pid: int,
    n: int,
    rounds: int,
    total: int,
    backends: BackendCpu | None,
) -> dict[str, list[float]]:
    creator_env = {**env, "TRACEMARK_DATA_DIR": str(home / "creator-side")}
    creator_env["TRACEMARK_API_URL"] = url
    _run(creator_env, "keys", "new")
    _run(creator_env, "keys", "enroll")
    codes = [f"BENCH-{i:05d}-{secrets.token_hex(3).upper()}" for i in range(total)]
    (home / "codes.txt").write_text("\n".join(codes) + "\n")
    (home / "policy.json").write_text(json.dumps(ROYALTY))
    _run(
        creator_env,
        "register-codes",
        str(home / "codes.txt"),
        "--product",
        PRODUCT,
        "--use",
        "single",
        "--new-product",
        "--royalty",
        str(home / "policy.json"),
        "--json",
    )
    keys = CreatorKeys.load(home / "creator-keys")
    fingerprinter = CodeFingerprinter(keys.require_code_key())
    made = _run(env, "api-keys", "create", "--platform", "cardhub", "--scope", "transfer", "--json")
    cardhub = TracemarkClient(url, api_key=str(json.loads(made)["key"]))
    session = TracemarkClient(url)
    session.sign_in(keys.account)
    session.set_my_rebate_policy(PRODUCT, REBATE_LEVELS)
    cardhub.place_agents(TREE)
    goods = [(c, fingerprinter.fingerprint(c)) for c in codes]
    for _, fingerprint in goods:  # the seller buys them first-hand: not measured
        cardhub.transfer(
            good_type="code",
            fingerprint=fingerprint,
            seller={"creator": True},
            buyer={"reference": "seller"},
            price=1,
            currency="CNY",
        )

    def cycle(code: str, fingerprint: bytes) -> None:
        order = cardhub.open_order(
            good_type="code",
            fingerprint=fingerprint,
            seller={"reference": "seller"},
            buyer_reference="buyer-" + secrets.token_hex(4),
            price=PRICE,
            currency="CNY",
        )
        cardhub.deliver_order(order.order_id, code=code)
        cardhub.confirm_order(order.order_id)

    def transfer(code: str, fingerprint: bytes) -> None:
        cardhub.transfer(
            good_type="code",
            fingerprint=fingerprint,
            seller={"reference": "seller"},
            buyer={"reference": "buyer-" + secrets.token_hex(4)},
            price=PRICE,
            currency="CNY",
        )

    kinds: dict[str, Callable[[str, bytes], None]] = {"order": cycle, "transfer": transfer}
    cpu: dict[str, list[float]] = {k: [] for k in kinds}
    cpu.update({f"db_{k}": [] for k in kinds})
    names = list(kinds)
    for r in range(rounds):
        batch = goods[2 * r * n : 2 * (r + 1) * n]
        order = names[r % 2 :] + names[: r % 2]
        for i, kind in enumerate(order):
            db_started = backends.read() if backends else 0.0
            started = live_cpu_seconds(pid)
            for code, fingerprint in batch[i * n : (i + 1) * n]:
                kinds[kind](code, fingerprint)
            own = (live_cpu_seconds(pid) - started) / n
            db = ((backends.read() - db_started) / n) if backends else 0.0
            cpu[kind].append(own + db)
            cpu[f"db_{kind}"].append(db)
    # Every measured order left its royalty and three rebate lines due.
    owed: list[str] = []
    cursor = None
    while True:
        page = cardhub.owed_lines(cursor=cursor, limit=200)
        owed += [line.kind for line in page.items if line.order_id is not None]
        cursor = page.next_cursor
        if not cursor:
            break
    expected = n * rounds
    if (owed.count("royalty"), owed.count("rebate")) != (expected, 3 * expected):
        raise SystemExit(f"the orders' due lines are not 1 royalty + 3 rebates each: {owed}")
    cardhub.close()
    session.close()
    return cpu


if __name__ == "__main__":
    main()
