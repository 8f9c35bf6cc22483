"""Tests of deploy/: the shipped configuration run against real processes."""
