"""Engine: ``TrainConfig``, the ``Trainer`` (fit -> fit_epoch -> prepare_batch -> step),
checkpoints and data-parallel training. Imports ``core/`` and below.
"""
