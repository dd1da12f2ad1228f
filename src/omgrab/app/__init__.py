"""The device application: runtime wiring, perception loop, dashboard and demo."""
