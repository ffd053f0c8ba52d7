"""kernels.matmul: CPU measurement and its correctness check, unsupported dtypes, the MAMF search."""

import torch
import pytest

from kernels import matmul
from kernels.matmul import (DTYPES, TOLERANCE, best, candidate_shapes, default_dtypes, make_problem,
                            max_rel_err, measure, neighbours, search, unsupported_reason)

RECORD_KEYS = {"op", "dtype", "m", "n", "k", "time_ms", "tflops", "correct", "max_rel_err"}


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_measure_cpu_is_correct_and_positive(dtype):
    r = measure(128, 96, 256, dtype, "cpu", budget_ms=20)
    assert set(r) == RECORD_KEYS
    assert (r["op"], r["dtype"], r["m"], r["n"], r["k"]) == ("matmul", dtype, 128, 96, 256)
    assert r["correct"] is True
    assert 0 <= r["max_rel_err"] <= TOLERANCE[dtype]
    assert r["tflops"] > 0
    assert r["tflops"] == pytest.approx(2 * 128 * 96 * 256 / (r["time_ms"]["median"] * 1e-3) / 1e12)
    assert r["time_ms"]["n"] >= 5


def _drop_half_k(a, b, out):
    # a plausible kernel bug: half of the k-sum lost (e.g. a split-k reduction dropping a part)
    k = a.shape[1] // 2
    return torch.mm(a[:, :k], b[:k], out=out)


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_wrong_matmul_is_caught(monkeypatch, dtype):
    monkeypatch.setattr(matmul, "_mm", _drop_half_k)
    r = measure(64, 64, 1024, dtype, "cpu", budget_ms=5)
    assert r["correct"] is False
    assert r["max_rel_err"] > 0.1


def test_nan_output_is_caught(monkeypatch):
    def nan_mm(a, b, out):
        return torch.mm(a, b, out=out).fill_(float("nan"))

    monkeypatch.setattr(matmul, "_mm", nan_mm)
    r = measure(64, 64, 64, "fp32", "cpu", budget_ms=5)
    assert r["correct"] is False
    assert r["max_rel_err"] is None  # JSON has no NaN: null


def test_max_rel_err_measures_one_corrupted_element():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(16, 300, generator=g, dtype=torch.float64), torch.randn(300, 16, generator=g, dtype=torch.float64)
    ref = a @ b
    assert max_rel_err(ref.clone(), a, b) == 0
    out = ref.clone()
    out[3, 5] += 0.05 * ref.abs().max()
    assert max_rel_err(out, a, b) == pytest.approx(0.05)
    out[7, 7] = float("inf")
    assert max_rel_err(out, a, b) is None
    out[7, 7] = float("nan")
    assert max_rel_err(out, a, b) is None


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_inputs_are_seeded_random_not_zeros(dtype):
    p = make_problem(64, 48, 80, dtype, "cpu")
    for x in (p.a, p.b):
        assert x.count_nonzero() == x.numel()
        assert 0.8 < x.float().std() < 1.2  # standard normal
    assert not torch.equal(p.a[:48, :48], p.b[:48, :48])
    assert torch.equal(make_problem(64, 48, 80, dtype, "cpu").a, p.a)  # same seed, same data
    assert not torch.equal(make_problem(64, 48, 80, dtype, "cpu", seed=1).a, p.a)


def test_fp8_problem_quantises_and_checks_on_cpu():
    # Only the construction and the check run here (torch has a CPU _scaled_mm); timing fp8 needs
    # a GPU with compute capability >= 8.9.
    p = make_problem(64, 48, 512, "fp8", "cpu")
    assert p.a.dtype == p.b.dtype == torch.float8_e4m3fn
    assert p.b.stride(0) == 1  # column-major, as _scaled_mm requires
    assert p.a.float().abs().max() == matmul.FP8_MAX  # per-tensor scaling maps amax to 448
    p.run()
    assert p.max_rel_err() <= TOLERANCE["fp8"]
    one = torch.tensor(1.0)
    torch._scaled_mm(p.a, p.b, scale_a=one, scale_b=one, out_dtype=torch.bfloat16, out=p.out)
    assert p.max_rel_err() > 1  # the scales forgotten: caught


def test_cpu_supports_fp32_and_bf16_only():
    assert default_dtypes("cpu") == ["fp32", "bf16"]
    assert default_dtypes("cuda") == list(DTYPES)
    assert unsupported_reason("fp32", "cpu") is None
    assert unsupported_reason("bf16", "cpu") is None
    for dtype in ("fp16", "tf32", "fp8"):
        assert "CPU" in unsupported_reason(dtype, "cpu")
        with pytest.raises(ValueError, match=dtype):
            measure(64, 64, 64, dtype, "cpu")
        with pytest.raises(ValueError, match=dtype):
            next(search(dtype, "cpu", quick=True))


def test_unknown_dtype_and_device_are_errors():
    with pytest.raises(ValueError, match="int4"):
        unsupported_reason("int4", "cpu")
    with pytest.raises(ValueError, match="tpu"):
        default_dtypes("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA answer")
def test_cuda_dtypes_unsupported_without_cuda():
    assert "CUDA is not available" in unsupported_reason("bf16", "cuda")


def test_fp32_never_runs_as_tf32(monkeypatch):
    seen = []

    def spy_mm(a, b, out):
        seen.append(torch.get_float32_matmul_precision())
        return torch.mm(a, b, out=out)

    monkeypatch.setattr(matmul, "_mm", spy_mm)
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high")
    try:
        measure(32, 32, 32, "fp32", "cpu", budget_ms=2)
        assert set(seen) == {"highest"}
        assert torch.get_float32_matmul_precision() == "high"  # the caller's setting is restored
    finally:
        torch.set_float32_matmul_precision(before)


def test_candidate_shapes_cpu_quick_are_small_and_gpu_large():
    cpu = candidate_shapes("fp32", "cpu", quick=True)
    gpu = candidate_shapes("bf16", "cuda", quick=False)
    assert max(max(s) for s in cpu) <= 2048
    assert (8192, 8192, 8192) in gpu and max(max(s) for s in gpu) >= 16384
    assert all(d % 16 == 0 for s in gpu for d in s)  # fp8's requirement


def test_neighbours_stay_in_bounds():
    assert neighbours((256, 512, 128), 128, 512) == [(384, 512, 128), (128, 512, 128), (256, 384, 128),
                                                     (256, 512, 256)]


def _fake_measure(peak, wrong=()):
    """A measure() over a synthetic landscape: tflops falls off with distance from peak."""
    calls = []

    def fake(m, n, k, dtype, device, budget_ms=None):
        calls.append((m, n, k))
        dist = abs(m - peak[0]) + abs(n - peak[1]) + abs(k - peak[2])
        return {"op": "matmul", "dtype": dtype, "m": m, "n": n, "k": k, "time_ms": {},
                "tflops": 100.0 - dist / 64, "correct": (m, n, k) not in wrong, "max_rel_err": 0.0}

    return fake, calls


def test_search_climbs_to_the_best_shape(monkeypatch):
    plan = matmul.SearchPlan(shapes=((512, 512, 512), (1024, 1024, 1024)), steps=(256, 128),
                             max_shapes=100, max_dim=2048, budget_ms=1)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    fake, calls = _fake_measure(peak=(1280, 896, 1152))
    monkeypatch.setattr(matmul, "measure", fake)
    records = list(search("fp32", "cpu", quick=True))
    assert calls[:2] == [(512, 512, 512), (1024, 1024, 1024)]  # defaults first, in order
    assert len(set(calls)) == len(calls)  # no shape measured twice
    top = best(records)
    assert (top["m"], top["n"], top["k"]) == (1280, 896, 1152)


def test_search_stops_at_max_shapes_and_skips_wrong_results(monkeypatch):
    plan = matmul.SearchPlan(shapes=((512, 512, 512), (1024, 1024, 1024)), steps=(128,),
                             max_shapes=5, max_dim=2048, budget_ms=1)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    # the shape nearest the peak is wrong: it must not be climbed from nor be the MAMF
    fake, calls = _fake_measure(peak=(1024, 1024, 1024), wrong={(1024, 1024, 1024)})
    monkeypatch.setattr(matmul, "measure", fake)
    records = list(search("fp32", "cpu", quick=True))
    assert len(records) == 5
    assert calls[2:] == neighbours((512, 512, 512), 128, 2048)[:3]  # around the best correct one
    assert best(records)["correct"] and best(records)["m"] != 1024


def test_search_quick_cpu_yields_records_as_measured():
    gen = search("fp32", "cpu", quick=True)
    first = next(gen)  # available before the rest of the search has run
    records = [first] + list(gen)
    shapes = [(r["m"], r["n"], r["k"]) for r in records]
    assert shapes[: len(candidate_shapes("fp32", "cpu", True))] == candidate_shapes("fp32", "cpu", True)
    assert len(records) <= matmul.PLANS["cpu", True].max_shapes
    assert all(r["correct"] for r in records)
    assert best(records)["tflops"] == max(r["tflops"] for r in records)


def test_best_ignores_wrong_and_other_ops_and_rejects_mixed_dtypes():
    rec = lambda dtype, tflops, correct=True: {"op": "matmul", "dtype": dtype, "tflops": tflops, "correct": correct}
    assert best([rec("bf16", 5), rec("bf16", 9, correct=False), rec("bf16", 7),
                 {"op": "allreduce", "dtype": "fp32", "busbw_gbps": 1}])["tflops"] == 7
    assert best([rec("bf16", 9, correct=False)]) is None
    assert best([]) is None
    with pytest.raises(ValueError, match="several dtypes"):
        best([rec("bf16", 1), rec("fp32", 2)])


@pytest.mark.gpu
@pytest.mark.parametrize("dtype", DTYPES)
def test_measure_cuda_every_supported_dtype(dtype):
    reason = unsupported_reason(dtype, "cuda")
    if reason:
        assert dtype in reason
        pytest.skip(reason)
    r = measure(4096, 4096, 4096, dtype, "cuda", budget_ms=20)
    assert r["correct"], r
    assert r["tflops"] > 0


@pytest.mark.gpu
def test_fp8_supported_from_compute_capability_8_9():
    supported = torch.cuda.get_device_capability() >= (8, 9)
    assert (unsupported_reason("fp8", "cuda") is None) == supported or torch.version.hip


@pytest.mark.gpu
def test_wrong_matmul_is_caught_on_cuda(monkeypatch):
    monkeypatch.setattr(matmul, "_mm", _drop_half_k)
    assert measure(2048, 2048, 4096, "bf16", "cuda", budget_ms=5)["correct"] is False
