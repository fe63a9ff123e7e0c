"""`python -m training ...`: see training/cli.py (the dispatcher) and training/run.py (one run)."""

import sys

from training.cli import main

if __name__ == "__main__":
    sys.exit(main())
