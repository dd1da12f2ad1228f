"""The console's web parts: security, status snapshot, live view, recordings, Wi-Fi, metrics."""
