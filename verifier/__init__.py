"""What a platform or auditor needs without the server: proof-bundle checks, the client.

Empty until issue 4.
"""

__all__: list[str] = []
