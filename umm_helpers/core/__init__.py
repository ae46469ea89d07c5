"""Core: the missing-modality protocol, encoders, fusion models, scoring and PatternLogits.

Imports only ``data/`` and the base modules (``settings``, ``atomic``).
"""
