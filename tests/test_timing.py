"""kernels.timing: Stats on tiny inputs with exact numbers, iteration planning, the CPU and CUDA timers."""

import math
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kernels.timing import Stats, benchmark, flush_bytes, iterations_for


def test_stats_exact_numbers():
    s = Stats.from_samples([1, 2, 3, 4])
    assert s.min == 1
    assert s.median == 2.5
    assert s.mean == 2.5
    assert s.p10 == pytest.approx(1.3)  # rank (4-1)*0.1 = 0.3: 1 + 0.3*(2-1)
    assert s.p90 == pytest.approx(3.7)  # rank 2.7: 3 + 0.7*(4-3)
    assert s.stdev == pytest.approx(math.sqrt(5 / 3))  # squared deviations 5, over n-1 = 3
    assert s.n == 4


def test_stats_unsorted_input_and_odd_count():
    s = Stats.from_samples([5.0, 1.0, 3.0])
    assert (s.min, s.median, s.mean, s.n) == (1.0, 3.0, 3.0, 3)
    assert s.p10 == pytest.approx(1.4)  # rank 0.2 between 1 and 3
    assert s.p90 == pytest.approx(4.6)  # rank 1.8 between 3 and 5
    assert s.stdev == pytest.approx(2.0)


def test_stats_single_sample():
    s = Stats.from_samples([7.5])
    assert s.to_dict() == {"min": 7.5, "median": 7.5, "mean": 7.5, "p10": 7.5, "p90": 7.5,
                           "stdev": 0.0, "n": 1}


def test_stats_dict_keys_are_the_schema():
    assert list(Stats.from_samples([1.0, 2.0]).to_dict()) == ["min", "median", "mean", "p10", "p90", "stdev", "n"]


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf")], [-1.0]])
def test_stats_rejects_empty_and_non_finite(bad):
    with pytest.raises(ValueError):
        Stats.from_samples(bad)


@given(st.lists(st.floats(0, 1e6), min_size=1, max_size=50))
def test_stats_agree_with_numpy(xs):
    s = Stats.from_samples(xs)
    assert s.median == pytest.approx(np.median(xs), rel=1e-12, abs=1e-12)
    assert s.p10 == pytest.approx(np.percentile(xs, 10), rel=1e-12, abs=1e-12)
    assert s.p90 == pytest.approx(np.percentile(xs, 90), rel=1e-12, abs=1e-12)
    assert s.stdev == pytest.approx(np.std(xs, ddof=1) if len(xs) > 1 else 0.0, rel=1e-9, abs=1e-9)
    assert s.min <= s.p10 <= s.median <= s.p90 <= max(xs)


def test_iterations_for_clamps_to_bounds():
    assert iterations_for(100, 2.0, 5, 1000) == 50
    assert iterations_for(100, 50.0, 5, 1000) == 5  # a slow op still gets min_iters samples
    assert iterations_for(100, 0.001, 5, 1000) == 1000  # a fast one stops at max_iters
    assert iterations_for(100, 0.0, 5, 1000) == 1000  # below the clock's resolution


def test_flush_bytes_is_at_least_256mb_and_twice_l2():
    assert flush_bytes(0) == 256 * 2**20
    assert flush_bytes(50 * 2**20) == 256 * 2**20  # H100's 50 MB L2
    assert flush_bytes(200 * 2**20) == 400 * 2**20


def test_benchmark_cpu_respects_budget():
    calls = []

    def sleep_1ms():
        calls.append(1)
        time.sleep(0.001)

    t0 = time.perf_counter()
    s = benchmark(sleep_1ms, device="cpu", budget_ms=50, warmup_ms=10, min_iters=5, max_iters=1000)
    elapsed_ms = (time.perf_counter() - t0) * 1e3
    assert 5 <= s.n <= 50  # about budget / 1 ms, less where sleep overshoots
    assert len(calls) > s.n  # warm-up calls are not sampled
    assert s.min >= 1.0  # sleep never returns early
    assert elapsed_ms < 500  # budget + warm-up, with slack for a loaded 2-core machine


def test_benchmark_cpu_stops_at_twice_the_budget_when_iterations_get_slow():
    # warm-up calls are fast (sizing n at the maximum), then every call is slow, as when a shared
    # host preempts the process: sampling stops at 2x the budget, not after max_iters calls
    calls = []

    def fast_then_slow():
        calls.append(1)
        time.sleep(0.0001 if len(calls) <= 3 else 0.01)

    t0 = time.perf_counter()
    s = benchmark(fast_then_slow, device="cpu", budget_ms=50, warmup_ms=0, min_iters=3, max_iters=1000)
    assert 3 <= s.n <= 12 and (time.perf_counter() - t0) < 0.5


def test_benchmark_cpu_min_iters_beats_budget():
    s = benchmark(lambda: time.sleep(0.005), device="cpu", budget_ms=1, warmup_ms=0, min_iters=3)
    assert s.n == 3


def test_benchmark_rejects_bad_arguments():
    with pytest.raises(ValueError, match="device"):
        benchmark(lambda: None, device="tpu", budget_ms=10, warmup_ms=1)
    with pytest.raises(ValueError, match="budget_ms"):
        benchmark(lambda: None, device="cpu", budget_ms=0, warmup_ms=1)
    with pytest.raises(ValueError, match="min_iters"):
        benchmark(lambda: None, device="cpu", budget_ms=10, warmup_ms=1, min_iters=10, max_iters=5)


@pytest.mark.gpu
def test_benchmark_cuda_events_time_a_matmul():
    import torch

    a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
    s = benchmark(lambda: a @ a, device="cuda", budget_ms=50, warmup_ms=10)
    assert s.n >= 5
    assert 0 < s.min <= s.median <= s.p90
    # 2*4096^3 FLOPs in under 1 PFLOP/s: no datacenter GPU of today is faster
    assert s.median > 2 * 4096**3 / 1e15 * 1e3
