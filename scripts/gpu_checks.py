"""The GPU checks of the measurement method, one line of figures each (run by scripts/gpu_suite.sh).

In the order people ask about them, though the cold GPU is timed first (before anything warms it):
1. torch version, and fp8 at large k: max_rel_err against the float64 reference and its limit;
2. (the timer against triton's do_bench: scripts/bench_timing_vs_triton.py, run by the suite);
3. layout: TN (B column-major, costbench's default and mamf-finder's) vs NN, bf16 at
   2048x2048x13312 (mamf-finder's best H100 shape) and 8192^3;
4. cold versus warmed GPU on 4096^3 bf16 (mamf-finder warms 30 s: a cold GPU reads high);
5. the device-to-device copy (kernels.membw) against the datasheet's HBM bandwidth.

    python3 scripts/gpu_checks.py [--warmup-s 30]

Exit status 0 when every result passed its correctness check, 1 otherwise, 2 without a GPU.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BUDGET_MS = 500.0  # per figure: 5x do_bench's rep, for stable medians


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup-s", type=float, default=30.0)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("error: this script needs an NVIDIA GPU: torch.cuda.is_available() is False", file=sys.stderr)
        return 2
    from bench.env import gpu_info
    from cost_models.hardware import find_gpu
    from kernels import matmul, membw, select_cuda_device

    select_cuda_device()
    ok = True

    def mm(m, n, k, dtype="bf16", layout="TN"):
        nonlocal ok
        r = matmul.measure(m, n, k, dtype, "cuda", BUDGET_MS, layout=layout)
        ok &= r["correct"]
        return r

    cold = mm(4096, 4096, 4096)  # first, on the GPU as it was idle
    gpu = gpu_info()
    print(f"GPU {gpu['name']} ({gpu['normalized'] or 'not in the catalog'}), torch {torch.__version__}, "
          f"CUDA {torch.version.cuda}")

    reason = matmul.unsupported_reason("fp8", "cuda")
    if reason:
        print(f"1. fp8: skipped ({reason})")
    else:
        r = mm(8192, 8192, 16384, "fp8")
        print(f"1. fp8 8192x8192x16384: {r['tflops']:.1f} TFLOP/s, max_rel_err {r['max_rel_err']} "
              f"(limit {matmul.TOLERANCE['fp8']}): {'ok' if r['correct'] else 'FAILED'}")

    for shape in ((2048, 2048, 13312), (8192, 8192, 8192)):
        tn, nn = mm(*shape, layout="TN"), mm(*shape, layout="NN")
        print(f"3. layout bf16 {'x'.join(map(str, shape))}: TN {tn['tflops']:.1f}, NN {nn['tflops']:.1f} TFLOP/s "
              f"(NN/TN {nn['tflops'] / tn['tflops']:.3f})")

    count = matmul.warm_up("cuda", args.warmup_s)
    warm = mm(4096, 4096, 4096)
    print(f"4. bf16 4096^3 cold {cold['tflops']:.1f}, after {args.warmup_s:g} s warm-up ({count} matmuls) "
          f"{warm['tflops']:.1f} TFLOP/s (warm/cold {warm['tflops'] / cold['tflops']:.3f})")

    r = membw.measure("cuda")
    ok &= r["correct"]
    line = f"5. membw {r['bytes'] / 2**30:g} GiB copy: {r['gbps']:,.0f} GB/s read + written"
    if gpu["normalized"]:
        peak = find_gpu(gpu["normalized"]).hbm_tbps * 1000
        line += f", {r['gbps'] / peak:.1%} of the datasheet's {peak:,.0f} GB/s"
    print(line + ("" if r["correct"] else " (copy WRONG)"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
