"""A creator's code keys on their own machine: the key files, their kids, the current one.

Pure and light (hashlib and files): fingerprinting a code needs the current code key and
nothing of the creator's account, so ``tracemark fingerprint --code`` loads this alone
(``bench/cli_bench.py``). The registry's sealed copies of the keys are ``registry.codekeys``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from registry.errors import ConfigurationError, InvalidInput
from registry.fingerprints import CODE_KEY_SIZE
from registry.keyring import read_secret, write_secret

ACCOUNT_FILE: Final = "creator.key"
CODE_KEY_FILE: Final = "code.key"
#: A code key made by ``tracemark keys rotate``: ``code-<kid>.key``, next to the first one.
ROTATED_CODE_KEY_GLOB: Final = "code-*.key"
#: The kid of the current code key, once the creator has rotated (public: a kid is not
#: secret); without it the current key is ``code.key``.
CURRENT_CODE_KEY_FILE: Final = "code.current"

KID_SIZE: Final = 8
"""A key id is the first bytes of the key's commitment (16 hex characters): public, since
the commitment is in the signed enrolment record already."""


def key_commitment(code_key: bytes) -> bytes:
    """What a ``CodeKeyEnrollment`` signs: SHA-256 of the key, never the key itself."""
    return hashlib.sha256(code_key).digest()


def key_id(commitment: bytes) -> str:
    """The key id (``kid``) of a code key, from its commitment: 16 hex characters."""
    return commitment[:KID_SIZE].hex()


@dataclass(frozen=True)
class CodeKeyring:
    """Every code key in a creator's keys directory, by kid, and the current one."""

    #: The current code key: what new codes are fingerprinted and registered under.
    current: bytes | None
    #: Every code key in the directory (the current one too), by kid: older keys are kept,
    #: so that codes made under them can still be fingerprinted and retired.
    keys: Mapping[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(cls, keys_dir: Path) -> CodeKeyring:
        """A first code key, ``code.key``, written owner-only; never over an existing one."""
        code_key = secrets.token_bytes(CODE_KEY_SIZE)
        write_secret(keys_dir / CODE_KEY_FILE, code_key.hex().encode() + b"\n")
        return cls(code_key, {key_id(key_commitment(code_key)): code_key})

    @classmethod
    def load(cls, keys_dir: Path) -> CodeKeyring:
        """The code keys of a keys directory made by ``tracemark keys new``."""
        if not (keys_dir / ACCOUNT_FILE).exists():
            raise ConfigurationError(f"no creator key in {keys_dir}; run: tracemark keys new")
        found: dict[str, bytes] = {}
        first = None
        paths = sorted(keys_dir.glob(ROTATED_CODE_KEY_GLOB))
        if (keys_dir / CODE_KEY_FILE).exists():
            paths.insert(0, keys_dir / CODE_KEY_FILE)
        for path in paths:
            key = _read_code_key(path)
            kid = key_id(key_commitment(key))
            if path.name not in (CODE_KEY_FILE, f"code-{kid}.key"):
                raise ConfigurationError(f"{path} holds the code key {kid}, not the one named")
            found[kid] = key
            first = key if path.name == CODE_KEY_FILE else first
        current = first
        current_path = keys_dir / CURRENT_CODE_KEY_FILE
        if current_path.exists():
            kid = current_path.read_text().strip()
            if kid not in found:
                raise ConfigurationError(f"{current_path} names {kid!r}: no such code key here")
            current = found[kid]
        return cls(current, found)

    @staticmethod
    def rotate(keys_dir: Path) -> str:
        """Make a new code key, ``code-<kid>.key``, and make it the current one; the older
        files are kept. Returns its kid."""
        code_key = secrets.token_bytes(CODE_KEY_SIZE)
        kid = key_id(key_commitment(code_key))
        write_secret(keys_dir / f"code-{kid}.key", code_key.hex().encode() + b"\n")
        # Atomic: a crash leaves the old current key or the new one, never half a name.
        staging = keys_dir / (CURRENT_CODE_KEY_FILE + ".tmp")
        staging.write_text(kid + "\n")
        os.replace(staging, keys_dir / CURRENT_CODE_KEY_FILE)
        return kid

    @property
    def current_kid(self) -> str | None:
        return None if self.current is None else key_id(key_commitment(self.current))

    def require_current(self) -> bytes:
        if self.current is None:
            raise ConfigurationError("this keys directory has no code key; run: tracemark keys new")
        return self.current

    def commitment_of(self, kid: str) -> bytes:
        """The commitment of a code key named by its kid (a local key file), or given whole
        as 0x and 64 hex digits (a key whose file is gone)."""
        text = kid.strip().lower()
        if text.startswith("0x") and len(text) == 66:
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                pass
        elif text in self.keys:
            return key_commitment(self.keys[text])
        raise InvalidInput(
            f"no code key {kid!r} in this keys directory; give its kid (tracemark keys show) "
            "or its whole commitment (0x and 64 hex digits)"
        )


def _read_code_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(read_secret(path).decode().strip())
    except ValueError:
        key = b""
    if len(key) != CODE_KEY_SIZE:
        raise ConfigurationError(f"{path} is not a code key ({CODE_KEY_SIZE} bytes as hex)")
    return key


__all__ = [
    "ACCOUNT_FILE",
    "CODE_KEY_FILE",
    "CURRENT_CODE_KEY_FILE",
    "KID_SIZE",
    "ROTATED_CODE_KEY_GLOB",
    "CodeKeyring",
    "key_commitment",
    "key_id",
]
