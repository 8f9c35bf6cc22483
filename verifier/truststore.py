"""The trust roots a verifier pinned, kept as files in one directory.

``tracemark trust add`` writes one file per root (named by its fingerprint); ``tracemark
verify`` reads them all into a ``TrustPolicy``. Nothing is ever pinned implicitly: a bundle
whose registry no pinned root names is refused, never remembered (no trust on first use).

The directory: ``TRACEMARK_TRUST_DIR``, else ``$XDG_CONFIG_HOME/tracemark/trust``, else
``~/.config/tracemark/trust``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from registry.errors import ConfigurationError, Conflict, InvalidInput, NotFound
from verifier.trust import (
    MAX_TRUST_ROOT_BYTES,
    MalformedTrustRoot,
    TrustPolicy,
    TrustRoot,
    extends,
    keys_extend,
)

MAX_PINNED_ROOTS: Final = 256
"""Most trust roots one directory holds: each is read by every ``tracemark verify``."""


def default_trust_dir() -> Path:
    configured = os.environ.get("TRACEMARK_TRUST_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "tracemark" / "trust"


def read_trust_root(path: Path) -> TrustRoot:
    """A trust root from a file, read bounded; a clear error for anything else."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_TRUST_ROOT_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read the trust root {path}: {exc.strerror}") from None
    try:
        return TrustRoot.parse(data)
    except MalformedTrustRoot as exc:
        raise MalformedTrustRoot(f"{path}: {exc.detail}") from None


@dataclass(frozen=True)
class Pinned:
    """What ``pin`` did: ``added``, ``updated`` (a key hand-over of a pinned root), or
    ``unchanged``; ``replaced`` is the fingerprint of the root it replaced."""

    status: Literal["added", "updated", "unchanged", "replaced"]
    root: TrustRoot
    replaced: str | None = None


class TrustStore:
    """Pinned trust roots in ``directory`` (created owner-only on first pin)."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or default_trust_dir()

    def roots(self) -> list[TrustRoot]:
        if not self.directory.is_dir():
            return []
        paths = sorted(self.directory.glob("*.json"))[:MAX_PINNED_ROOTS]
        roots = []
        for path in paths:
            try:
                roots.append(read_trust_root(path))
            except InvalidInput as exc:
                raise ConfigurationError(
                    f"a pinned trust root is unreadable ({exc.detail}): remove it with "
                    f"`tracemark trust remove` or delete {path}"
                ) from None
        return roots

    def policy(self) -> TrustPolicy:
        return TrustPolicy(self.roots())

    def _path(self, root: TrustRoot) -> Path:
        return self.directory / (root.fingerprint().removeprefix("sha256:") + ".json")

    def pin(self, root: TrustRoot, *, replace: bool = False) -> Pinned:
        """Pin ``root``. A root for a registry (chain, contract) already pinned replaces it
        only when it extends it by signed key hand-overs, or with ``replace``."""
        same = [
            pinned
            for pinned in self.roots()
            if (pinned.chain_id, pinned.contract) == (root.chain_id, root.contract)
        ]
        if any(pinned.fingerprint() == root.fingerprint() for pinned in same):
            return Pinned("unchanged", root)
        status: Literal["added", "updated", "replaced"] = "added"
        replaced = None
        if same:
            old = same[0]
            if extends(old, root):
                status = "updated"
            elif replace:
                status = "replaced"
            else:
                why = (
                    "names other log keys or another witness policy (issue 15: no hand-over "
                    "signs those)"
                    if keys_extend(old, root)
                    else "does not extend it by signed key hand-overs"
                )
                raise Conflict(
                    f"a different trust root is pinned for chain {root.chain_id} and contract "
                    f"{root.contract_address} ({old.label()}), and this one {why}; compare both "
                    "with the registry's operator, then pass --replace"
                )
            replaced = old.fingerprint()
        if len(self.roots()) - len(same) >= MAX_PINNED_ROOTS:
            raise Conflict(f"at most {MAX_PINNED_ROOTS} trust roots can be pinned")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self._path(root)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(root.to_json(), encoding="utf-8")
        os.replace(temporary, path)  # never a half-written pin
        for old in same:
            self._path(old).unlink(missing_ok=True)
        return Pinned(status, root, replaced)

    def remove(self, selector: str) -> TrustRoot:
        """Unpin the root whose fingerprint (or a prefix of at least 8 hex digits) or
        contract address is ``selector``."""
        wanted = selector.strip().lower().removeprefix("sha256:")
        matches = [
            root
            for root in self.roots()
            if root.contract_address.lower() == wanted
            or (len(wanted) >= 8 and root.fingerprint().removeprefix("sha256:").startswith(wanted))
        ]
        if not matches:
            raise NotFound(f"no pinned trust root matches {selector!r}")
        if len(matches) > 1:
            raise InvalidInput(f"{selector!r} matches {len(matches)} trust roots: be more precise")
        self._path(matches[0]).unlink()
        return matches[0]


__all__ = ["MAX_PINNED_ROOTS", "Pinned", "TrustStore", "default_trust_dir", "read_trust_root"]
