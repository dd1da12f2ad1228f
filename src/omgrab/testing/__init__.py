"""Fakes and pytest fixtures for users' own tests."""
