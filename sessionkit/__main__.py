"""``python -m sessionkit``: the command line."""

from ._ops.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
