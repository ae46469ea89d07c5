"""Methods as data: the registry, the run cache, run identity and comparison tables.

Imports ``engine/`` and below.
"""
