"""The client's address as the API uses it (rate-limit keys, log lines): a parsed IP, never text.

Who the client is comes from the TCP peer, or, only when ``TRACEMARK_TRUSTED_PROXIES`` names
the peer, from the ``X-Forwarded-For`` that proxy wrote (uvicorn's proxy middleware, set up by
``api.serving``). Either way what reaches the app is a string, and a header's string can be
anything: here it becomes an address or nothing, so no header text is ever a bucket's key or
a log line's content.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any


@functools.lru_cache(maxsize=4096)
def parse_client_host(host: str) -> str | None:
    """``host`` as a normalised IP address (an IPv4-mapped IPv6 one as IPv4), or None."""
    if len(host) > 64:  # longer than any address's text (IPv6 with a zone included)
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def client_address(scope: Mapping[str, Any]) -> str | None:
    """The request's client as an IP address, or None when it has none or it is not one (a
    test client's name, a Unix socket, a trusted proxy's malformed header)."""
    client = scope.get("client")
    if not client:
        return None
    host = client[0]
    return parse_client_host(host) if isinstance(host, str) else None


__all__ = ["client_address", "parse_client_host"]
