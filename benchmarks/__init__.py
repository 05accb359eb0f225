"""Measured comparisons of sdl's planners (run as scripts; see docs/planners.md)."""
