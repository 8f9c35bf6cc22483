"""The anchoring key of a real network: from the environment or a 0600 file, never echoed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from eth_account import Account

from anchoring.runtime import anchoring_key
from anchoring.settings import load_anchoring_settings
from registry.errors import ConfigurationError


def test_the_anchoring_key_comes_from_env_or_an_owner_only_file(tmp_path: Path) -> None:
    account = Account.create()
    key_hex = "0x" + bytes(account.key).hex()
    from_env = anchoring_key(load_anchoring_settings(anchor_key=key_hex))
    assert from_env.address == account.address
    keyfile = tmp_path / "anchor.key"
    keyfile.write_text(key_hex + "\n")
    os.chmod(keyfile, 0o600)
    assert anchoring_key(load_anchoring_settings(anchor_keyfile=keyfile)).address == account.address
    os.chmod(keyfile, 0o644)
    with pytest.raises(ConfigurationError, match="readable by others") as loose:
        anchoring_key(load_anchoring_settings(anchor_keyfile=keyfile))
    assert key_hex[2:] not in loose.value.detail
    with pytest.raises(ConfigurationError, match="TRACEMARK_ANCHOR_KEY"):
        anchoring_key(load_anchoring_settings())
    with pytest.raises(ConfigurationError) as bad:
        anchoring_key(load_anchoring_settings(anchor_key="0x1234"))
    assert "1234" not in bad.value.detail
