"""Shared test setup: GPU-only tests (@pytest.mark.gpu) are skipped where CUDA is absent."""

import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pytest_configure(config):
    """`--benchmark-json .benchmarks/ci.json` (the README's test command): pytest-benchmark opens
    the path as given, so make its folder first."""
    path = config.getoption("benchmark_json", None)
    if path:
        os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)


def run_cli(capsys, *argv):
    """bench.cli.main in process -> (exit code, stdout, stderr); main returns argparse's own exits
    (bad number types: 2, --help: 0) as its status too."""
    from bench import cli

    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _has_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    gpu_items = [i for i in items if "gpu" in i.keywords]
    if gpu_items and not _has_cuda():
        skip = pytest.mark.skip(reason="needs an NVIDIA GPU (torch.cuda.is_available() is False)")
        for item in gpu_items:
            item.add_marker(skip)
