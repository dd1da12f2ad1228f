"""Shared pytest fixtures for the network tests (registered in tests/conftest.py)."""
