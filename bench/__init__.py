"""costbench's harness: CLI, timing, machine fingerprint, result files, runner and reports."""

__version__ = "0.1.0"
