"""Shared pytest fixtures for the recording tests (registered in tests/conftest.py)."""
