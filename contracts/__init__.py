"""Solidity sources and their committed compiled artifacts (issue 3); data any package reads."""

__all__: list[str] = []
