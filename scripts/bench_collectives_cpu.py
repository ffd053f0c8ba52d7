"""Collectives on CPU (gloo): the figures issue 6 asks for, each measured in this run.

    .venv/bin/python scripts/bench_collectives_cpu.py [--ranks 3] [--timeout 3]

(a) A 3-rank `costbench run --quick` of all four collectives under torchrun: busbw per op at the
    largest size, both costbench's figure (per-iteration, slowest rank) and nccl-tests' way
    (back-to-back, mean over ranks). Goal: every check exact, exit status 0.
(b) costbench's gloo all-reduce algbw at its largest quick CPU size (4 MiB) against a plain
    torch.distributed loop timing the same size in the same processes (barrier, N calls back to
    back, / N, mean over ranks), alternating rounds so load drift hits both alike. Ratios are
    printed both ways. Goal: costbench's nccl-tests-way figure within 0.8..1.25 of the plain loop
    (same method, so it should agree); the per-iteration figure times each call alone (a sync per
    call, a refill between calls), so its ratio is reported without a goal.
(c) The time a stalled rank takes to end the job: torchrun with 2 ranks, rank 1 stalls before
    joining the group, COSTBENCH_TIMEOUT_S=--timeout. Goal: torchrun ends, non-zero, within the
    timeout plus start-up allowance, and rank 0 says why.

Exits 1 when a goal is missed. CPU figures on a shared machine are noisy: read them as such.
"""

import argparse
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OPS = "allreduce,reducescatter,allgather,alltoall"
PLAIN_GOAL = (0.8, 1.25)
START_ALLOWANCE_S = 60.0  # importing torch in every rank on a loaded 2-core machine
STALL_DRIVER = """
import os, sys, time
if os.environ["RANK"] == "1":
    time.sleep(600)  # stalled before joining the group
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def torchrun(n: int, *args, env=None, timeout=600):
    port = _free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(n),
           "--master-addr", "127.0.0.1", "--master-port", str(port), *args]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))
    return proc, time.monotonic() - t0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quick_run(ranks: int) -> bool:
    with tempfile.TemporaryDirectory() as out:
        proc, wall = torchrun(ranks, "-m", "bench", "run", "--device", "cpu", "--quick", "--ops", OPS, "--out", out)
        files = glob.glob(os.path.join(out, "*.json"))
        if proc.returncode != 0 or len(files) != 1:
            print(f"(a) FAILED: exit {proc.returncode}\n{proc.stderr[-2000:]}")
            return False
        doc = json.load(open(files[0]))
    print(f"(a) {ranks}-rank quick run of {OPS} over gloo ({wall:.0f} s with start-up):")
    print(f"    {'op':<14} {'bytes':>9} {'busbw GB/s':>11} {'nccl-tests busbw':>17} {'wrong':>6}")
    ok = True
    for op in OPS.split(","):
        recs = [r for r in doc["records"] if r["op"] == op and not (r["inplace"] and op != "allreduce")]
        ok &= all(r["wrong"] == 0 for r in recs)
        top = max(recs, key=lambda r: r["bytes"])
        print(f"    {op:<14} {top['bytes']:>9} {top['busbw_gbps']:>11.3f} {top['nccl_tests']['busbw_gbps']:>17.3f} "
              f"{top['wrong']:>6}")
    print(f"    goal: every check exact -> {'ok' if ok else 'MISSED'}")
    return ok


def _plain_vs_costbench(rank, world, store_path, out_path, rounds):
    import torch
    import torch.distributed as dist

    from kernels import collectives as co

    dist.init_process_group("gloo", store=dist.FileStore(store_path, world), rank=rank, world_size=world)
    cfg = co.default_config("cpu", quick=True)
    size = cfg.sizes[-1]
    cfg.sizes = [size]
    buf = co.send_values("allreduce", co.base_values(size // 4, "cpu", 1), rank, world)
    costbench, nccl_way, plain = [], [], []
    for _ in range(rounds):
        rec = next(co.sweep("allreduce", "cpu", cfg))
        costbench.append(rec["algbw_gbps"])
        nccl_way.append(rec["nccl_tests"]["algbw_gbps"])
        iters = rec["nccl_tests"]["iters"]
        for _ in range(2):  # warm-up
            dist.all_reduce(buf)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(buf)
        mine = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
        dist.all_reduce(mine)
        plain.append(size / (mine.item() / world) / 1e9)
    dist.destroy_process_group()
    if rank == 0:
        with open(out_path, "w") as f:
            json.dump({"bytes": size, "costbench": costbench, "nccl_way": nccl_way, "plain": plain}, f)


def plain_loop(ranks: int, rounds: int) -> bool:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.json")
        mp.spawn(_plain_vs_costbench, args=(ranks, os.path.join(tmp, "store"), out, rounds), nprocs=ranks, join=True)
        r = json.load(open(out))
    cb, nw, pl = (statistics.median(r[k]) for k in ("costbench", "nccl_way", "plain"))
    ratio_nw, ratio_cb = nw / pl, cb / pl
    ok = PLAIN_GOAL[0] <= ratio_nw <= PLAIN_GOAL[1]
    print(f"(b) gloo all-reduce of {r['bytes']} bytes on {ranks} ranks, median of {rounds} alternating rounds:")
    print(f"    plain torch.distributed loop      algbw {pl:.3f} GB/s")
    print(f"    costbench, nccl-tests' way        algbw {nw:.3f} GB/s  ratio {ratio_nw:.2f} (plain/costbench {1 / ratio_nw:.2f})")
    print(f"    costbench, per iteration (quoted) algbw {cb:.3f} GB/s  ratio {ratio_cb:.2f} (plain/costbench {1 / ratio_cb:.2f})")
    print(f"    goal: nccl-tests' way within {PLAIN_GOAL[0]}..{PLAIN_GOAL[1]} of the plain loop -> "
          f"{'ok' if ok else 'MISSED'}")
    return ok


def stalled_rank(timeout_s: float) -> bool:
    with tempfile.TemporaryDirectory() as out:
        driver = os.path.join(out, "stall.py")
        with open(driver, "w") as f:
            f.write(STALL_DRIVER)
        proc, wall = torchrun(2, driver, "run", "--device", "cpu", "--quick", "--ops", "allreduce", "--out", out,
                              env={"COSTBENCH_TIMEOUT_S": str(timeout_s), "PYTHONPATH": ROOT})
    said = [ln for ln in proc.stderr.splitlines() if ln.startswith("costbench run: error:")]
    ok = proc.returncode != 0 and wall < timeout_s + START_ALLOWANCE_S and any("start-up" in s for s in said)
    print(f"(c) rank 1 stalled before joining, COSTBENCH_TIMEOUT_S={timeout_s:g}: torchrun ended after {wall:.1f} s "
          f"(exit {proc.returncode}); rank 0 said:")
    print(f"    {said[0] if said else '(nothing)'}")
    print(f"    goal: ended within the timeout + {START_ALLOWANCE_S:g} s start-up allowance, saying why -> "
          f"{'ok' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=3.0, help="COSTBENCH_TIMEOUT_S for (c)")
    args = parser.parse_args()
    results = [quick_run(args.ranks), plain_loop(args.ranks, args.rounds), stalled_rank(args.timeout)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
