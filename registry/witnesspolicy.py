"""Witness policies (C2SP tlog-policy): known logs, known witnesses and the quorum of cosigners.

A policy file names the logs whose checkpoints count, the witnesses (each a cosigner vkey and
an optional submission URL) and a quorum built from witnesses and k-of-n groups. The registry
reads one to know whom to ask for cosignatures before it publishes a checkpoint; a verifier
reads one from its trust root to know how many cosignatures a checkpoint needs.

The parser follows the spec line by line: space/tab separators only, comment and blank lines
ignored, a group or the quorum referring only to names defined on earlier lines, each name
listed once in a group, ``none`` predefined and never a member, duplicate keys refused, the
octets 0x09, 0x0A, 0x20-0x7E and 0x80-0xFF only (high-bit octets are opaque, so names are
compared as octet strings: decoded with ``surrogateescape``, never normalised).

NOTE: pure (no ORM, no web): the verifier kit and the monitor use it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from registry.errors import ConfigurationError, InvalidInput
from registry.note import (
    SIG_COSIGNATURE_V1,
    SIG_ED25519,
    SIG_MLDSA44_SUBTREE,
    Note,
    NoteError,
    NoteVerifier,
    parse_vkey,
    vkey,
)

MAX_POLICY_BYTES: Final = 256 * 1024
"""A policy file's size limit: 64 ML-DSA-44 witness vkeys are ~120 KB; more is abuse."""

MAX_LOGS: Final = 64
MAX_WITNESSES: Final = 64
MAX_GROUPS: Final = 64
"""The spec asks implementations to support at least 32 logs, 32 witnesses and 32 groups."""

NONE: Final = "none"
"""The predefined name of the empty quorum (no cosignature needed); never a group member."""

#: Signature types a log may sign checkpoints with (tlog-checkpoint: any note signature; the
#: ones ``registry.note`` speaks) and a witness may cosign with (tlog-cosignature only).
LOG_SIG_TYPES: Final = frozenset({SIG_ED25519, SIG_COSIGNATURE_V1, SIG_MLDSA44_SUBTREE})
WITNESS_SIG_TYPES: Final = frozenset({SIG_COSIGNATURE_V1, SIG_MLDSA44_SUBTREE})

_SEPARATOR = re.compile(r"[ \t]+")
_DECIMAL = re.compile(r"[0-9]{1,6}")
# Octets the spec forbids: every control character but tab and newline, and DEL.
_FORBIDDEN_OCTET = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")


class InvalidWitnessPolicy(InvalidInput):
    """A witness policy file breaks a rule of C2SP tlog-policy."""

    code = "invalid-witness-policy"
    diagnostics = "Fix the policy line the detail names (c2sp.org/tlog-policy)."


class QuorumNotReached(NoteError):
    """A checkpoint's verified cosignatures do not satisfy the policy's quorum."""

    code = "witness-quorum-not-reached"
    diagnostics = "Do not trust the checkpoint: fetch one the policy's witnesses cosigned."


@dataclass(frozen=True)
class PolicyLog:
    """A ``log <vkey> [<url>]`` line: the key's name is the log's origin."""

    verifier: NoteVerifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyWitness:
    """A ``witness <name> <vkey> [<url>]`` line; ``url`` is the submission prefix, if given."""

    name: str
    verifier: NoteVerifier
    url: str | None = None


@dataclass(frozen=True)
class PolicyGroup:
    """A ``group <name> all|any|<k> <name>...`` line: witnessed when ``k`` members are."""

    name: str
    #: As written, normalised: ``all``, ``any`` or the decimal k.
    threshold: str
    members: tuple[str, ...]

    @property
    def k(self) -> int:
        if self.threshold == "all":
            return len(self.members)
        if self.threshold == "any":
            return 1
        return int(self.threshold)


def _same_key(a: NoteVerifier, b: NoteVerifier) -> bool:
    # NOTE: "duplicate" means the same underlying public key, whatever name or key id wraps it.
    return a.public_key == b.public_key


class _Definitions:
    """The names defined so far, in file order: each rule is checked as its line is read."""

    def __init__(self) -> None:
        self.logs: list[PolicyLog] = []
        self.witnesses: dict[str, PolicyWitness] = {}
        self.groups: dict[str, PolicyGroup] = {}
        self.quorum: str | None = None

    def _new_name(self, name: str) -> None:
        if name == NONE or name in self.witnesses or name in self.groups:
            raise InvalidWitnessPolicy(f"the name {name!r} is already defined")

    def add_log(self, log: PolicyLog) -> None:
        if log.verifier.sig_type not in LOG_SIG_TYPES:
            raise InvalidWitnessPolicy("a log's vkey must be a checkpoint signature type")
        if any(_same_key(log.verifier, other.verifier) for other in self.logs):
            raise InvalidWitnessPolicy("a log's key is listed twice")
        if len(self.logs) >= MAX_LOGS:
            raise InvalidWitnessPolicy(f"at most {MAX_LOGS} logs")
        self.logs.append(log)

    def add_witness(self, witness: PolicyWitness) -> None:
        self._new_name(witness.name)
        if witness.verifier.sig_type not in WITNESS_SIG_TYPES:
            raise InvalidWitnessPolicy(
                f"witness {witness.name!r}: a witness's vkey must be a cosignature type "
                "(0x04 Ed25519 cosignature/v1 or 0x06 ML-DSA-44)"
            )
        for other in self.witnesses.values():
            if _same_key(witness.verifier, other.verifier):
                raise InvalidWitnessPolicy(
                    f"witness {witness.name!r} has the same key as witness {other.name!r}"
                )
        if len(self.witnesses) >= MAX_WITNESSES:
            raise InvalidWitnessPolicy(f"at most {MAX_WITNESSES} witnesses")
        self.witnesses[witness.name] = witness

    def add_group(self, group: PolicyGroup) -> None:
        self._new_name(group.name)
        if not group.members:
            raise InvalidWitnessPolicy(f"group {group.name!r} must list at least one member")
        seen: set[str] = set()
        for member in group.members:
            if member == NONE:
                raise InvalidWitnessPolicy("'none' cannot be a group member")
            if member not in self.witnesses and member not in self.groups:
                raise InvalidWitnessPolicy(
                    f"group {group.name!r}: {member!r} is not defined on an earlier line"
                )
            if member in seen:
                raise InvalidWitnessPolicy(f"group {group.name!r} lists {member!r} twice")
            seen.add(member)
        if not 1 <= group.k <= len(group.members):
            raise InvalidWitnessPolicy(
                f"group {group.name!r}: the threshold must be 1 to {len(group.members)}"
            )
        if len(self.groups) >= MAX_GROUPS:
            raise InvalidWitnessPolicy(f"at most {MAX_GROUPS} groups")
        self.groups[group.name] = group

    def set_quorum(self, name: str) -> None:
        if self.quorum is not None:
            raise InvalidWitnessPolicy("a policy has exactly one quorum line")
        if name != NONE and name not in self.witnesses and name not in self.groups:
            raise InvalidWitnessPolicy(f"the quorum {name!r} is not defined on an earlier line")
        self.quorum = name


@dataclass(frozen=True)
class WitnessPolicy:
    """A parsed policy; built only valid (the constructor replays every rule)."""

    logs: tuple[PolicyLog, ...]
    witnesses: tuple[PolicyWitness, ...]
    groups: tuple[PolicyGroup, ...]
    quorum: str
    _by_name: dict[str, PolicyWitness | PolicyGroup] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Canonical order (logs, witnesses, groups in file order, quorum) always satisfies
        # "defined on an earlier line" when the file did, so replaying it validates a policy
        # built in code the same way as a parsed one.
        defined = _Definitions()
        for log in self.logs:
            defined.add_log(log)
        for witness in self.witnesses:
            defined.add_witness(witness)
        for group in self.groups:
            defined.add_group(group)
        defined.set_quorum(self.quorum)
        object.__setattr__(self, "_by_name", {**defined.witnesses, **defined.groups})

    def witness(self, name: str) -> PolicyWitness:
        found = self._by_name.get(name)
        if not isinstance(found, PolicyWitness):
            raise KeyError(name)
        return found

    def satisfied(self, verified_witness_names: Iterable[str]) -> bool:
        """Whether cosignatures from these witnesses (policy names) reach the quorum."""
        present = frozenset(verified_witness_names)
        memo: dict[str, bool] = {}

        def witnessed(name: str) -> bool:
            if name not in memo:
                item = self._by_name[name]
                if isinstance(item, PolicyWitness):
                    memo[name] = name in present
                else:
                    memo[name] = sum(witnessed(m) for m in item.members) >= item.k
            return memo[name]

        return self.quorum == NONE or witnessed(self.quorum)

    def check(self, note: Note) -> tuple[str, ...]:
        """The witnesses (policy names) whose cosignatures on ``note`` verify, in policy order.

        1. If the policy lists logs, one of them (key name = the note's origin line) must have
           signed the note.
        2. Each line from a policy witness's key (name and key id) must verify: a failing one
           makes the note malformed (signed-note), whatever the quorum. Unknown lines are
           ignored.
        3. The verified witnesses must satisfy the quorum; ``QuorumNotReached`` names who is
           missing otherwise.
        """
        # 1. A log of the policy signed it.
        origin = note.text.split("\n", 1)[0]
        if self.logs:
            logs = [log.verifier for log in self.logs if log.verifier.name == origin]
            if not any(_verified(note, verifier) for verifier in logs):
                raise NoteError(f"no log of the policy signed the checkpoint of {origin!r}")
        # 2. Every known witness's line verifies.
        verified = tuple(w.name for w in self.witnesses if _verified(note, w.verifier))
        # 3. The quorum.
        if not self.satisfied(verified):
            missing = [w.name for w in self.witnesses if w.name not in verified]
            raise QuorumNotReached(
                f"the witness quorum {self.quorum!r} is not reached: cosigned by "
                f"{', '.join(verified) or 'no witness'}; missing {', '.join(missing)}"
            )
        return verified

    def to_text(self) -> str:
        """The canonical policy file: logs, witnesses, groups, the quorum; no comments."""
        return "".join(self._lines())

    def _lines(self) -> Iterator[str]:
        for log in self.logs:
            yield _line("log", vkey(log.verifier), log.url)
        for witness in self.witnesses:
            yield _line("witness", witness.name, vkey(witness.verifier), witness.url)
        for group in self.groups:
            yield _line("group", group.name, group.threshold, *group.members)
        yield _line("quorum", self.quorum)


def _line(*tokens: str | None) -> str:
    return " ".join(token for token in tokens if token is not None) + "\n"


def _verified(note: Note, verifier: NoteVerifier) -> bool:
    """Whether ``verifier`` signed ``note``; ``NoteError`` if its line is there but fails."""
    found = False
    for signature in note.signatures:
        if signature.name == verifier.name and signature.key_id == verifier.key_id:
            if not verifier.verify(note.text, signature.signature):
                raise NoteError(f"the signature of {signature.name} ({signature.key_id:08x}) fails")
            found = True
    return found


def _parse_key(token: str) -> NoteVerifier:
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidWitnessPolicy("a vkey must be UTF-8") from None
    try:
        return parse_vkey(token)
    except NoteError as exc:
        raise InvalidWitnessPolicy(f"bad vkey: {exc.detail}") from None


def _threshold(token: str) -> str:
    if token in ("all", "any"):
        return token
    if not _DECIMAL.fullmatch(token):
        raise InvalidWitnessPolicy(f"a group threshold is all, any or a decimal k, not {token!r}")
    return str(int(token))


def _parse_line(tokens: list[str], defined: _Definitions) -> None:
    keyword, args = tokens[0], tokens[1:]
    if keyword == "log" and len(args) in (1, 2):
        defined.add_log(PolicyLog(_parse_key(args[0]), args[1] if len(args) == 2 else None))
    elif keyword == "witness" and len(args) in (2, 3):
        url = args[2] if len(args) == 3 else None
        defined.add_witness(PolicyWitness(args[0], _parse_key(args[1]), url))
    elif keyword == "group" and len(args) >= 3:
        defined.add_group(PolicyGroup(args[0], _threshold(args[1]), tuple(args[2:])))
    elif keyword == "quorum" and len(args) == 1:
        defined.set_quorum(args[0])
    elif keyword in ("log", "witness", "group", "quorum"):
        raise InvalidWitnessPolicy(f"a {keyword} line has the wrong number of items")
    else:
        raise InvalidWitnessPolicy(f"unknown line type {keyword!r}")


def parse_policy(data: str | bytes) -> WitnessPolicy:
    """A policy file; ``InvalidWitnessPolicy`` names the line and the rule it breaks."""
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
    if len(raw) > MAX_POLICY_BYTES:
        raise InvalidWitnessPolicy(f"a policy file is at most {MAX_POLICY_BYTES} bytes")
    bad = _FORBIDDEN_OCTET.search(raw)
    if bad is not None:
        number = raw.count(b"\n", 0, bad.start()) + 1
        raise InvalidWitnessPolicy(
            f"line {number}: octet 0x{bad.group()[0]:02x} is not allowed "
            "(only tab, newline, 0x20-0x7E and 0x80-0xFF)"
        )
    # NOTE: a missing newline after the last line is accepted, as line readers do.
    text = raw.decode("utf-8", "surrogateescape")
    defined = _Definitions()
    for number, line in enumerate(text.split("\n"), start=1):
        content = line.strip(" \t")
        if not content or content.startswith("#"):
            continue
        try:
            _parse_line(_SEPARATOR.split(content), defined)
        except InvalidWitnessPolicy as exc:
            raise InvalidWitnessPolicy(f"line {number}: {exc.detail}") from None
    if defined.quorum is None:
        raise InvalidWitnessPolicy("a policy must have a quorum line")
    return WitnessPolicy(
        logs=tuple(defined.logs),
        witnesses=tuple(defined.witnesses.values()),
        groups=tuple(defined.groups.values()),
        quorum=defined.quorum,
    )


def load_witness_policy(path: Path | None) -> WitnessPolicy | None:
    """``TRACEMARK_WITNESS_POLICY``: the tlog-policy file, parsed; a bad one stops the start
    with one line naming the file and the rule."""
    if path is None:
        return None
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            f"TRACEMARK_WITNESS_POLICY: cannot read {path}: {exc.strerror}"
        ) from None
    try:
        policy = parse_policy(data)
    except InvalidWitnessPolicy as exc:
        raise ConfigurationError(f"TRACEMARK_WITNESS_POLICY {path}: {exc.detail}") from None
    missing = [w.name for w in policy.witnesses if w.url is None]
    if missing:
        raise ConfigurationError(
            f"TRACEMARK_WITNESS_POLICY {path}: the registry asks its witnesses, so each needs "
            f"its submission URL; none for {', '.join(missing)}"
        )
    return policy


__all__ = [
    "MAX_GROUPS",
    "MAX_LOGS",
    "MAX_POLICY_BYTES",
    "MAX_WITNESSES",
    "NONE",
    "InvalidWitnessPolicy",
    "PolicyGroup",
    "PolicyLog",
    "PolicyWitness",
    "QuorumNotReached",
    "WitnessPolicy",
    "load_witness_policy",
    "parse_policy",
]
