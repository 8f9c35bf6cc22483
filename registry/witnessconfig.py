"""A witness's configuration file (TOML): its name, key files, the logs it follows, its state.

``tracemark witness init DIR --name NAME`` writes one beside two new 0600 key files (32-byte
seeds: an Ed25519 key for ``cosignature/v1`` lines, an ML-DSA-44 key for ``subtree/v1``
lines, both under the witness's name). Paths in the file are relative to the file. Example::

    name = "cards.example/witness"
    ed25519_key = "witness-ed25519.key"
    mldsa44_key = "witness-mldsa44.key"
    state_dir = "state"

    [[logs]]
    origin = "registry.example/tlog"
    vkeys = ["registry.example/tlog+1a2b3c4d+AX...", "registry.example/tlog+5e6f7a8b+Bn..."]
"""

from __future__ import annotations

import json
import secrets
import time
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ed25519, mldsa

from registry.cosignature import CosignerV1, MLDSA44Cosigner
from registry.errors import ConfigurationError, InvalidInput
from registry.keyring import ensure_private_dir, parse_key_text, read_secret, write_secret
from registry.note import NoteSigner, NoteVerifier, parse_vkey, vkey
from registry.witness import Witness
from registry.witnessstate import WitnessState

CONFIG_FILE: Final = "witness.toml"
ED25519_KEY_FILE: Final = "witness-ed25519.key"
MLDSA44_KEY_FILE: Final = "witness-mldsa44.key"
STATE_DIR: Final = "state"
SEED_SIZE: Final = 32
#: Largest config file read. Threat: a mistaken path (a log, a disk image) read whole.
MAX_CONFIG_BYTES: Final = 1024 * 1024
#: Most logs one config may follow (each costs a dict entry and, once cosigned, one file).
MAX_LOGS: Final = 10_000

_TOP_KEYS = {
    "name",
    "ed25519_key",
    "mldsa44_key",
    "state_dir",
    "submission_prefix",
    "monitoring_prefix",
    "logs",
}


@dataclass(frozen=True)
class FollowedLog:
    """A log the witness follows: its origin and the keys its checkpoints are signed with."""

    origin: str
    verifiers: tuple[NoteVerifier, ...]


@dataclass(frozen=True)
class WitnessConfig:
    """A parsed witness configuration (paths absolute)."""

    name: str
    ed25519_key: Path
    mldsa44_key: Path
    state_dir: Path
    logs: tuple[FollowedLog, ...]
    #: URL path prefixes (tlog-witness): ``<submission>/add-checkpoint`` and
    #: ``<monitoring>/<origin hash>/checkpoint``; "" or "/a/b" (no trailing slash).
    submission_prefix: str = ""
    monitoring_prefix: str = ""

    def __post_init__(self) -> None:
        for what, prefix in (
            ("submission", self.submission_prefix),
            ("monitoring", self.monitoring_prefix),
        ):
            if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
                raise ConfigurationError(
                    f"the {what} prefix must be empty or start with '/' and not end with one"
                )
        origins = [log.origin for log in self.logs]
        if len(set(origins)) != len(origins):
            raise ConfigurationError("the witness config names a log origin twice")

    def cosigners(self, clock: Callable[[], int] | None = None) -> tuple[NoteSigner, ...]:
        """The witness's cosigners from its key files: ML-DSA-44 first (tlog-witness: SHOULD),
        then Ed25519. ``clock`` (POSIX seconds) is for tests; the default is the real time."""
        return self._cosigners(clock)

    def _cosigners(
        self, clock: Callable[[], int] | None = None
    ) -> tuple[MLDSA44Cosigner, CosignerV1]:
        now = clock if clock is not None else _now
        mldsa_key = mldsa.MLDSA44PrivateKey.from_seed_bytes(_read_seed(self.mldsa44_key))
        ed_key = ed25519.Ed25519PrivateKey.from_private_bytes(_read_seed(self.ed25519_key))
        _check_witness_name(self.name)
        return (
            MLDSA44Cosigner(self.name, mldsa_key, clock=now),
            CosignerV1(self.name, ed_key, clock=now),
        )

    def vkeys(self) -> tuple[str, ...]:
        """The witness's verifier keys (types 0x06 and 0x04), for a log's tlog-policy."""
        return tuple(vkey(signer.verifier()) for signer in self._cosigners())


def _check_witness_name(name: str) -> None:
    # A throwaway key: the note module owns the key-name rules (signed-note).
    try:
        CosignerV1(name, ed25519.Ed25519PrivateKey.generate())
    except InvalidInput as exc:
        raise ConfigurationError(
            f"the witness name is not a valid key name: {exc.detail}"
        ) from None


def _now() -> int:
    return int(time.time())


def _read_seed(path: Path) -> bytes:
    try:
        text = read_secret(path).decode("ascii", "replace")
    except FileNotFoundError:
        raise ConfigurationError(f"the witness key {path} does not exist") from None
    return parse_key_text(text, size=SEED_SIZE, what=str(path))


def _string(document: dict[str, Any], key: str, default: str | None = None) -> str:
    value = document.get(key, default)
    if not isinstance(value, str):
        raise ConfigurationError(f"witness config: {key!r} must be a string")
    return value


def parse_witness_config(text: str, base: Path) -> WitnessConfig:
    """A config from its TOML text; relative paths are resolved against ``base``."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"witness config is not TOML: {exc}") from None
    unknown = sorted(set(document) - _TOP_KEYS)
    if unknown:
        raise ConfigurationError(f"witness config: unknown key(s) {', '.join(unknown)}")
    raw_logs = document.get("logs", [])
    if not isinstance(raw_logs, list) or len(raw_logs) > MAX_LOGS:
        raise ConfigurationError(f"witness config: 'logs' must be a list of at most {MAX_LOGS}")
    return WitnessConfig(
        name=_string(document, "name"),
        ed25519_key=base / _string(document, "ed25519_key", ED25519_KEY_FILE),
        mldsa44_key=base / _string(document, "mldsa44_key", MLDSA44_KEY_FILE),
        state_dir=base / _string(document, "state_dir", STATE_DIR),
        logs=tuple(_log(i, entry) for i, entry in enumerate(raw_logs)),
        submission_prefix=_string(document, "submission_prefix", ""),
        monitoring_prefix=_string(document, "monitoring_prefix", ""),
    )


def _log(position: int, entry: object) -> FollowedLog:
    if not isinstance(entry, dict) or set(entry) != {"origin", "vkeys"}:
        raise ConfigurationError(f"witness config: logs[{position}] needs 'origin' and 'vkeys'")
    origin, vkeys = entry["origin"], entry["vkeys"]
    if not isinstance(origin, str) or not origin or "\n" in origin:
        raise ConfigurationError(f"witness config: logs[{position}].origin must be one line")
    if not isinstance(vkeys, list) or not vkeys or not all(isinstance(v, str) for v in vkeys):
        raise ConfigurationError(f"witness config: logs[{position}].vkeys must list vkeys")
    try:
        verifiers = tuple(parse_vkey(v) for v in vkeys)
    except InvalidInput as exc:
        raise ConfigurationError(f"witness config: logs[{position}]: {exc.detail}") from None
    return FollowedLog(origin, verifiers)


def load_witness_config(path: Path) -> WitnessConfig:
    """The config file at ``path`` (bounded read), parsed."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the witness config {path}: {exc.strerror}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigurationError(f"the witness config {path} is larger than {MAX_CONFIG_BYTES}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"the witness config {path} is not UTF-8") from None
    return parse_witness_config(text, path.parent.resolve())


def log_entry(vkeys: Iterable[str]) -> FollowedLog:
    """A followed log from its vkeys alone: the origin is their key name (the log's note keys
    are named after its origin, tlog-checkpoint), which must be the same for all."""
    verifiers = tuple(parse_vkey(v) for v in vkeys)
    names = {verifier.name for verifier in verifiers}
    if len(names) != 1:
        raise InvalidInput("a log's vkeys must all carry the same name, the log's origin")
    return FollowedLog(names.pop(), verifiers)


def render_witness_config(config_dir: Path, config: WitnessConfig) -> str:
    """The TOML text of ``config``, paths relative to ``config_dir`` where they are inside it."""

    def rel(path: Path) -> str:
        return str(path.relative_to(config_dir)) if path.is_relative_to(config_dir) else str(path)

    # NOTE: json.dumps of a str is a valid TOML basic string (same escapes, \\uXXXX included).
    lines = [
        "# A tracemark witness (c2sp.org/tlog-witness). Paths are relative to this file.",
        f"name = {json.dumps(config.name)}",
        f"ed25519_key = {json.dumps(rel(config.ed25519_key))}",
        f"mldsa44_key = {json.dumps(rel(config.mldsa44_key))}",
        f"state_dir = {json.dumps(rel(config.state_dir))}",
        f"submission_prefix = {json.dumps(config.submission_prefix)}",
        f"monitoring_prefix = {json.dumps(config.monitoring_prefix)}",
        "",
        "# One [[logs]] table per log followed: its origin and its checkpoint vkeys.",
    ]
    for log in config.logs:
        keys = ", ".join(json.dumps(vkey(v)) for v in log.verifiers)
        lines += ["[[logs]]", f"origin = {json.dumps(log.origin)}", f"vkeys = [{keys}]", ""]
    return "\n".join(lines) + "\n"


def init_witness(directory: Path, name: str, log_vkeys: Iterable[Iterable[str]] = ()) -> Path:
    """Create a witness in ``directory``: two new 0600 key files, the state dir and the config
    (following the logs given by their vkeys). Refuses to overwrite any of them."""
    ensure_private_dir(directory)
    directory = directory.resolve()
    config_path = directory / CONFIG_FILE
    if config_path.exists():
        raise ConfigurationError(f"{config_path} already exists")
    config = WitnessConfig(
        name=name,
        ed25519_key=directory / ED25519_KEY_FILE,
        mldsa44_key=directory / MLDSA44_KEY_FILE,
        state_dir=directory / STATE_DIR,
        logs=tuple(log_entry(vkeys) for vkeys in log_vkeys),
    )
    _check_witness_name(name)
    for path in (config.ed25519_key, config.mldsa44_key):
        write_secret(path, secrets.token_bytes(SEED_SIZE).hex().encode() + b"\n")
    ensure_private_dir(config.state_dir)
    config_path.write_text(render_witness_config(directory, config), encoding="utf-8")
    return config_path


def open_witness(config: WitnessConfig, clock: Callable[[], int] | None = None) -> Witness:
    """The witness a config describes, its state directory opened (and owned) by this process."""
    signers = config.cosigners(clock)
    state = WitnessState(config.state_dir)
    return Witness(signers, {log.origin: log.verifiers for log in config.logs}, state)


__all__ = [
    "CONFIG_FILE",
    "ED25519_KEY_FILE",
    "MLDSA44_KEY_FILE",
    "FollowedLog",
    "WitnessConfig",
    "init_witness",
    "load_witness_config",
    "log_entry",
    "open_witness",
    "parse_witness_config",
    "render_witness_config",
]
