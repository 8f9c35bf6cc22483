"""The delivery worker: a thread running an event loop that polls for events and due retries
and POSTs each delivery, signed, to the address it checked, a bounded number at a time.

At least once: a delivery is marked delivered only after a 2xx; anything else (another
status, a redirect, a timeout, a refused target) is an attempt in the log and a retry later,
until ``max_attempts``. A worker stopped mid-attempt records nothing; the delivery's lease
runs out and it is sent again, with the same ``webhook-id``, so receivers dedupe on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Final

import httpx2

from api.webhooks import ssrf
from api.webhooks.outbox import Claim, Outbox
from api.webhooks.store import WebhookService
from registry.errors import LeaseLost
from registry.lease import Lease
from verifier.webhooks import webhook_headers

logger = logging.getLogger("tracemark.api.webhooks")

USER_AGENT: Final = "tracemark-webhooks/1"


def _client(
    service: WebhookService, transport: httpx2.AsyncBaseTransport | None
) -> httpx2.AsyncClient:
    settings = service.settings
    return httpx2.AsyncClient(
        # Never follow a redirect: a 3xx is a failed attempt (THREATS 42).
        follow_redirects=False,
        # No proxy from the environment: a proxy would resolve the name itself, after our check.
        trust_env=False,
        timeout=httpx2.Timeout(settings.total_timeout, connect=settings.connect_timeout),
        # NOTE: no keep-alive. Connections are made to a pinned address with the name in
        # SNI; reusing one for another subscription on the same address would send its
        # request down a TLS session that was set up for a different name.
        limits=httpx2.Limits(max_connections=settings.concurrency, max_keepalive_connections=0),
        transport=transport,
    )


async def send_once(
    client: httpx2.AsyncClient, service: WebhookService, claim: Claim
) -> tuple[int | None, str | None]:
    """One attempt: check the target again, POST to the checked address; (status, error)."""
    settings = service.settings
    policy = settings.policy
    try:
        async with asyncio.timeout(settings.total_timeout):
            target = ssrf.parse_target(claim.url, policy)
            resolved = await ssrf.resolve(target, policy, timeout=settings.connect_timeout)
            body = claim.payload.encode()
            headers = {
                "host": target.host_header,
                "content-type": "application/json",
                "user-agent": USER_AGENT,
                **webhook_headers(claim.secret, claim.msg_id, int(time.time()), body),
            }
            extensions = {}
            if target.url.scheme == "https" and ssrf.ip_literal(target.host) is None:
                extensions["sni_hostname"] = target.host  # the certificate is checked for it
            request = client.build_request(
                "POST", resolved.pinned_url, headers=headers, content=body, extensions=extensions
            )
            response = await client.send(request, stream=True)
            status = response.status_code
            await response.aclose()  # the body is not read: only the status matters
    except ssrf.TargetRefused as exc:
        return None, f"refused: {exc.detail}"
    except (TimeoutError, httpx2.TimeoutException):
        return None, f"no answer within {settings.total_timeout:g} s"
    except httpx2.HTTPError as exc:
        return None, f"{type(exc).__name__}: {exc}"
    if 300 <= status < 400:
        return status, "a redirect: not followed"
    if not 200 <= status < 300:
        return status, f"HTTP {status}"
    return status, None


class WebhookWorker:
    """Runs ``WebhookService``'s poller and deliveries in a background thread."""

    def __init__(
        self,
        service: WebhookService,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        lease: Lease | None = None,
    ) -> None:
        self.service = service
        self.outbox = Outbox(service)
        #: The webhook sender's role (``tracemark serve --role webhooks``, kept by the
        #: caller): only its holder queues and claims, each claim fenced by it.
        self.lease = lease
        if lease is not None:
            self.outbox.fence = lease.fence
        self._transport = transport
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="tracemark-webhooks", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """Stop: attempts in flight are abandoned (their leases run out; they are retried)."""
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(wake.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            logger.exception("webhooks: the delivery worker stopped")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        settings = self.service.settings
        in_flight: set[asyncio.Task[None]] = set()
        async with _client(self.service, self._transport) as client:
            while not self._stop.is_set():
                # Without the role's lease (another process sends) this tick only waits.
                if self.lease is None or self.lease.held:
                    await self._tick(client, in_flight)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), settings.poll_interval)
                self._wake.clear()
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _tick(self, client: httpx2.AsyncClient, in_flight: set[asyncio.Task[None]]) -> None:
        """Queue new events, claim what is due (up to the free slots) and start sending."""
        try:
            await asyncio.to_thread(self.outbox.enqueue_new_events)
            free = self.service.settings.concurrency - len(in_flight)
            claims = await asyncio.to_thread(self.outbox.claim_due, free)
        except LeaseLost as exc:
            logger.warning("webhooks: stopped: %s", exc.detail)
            return
        except Exception:  # a busy database, a lost connection: try again next tick
            logger.exception("webhooks: a worker step failed")
            return
        for claim in claims:
            task = asyncio.create_task(self._deliver(client, claim))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)

    async def _deliver(self, client: httpx2.AsyncClient, claim: Claim) -> None:
        if self.lease is not None and not self.lease.held:
            # Paused past the lease since the claim: the holder sends it once its claim runs
            # out. (A pause between this look and the POST can still send it twice: at least
            # once, and receivers dedupe on webhook-id.)
            return
        started_at = self.service.registry.clock()
        began = time.monotonic()
        status, error = await send_once(client, self.service, claim)
        duration_ms = int((time.monotonic() - began) * 1000)
        try:
            await asyncio.to_thread(
                self.outbox.record_attempt,
                claim,
                started_at=started_at,
                duration_ms=duration_ms,
                status_code=status,
                error=error,
            )
        except Exception:  # not recorded: the lease runs out and the attempt is made again
            logger.exception(
                "webhooks: could not record attempt %s of %s", claim.attempt, claim.msg_id
            )


__all__ = ["USER_AGENT", "WebhookWorker", "send_once"]
