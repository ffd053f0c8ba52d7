"""Bare `costbench`: quick measurement, then the Llama 3 70B table, saying where figures come from."""

import json
import os
import subprocess
import sys

from bench import cli
from bench.cmd_default import source_line


def test_bare_costbench_measures_then_prices(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench", "--device", "cpu", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "MAMF TFLOP/s" in out                       # the measurement summary
    assert "llama3-70b training cost by provider" in out
    assert "catalog figures for H100-SXM" in out       # a CPU is not in the GPU catalog: says so
    for provider in ("aws", "gcp", "lambda", "nebius"):
        assert provider in out
    files = os.listdir(tmp_path)
    assert len(files) == 1 and files[0].endswith(".json")
    result = json.load(open(tmp_path / files[0]))
    assert result["summary"]["mamf_tflops"]["fp32"] > 0


def test_bad_model_fails_before_measuring(tmp_path, capsys):
    assert cli.main(["--model", "llama9-70b", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "llama9-70b" in err and "llama3-70b" in err
    assert not os.listdir(tmp_path)                     # nothing measured, nothing written


def _result(normalized, name):
    return {"machine": {"gpu": {"name": name, "normalized": normalized}}}


def test_source_line_measured_vs_catalog():
    assert "measured figures" in source_line(_result("H200-SXM", "NVIDIA H200"), "H200-SXM")
    line = source_line(_result("H200-SXM", "NVIDIA H200"), "H100-SXM")
    assert "catalog figures for H100-SXM" in line and "not the GPU priced" in line
    line = source_line(_result(None, "NVIDIA RTX 9000"), "H100-SXM")
    assert "NVIDIA RTX 9000" in line and "not in the GPU catalog" in line
    assert "a CPU" in source_line(_result(None, None), "H100-SXM")
