"""The creator's side: keys on the creator's machine, fingerprints made locally, messages signed.

Codes never leave this module's caller: a bulk file is read line by line, each code is
normalised and HMAC'd under the creator's code key, and only fingerprints (spooled to a
temporary file, 32 bytes each) and one signature over their items root go to a registry.
"""

from __future__ import annotations

import csv
import io
import secrets
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eth_account.signers.local import LocalAccount

from registry import merkle
from registry.codekeys import key_commitment
from registry.eip712 import Domain, sign
from registry.errors import ConfigurationError, InvalidInput, MalformedCode
from registry.fingerprints import CODE_KEY_SIZE, CodeFingerprinter, GoodType, Use
from registry.keyring import create_account, load_account, read_secret, write_secret
from registry.records import SignedMessage
from registry.registration import RegistrationRequest, metadata_hash
from registry.revocation import RevocationRequest
from registry.royalty import RoyaltyPolicy, policy_hash

ACCOUNT_FILE = "creator.key"
CODE_KEY_FILE = "code.key"
#: A signed message is valid this long by default: long enough for a 10^6-code upload.
DEFAULT_VALIDITY_SECONDS = 3_600
#: A bulk file's line may be long (several CSV columns), but not unbounded.
MAX_CSV_LINE = 4_096


@dataclass(frozen=True)
class CreatorKeys:
    """A creator's account (signs) and code key (fingerprints codes), from a keys directory."""

    account: LocalAccount
    code_key: bytes | None

    @property
    def address(self) -> str:
        return str(self.account.address)

    @classmethod
    def create(cls, keys_dir: Path) -> CreatorKeys:
        account = create_account(keys_dir / ACCOUNT_FILE)
        code_key = secrets.token_bytes(CODE_KEY_SIZE)
        write_secret(keys_dir / CODE_KEY_FILE, code_key.hex().encode() + b"\n")
        return cls(account, code_key)

    @classmethod
    def load(cls, keys_dir: Path) -> CreatorKeys:
        account_path = keys_dir / ACCOUNT_FILE
        if not account_path.exists():
            raise ConfigurationError(f"no creator key in {keys_dir}; run: tracemark keys new")
        code_path = keys_dir / CODE_KEY_FILE
        code_key = None
        if code_path.exists():
            code_key = bytes.fromhex(read_secret(code_path).decode().strip())
        return cls(load_account(account_path), code_key)

    def require_code_key(self) -> bytes:
        if self.code_key is None:
            raise ConfigurationError("this keys directory has no code key; run: tracemark keys new")
        return self.code_key

    def _sign(self, primary_type: str, message: dict[str, Any], domain: Domain) -> SignedMessage:
        signature = sign(primary_type, message, domain, bytes(self.account.key))
        return SignedMessage(primary_type, message, signature, self.address)


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


def _code_column(header: list[str]) -> int | None:
    lowered = [cell.strip().lower() for cell in header]
    for name in ("code", "pin", "key"):
        if name in lowered:
            return lowered.index(name)
    return None


def prepare_code_batch(
    source: IO[str],
    code_key: bytes,
    *,
    skip_invalid: bool = False,
    progress: Any = None,
) -> PreparedBatch:
    """Read codes (one per line, or a CSV whose header names a ``code`` column), fingerprint
    each locally, and compute the items root.

    A malformed or repeated code rejects the whole file with its line number, unless
    ``skip_invalid``, which leaves such lines out and reports them. Blank lines are ignored.
    """
    fingerprinter = CodeFingerprinter(code_key)
    builder = merkle.RootBuilder()
    spool = tempfile.TemporaryFile(prefix="tracemark-batch-")  # noqa: SIM115 - owned by result
    seen: dict[bytes, int] = {}
    skipped: list[BadLine] = []
    column = 0
    reader = csv.reader(source)
    write = spool.write
    append = builder.append
    from hashlib import sha256

    try:
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if line == 1:
                header_column = _code_column(row)
                if header_column is not None:
                    column = header_column
                    continue
            problem = None
            if column >= len(row):
                problem = f"no column {column + 1}"
            elif len(row[column]) > MAX_CSV_LINE:
                problem = "the code is too long"
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
    except csv.Error as exc:
        spool.close()
        raise InvalidInput(f"line {reader.line_num}: not valid CSV ({exc})") from exc
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
