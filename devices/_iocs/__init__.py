"""Example and test IOCs (caproto), run as ``python -m sdl.devices._iocs.<name>``.

They need the ``caproto`` package (in the ``test`` extra). :mod:`.reactor` holds the
reactor's physics as plain functions, so tests can compare measurements with it.
"""
