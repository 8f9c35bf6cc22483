"""The embedded dev chain: the anvil binary from npm ``@foundry-rs/anvil``, on 127.0.0.1.

The platform binary is started directly, not through the Node wrapper, so that a signal
reaches it (DESIGN.md, "Dev chain").
"""

from __future__ import annotations

import json
import platform
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from registry.errors import ConfigurationError

ANVIL_CHAIN_ID = 31337
#: How long anvil may take to answer its first request before we give up.
START_TIMEOUT_SECONDS = 20.0
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

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DevChain:
        args = [str(anvil_binary()), "--host", "127.0.0.1", "--port", str(self.port), "--silent"]
        if self.state_file is not None:
            # Written every second, with the states of past blocks, so a restart keeps every
            # anchored head and historical reads still work.
            args += ["--state", str(self.state_file), "--state-interval", "1"]
            args += ["--preserve-historical-states"]
        if self.block_time is not None:
            args += ["--block-time", str(self.block_time)]
        args += list(self._extra)
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_ready()
        return self

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
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
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
