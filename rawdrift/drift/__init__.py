"""Drift controls built on the data model: synthesis, corruptions, forensics, adjustment.

Submodules are imported on use (``from rawdrift.drift import corruptions``) so
that importing :mod:`rawdrift` stays cheap.
"""
