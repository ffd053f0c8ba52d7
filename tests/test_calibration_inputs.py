"""The calibration inputs of scripts/calibration.py checked by arithmetic (what can be checked without
the papers at hand): Narayanan et al. 2021 Table 1's parameter counts follow from each row's own
shape, its layouts multiply out, and its TFLOP/s agree with the paper's stated aggregate figures;
and the script's calibration table itself, guarded against regressions."""

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


# A second, independent text copy of Table 1 (a third-party notes file on arXiv 2104.04473v5, found with
# the search tool's code corpus in 2026-11), transcribed here whole: params (B): TP, PP, GPUs, batch,
# TFLOP/s per GPU, percentage of theoretical peak, aggregate petaFLOP/s.
TABLE1_SECOND_COPY = {
    1.7: (1, 1, 32, 512, 137, 44, 4.4), 3.6: (2, 1, 64, 512, 138, 44, 8.8), 7.5: (4, 1, 128, 512, 142, 46, 18.2),
    18.4: (8, 1, 256, 1024, 135, 43, 34.6), 39.1: (8, 2, 512, 1536, 138, 44, 70.8),
    76.1: (8, 4, 1024, 1792, 140, 45, 143.8), 145.6: (8, 8, 1536, 2304, 148, 47, 227.1),
    310.1: (8, 16, 1920, 2160, 155, 50, 297.4), 529.6: (8, 35, 2520, 2520, 163, 52, 410.2),
    1008.0: (8, 64, 3072, 3072, 163, 52, 502.0),
}


@pytest.mark.parametrize("row", calibration.NARAYANAN_TABLE1, ids=lambda r: f"{r[0]:g}B")
def test_narayanan_row_agrees_with_a_second_copy_of_the_table(row):
    """The calibration's row is the second copy's; and in that copy each row's TFLOP/s x GPUs is its
    aggregate petaFLOP/s and TFLOP/s / 312 its share of peak, to the table's rounding."""
    params, _, _, _, tp, pp, gpus, batch, tflops = row
    *layout, pct, aggregate = TABLE1_SECOND_COPY[params]
    assert tuple(layout) == (tp, pp, gpus, batch, tflops)
    # the printed per-GPU figure is rounded to 1 TFLOP/s: the aggregate may differ by up to 0.5 x GPUs
    assert abs(tflops * gpus / 1e3 - aggregate) <= 0.5 * gpus / 1e3 + 0.05
    assert abs(tflops / 312 * 100 - pct) <= 0.5 + 0.5 / 312 * 100


def test_calibration_points_and_the_held_out_run():
    """scripts/calibration.py prints the table; this guards it against regressions. Goal 10% on every
    point, met by all 16 (the worst at this commit Llama 2 70B's GPU-hours, 0.924, Llama 3 70B's,
    0.927, and Narayanan's 529.6B, 0.929), and by the held-out Llama 1 65B."""
    points = (calibration.narayanan_points, calibration.llama3_points, calibration.gpu_hour_points)
    ratios = {run + setup: est / pub for gen in points for run, setup, est, pub, _ in gen()}
    assert len(ratios) == 16
    assert all(abs(r - 1) <= 0.10 for r in ratios.values()), ratios
    (_, _, est, pub, plan), = calibration.held_out_points()
    assert est / pub == pytest.approx(1.0, abs=0.10)
    assert plan.step["parts"]["dp_overlap"] > 0 and "dp_overlap" in plan.assumptions["overlap_slowdown"]
    # the 2021 recipe's memory simplifications are said, not hidden
    _, _, _, _, old = next(calibration.narayanan_points())
    assert "sequence-parallel activation sharding" in old.assumptions["recipe"]
    assert "stored s x s scores" in old.assumptions["recipe"]
    # ... and so is its 2021 data parallelism: one fp16 all-reduce after the flush, no overlap
    assert "distributed optimizer's sharding" in old.assumptions["recipe"]
    assert old.step["parts"]["dp_overlap"] == 0.0 and old.assumptions["overlap"] == 0.0


def test_bloom_iteration_time_gives_the_tflops_its_log_printed():
    # tr11 README: "elapsed time per iteration (s): 104.70 | ... TFLOPs: 149.77" (iteration 85376),
    # counted with the recompute ("the 4*2 co-efficient") and the padded vocabulary 250,880
    b = calibration.BLOOM_176B
    assert calibration.paper_tflops(b, 2048, calibration.BLOOM_SECONDS, 384) == pytest.approx(149.77, abs=0.01)
    # 176,247M parameters (BLOOM paper) follow from the shape: 12*l*h^2 + V*h plus biases and norms
    assert 12 * b.layers * b.hidden**2 + b.vocab * b.hidden == pytest.approx(b.params, rel=0.002)


@pytest.mark.parametrize("row,reported", list(zip(calibration.MT_NLG_SECONDS, (126, 121, 113))))
def test_mt_nlg_iteration_times_agree_with_its_tflops_column(row, reported):
    # "latency per iteration ... 60.1, 50.2, and 44.4 seconds ... 126, 121, and 113 TFLOP/s per GPU":
    # the two columns agree through the recompute-counting formula to the table's rounding
    gpus, seconds = row
    assert gpus % (8 * 35) == 0 and 1920 % (gpus // 280) == 0
    assert calibration.paper_tflops(calibration.MT_NLG_530B, 1920, seconds, gpus) == pytest.approx(reported, abs=0.7)


# MegaScale Table 2's throughput column (tokens/s), a second column for each row's iteration time
MEGASCALE_TOKENS_PER_S = (39.3e3, 74.1e3, 103.8e3, 132.7e3, 433.6e3, 851.6e3, 1027.9e3, 1466.8e3)


@pytest.mark.parametrize("row,tokens", list(zip(calibration.MEGASCALE_SECONDS, MEGASCALE_TOKENS_PER_S)))
def test_megascale_iteration_times_agree_with_its_throughput_column(row, tokens):
    gpus, batch, seconds = row
    assert gpus % 64 == 0 and batch % (gpus // 64) == 0        # TP 8 x PP 8 per replica
    assert batch * 2048 / seconds == pytest.approx(tokens, rel=0.004)   # iteration times have 3-4 digits


def test_held_out_runs_on_other_software_use_their_documented_recipe():
    """The held-out runs are printed, not asserted within 10%: a check of the model, not a fit.
    What is asserted is that each runs as its documentation says (no DP overlap, no interleaving
    for DeepSpeed's pipeline; the given layouts) and that the estimate is a finite comparison."""
    points = list(calibration.other_software_points())
    assert len(points) == 1 + 3 + 8
    for run, setup, est, pub, plan, unit in points:
        parts = plan.step["parts"]
        # DP collectives after the backward: all exposed, nothing overlapped, and the output says so
        assert parts["dp_overlap"] == 0.0 and parts["dp_comm"] > 0
        assert plan.assumptions["overlap"] == 0.0 and "overlap_dp=False" in plan.assumptions["recipe"]
    bloom, mt_nlg, megascale = points[0][4], [p[4] for p in points[1:4]], [p[4] for p in points[4:]]
    assert (bloom.parallelism["tp"], bloom.parallelism["pp"], bloom.parallelism["dp"]) == (4, 12, 8)
    for plan in [bloom] + mt_nlg:       # DeepSpeed's pipeline: no interleaving, no sequence parallelism
        assert plan.parallelism["virtual_stages"] == 1 and plan.parallelism["sequence_parallel"] is False
        assert "memory still estimated with sequence-parallel" in plan.assumptions["recipe"]
    assert [p.parallelism["dp"] for p in mt_nlg] == [8, 10, 12]
    assert all(p.parallelism["virtual_stages"] == 6 and p.parallelism["sequence_parallel"] for p in megascale)


def test_held_out_diagnostics_cover_what_the_sources_leave_open():
    lines = list(calibration.held_out_diagnostics())
    assert [line.split(":")[0].strip() for line in lines] == [
        "diagnostic (not a fit) MT-NLG at micro-batch 1", "diagnostic (not a fit) MT-NLG at micro-batch 2",
        "diagnostic (not a fit) MT-NLG at micro-batch 4", "diagnostic (not a fit) MegaScale baseline, no FlashAttention",
        "diagnostic (not a fit) MegaScale baseline, no sequence parallelism",
        "diagnostic (not a fit) MegaScale baseline, neither"]
    # the printed MT-NLG rows use the search's micro-batch (the fastest): its line repeats them, and no
    # other micro-batch is more optimistic
    rows = list(calibration.other_software_points())[1:4]
    by_mb = {mb: [float(x) for x in line.split(": ")[1].split(", ")] for mb, line in zip((1, 2, 4), lines)}
    picked = {plan.parallelism["micro_batch"] for *_, plan, _ in rows}
    assert len(picked) == 1
    assert by_mb[picked.pop()] == pytest.approx([est / pub for _, _, est, pub, _, _ in rows], abs=1e-3)
    for ratios in by_mb.values():
        assert all(r <= est / pub + 1e-3 for r, (_, _, est, pub, _, _) in zip(ratios, rows))
