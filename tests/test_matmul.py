"""kernels.matmul: CPU measurement and its correctness check, unsupported dtypes, the MAMF search."""

import random

import torch
import pytest

from kernels import matmul
from kernels.records import clearly_better
from kernels.timing import Stats
from kernels.matmul import (DTYPES, TOLERANCE, best, candidate_shapes, default_dtypes, make_problem,
                            max_rel_err, measure, neighbours, search, unsupported_reason)

RECORD_KEYS = {"op", "dtype", "m", "n", "k", "layout", "phase", "time_ms", "tflops", "correct", "max_rel_err"}


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


def test_fp8_operands_pass_torchs_cuda_checks_for_scaled_mm():
    """torch's own CUDA-side checks of _scaled_mm (torch/_meta_registrations.py,
    _check_scaled_mm_sizes: A row-major, B column-major, K and N multiples of 16, fp32
    tensorwise scales), run on fake CUDA tensors with the fp8 Problem's shapes and strides."""
    from torch._meta_registrations import _check_scaled_mm_sizes
    from torch._subclasses.fake_tensor import FakeTensorMode

    p = make_problem(64, 48, 32, "fp8", "cpu")
    b_row_major = p.b.contiguous()
    with FakeTensorMode():
        def cuda(t):
            return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="cuda")

        scales = cuda(p.scale_a), cuda(p.scale_b)
        out = _check_scaled_mm_sizes(cuda(p.a), cuda(p.b), *scales, out_dtype=p.out.dtype, use_fast_accum=True)
        assert tuple(out.shape) == tuple(p.out.shape) and out.dtype == p.out.dtype == torch.bfloat16
        with pytest.raises(RuntimeError, match="mat2 must be col_major"):  # the check bites
            _check_scaled_mm_sizes(cuda(p.a), cuda(b_row_major), *scales, out_dtype=torch.bfloat16)


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


def _record(m, n, k, samples_ms, correct=True, phase="search", dtype="fp32"):
    stats = Stats.from_samples(samples_ms)
    return {"op": "matmul", "dtype": dtype, "m": m, "n": n, "k": k, "layout": "TN", "phase": phase,
            "time_ms": stats.to_dict(), "tflops": 2 * m * n * k / (stats.median * 1e-3) / 1e12,
            "correct": correct, "max_rel_err": 0.0}


def _fake_measure(tflops_of, wrong=(), noise=0.0, seed=0):
    """A measure() over a synthetic landscape: tflops_of(shape) is the true speed; each call draws
    40 per-iteration times with multiplicative noise of relative spread `noise` (seeded)."""
    calls, rng = [], random.Random(seed)

    def fake(m, n, k, dtype, device, budget_ms=None, layout="TN", phase="search"):
        calls.append((m, n, k, phase))
        true_ms = 2 * m * n * k / (tflops_of((m, n, k)) * 1e12) * 1e3
        samples = [true_ms * (1 + rng.uniform(-noise, noise)) for _ in range(40)]
        return _record(m, n, k, samples, (m, n, k) not in wrong, phase, dtype)

    return fake, calls


def _peaked(peak):
    # tflops falls off with distance from peak: 2% per 128 in any of m, n, k
    return lambda s: 100.0 - sum(abs(a - b) for a, b in zip(s, peak)) / 64


def _searched(calls):
    return [c[:3] for c in calls if c[3] == "search"]


def test_search_climbs_to_the_best_shape_and_remeasures_it(monkeypatch):
    plan = matmul.SearchPlan(shapes=((512, 512, 512), (1024, 1024, 1024)), steps=(256, 128),
                             max_shapes=100, max_dim=2048, budget_ms=1, remeasure_ms=5)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    fake, calls = _fake_measure(_peaked((1280, 896, 1152)), noise=0.002)
    monkeypatch.setattr(matmul, "measure", fake)
    records = list(search("fp32", "cpu", quick=True))
    shapes = _searched(calls)
    assert shapes[:2] == [(512, 512, 512), (1024, 1024, 1024)]  # defaults first, in order
    assert len(set(shapes)) == len(shapes)  # no shape searched twice
    assert calls[-1] == (1280, 896, 1152, "remeasure") and records[-1]["phase"] == "remeasure"
    assert best(records) is records[-1]  # the MAMF is the re-measurement, not the search's max


def test_a_winner_that_does_not_hold_up_is_not_quoted(monkeypatch):
    """A loaded CPU's search read 256^3 at 0.72 TFLOP/s (a spike); its remeasure gave 0.0042 and was
    quoted as the MAMF beside 0.27 at 1024^3 (hostile tester round 6). Now the next-best shapes
    are re-measured too and the best remeasure is the MAMF."""
    plan = matmul.SearchPlan(shapes=((512, 512, 512), (1024, 1024, 1024), (768, 768, 768)), steps=(),
                             max_shapes=100, max_dim=2048, budget_ms=1, remeasure_ms=5)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    speed = {(512, 512, 512): 100.0, (1024, 1024, 1024): 40.0, (768, 768, 768): 30.0}
    spiked = _fake_measure(lambda s: speed[s])[0]

    def fake(m, n, k, dtype, device, budget_ms=None, layout="TN", phase="search"):
        if phase == "remeasure" and (m, n, k) == (512, 512, 512):   # the spike does not repeat
            return _fake_measure(lambda s: 1.0)[0](m, n, k, dtype, device, budget_ms, layout, phase)
        return spiked(m, n, k, dtype, device, budget_ms, layout, phase)

    monkeypatch.setattr(matmul, "measure", fake)
    records = list(search("fp32", "cpu", quick=True))
    again = [r for r in records if r["phase"] == "remeasure"]
    assert [(r["m"], round(r["tflops"])) for r in again] == [(512, 1), (1024, 40)]   # stops once one holds up
    assert best(records) is again[1]
    # a winner that holds up is re-measured alone (the usual case)
    monkeypatch.setattr(matmul, "measure", spiked)
    assert [r["m"] for r in search("fp32", "cpu", quick=True) if r["phase"] == "remeasure"] == [512]


def test_a_winner_measured_on_a_busy_machine_does_not_hide_a_faster_shape(monkeypatch):
    """A busy CPU: 256^3's median 0.0041 TFLOP/s with a few fast iterations (its p10 band near
    0.18), which no neighbour's median cleared, so the search stayed and quoted 0.0021 while
    1024^3 had run at 0.067 on its median. The best median is re-measured too, and is the MAMF."""
    plan = matmul.SearchPlan(shapes=((256, 256, 256), (1024, 1024, 1024)), steps=(), max_shapes=100,
                             max_dim=2048, budget_ms=1, remeasure_ms=5)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    flops = {256: 2 * 256 ** 3, 1024: 2 * 1024 ** 3}

    def busy(m, n, k, dtype, device, budget_ms=None, layout="TN", phase="search"):
        if m == 256:   # 8 fast iterations among 40 slow ones: p10 time fast, median slow
            fast, slow = flops[256] / 0.18e12 * 1e3, flops[256] / 0.0041e12 * 1e3
            samples = [fast] * 8 + [slow] * 32 if phase == "search" else [flops[256] / 0.0021e12 * 1e3] * 40
        else:
            t = flops[1024] / 0.067e12 * 1e3
            samples = [t * (1 + 0.2 * i / 40) for i in range(40)]
        return _record(m, n, k, samples, phase=phase)

    monkeypatch.setattr(matmul, "measure", busy)
    records = list(search("fp32", "cpu", quick=True))
    assert not clearly_better(records[1], records[0])   # the rule itself held the search at 256^3
    again = [(r["m"], r["tflops"]) for r in records if r["phase"] == "remeasure"]
    assert [m for m, _ in again] == [256, 1024]
    assert best(records)["m"] == 1024 and best(records)["tflops"] > 0.05


def test_search_does_not_climb_on_noise(monkeypatch):
    # every shape runs at the same true speed; medians differ only by +-3% noise. A strict `>` on
    # medians would wander off to whichever neighbour sampled fast; the rule must stay put.
    plan = matmul.SearchPlan(shapes=((512, 512, 512), (1024, 1024, 1024)), steps=(256, 128),
                             max_shapes=100, max_dim=2048, budget_ms=1, remeasure_ms=5)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    for seed in range(20):
        fake, calls = _fake_measure(lambda s: 50.0, noise=0.03, seed=seed)
        monkeypatch.setattr(matmul, "measure", fake)
        list(search("fp32", "cpu", quick=True))
        # one round of neighbours per step around the first default, nothing accepted
        expected = [(512, 512, 512), (1024, 1024, 1024)] + neighbours((512, 512, 512), 256, 2048) \
            + [s for s in neighbours((512, 512, 512), 128, 2048)]
        assert _searched(calls) == expected, f"seed {seed}: climbed on noise"
        assert calls[-1] == (512, 512, 512, "remeasure")
    # the strict rule the search used before does climb on this noise (so the test has teeth)
    fake, _ = _fake_measure(lambda s: 50.0, noise=0.03, seed=0)
    a, b = fake(512, 512, 512, "fp32", "cpu"), [fake(*s, "fp32", "cpu") for s in neighbours((512, 512, 512), 256, 2048)]
    assert any(r["tflops"] > a["tflops"] for r in b) and not any(clearly_better(r, a) for r in b)


def test_search_climbs_on_a_real_improvement_within_noise(monkeypatch):
    # same +-3% noise, but one neighbour is truly 10% faster: beyond the spread, so taken
    plan = matmul.SearchPlan(shapes=((512, 512, 512),), steps=(128,),
                             max_shapes=100, max_dim=2048, budget_ms=1, remeasure_ms=5)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    fast = (512, 640, 512)
    for seed in range(10):
        fake, calls = _fake_measure(lambda s: 55.0 if s == fast else 50.0, noise=0.03, seed=seed)
        monkeypatch.setattr(matmul, "measure", fake)
        records = list(search("fp32", "cpu", quick=True))
        assert calls[-1] == fast + ("remeasure",)
        assert (best(records)["m"], best(records)["n"]) == (512, 640)


def test_clearly_better_compares_median_with_the_tops_p90_throughput():
    top = _record(1000, 1000, 1000, [9.0, 10.0, 10.0, 10.0, 11.0])  # p10 time 9.4 ms
    assert not clearly_better(_record(1000, 1000, 1000, [9.5] * 5), top)  # faster median, inside spread
    assert clearly_better(_record(1000, 1000, 1000, [9.3] * 5), top)  # faster than top's p10
    assert not clearly_better(_record(1000, 1000, 1000, [1.0] * 5, correct=False), top)
    assert clearly_better(_record(1000, 1000, 1000, [10.0] * 5), None)
    # different FLOPs: compared as TFLOP/s; twice the work in 1.9x the p10 time is better
    assert clearly_better(_record(2000, 1000, 1000, [9.4 * 1.9] * 5), top)


def test_search_stops_at_max_shapes_and_skips_wrong_results(monkeypatch):
    plan = matmul.SearchPlan(shapes=((512, 512, 512), (1024, 1024, 1024)), steps=(128,),
                             max_shapes=5, max_dim=2048, budget_ms=1, remeasure_ms=1)
    monkeypatch.setitem(matmul.PLANS, ("cpu", True), plan)
    # the shape nearest the peak is wrong: it must not be climbed from nor be the MAMF
    fake, calls = _fake_measure(_peaked((1024, 1024, 1024)), wrong={(1024, 1024, 1024)})
    monkeypatch.setattr(matmul, "measure", fake)
    records = list(search("fp32", "cpu", quick=True))
    assert len(records) == 6 and records[-1]["phase"] == "remeasure"  # 5 shapes, then the winner again
    assert _searched(calls)[2:] == neighbours((512, 512, 512), 128, 2048)[:3]  # around the best correct one
    assert best(records)["correct"] and best(records)["m"] != 1024


def test_search_quick_cpu_yields_records_as_measured():
    gen = search("fp32", "cpu", quick=True)
    first = next(gen)  # available before the rest of the search has run
    records = [first] + list(gen)
    searched = [r for r in records if r["phase"] == "search"]
    shapes = [(r["m"], r["n"], r["k"]) for r in searched]
    assert shapes[: len(candidate_shapes("fp32", "cpu", True))] == candidate_shapes("fp32", "cpu", True)
    assert len(searched) <= matmul.PLANS["cpu", True].max_shapes
    # the winner re-measured; on a noisy machine the best median and the next-best shapes too
    again = records[len(searched):]
    assert {r["phase"] for r in again} == {"remeasure"} and 1 <= len(again) <= 2 + matmul.REMEASURE_FALLBACKS
    assert all(r["correct"] and r["layout"] == "TN" for r in records)
    assert best(records) is max(again, key=lambda r: r["tflops"])


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


@pytest.mark.parametrize("layout", ["TN", "NN"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_layouts_are_recorded_and_correct(dtype, layout):
    r = measure(64, 48, 96, dtype, "cpu", budget_ms=5, layout=layout)
    assert (r["layout"], r["phase"], r["correct"]) == (layout, "search", True)
    p = make_problem(64, 48, 96, dtype, "cpu", layout=layout)
    # TN: B is a transposed row-major (n, k) tensor, i.e. column-major; NN: row-major
    assert p.b.shape == (96, 48)
    assert p.b.is_contiguous() == (layout == "NN") and p.b.t().is_contiguous() == (layout == "TN")
    # the same seeded values either way: the layout changes the memory order, not the problem
    other = make_problem(64, 48, 96, dtype, "cpu", layout="NN" if layout == "TN" else "TN")
    assert torch.equal(p.b, other.b)


def test_bad_layout_phase_and_fp8_nn_are_errors():
    with pytest.raises(ValueError, match="layout"):
        measure(16, 16, 16, "fp32", "cpu", layout="TT")
    with pytest.raises(ValueError, match="phase"):
        measure(16, 16, 16, "fp32", "cpu", phase="burst")
    with pytest.raises(ValueError, match="fp8: only the TN layout"):
        make_problem(16, 16, 16, "fp8", "cpu", layout="NN")


@pytest.mark.parametrize("version, skipped", [("2.4.1+cu121", True), ("2.5.0", False), ("2.13.0+cpu", False)])
def test_fp8_is_skipped_with_the_reason_on_torch_before_2_5(monkeypatch, version, skipped):
    monkeypatch.setattr(matmul.torch, "__version__", version)
    monkeypatch.setattr(matmul.torch.cuda, "is_available", lambda: False)
    reason = unsupported_reason("fp8", "cuda")
    assert ("torch >= 2.5" in reason and version in reason) == skipped
    if not skipped:
        assert "CUDA is not available" in reason  # the next check, as on any CPU-only machine


def test_warm_up_runs_for_the_time_asked():
    assert matmul.warm_up("cpu", 0) == 0
    import time
    t0 = time.perf_counter()
    assert matmul.warm_up("cpu", 0.2) >= 10
    assert 0.2 <= time.perf_counter() - t0 < 2.0
    with pytest.raises(ValueError):
        matmul.warm_up("cpu", -1)
