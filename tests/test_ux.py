"""User-facing consistency of cost, whatif and compare: help lists exactly what a flag accepts,
warnings and notes say when a figure is not what it looks like, errors name the flag at fault."""

import json
import os

import pytest

from tests.conftest import run_cli as run

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "reference")
SMALL = ["--model", "llama3-8b", "--gpus", "64"]   # a fast layout search


def one_error_line(code, err, *needles):
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# ---- 1: --dtype --------------------------------------------------------------------------------

def test_cost_help_lists_exactly_the_training_dtypes(capsys):
    from cost_models.hardware import TRAINING_DTYPES

    code, out, _ = run(capsys, "cost", "--help")
    text = " ".join(out.split())
    assert code == 0 and TRAINING_DTYPES == ("bf16", "fp16", "fp8")
    assert "--dtype DTYPE bf16 (default), fp16 (" in text and ") or fp8 (" in text


def test_fp16_is_priced_at_the_fp16_peak(capsys):
    _, out, _ = run(capsys, "cost", *SMALL, "--gpu", "A100-SXM-80GB", "--dtype", "fp16",
                    "--format", "json")
    doc = json.loads(out)
    assert doc["assumptions"]["dtype"] == "fp16" and doc["assumptions"]["peak_tflops"] == 312


@pytest.mark.parametrize("dtype,needle", [("tf32", "--dtype tf32: training in tf32 is not modelled"),
                                          ("fp32", "choose bf16, fp16 or fp8"),
                                          ("int4", "unknown dtype 'int4'")])
def test_other_dtypes_are_one_line_exit_2(capsys, dtype, needle):
    code, _, err = run(capsys, "cost", "--dtype", dtype)
    one_error_line(code, err, needle)


# ---- 2: help lists exactly what a flag accepts ---------------------------------------------------

def _help(command, flag):
    from bench.cli import build_parser

    parser, _ = build_parser(command)
    return next(a.help for a in parser._actions if flag in a.option_strings)


def _listed(text, vocabulary):
    import re

    words = set(re.findall(r"[a-z0-9-]+", text))
    return {w for w in vocabulary if w in words}


KINDS = ("on-demand", "spot", "reserved-1y", "reserved-3y", "capacity-block", "all")


@pytest.mark.parametrize("command,flag,accepted", [
    ("cost", "--pricing", KINDS), ("whatif", "--pricing", KINDS), ("tco", "--pricing", KINDS),
    ("prices", "--pricing", KINDS), ("compare", "--pricing", KINDS[:-1]),
    ("cost", "--format", ("table", "json", "csv")), ("whatif", "--format", ("table", "json", "csv")),
    ("compare", "--format", ("table", "json", "csv")), ("prices", "--format", ("table", "json", "csv")),
    ("tco", "--format", ("table", "json")),
    ("cost", "--dtype", ("bf16", "fp16", "fp8")), ("cost", "--recompute", ("none", "selective", "full")),
])
def test_help_lists_exactly_the_accepted_choices(command, flag, accepted):
    vocabulary = set(KINDS) | {"table", "json", "csv", "yaml", "bf16", "fp16", "fp8", "tf32", "fp32", "none",
                               "selective", "full"}
    assert _listed(_help(command, flag), vocabulary) == set(accepted)


def test_compare_accepts_capacity_block_and_refuses_all(capsys):
    code, out, err = run(capsys, "compare", REFERENCE, "--pricing", "capacity-block")
    assert code == 0 and "at capacity-block prices" in out
    code, _, err = run(capsys, "compare", REFERENCE, "--pricing", "all")
    one_error_line(code, err, "unknown pricing 'all'")


# ---- 3: a result file from another device ---------------------------------------------------------

def _h100_file(tmp_path):
    from tests import synthetic

    return synthetic.write(tmp_path, "h100.json", synthetic.result())


def test_cost_warns_once_when_the_file_measured_another_gpu(capsys, tmp_path):
    path = _h100_file(tmp_path)
    code, _, err = run(capsys, "cost", *SMALL, "--results", path, "--gpu", "H200-SXM")
    lines = [line for line in err.splitlines() if path in line]
    assert code == 0 and lines == [f"costbench cost: warning: {path} measured H100-SXM, not the H200-SXM priced: its "
                                   f"rates are not used; H200-SXM is priced at the catalog's rates"]
    code, _, err = run(capsys, "cost", *SMALL, "--results", path)       # its own GPU: no warning
    assert code == 0 and path not in err


def test_whatif_warns_for_each_gpu_the_file_did_not_measure(capsys, tmp_path):
    path = _h100_file(tmp_path)
    code, _, err = run(capsys, "whatif", "--vary", "gpu=H100-SXM,H200-SXM", *SMALL, "--results", path)
    lines = [line for line in err.splitlines() if path in line]
    assert code == 0 and len(lines) == 1 and "not the H200-SXM priced" in lines[0]
