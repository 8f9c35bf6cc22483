"""``tracemark creator face-value`` over HTTP (a real uvicorn server on a loopback port, the CLI
in-process, SQLite and PostgreSQL): shown, set, cleared; bad input exits 3 before sending."""

from __future__ import annotations

import secrets

from tests.api.test_cli import Cli
from tests.api.test_cli_over_http import Server, remote, server  # noqa: F401


def test_a_creator_sets_shows_and_clears_a_face_value(server: Server, remote: Cli) -> None:  # noqa: F811
    api = ["--api", server.url]
    work = remote.write("card.bin", secrets.token_bytes(64))
    remote.json("register", work, "--product", "card-100", "--new-product", *api)
    shown = remote.json("creator", "face-value", "card-100", *api)
    assert (shown["face_value"], shown["currency"]) == (None, None)
    set_ = remote.json("creator", "face-value", "card-100", "--value", "10000",
                       "--currency", "CNY", *api)  # fmt: skip
    assert (set_["face_value"], set_["currency"], set_["product"]) == ("10000", "CNY", "card-100")
    human = " ".join(remote("creator", "face-value", "card-100", *api).stdout.split())
    assert human == "card-100: 10000 CNY"
    cleared = remote.json("creator", "face-value", "card-100", "--clear", *api)
    assert cleared["face_value"] is None
    # Refused before anything is sent, or by the registry: exit 3 (bad input), 4 (no such product).
    assert remote.error("creator", "face-value", "card-100", "--value", "1", *api, expect=3)
    assert remote.error("creator", "face-value", "card-100", "--clear", "--value", "1",
                        "--currency", "CNY", *api, expect=3)  # fmt: skip
    assert remote.error("creator", "face-value", "card-100", "--value", "1", "--currency",
                        "cny", *api, expect=3)  # fmt: skip
    assert remote.error("creator", "face-value", "no-such-card", *api, expect=4)
