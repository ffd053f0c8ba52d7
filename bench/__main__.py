"""`python -m bench` is the same program as the `costbench` console script."""

import sys

from bench.cli import main

sys.exit(main())
