"""Example and test IOCs (caproto), run as ``python -m sdl.devices._iocs.<name>``.

They need the ``caproto`` package (in the ``test`` extra). :mod:`.reactor` holds the
reactor's physics as plain functions, so tests can compare measurements with it;
:mod:`.bench` serves a motor that takes real time, a slowly updated PV and a frozen
one, for the real-time tests of the EPICS devices.
"""
