"""Shared pytest fixtures for the capture tests (registered in tests/conftest.py)."""
