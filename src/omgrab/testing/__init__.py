"""Fakes and pytest fixtures for users' own tests."""

from omgrab.testing.network import make_snapshot

__all__ = ["make_snapshot"]
