"""The front doors: the ``tracemark`` CLI (``api.cli``) and, from issue 4, the HTTP API."""

__all__: list[str] = []
