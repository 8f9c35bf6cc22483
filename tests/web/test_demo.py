"""``tracemark demo`` against a running registry: the API under uvicorn on the same data dir,
with a sequencer, and a stand-in for the anchoring worker that marks each new head anchored
(the worker itself is tested against anvil in tests/anchoring)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from anchoring.devchain import free_port
from api.app import create_app
from api.cli.demo import _print_guide
from registry.sequencer import run_sequencer
from registry.service import Registry
from registry.settings import load_settings
from tests.api.test_cli import Cli
from tests.api.test_platform_routes import anchor_everything
from verifier.client import TracemarkClient

pytestmark = pytest.mark.slow


@dataclass
class Instance:
    url: str
    port: int
    registry: Registry


def _anchor_new_heads(registry: Registry, stop: threading.Event) -> None:
    anchored = 0
    while not stop.wait(0.2):
        head = registry.latest_tree_head()
        if head is not None and head.tree_size > anchored:
            anchor_everything(registry)
            anchored = head.tree_size


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[Instance]:
    """What `make run` is, minus the chain: the API, the sequencer, anchors."""
    registry = Registry.open(load_settings(data_dir=tmp_path / "data"))
    port = free_port()
    app = create_app(registry, siwe_domain=f"127.0.0.1:{port}")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    stop = threading.Event()
    threads = [
        threading.Thread(target=server.run, daemon=True),
        threading.Thread(
            target=run_sequencer,
            args=(registry,),
            kwargs={"interval": 0.2, "stop": stop},
            daemon=True,
        ),
        threading.Thread(target=_anchor_new_heads, args=(registry, stop), daemon=True),
    ]
    for thread in threads:
        thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/livez", timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("the API did not start")
            time.sleep(0.05)
    try:
        yield Instance(url, port, registry)
    finally:
        stop.set()
        server.should_exit = True
        for thread in threads:
            thread.join(timeout=30)
        registry.engine.dispose()


def _verify(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """What an anonymous visitor gets: the typed client, which pays a public code lookup's
    proof of work as the page does."""
    with TracemarkClient(url) as anonymous:
        fields = {key: value for key, value in body.items() if key != "good_type"}
        answer = anonymous.verify(body["good_type"], **fields)
    return answer.model_dump(mode="json")


def test_the_demo_fills_a_running_registry_and_says_what_to_try(
    instance: Instance, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = Cli(tmp_path)
    cli.env["TRACEMARK_API_PORT"] = str(instance.port)
    started = time.monotonic()
    result = cli.json("demo", "--anchor-wait", "20")
    assert time.monotonic() - started < 60
    assert result["anchored"] is True and result["anchor"]["state"] == "final"
    url = instance.url
    # What the guide says to try answers as it says.
    assert _verify(url, {"good_type": "code", **result["genuine_code"]})["verdict"] == "authentic"
    revoked = {"good_type": "code", "fingerprint": result["revoked_fingerprint"]}
    assert _verify(url, revoked)["verdict"] == "revoked"
    consumed = {"good_type": "code", "fingerprint": result["consumed_fingerprint"]}
    assert _verify(url, consumed)["verdict"] == "consumed"
    assert result["double_sale"]["refused"] is True and result["double_sale"]["status"] == 409
    art = Path(result["file"])
    assert art.is_file() and art.stat().st_size > 0
    # The auditor's key reads the print's trace: three owners after its creator, a copycat.
    request = urllib.request.Request(
        f"{url}/v1/goods/file/{result['file_fingerprint']}/trace",
        headers={"Authorization": f"Bearer {result['audit_key']}"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        trace = json.loads(reply.read())
    assert trace["counts"]["transfers"] == 3 and trace["counts"]["conflicts"] == 1
    # The creator's token reads the royalties the resales owe (10% of 15,000 and 18,000).
    token = result["creator_tokens"]["lumen-studio"]
    request = urllib.request.Request(
        url + "/v1/creators/me/royalties", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        statement = json.loads(reply.read())
    assert [(t["currency"], t["amount"]) for t in statement["totals"]] == [("EUR", "3300")]
    # The human guide names the page, the audit key and a code to paste, never a key file.
    _print_guide(result)
    guide = capsys.readouterr().out
    assert f"{url}/audit" in guide and result["audit_key"] in guide
    assert result["genuine_code"]["code"] in guide
    assert "creator.key" not in guide and "code.key" not in guide
