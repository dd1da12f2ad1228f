"""Fault campaigns over the real application (``omgrab run`` in a subprocess)."""
