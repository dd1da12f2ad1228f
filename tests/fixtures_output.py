"""Shared pytest fixtures for the output tests (registered in tests/conftest.py)."""
