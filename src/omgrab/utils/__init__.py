"""Published 0.1.2 package ``omgrab.utils``: boot-time merge of orphaned recordings.

A compatibility package; the implementation is :mod:`omgrab.recording.recovery`. See
``docs/compat.md``.
"""

from omgrab.utils.merge import merge_orphaned_chunks

__all__ = ["merge_orphaned_chunks"]
