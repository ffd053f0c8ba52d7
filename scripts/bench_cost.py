"""Figures for the cost model's closing note.

1. Calibration: scripts/calibration.py (every calibration point: estimate / published / ratio).
2. Latency of `costbench cost --model llama3.1-405b` (the largest layout search) in a fresh
   interpreter (median of 5), against `python -c "import numpy"` timed in the same run (the floor
   any numpy program pays on this machine), and proof from `python -X importtime` that torch is
   never imported on that path.
3. Throughput of the vectorised estimate (cost_models.cost.estimate_grid) in scenarios per second
   over models x GPUs x cluster sizes x provider price rows (a layout search per plan).

Run: .venv/bin/python scripts/bench_cost.py
"""

import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cost_models.cost import estimate_grid  # noqa: E402
from cost_models.models import models  # noqa: E402


def calibration() -> None:
    print("1. Calibration (scripts/calibration.py)")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "calibration.py")], check=True)


def _median_wall(cmd, runs):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def cli_latency(runs: int = 5) -> None:
    cmd = [sys.executable, "-m", "bench", "cost", "--model", "llama3.1-405b"]
    med, low, high = _median_wall(cmd, runs)
    floor, _, _ = _median_wall([sys.executable, "-c", "import numpy"], runs)
    print(f"\n2. `costbench cost --model llama3.1-405b` wall time, {runs} fresh interpreters: "
          f"median {med * 1000:.0f} ms (min {low * 1000:.0f}, max {high * 1000:.0f}); goal < 500 ms. "
          f"`python -c 'import numpy'`: {floor * 1000:.0f} ms -> ratio {med / floor:.2f}")
    proc = subprocess.run([sys.executable, "-X", "importtime", *cmd[1:]], cwd=ROOT, capture_output=True, text=True)
    imported = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    torch = [m for m in imported if m.split(".")[0] == "torch"]
    heavy = [m for m in imported if m.split(".")[0] in ("torch", "pandas", "matplotlib")]
    print(f"   python -X importtime: {len(imported)} modules imported, torch modules: {len(torch)} "
          f"({'none - torch not imported' if not torch else ', '.join(torch[:5])}); pandas/matplotlib: {len(heavy)}")


def grid_throughput() -> None:
    specs = models()
    gpus = ["A100-SXM-80GB", "H100-SXM", "H200-SXM", "B200"]
    sizes = [2 ** k for k in range(3, 17, 2)]   # 8 .. 8192 GPUs
    estimate_grid(specs[:1], gpus[:1], sizes[:1])   # warm-up: imports, catalog parsing
    start = time.perf_counter()
    df = estimate_grid(specs, gpus, sizes)
    took = time.perf_counter() - start
    plans = len(specs) * len(gpus) * len(sizes)
    print(f"\n3. estimate_grid: {len(specs)} models x {len(gpus)} GPUs x {len(sizes)} cluster sizes = {plans} plans "
          f"(each a layout search vectorised over layouts), {len(df):,} priced rows")
    print(f"   {took * 1000:.0f} ms -> {plans / took:,.0f} plans/s, {len(df) / took:,.0f} rows/s; "
          f"{int(df.gpu_hours.isna().sum()):,} rows infeasible (no layout fits) kept as NaN")


if __name__ == "__main__":
    calibration()
    cli_latency()
    grid_throughput()
