"""Tests of the anchoring package."""
