"""Secrets on disk: the data dir, the master key, the registry's signing key, creator keys.

Every secret file is created with owner-only permissions (0600) in one ``os.open`` call,
so there is no window in which it exists with wider permissions, and never overwritten.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from registry.errors import ConfigurationError

# NOTE: eth_account (~0.4 s to import) is loaded by the functions that make an account:
# a creator's code keys are read with this module's secret files alone.
if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

MASTER_KEY_FILE = "master.key"
REGISTRY_KEY_FILE = "registry.key"
REGISTRY_KEYS_DIR = "registry-keys"
MASTER_KEY_SIZE = 32


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (owner-only) if missing; refuse a path that is not a directory."""
    if path.exists() and not path.is_dir():
        raise ConfigurationError(f"{path} exists and is not a directory")
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def write_secret(path: Path, data: bytes) -> None:
    """Write a new secret file with mode 0600; an existing file is never overwritten."""
    ensure_private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise ConfigurationError(f"{path} already exists; refusing to overwrite a key") from exc
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def read_secret(path: Path) -> bytes:
    """Read a secret file, refusing one that group or others can read."""
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(f"{path} is readable by others; run: chmod 600 {path}")
    return path.read_bytes()


def parse_key_text(text: str, *, size: int, what: str) -> bytes:
    """A key given as hex (optionally 0x-prefixed) or base64; the message never echoes it."""
    cleaned = text.strip()
    candidates: list[bytes] = []
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(cleaned.removeprefix("0x")))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(cleaned, validate=True))
    for candidate in candidates:
        if len(candidate) == size:
            return candidate
    raise ConfigurationError(f"{what} must be {size} bytes as hex or base64")


def load_or_create_master_key(data_dir: Path, configured: str | None) -> bytes:
    """The master key from settings, else ``<data_dir>/master.key`` (created on first use)."""
    if configured:
        return parse_key_text(configured, size=MASTER_KEY_SIZE, what="TRACEMARK_MASTER_KEY")
    path = data_dir / MASTER_KEY_FILE
    if not path.exists():
        write_secret(path, secrets.token_bytes(MASTER_KEY_SIZE).hex().encode() + b"\n")
    return parse_key_text(read_secret(path).decode(), size=MASTER_KEY_SIZE, what=str(path))


def load_account(path: Path) -> LocalAccount:
    """An Ethereum account from a 0600 file holding its private key as hex."""
    from eth_account import Account

    text = read_secret(path).decode()
    key = parse_key_text(text, size=32, what=str(path))
    account: LocalAccount = Account.from_key(key)
    return account


def create_account(path: Path) -> LocalAccount:
    """A fresh Ethereum account whose private key is written to ``path`` (0600)."""
    from eth_account import Account

    key = secrets.token_bytes(32)
    account: LocalAccount = Account.from_key(key)
    write_secret(path, ("0x" + key.hex() + "\n").encode())
    return account


def load_or_create_registry_key(data_dir: Path) -> LocalAccount:
    """The registry's first key, which signs tree heads, receipts and attestations until a
    hand-over (``registry.registrykeys``) names another."""
    path = data_dir / REGISTRY_KEY_FILE
    if not path.exists():
        return create_account(path)
    return load_account(path)


def registry_key_path(data_dir: Path, address: str) -> Path:
    """Where a registry key made by a hand-over lives: one 0600 file per key, never reused."""
    return data_dir / REGISTRY_KEYS_DIR / f"{address.lower()}.key"


def create_next_registry_key(data_dir: Path) -> LocalAccount:
    """A fresh registry key for a hand-over, written before the hand-over commits (a crash
    in between leaves an unused key file, never a committed key without its file)."""
    from eth_account import Account

    key = secrets.token_bytes(32)
    account: LocalAccount = Account.from_key(key)
    write_secret(registry_key_path(data_dir, account.address), ("0x" + key.hex() + "\n").encode())
    return account


def load_registry_key(data_dir: Path, address: str) -> LocalAccount:
    """The registry key with ``address``: the first one (``registry.key``) or one a hand-over
    made (``registry-keys/<address>.key``)."""
    first = data_dir / REGISTRY_KEY_FILE
    if first.exists():
        account = load_account(first)
        if account.address.lower() == address.lower():
            return account
    path = registry_key_path(data_dir, address)
    if not path.exists():
        raise ConfigurationError(
            f"the registry's current signing key {address} is not in {data_dir} "
            f"({REGISTRY_KEY_FILE} or {REGISTRY_KEYS_DIR}/): restore it from a backup"
        )
    account = load_account(path)
    if account.address.lower() != address.lower():
        raise ConfigurationError(f"{path} does not hold the key of {address}")
    return account
