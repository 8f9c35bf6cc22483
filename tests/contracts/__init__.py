"""Tests of the anchor contract, on py-evm and on anvil."""
