"""The creator's side: keys on the creator's machine, fingerprints made locally, messages signed.

Codes never leave this module's caller: a bulk file is read line by line, each code is
normalised and HMAC'd under the creator's code key, and only fingerprints (spooled to a
temporary file, 32 bytes each) and one signature over their items root go to a registry.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eth_account.signers.local import LocalAccount

from registry import merkle
from registry.codekeys import key_commitment, key_id
from registry.eip712 import Domain, sign
from registry.errors import ConfigurationError, InvalidInput, MalformedCode
from registry.fingerprints import CODE_KEY_SIZE, CodeFingerprinter, GoodType, Use
from registry.keyring import create_account, load_account, read_secret, write_secret
from registry.requests import RegistrationRequest, RevocationRequest, metadata_hash
from registry.royalty import RoyaltyPolicy, policy_hash
from registry.signed import SignedMessage

ACCOUNT_FILE = "creator.key"
CODE_KEY_FILE = "code.key"
#: A code key made by ``tracemark keys rotate``: ``code-<kid>.key``, next to the first one.
ROTATED_CODE_KEY_GLOB = "code-*.key"
#: The kid of the current code key, once the creator has rotated (public: a kid is not
#: secret); without it the current key is ``code.key``.
CURRENT_CODE_KEY_FILE = "code.current"
#: A signed message is valid this long by default: long enough for a 10^6-code upload.
DEFAULT_VALIDITY_SECONDS = 3_600
#: A bulk file's line may be long (several CSV columns), but not unbounded.
MAX_CSV_LINE = 4_096


@dataclass(frozen=True)
class CreatorKeys:
    """A creator's account (signs) and code key (fingerprints codes), from a keys directory."""

    account: LocalAccount
    #: The current code key: what new codes are fingerprinted and registered under.
    code_key: bytes | None
    #: Every code key in the keys directory (the current one too), by kid: older keys are
    #: kept, so that codes made under them can still be fingerprinted and retired.
    code_keys: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return str(self.account.address)

    @classmethod
    def create(cls, keys_dir: Path) -> CreatorKeys:
        account = create_account(keys_dir / ACCOUNT_FILE)
        code_key = secrets.token_bytes(CODE_KEY_SIZE)
        write_secret(keys_dir / CODE_KEY_FILE, code_key.hex().encode() + b"\n")
        return cls(account, code_key, {key_id(key_commitment(code_key)): code_key})

    @classmethod
    def load(cls, keys_dir: Path) -> CreatorKeys:
        account_path = keys_dir / ACCOUNT_FILE
        if not account_path.exists():
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
        code_key = first
        current_path = keys_dir / CURRENT_CODE_KEY_FILE
        if current_path.exists():
            kid = current_path.read_text().strip()
            if kid not in found:
                raise ConfigurationError(f"{current_path} names {kid!r}: no such code key here")
            code_key = found[kid]
        return cls(load_account(account_path), code_key, found)

    @staticmethod
    def rotate_code_key(keys_dir: Path) -> str:
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
        return None if self.code_key is None else key_id(key_commitment(self.code_key))

    def require_code_key(self) -> bytes:
        if self.code_key is None:
            raise ConfigurationError("this keys directory has no code key; run: tracemark keys new")
        return self.code_key

    def commitment_of(self, kid: str) -> bytes:
        """The commitment of a code key named by its kid (a local key file), or given whole
        as 0x and 64 hex digits (a key whose file is gone)."""
        text = kid.strip().lower()
        if text.startswith("0x") and len(text) == 66:
            try:
                return bytes.fromhex(text[2:])
            except ValueError:
                pass
        elif text in self.code_keys:
            return key_commitment(self.code_keys[text])
        raise InvalidInput(
            f"no code key {kid!r} in this keys directory; give its kid (tracemark keys show) "
            "or its whole commitment (0x and 64 hex digits)"
        )

    def _sign(self, primary_type: str, message: dict[str, Any], domain: Domain) -> SignedMessage:
        signature = sign(primary_type, message, domain, bytes(self.account.key))
        return SignedMessage(primary_type, message, signature, self.address)


def _read_code_key(path: Path) -> bytes:
    try:
        key = bytes.fromhex(read_secret(path).decode().strip())
    except ValueError:
        key = b""
    if len(key) != CODE_KEY_SIZE:
        raise ConfigurationError(f"{path} is not a code key ({CODE_KEY_SIZE} bytes as hex)")
    return key


def fresh_nonce() -> int:
    """A random 63-bit nonce: no counter to keep in sync between a creator's machines."""
    return secrets.randbits(63)


def sign_enrollment(keys: CreatorKeys, domain: Domain, *, now: int) -> SignedMessage:
    message = {
        "keyCommitment": key_commitment(keys.require_code_key()),
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return keys._sign("CodeKeyEnrollment", message, domain)


def sign_retirement(
    keys: CreatorKeys, domain: Domain, *, key_commitment: bytes, now: int
) -> SignedMessage:
    message = {
        "keyCommitment": key_commitment,
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return keys._sign("CodeKeyRetirement", message, domain)


def sign_registration(
    keys: CreatorKeys,
    domain: Domain,
    *,
    good_type: GoodType,
    fingerprint: bytes,
    product: str,
    use: Use,
    royalty_policy: RoyaltyPolicy,
    metadata: Mapping[str, Any],
    now: int,
    new_product: bool = False,
) -> RegistrationRequest:
    message = {
        "goodType": int(good_type),
        "fingerprint": fingerprint,
        "product": product,
        "use": int(use),
        "royaltyPolicy": policy_hash(royalty_policy),
        "metadata": metadata_hash(metadata),
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RegistrationRequest(
        keys._sign("Registration", message, domain), royalty_policy, dict(metadata), new_product
    )


def sign_revocation(
    keys: CreatorKeys,
    domain: Domain,
    *,
    good_type: GoodType,
    fingerprint: bytes,
    reason: str,
    now: int,
) -> RevocationRequest:
    message = {
        "goodType": int(good_type),
        "fingerprint": fingerprint,
        "reason": reason,
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RevocationRequest(keys._sign("Revocation", message, domain))


@dataclass
class BadLine:
    line: int
    reason: str


@dataclass
class PreparedBatch:
    """Fingerprints of a bulk file, spooled to disk in upload order, with their items root."""

    spool: IO[bytes]
    count: int
    items_root: bytes
    skipped: list[BadLine] = field(default_factory=list)

    def fingerprints(self) -> Iterator[bytes]:
        self.spool.seek(0)
        read = self.spool.read
        while chunk := read(32 * 4096):
            for offset in range(0, len(chunk), 32):
                yield chunk[offset : offset + 32]

    def close(self) -> None:
        self.spool.close()


CODE_COLUMNS = ("code", "pin", "key")
"""Header names of the column that holds the codes, in order of preference (case-insensitive)."""

CSV_DELIMITERS = (",", ";", "\t", "|")
"""A first line holding one of these (the first found is the file's delimiter) is a CSV
header, and must name a code column; a first line holding none is a code, and the file holds
one code per line.

Threat: a CSV whose header names no code column (``id,serial``) read as one code per line
registers its header and first column ("id", "1") as codes, and exits 0; a tab- or
semicolon-separated one registers whole rows, whose separators the code normalisation
removes or keeps."""

UTF8_BOM = "\ufeff"


def _code_column(header: list[str]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    for name in CODE_COLUMNS:
        if name in lowered:
            return lowered.index(name)
    return None


def _fields(text: str, delimiter: str, line: int) -> list[str]:
    """One line's fields; quotes are only parsed when the line holds one (the common case is
    a plain split). A quoted field never spans lines: one left open refuses the file."""
    if '"' not in text:
        return text.split(delimiter)
    try:
        return next(csv.reader([text], delimiter=delimiter, strict=True))
    except csv.Error:
        raise InvalidInput(
            f'line {line}: a quoted field is left open (a " without its closing ", or text '
            f"after it); nothing was registered"
        ) from None


def _numbered_lines(source: IO[str]) -> Iterator[tuple[int, str | None]]:
    """``(line number, text without its line end)``, or ``None`` for a line longer than
    ``MAX_CSV_LINE`` (its rest is read and dropped, so memory stays bounded)."""
    number = 0
    while text := source.readline(MAX_CSV_LINE + 1):
        number += 1
        if len(text) > MAX_CSV_LINE and not text.endswith(("\n", "\r")):
            while (rest := source.readline(MAX_CSV_LINE)) and not rest.endswith(("\n", "\r")):
                pass
            yield number, None
        else:
            yield number, text.rstrip("\r\n")


def prepare_code_batch(
    source: IO[str],
    code_key: bytes,
    *,
    skip_invalid: bool = False,
    progress: Any = None,
) -> PreparedBatch:
    """Read codes (one per line, or a CSV whose header names a ``code`` column), fingerprint
    each locally, and compute the items root.

    The first non-blank line decides the format (README, "tracemark register-codes"): if it
    holds a ``CSV_DELIMITERS`` character it is a CSV header and must name a ``CODE_COLUMNS``
    column; if it is one field named ``code``, ``pin`` or ``key``, a one-column CSV; otherwise
    the file holds one code per line (read as a one-column CSV, so a code holding a comma is
    quoted). Refused whole, whatever ``skip_invalid``, with the line number: a file starting
    with a UTF-8 byte order mark (NOTE: named rather than stripped, so that what is registered
    is exactly what the file says), a header naming no code column, a quoted field left open
    (a spreadsheet would read the lines after it into that field). A malformed or repeated
    code, a line longer than ``MAX_CSV_LINE`` or with another number of fields than the header
    rejects the whole file too, unless ``skip_invalid``, which leaves such lines out and
    reports them. Blank lines are ignored.
    """
    fingerprinter = CodeFingerprinter(code_key)
    builder = merkle.RootBuilder()
    spool = tempfile.TemporaryFile(prefix="tracemark-batch-")  # noqa: SIM115 - owned by result
    seen: dict[bytes, int] = {}
    skipped: list[BadLine] = []
    delimiter: str | None = None  # None until the first non-blank line is read
    width, column, has_header = 1, 0, False
    write = spool.write
    append = builder.append
    from hashlib import sha256

    try:
        for line, text in _numbered_lines(source):
            if line == 1 and text is not None and text.startswith(UTF8_BOM):
                raise InvalidInput(
                    "line 1: the file starts with a UTF-8 byte order mark (U+FEFF); save it "
                    "as UTF-8 without a BOM; nothing was registered"
                )
            problem = None
            if text is None:
                problem = f"the line is longer than {MAX_CSV_LINE:,} characters"
            else:
                if delimiter is None:
                    if not text.strip():
                        continue
                    found = [d for d in CSV_DELIMITERS if d in text]
                    delimiter = found[0] if found else ","
                    header = _fields(text, delimiter, line)
                    named = _code_column(header)
                    if found and named is None:
                        shown = "tab" if delimiter == "\t" else repr(delimiter)
                        raise InvalidInput(
                            f"line {line}: the first line holds a {shown}, so it is a CSV "
                            f"header, but it names no code column ({', '.join(CODE_COLUMNS)}); "
                            f"nothing was registered"
                        )
                    if named is not None:
                        width, column, has_header = len(header), named, True
                        continue
                row = _fields(text, delimiter, line)
                if all(not cell.strip() for cell in row):
                    continue
                if len(row) != width:
                    problem = (
                        f"{len(row)} fields, but the header has {width}"
                        if has_header
                        else f"{len(row)} fields in a file of one code per line (its first "
                        f"line holds no {', '.join(map(repr, CSV_DELIMITERS))}); quote a code "
                        f"that holds a comma"
                    )
                else:
                    try:
                        fingerprint = fingerprinter.fingerprint(row[column])
                    except MalformedCode as exc:
                        problem = exc.detail
                    else:
                        if fingerprint in seen:
                            problem = f"the same code as line {seen[fingerprint]}"
            if problem is not None:
                if not skip_invalid:
                    raise InvalidInput(f"line {line}: {problem}; nothing was registered")
                skipped.append(BadLine(line, problem))
                continue
            seen[fingerprint] = line
            write(fingerprint)
            append(sha256(b"\x00" + fingerprint).digest())
            if progress is not None and builder.size % 10_000 == 0:
                progress(builder.size)
    except BaseException:
        spool.close()
        raise
    if builder.size == 0:
        spool.close()
        raise InvalidInput("the file holds no codes")
    spool.flush()
    return PreparedBatch(spool, builder.size, builder.root(), skipped)


def sign_batch_registration(
    keys: CreatorKeys,
    domain: Domain,
    batch: PreparedBatch,
    *,
    good_type: GoodType,
    product: str,
    use: Use,
    royalty_policy: RoyaltyPolicy,
    metadata: Mapping[str, Any],
    now: int,
    new_product: bool = False,
) -> RegistrationRequest:
    message = {
        "goodType": int(good_type),
        "itemsRoot": batch.items_root,
        "count": batch.count,
        "product": product,
        "use": int(use),
        "royaltyPolicy": policy_hash(royalty_policy),
        "metadata": metadata_hash(metadata),
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RegistrationRequest(
        keys._sign("BatchRegistration", message, domain),
        royalty_policy,
        dict(metadata),
        new_product,
    )


def sign_batch_revocation(
    keys: CreatorKeys,
    domain: Domain,
    batch: PreparedBatch,
    *,
    good_type: GoodType,
    reason: str,
    now: int,
) -> RevocationRequest:
    message = {
        "goodType": int(good_type),
        "itemsRoot": batch.items_root,
        "count": batch.count,
        "reason": reason,
        "nonce": fresh_nonce(),
        "deadline": now + DEFAULT_VALIDITY_SECONDS,
    }
    return RevocationRequest(keys._sign("BatchRevocation", message, domain))


def codes_source(text: str) -> IO[str]:
    """An in-memory codes file (tests, small batches)."""
    return io.StringIO(text)
