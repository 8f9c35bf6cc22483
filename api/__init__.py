"""The front doors: the HTTP API (``api.app``, routes by user in ``api.routes``) and the
``tracemark`` CLI (``api.cli``)."""

__all__: list[str] = []
