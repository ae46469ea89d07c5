"""Tools: the ``umm`` command, bench, gpu-check and the notebook runner."""
