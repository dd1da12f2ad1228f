"""Drivers and readers for the board itself: the INA219 power monitor, Linux system metrics."""
