"""Course: theory, plots, probes, widgets and the explorer (model and view).

Imports ``methods/`` and below.
"""
