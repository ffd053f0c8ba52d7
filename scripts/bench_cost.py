"""Figures for the cost model's closing note.

1. Calibration: estimated vs published GPU-hours for Llama 3 70B and Llama 3.1 405B on H100
   (defaults only), plus the other catalog models with a published budget (not calibrated on).
2. Latency of `costbench cost --model llama3-70b` in a fresh interpreter (median of 5), and proof
   from `python -X importtime` that torch is never imported on that path.
3. Throughput of the vectorised estimate (cost_models.cost.estimate_grid) in scenarios per second
   over models x GPUs x cluster sizes x provider price rows.

Run: .venv/bin/python scripts/bench_cost.py
"""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cost_models.cost import estimate_grid, plan_training  # noqa: E402
from cost_models.models import models  # noqa: E402
from cost_models.training_time import DEFAULT_EFFICIENCY  # noqa: E402

CALIBRATED_ON = ("llama3-70b", "llama3.1-405b")


def calibration() -> None:
    print(f"1. Estimated vs published GPU-hours (H100-SXM, defaults: efficiency {DEFAULT_EFFICIENCY})")
    print(f"   {'model':<14} {'GPUs':>6} {'estimated':>10} {'published':>10} {'ratio':>6}  MFU    note")
    for spec in models():
        if not spec.published_gpu_hours or spec.published_hardware != "H100-SXM":
            continue
        plan = plan_training(spec, "H100-SXM")
        ratio = plan.gpu_hours / spec.published_gpu_hours
        note = "calibration target (+-15%)" if spec.name in CALIBRATED_ON else "not calibrated on"
        print(f"   {spec.name:<14} {plan.gpus:>6} {plan.gpu_hours / 1e6:>9.2f}M {spec.published_gpu_hours / 1e6:>9.2f}M "
              f"{ratio:>6.3f}  {plan.mfu:.1%}  {note}")


def cli_latency(runs: int = 5) -> None:
    cmd = [sys.executable, "-m", "bench", "cost", "--model", "llama3-70b"]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"\n2. `costbench cost --model llama3-70b` wall time, {runs} fresh interpreters: "
          f"median {statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}); goal < 1000 ms")
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    torch = [m for m in imported if m.split(".")[0] == "torch"]
    heavy = [m for m in imported if m.split(".")[0] in ("torch", "pandas", "matplotlib")]
    print(f"   python -X importtime: {len(imported)} modules imported, torch modules: {len(torch)} "
          f"({'none - torch not imported' if not torch else ', '.join(torch[:5])}); pandas/matplotlib: {len(heavy)}")


def grid_throughput() -> None:
    names = [m.name for m in models()]
    gpus = ["A100-SXM-80GB", "A100-SXM-40GB", "H100-SXM", "H100-PCIe", "H800-SXM", "H200-SXM", "B200", "GB200"]
    sizes = [2 ** k for k in range(3, 17)] + [3 * 2 ** k for k in range(3, 15)]   # 8 .. 65536 GPUs
    # The catalog's models repeated with other token budgets: a wider grid, same code path.
    from cost_models.models import find_model
    specs = [find_model(n).with_tokens(t) for n in names for t in (1e12, 2e12, 5e12, 10e12, 15e12, 30e12)]
    estimate_grid(specs[:2], gpus[:2], sizes[:2])   # warm-up: imports, catalog parsing
    best, rows = float("inf"), 0
    for _ in range(5):
        start = time.perf_counter()
        df = estimate_grid(specs, gpus, sizes)
        best = min(best, time.perf_counter() - start)
        rows = len(df)
    print(f"\n3. Vectorised estimate_grid: {len(specs)} model/token budgets x {len(gpus)} GPUs x {len(sizes)} cluster "
          f"sizes x the priced provider rows = {rows:,} scenarios (DataFrame rows)")
    print(f"   best of 5: {best * 1000:.1f} ms -> {rows / best:,.0f} scenarios/s (goal >= 100,000/s); "
          f"{int(df.gpu_hours.isna().sum()):,} infeasible (too few GPUs for memory) kept as NaN")


if __name__ == "__main__":
    calibration()
    cli_latency()
    grid_throughput()
