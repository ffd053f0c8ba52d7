"""User-facing consistency of cost, whatif and compare: help lists exactly what a flag accepts,
warnings and notes say when a figure is not what it looks like, errors name the flag at fault."""

import json

import pytest

from tests.conftest import run_cli as run

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
