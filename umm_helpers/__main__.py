"""``python -m umm_helpers ...`` is the same as the ``umm`` command."""
from umm_helpers.tools.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
