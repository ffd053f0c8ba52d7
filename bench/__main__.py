"""`python -m bench` is the same program as the `costbench` console script.

SIGTERM is mapped to the interrupt path before anything else is imported, so a SIGTERM in the
first moments (importing the CLI) is one line and exit 130 too; bench.cli.main installs the same
handler for the console script, whose entry point imports bench.cli first.
"""

import signal
import sys


def _early_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _early_sigterm)

try:
    from bench.cli import entry
except KeyboardInterrupt:
    print("costbench: interrupted", file=sys.stderr)
    sys.exit(130)

entry()
