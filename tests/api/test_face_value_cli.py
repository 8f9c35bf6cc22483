"""``tracemark creator face-value`` over HTTP (a real uvicorn server on a loopback port, the CLI
in-process, SQLite and PostgreSQL): shown with when each value was set, set, cleared; bad
input exits 3 before sending."""

from __future__ import annotations

import re
import secrets

from eth_account import Account

from api.cli.facevalue import history_lines
from tests.api.test_cli import Cli
from tests.api.test_cli_over_http import Server, remote, server  # noqa: F401
from verifier.schemas import FaceValueHistoryOut

DATE = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def test_a_creator_sets_shows_and_clears_a_face_value(server: Server, remote: Cli) -> None:  # noqa: F811
    api = ["--api", server.url]
    work = remote.write("card.bin", secrets.token_bytes(64))
    remote.json("register", work, "--product", "card-100", "--new-product", *api)
    shown = remote.json("creator", "face-value", "card-100", *api)
    assert (shown["face_value"], shown["currency"]) == (None, None)
    set_ = remote.json("creator", "face-value", "card-100", "--value", "10000",
                       "--currency", "CNY", *api)  # fmt: skip
    assert (set_["face_value"], set_["currency"], set_["product"]) == ("10000", "CNY", "card-100")
    human = remote("creator", "face-value", "card-100", *api).stdout.splitlines()
    assert human[0] == "card-100: 10000 CNY"
    address = Account.from_key(remote.creator_key_hex()).address
    assert re.fullmatch(rf"  {DATE} UTC  set to 10000 CNY by {address}", human[1]), human
    assert len(human) == 2
    cleared = remote.json("creator", "face-value", "card-100", "--clear", *api)
    assert cleared["face_value"] is None
    # When each value was set: in JSON (the set one, then the clearing) and in words.
    shown = remote.json("creator", "face-value", "card-100", *api)
    assert [(h["face_value"], h["set_by"]) for h in shown["history"]] == [
        ("10000", address),
        (None, address),
    ]
    assert shown["history"][0]["set_at"] <= shown["history"][1]["set_at"]
    human = remote("creator", "face-value", "card-100", *api).stdout.splitlines()
    assert human[0] == "card-100: no face value"
    assert re.fullmatch(rf"  {DATE} UTC  cleared by {address}", human[2]), human
    # Refused before anything is sent, or by the registry: exit 3 (bad input), 4 (no such product).
    assert remote.error("creator", "face-value", "card-100", "--value", "1", *api, expect=3)
    assert remote.error("creator", "face-value", "card-100", "--clear", "--value", "1",
                        "--currency", "CNY", *api, expect=3)  # fmt: skip
    assert remote.error("creator", "face-value", "card-100", "--value", "1", "--currency",
                        "cny", *api, expect=3)  # fmt: skip
    assert remote.error("creator", "face-value", "no-such-card", *api, expect=4)


def test_the_history_in_words_never_crashes_on_a_servers_answer() -> None:
    """The lines a history is shown as: a setting the migration carried over, older settings
    left out, and times no calendar date can show (a hostile or broken server's answer)."""
    found = FaceValueHistoryOut.model_validate(
        {
            "creator": "0x" + "11" * 20,
            "product": "card-100",
            "face_value": "7",
            "currency": "EUR",
            "history_truncated": True,
            "history": [
                {"set_at": 0, "face_value": "7", "currency": "EUR", "set_by": None},
                {"set_at": 2**64 - 1, "face_value": None, "currency": None, "set_by": None},
                {"set_at": -(10**30), "face_value": "1", "currency": "X", "set_by": None},
            ],
        }
    )
    assert history_lines(found) == [
        "(older settings left out)",
        "  1970-01-01 00:00:00 UTC  set to 7 EUR (carried over when the history began)",
        f"  {2**64 - 1} (Unix seconds)  cleared (carried over when the history began)",
        f"  {-(10**30)} (Unix seconds)  set to 1 X (carried over when the history began)",
    ]
