"""Device runtime: recording manager and session, network, status, battery, GPIO, WiFi."""
