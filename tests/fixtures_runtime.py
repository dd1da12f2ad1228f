"""Shared pytest fixtures for the runtime tests (registered in tests/conftest.py)."""
