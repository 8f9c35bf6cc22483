"""The embedded dev chain: the anvil binary from npm ``@foundry-rs/anvil``, on 127.0.0.1.

The platform binary is started directly, not through the Node wrapper, so that a signal
reaches it (DESIGN.md, "Dev chain"). With a state file, anvil keeps ``HISTORY_STATES`` states
in memory and this wrapper snapshots the chain to the file atomically every
``SNAPSHOT_INTERVAL_SECONDS`` (``anvil_dumpState``, then write, fsync, rename), so the file is
never half-written and stays bounded (docs/ARCHITECTURE.md, "The dev chain's state").
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import platform
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from registry.errors import ConfigurationError

ANVIL_CHAIN_ID = 31337
#: How long anvil may take to answer its first request before we give up.
START_TIMEOUT_SECONDS = 20.0

HISTORY_STATES: Final = 128
"""Past blocks whose state anvil keeps (``--prune-history``) and the snapshot carries.

Verifiers read a root at a few blocks' depth (``confirmed_root``: the confirmations,
``TRACEMARK_ANCHOR_CONFIRMATIONS``, 3 by default), and anvil's ``finalized`` block is 64
below the head: 128 covers both with a margin of 64. Threat: with every past state kept
(``--preserve-historical-states`` alone), the state file grew ~100 KB/s and anvil's memory
with it (220 MB, 930 MB RSS after 32 minutes)."""

PERSISTED_STATES: Final = 16
"""Past blocks' states a snapshot carries (each is ~8-50 KB): a restart can read roots at
the confirmations' depth (3 by default) at once, with a margin of 13. NOTE: deeper reads of
blocks from before a restart (the ``finalized`` block, 64 deep) fail until the chain has
moved that far past it (about a minute at 1 s blocks)."""

KEPT_EMPTY_BLOCKS: Final = 256
"""Blocks without a transaction older than this many below the head are left out of a
snapshot: each is ~1.6 KB of JSON, one a second. Every block with a transaction (each anchor)
is kept, so receipts and anchor blocks stay readable; the ``finalized`` block (64 deep) and
every block whose state is kept are within the 256."""

SNAPSHOT_INTERVAL_SECONDS: Final = 1.0
"""How often the running chain is written to its state file (at most once a block)."""
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def anvil_binary(root: Path = PROJECT_ROOT) -> Path:
    """The anvil executable npm installed for this platform."""
    system = {"Linux": "linux", "Darwin": "darwin", "Windows": "win32"}.get(platform.system())
    machine = {"x86_64": "amd64", "AMD64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine()
    )
    path = root / "node_modules" / "@foundry-rs" / f"anvil-{system}-{machine}" / "bin" / "anvil"
    if not path.exists():
        raise ConfigurationError(f"anvil is not installed at {path}; run: npm ci")
    return path


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM anvil when its parent dies, even by SIGKILL, so a
    killed ``serve`` does not leave a chain writing to its state file behind.

    NOTE: best effort. Some sandboxes accept the prctl and never deliver the signal (this
    project's machines do: a SIGKILLed ``serve`` there leaves anvil running, to be stopped
    by hand). ``serve`` stops anvil itself on SIGINT and SIGTERM."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DevChain:
    """A running anvil; a context manager that stops it on exit."""

    def __init__(
        self,
        *,
        state_file: Path | None = None,
        block_time: float | None = None,
        port: int | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.state_file = state_file
        self.block_time = block_time
        self.port = port or free_port()
        self._extra = extra_args
        self._process: subprocess.Popen[bytes] | None = None
        self._snapshots: threading.Thread | None = None
        self._stopping = threading.Event()
        self._snapshot_lock = threading.Lock()
        #: The head block of the last snapshot written (None before the first).
        self.snapshot_block: int | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DevChain:
        args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state_file is not None:
            # NOTE: not anvil's own ``--state FILE --state-interval 1``: anvil rewrites that
            # file in place (0 B and half-written files were seen mid-write). anvil loads the
            # last complete snapshot; this wrapper writes the next ones (``snapshot``).
            for stale in self.state_file.parent.glob(self.state_file.name + ".tmp-*"):
                stale.unlink(missing_ok=True)  # a snapshot whose writer died before its rename
            if self.state_file.exists():
                args += ["--load-state", str(self.state_file)]
            args += ["--prune-history", str(HISTORY_STATES), "--preserve-historical-states"]
            # NOTE: the contract's EVM version (contracts/TracemarkAnchor.json). From Prague
            # on, EIP-2935's contract stores every block's hash (8,191 of them, ~140 B each,
            # in every state a snapshot carries): 19 MB of snapshot for nothing we read.
            args += ["--hardfork", "cancun"]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        args += list(self._extra)
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        if self.state_file is not None:
            self._stopping.clear()
            self._snapshots = threading.Thread(
                target=self._snapshot_loop, name="devchain-snapshots", daemon=True
            )
            self._snapshots.start()
        return self

    def snapshot(self) -> int:
        """Write the chain to the state file atomically (temporary file, fsync, rename, fsync
        of the directory) and return its head block: a crash at any moment leaves the last
        complete snapshot. Raises ``OSError`` or ``ConfigurationError`` if anvil or the disk
        fails (the previous snapshot stays)."""
        if self.state_file is None:
            raise ConfigurationError("this dev chain has no state file")
        with self._snapshot_lock:
            dumped = self.rpc("anvil_dumpState", True)  # with the states of past blocks
            if not isinstance(dumped, str):
                raise ConfigurationError("anvil_dumpState answered no state")
            state = json.loads(gzip.decompress(bytes.fromhex(dumped.removeprefix("0x"))))
            head = _trim_empty_blocks(state)
            recent = {self._block_hash(number) for number in range(head - PERSISTED_STATES, head)}
            state["historical_states"] = [
                _trim_block_hashes(entry, head)
                for entry in state.get("historical_states") or []
                if entry[0] in recent
            ]
            data = json.dumps(state, separators=(",", ":")).encode()
            _write_atomically(self.state_file, data)
            self.snapshot_block = head
            return head

    def _block_hash(self, number: int) -> str | None:
        block = self.rpc("eth_getBlockByNumber", hex(number), False) if number >= 0 else None
        return str(block["hash"]) if isinstance(block, dict) else None

    def _snapshot_loop(self) -> None:
        while not self._stopping.wait(SNAPSHOT_INTERVAL_SECONDS):
            try:
                if int(str(self.rpc("eth_blockNumber")), 16) != self.snapshot_block:
                    self.snapshot()
            except (OSError, ValueError, ConfigurationError):
                continue  # anvil stopping or gone, or the disk full: the last snapshot stays

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise ConfigurationError(f"anvil exited with status {self._process.returncode}")
            try:
                self.rpc("eth_chainId")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.05)
        self.stop()
        raise ConfigurationError(f"anvil did not answer on {self.rpc_url} in time")

    def rpc(self, method: str, *params: object) -> object:
        """One JSON-RPC call (for the chain's own test hooks: anvil_mine, evm_snapshot, ...)."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        request = urllib.request.Request(  # noqa: S310 - always http://127.0.0.1:port
            self.rpc_url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            answer = json.loads(response.read())
        if "error" in answer:
            raise ConfigurationError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result")

    def stop(self) -> None:
        self._stopping.set()
        if self._snapshots is not None:
            self._snapshots.join(timeout=30)
            self._snapshots = None
        process = self._process
        if process is None or process.poll() is not None:
            self._process = None
            return
        if self.state_file is not None:
            with contextlib.suppress(OSError, ValueError, ConfigurationError):
                self.snapshot()  # the last blocks too
        self._process = None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> DevChain:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _trim_empty_blocks(state: dict[str, Any]) -> int:
    """Leave out of an ``anvil_dumpState`` state the blocks without a transaction older than
    ``KEPT_EMPTY_BLOCKS`` below its head (genesis stays); return the head's number."""
    best = state.get("best_block_number", 0)
    head = int(best, 16) if isinstance(best, str) else int(best)

    def keep(block: dict[str, Any]) -> bool:
        number = int(block["header"]["number"], 16)
        return bool(block.get("transactions")) or number == 0 or number > head - KEPT_EMPTY_BLOCKS

    state["blocks"] = [block for block in state.get("blocks") or [] if keep(block)]
    return head


def _trim_block_hashes(entry: list[Any], head: int) -> list[Any]:
    """A past state carries the hash of every block before it; BLOCKHASH reads the last 256
    only (EIP-2935 aside), so older ones are left out: without this each state grows ~80 B a
    block, for ever."""
    hashes = entry[1].get("block_hashes")
    if isinstance(hashes, dict):
        entry[1]["block_hashes"] = {
            number: value for number, value in hashes.items() if int(number, 16) > head - 300
        }
    return entry


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f"{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    try:
        with temporary.open("wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
