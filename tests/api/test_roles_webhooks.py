"""``tracemark serve --role webhooks`` in two real processes on one PostgreSQL database
(issue 16): one sends; killed mid-load (SIGKILL), the other takes over within the lease's
bound; every event is queued once and delivered, and only a delivery the dead sender had in
flight may reach the receiver twice (with the same ``webhook-id``: at least once)."""

from __future__ import annotations

import collections
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import text

from api.apikeys import create_api_key
from api.webhooks import WebhookService, WebhookSettings, publish_signal
from registry.db import write_transaction
from tests.api.test_roles import (
    SCHEDULING_SLACK,
    TAKEOVER_BOUND,
    Deployment,
    _until,
    deployment,  # noqa: F401  (the fixture)
)

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Signals published while the senders run.
EVENTS = 120
#: Deliveries a sender has in flight at most (``TRACEMARK_WEBHOOK_CONCURRENCY``).
CONCURRENCY = 4


class Receiver:
    """A platform's webhook endpoint on 127.0.0.1: counts each ``webhook-id`` it is sent,
    answering 200 after a short pause (so that a kill finds deliveries in flight)."""

    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length", 0)))
                time.sleep(0.05)
                with lock:
                    seen[self.headers["webhook-id"]] += 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_a_killed_webhook_sender_is_taken_over_and_each_event_is_announced_once(
    deployment: Deployment,  # noqa: F811  (the fixture imported above)
    receiver: Receiver,
) -> None:
    settings = {
        "TRACEMARK_WEBHOOK_ALLOW_HTTP": "true",
        "TRACEMARK_WEBHOOK_ALLOW_LOOPBACK": "true",
        "TRACEMARK_WEBHOOK_POLL_INTERVAL": "0.05",
        "TRACEMARK_WEBHOOK_TOTAL_TIMEOUT": "2",
        "TRACEMARK_WEBHOOK_CONNECT_TIMEOUT": "1",
        "TRACEMARK_WEBHOOK_CONCURRENCY": str(CONCURRENCY),
    }
    deployment.env.update(settings)
    registry = deployment.registry
    create_api_key(registry.engine, "plat-a", ["verify"], "hooks", registry.clock())
    service = WebhookService(registry, WebhookSettings(allow_http=True, allow_loopback=True))
    service.create("plat-a", receiver.url, ["signal.raised"])

    first = deployment.start("first", "webhooks")
    _until("the first holds the lease", lambda: deployment.holder_pid("webhooks") == first.pid)
    second = deployment.start("second", "webhooks")
    deployment.until_standing_by("second", "webhooks")

    def publish() -> None:
        for n in range(EVENTS):
            with write_transaction(registry.engine) as conn:
                publish_signal(
                    conn,
                    platform="plat-a",
                    signal_id=f"s{n}",
                    code="test",
                    detail=f"signal {n}",
                    now=registry.clock(),
                )
            time.sleep(0.02)

    publisher = threading.Thread(target=publish)
    publisher.start()
    _until("the first sends", lambda: sum(receiver.seen.values()) > 30)
    first.kill()
    killed_at = time.monotonic()
    assert first.wait(10) == -signal.SIGKILL
    _until("the second takes over", lambda: deployment.holder_pid("webhooks") == second.pid)
    assert time.monotonic() - killed_at < TAKEOVER_BOUND + SCHEDULING_SLACK
    publisher.join(60)
    # A delivery the dead sender had claimed is sent again once its claim runs out
    # (total timeout + LEASE_MARGIN: ~27 s).
    _until(
        "every delivery is delivered",
        lambda: (
            deployment.scalar("SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'")
            == EVENTS
        ),
        seconds=60,
    )
    assert deployment.scalar("SELECT count(*) FROM webhook_deliveries") == EVENTS  # queued once
    assert len(receiver.seen) == EVENTS  # every event reached the receiver
    twice = [msg_id for msg_id, times in receiver.seen.items() if times > 1]
    # Only what the killed sender had in flight, and each of those at most twice.
    assert len(twice) <= CONCURRENCY, twice
    assert max(receiver.seen.values()) <= 2
    with deployment.engine.connect() as conn:
        attempts = conn.execute(
            text("SELECT delivery_id, count(*) FROM webhook_attempts GROUP BY delivery_id")
        ).all()
    assert len(attempts) == EVENTS and all(count == 1 for _, count in attempts)
    assert deployment.scalar("SELECT token FROM role_leases WHERE role = 'webhooks'") == 2
