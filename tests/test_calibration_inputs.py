"""The calibration inputs of scripts/calibration.py checked by arithmetic (what can be checked without
the papers at hand): Narayanan et al. 2021 Table 1's parameter counts follow from each row's own
shape, its layouts multiply out, and its TFLOP/s agree with the paper's stated aggregate figures."""

import importlib.util
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("calibration", Path(__file__).parents[1] / "scripts" / "calibration.py")
calibration = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(calibration)


@pytest.mark.parametrize("row", calibration.NARAYANAN_TABLE1, ids=lambda r: f"{r[0]:g}B")
def test_narayanan_row_params_follow_from_its_shape(row):
    # paper sec. 5.1: P = 12 l h^2 (1 + 13/(12h) + (V + s)/(12 l h)), V = 51,200, s = 2048
    params, heads, h, layers, tp, pp, gpus, batch, _ = row
    p = 12 * layers * h**2 * (1 + 13 / (12 * h) + (51200 + 2048) / (12 * layers * h))
    assert p / 1e9 == pytest.approx(params, abs=0.051 if params < 1000 else 0.51)
    assert h % heads == 0


@pytest.mark.parametrize("row", calibration.NARAYANAN_TABLE1, ids=lambda r: f"{r[0]:g}B")
def test_narayanan_row_layout_multiplies_out(row):
    _, heads, _, layers, tp, pp, gpus, batch, _ = row
    assert gpus % (tp * pp) == 0 and batch % (gpus // (tp * pp)) == 0 and heads % tp == 0 and layers % pp == 0


def test_narayanan_tflops_agree_with_the_papers_stated_figures():
    by_size = {r[0]: r for r in calibration.NARAYANAN_TABLE1}
    one_t = by_size[1008.0]
    assert one_t[8] * one_t[6] / 1e3 == pytest.approx(502, rel=0.005)      # abstract: 502 PFLOP/s on 3072 GPUs
    assert one_t[8] / 312 == pytest.approx(0.52, abs=0.005)                  # abstract: 52% of peak
    # README: every case above 43% of the A100's 312 TFLOP/s half-precision peak
    assert min(r[8] for r in calibration.NARAYANAN_TABLE1) / 312 > 0.43
