"""Consent (private): the user's answer per application, asking for it, and every kill switch.

:mod:`~consentry._consent.quick` tells cheaply that telemetry is off, before anything else is imported.
"""
