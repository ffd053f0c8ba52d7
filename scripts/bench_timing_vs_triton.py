"""Does costbench's CUDA timer agree with triton.testing.do_bench? 8192^3 bf16 torch.mm on a GPU.

Both use the same method (ms budgets, event pair per iteration, 256 MB L2 flush outside the events,
median of the samples), so they should agree within 2%. Times the same op on the same operands in
the same process, alternating rounds so that clock and thermal drift fall on both alike; the
ratio is the median of the per-round ratios.

    .venv/bin/python scripts/bench_timing_vs_triton.py      (needs CUDA and triton)

Exit status: 0 within the goal, 1 outside it (or costbench's result failed its check), 2 when
it cannot run here (no GPU, no triton).
"""

import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

M = N = K = 8192
ROUNDS = 3
GOAL = 0.02  # |costbench / do_bench - 1|


def do_bench_median_ms(fn) -> float:
    from triton.testing import do_bench

    # do_bench's defaults (warmup 25 ms, rep 100 ms) are costbench's CUDA defaults too.
    # quantiles=[0.5]: the median, in every triton version (return_mode="median" is newer);
    # a single quantile comes back as a float or a one-element list, depending on the version.
    result = do_bench(fn, warmup=25, rep=100, quantiles=[0.5])
    return float(result[0] if isinstance(result, (list, tuple)) else result)


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print("error: this script needs an NVIDIA GPU: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    try:
        import triton
    except ImportError:
        print("error: this script needs triton (pip install triton; CUDA builds of torch ship it)", file=sys.stderr)
        return 2

    from kernels.matmul import make_problem, measure, unsupported_reason

    reason = unsupported_reason("bf16", "cuda")
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    p = make_problem(M, N, K, "bf16", "cuda")  # the same seeded operands measure() builds
    flop = 2 * M * N * K
    print(f"bf16 torch.mm {M}x{N}x{K} on {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"triton {triton.__version__}")
    ours, theirs = [], []
    for i in range(ROUNDS):
        record = measure(M, N, K, "bf16", "cuda")
        if not record["correct"]:
            print(f"error: costbench's matmul failed its check (max_rel_err {record['max_rel_err']})",
                  file=sys.stderr)
            return 1
        ours.append(record["time_ms"]["median"])
        theirs.append(do_bench_median_ms(p.run))
        print(f"  round {i + 1}: costbench {ours[-1]:.4f} ms ({flop / ours[-1] / 1e9:.1f} TFLOP/s)  "
              f"do_bench {theirs[-1]:.4f} ms ({flop / theirs[-1] / 1e9:.1f} TFLOP/s)")

    ratio = statistics.median(o / t for o, t in zip(ours, theirs))
    verdict = "within" if abs(ratio - 1) <= GOAL else "OUTSIDE"
    print(f"median of {ROUNDS} rounds: costbench {statistics.median(ours):.4f} ms, "
          f"do_bench {statistics.median(theirs):.4f} ms")
    print(f"ratio costbench / do_bench (median per round) = {ratio:.4f}  ({verdict} the goal of {GOAL:.0%})")
    return 0 if verdict == "within" else 1  # a timer that disagrees with do_bench fails the suite


if __name__ == "__main__":
    sys.exit(main())
