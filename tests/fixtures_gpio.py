"""Shared pytest fixtures for the gpio tests (registered in tests/conftest.py)."""
