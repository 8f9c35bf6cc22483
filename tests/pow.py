"""Public code lookups as a client makes them: fetch a challenge, solve it, send the proof."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from api.pow import POW_HEADER, body_binding, solve


def proof_for(client: TestClient, body: dict[str, Any]) -> str:
    """A solved ``X-Tracemark-Pow`` value for ``body`` (a code lookup's JSON)."""
    challenge = client.post("/v1/verify/challenge")
    assert challenge.status_code == 200, challenge.text
    issued = challenge.json()
    binding = body_binding(body["good_type"], body["creator"], body.get("product"), body["code"])
    return solve(issued["challenge"], issued["difficulty"], binding)


def lookup(
    client: TestClient, body: dict[str, Any], *, token: str | None = None, proof: bool = True
) -> Any:
    """``POST /v1/verify`` with ``body``, a proof of work (unless told not to) and a token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if proof:
        headers[POW_HEADER] = proof_for(client, body)
    return client.post("/v1/verify", json=body, headers=headers)
