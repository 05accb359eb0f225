"""Simulated and real instruments as ophyd devices."""
