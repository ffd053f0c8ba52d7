"""pytest-benchmark suite for the CPU matmul path: the timed op itself at small shapes, and the
float64 correctness check that follows every measurement (it must stay cheap next to the op).

Runs in CI as part of `pytest` (a few seconds); `pytest tests/benchmarks --benchmark-autosave`
keeps a history, and pytest-benchmark records machine and commit info with each run.
"""

import pytest

from kernels.matmul import TOLERANCE, make_problem

ROUNDS = 20  # fixed rounds rather than pytest-benchmark's 1 s per test: CI has 2 cores


@pytest.mark.parametrize("dtype,size", [("fp32", 256), ("fp32", 512), ("bf16", 256)])
def test_cpu_matmul(benchmark, dtype, size):
    p = make_problem(size, size, size, dtype, "cpu")
    benchmark.pedantic(p.run, rounds=ROUNDS, warmup_rounds=3)
    benchmark.extra_info["gflops"] = 2 * size**3 / benchmark.stats.stats.median / 1e9
    assert p.max_rel_err() <= TOLERANCE[dtype]  # what was timed is right


def test_cpu_correctness_check(benchmark):
    p = make_problem(1024, 1024, 1024, "fp32", "cpu")
    p.run()
    err = benchmark.pedantic(p.max_rel_err, rounds=ROUNDS, warmup_rounds=1)
    assert err <= TOLERANCE["fp32"]
