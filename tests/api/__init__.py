"""Tests of the api package: the tracemark CLI (and later the HTTP API)."""
