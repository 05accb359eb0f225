"""Experiment protocols: bluesky plans and objective extraction."""
