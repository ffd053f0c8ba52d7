"""Does costbench's CPU timer agree with torch's own? fp32 matmul on the largest quick CPU shape.

Times the same torch.mm on the same operands three ways, in the same process, alternating rounds
so that load from other processes falls on all alike; the ratio is the median of the per-round
ratios, which cancels load that lasts a round:
  costbench           kernels.matmul.measure (kernels.timing: perf_counter per call, median)
  torch Timer         torch.utils.benchmark.Timer.blocked_autorange, same thread count
  numpy               np.matmul on the same data, via torch's Timer (numpy's BLAS picks its threads)
Goal: costbench / torch Timer between 0.9 and 1.1.

    .venv/bin/python scripts/bench_matmul_cpu.py
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.benchmark import Timer  # noqa: E402

from kernels.matmul import candidate_shapes, make_problem, measure  # noqa: E402

ROUNDS = 5
GOAL = (0.9, 1.1)


def timer_median_s(stmt: str, env: dict) -> float:
    t = Timer(stmt=stmt, globals=env, num_threads=torch.get_num_threads())
    return t.blocked_autorange(min_run_time=0.3).median  # ~ costbench's 200 ms budget + warm-up


def main() -> int:
    m, n, k = max(candidate_shapes("fp32", "cpu", quick=True), key=lambda s: s[0] * s[1] * s[2])
    gflop = 2 * m * n * k / 1e9
    p = make_problem(m, n, k, "fp32", "cpu")
    torch_env = {"torch": torch, "a": p.a, "b": p.b, "c": p.out}
    np_env = {"np": np, "a": p.a.numpy(), "b": p.b.numpy(), "c": np.empty((m, n), np.float32)}

    print(f"fp32 matmul {m}x{n}x{k} on CPU, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs")
    ours, theirs, numpy_ = [], [], []
    for i in range(ROUNDS):
        record = measure(m, n, k, "fp32", "cpu")
        if not record["correct"]:
            print(f"error: costbench's matmul failed its check (max_rel_err {record['max_rel_err']})",
                  file=sys.stderr)
            return 1
        ours.append(record["tflops"] * 1e3)
        theirs.append(gflop / timer_median_s("torch.mm(a, b, out=c)", torch_env))
        numpy_.append(gflop / timer_median_s("np.matmul(a, b, out=c)", np_env))
        print(f"  round {i + 1}: costbench {ours[-1]:7.1f}  torch Timer {theirs[-1]:7.1f}  "
              f"numpy {numpy_[-1]:7.1f} GFLOP/s")

    ours_g, theirs_g, numpy_g = (statistics.median(x) for x in (ours, theirs, numpy_))
    ratio = statistics.median(o / t for o, t in zip(ours, theirs))
    verdict = "within" if GOAL[0] <= ratio <= GOAL[1] else "OUTSIDE"
    print(f"median of {ROUNDS} rounds:")
    print(f"  costbench (median of per-call perf_counter)   {ours_g:7.1f} GFLOP/s")
    print(f"  torch.utils.benchmark.Timer (blocked median)  {theirs_g:7.1f} GFLOP/s")
    print(f"  numpy np.matmul, same data                    {numpy_g:7.1f} GFLOP/s")
    print(f"  ratio costbench / torch Timer (median per round) = {ratio:.3f}  ({verdict} the goal {GOAL[0]}-{GOAL[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
