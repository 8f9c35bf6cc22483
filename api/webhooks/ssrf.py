"""Where a webhook may go (THREATS 42): the URL's scheme, then every address its host resolves to.

A target is checked when it is subscribed AND before every connection, because DNS answers
change (rebinding): the worker resolves, checks every address, and connects to the address
it checked (``Resolved.pinned_url``), with the original host in ``Host`` and in TLS SNI, so
nothing resolves the name a second time. Redirects are never followed (the worker's client
has them off), and the environment's proxies are ignored (a proxy would resolve for us).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Final

import httpx2

from api.webhooks.settings import WebhookPolicy
from registry.errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Longest webhook URL accepted (THREATS 40).
MAX_URL_LENGTH: Final = 2048
#: At most this many addresses of one host are checked (a bounded answer).
MAX_ADDRESSES: Final = 32
#: NAT64's well-known prefix (RFC 6052): 64:ff9b::a.b.c.d reaches IPv4 a.b.c.d.
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: The cloud metadata address, named in refusals because it is the classic SSRF prize.
METADATA = ipaddress.IPv4Address("169.254.169.254")


class TargetRefused(InvalidInput):
    """A webhook URL this registry will not call: its scheme, its form, or where it leads."""

    code = "webhook-target-refused"
    diagnostics = "Subscribe an https URL on a public address."


class PortRefused(TargetRefused):
    """A webhook URL whose port no connection can use (0, or past 65535): never deliverable,
    so it is refused at subscription like any malformed field (422)."""

    http_status = 422
    diagnostics = "Subscribe a URL with a port from 1 to 65535."


@dataclass(frozen=True)
class Target:
    """A parsed webhook URL whose form is acceptable (its addresses not yet checked)."""

    url: httpx2.URL
    #: The host as sent on the wire (IDNA for names; no brackets for IPv6 literals).
    host: str
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.url.port is None else f"{host}:{self.port}"


@dataclass(frozen=True)
class Resolved:
    """A target and the checked address the worker connects to."""

    target: Target
    address: IPAddress

    @property
    def pinned_url(self) -> httpx2.URL:
        return self.target.url.copy_with(host=str(self.address))


def parse_target(url: str, policy: WebhookPolicy) -> Target:
    """The target of ``url`` if its form is acceptable; ``TargetRefused`` otherwise."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"a webhook URL has at most {MAX_URL_LENGTH} characters")
    try:
        parsed = httpx2.URL(url)
    except (httpx2.InvalidURL, ValueError, TypeError) as exc:
        raise TargetRefused("the webhook URL does not parse") from exc
    schemes = ("https", "http") if policy.allow_http else ("https",)
    if parsed.scheme not in schemes:
        raise TargetRefused(f"a webhook URL must use {' or '.join(schemes)}")
    if parsed.userinfo:
        raise TargetRefused("a webhook URL may not carry a user name or password")
    if parsed.fragment:
        raise TargetRefused("a webhook URL may not carry a fragment")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise TargetRefused("a webhook URL needs a host")
    # NOTE: ``parsed.port`` is 0 for ":0", which is falsy: test for None, never truthiness.
    port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
    if not 0 < port < 65536:
        raise PortRefused("a webhook URL's port is 1 to 65535: nothing can answer on any other")
    return Target(url=parsed, host=host, port=port)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one leads to: mapped (::ffff:a.b.c.d), 6to4, Teredo, NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, policy: WebhookPolicy) -> str | None:
    """Why ``address`` may not be called (its class, never the address), or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = refusal(embedded, policy)
            return None if inner is None else f"{inner} (embedded in an IPv6 address)"
    if address.is_loopback:
        return None if policy.allow_loopback else "a loopback address"
    if address == METADATA:
        return "the cloud metadata address"
    checks = (
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("site-local", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
        # Shared address space (100.64/10), benchmarking, documentation and the like.
        ("not a public", not address.is_global),
    )
    name = next((name for name, hit in checks if hit), None)
    return None if name is None else f"a {name} address"


def check_addresses(target: Target, addresses: list[IPAddress], policy: WebhookPolicy) -> None:
    """Every address of the host must be allowed: one bad answer refuses the target (the
    client could otherwise be steered to it by the order of the answers).

    NOTE: the refusal names the host and the class of address (loopback, private...), never
    the address itself: any key holder could otherwise read the registry's internal DNS."""
    if not addresses:
        raise TargetRefused(f"the webhook host {target.host} resolves to no address")
    for address in addresses:
        why = refusal(address, policy)
        if why is not None:
            raise TargetRefused(f"the webhook host {target.host} resolves to {why}")


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _addresses(infos: list[tuple[object, ...]]) -> list[IPAddress]:
    found: list[IPAddress] = []
    for info in infos:
        sockaddr = info[4]
        assert isinstance(sockaddr, tuple)
        # NOTE: a scoped IPv6 answer ("fe80::1%eth0") is link-local, refused below anyway.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found[:MAX_ADDRESSES]


async def resolve(target: Target, policy: WebhookPolicy, *, timeout: float) -> Resolved:
    """Resolve the target's host, check every address, and pick the one to connect to."""
    literal = ip_literal(target.host)
    if literal is not None:
        addresses = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), timeout
            )
        except (OSError, TimeoutError, UnicodeError) as exc:
            raise TargetRefused(f"the webhook host {target.host} does not resolve") from exc
        addresses = _addresses(list(infos))
    check_addresses(target, addresses, policy)
    return Resolved(target, addresses[0])


async def check_url(url: str, policy: WebhookPolicy, *, timeout: float) -> Target:
    """Subscription time: the URL's form and every address it resolves to today."""
    target = parse_target(url, policy)
    await resolve(target, policy, timeout=timeout)
    return target


__all__ = [
    "MAX_URL_LENGTH",
    "PortRefused",
    "Resolved",
    "Target",
    "TargetRefused",
    "check_addresses",
    "check_url",
    "ip_literal",
    "parse_target",
    "refusal",
    "resolve",
]
