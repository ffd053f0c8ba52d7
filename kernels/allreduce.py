"""All-reduce bandwidth: torch.distributed all_reduce (SUM, fp32) over doubling message sizes.

Reference: nccl-tests doc/PERFORMANCE.md. algbw = bytes / time. For all-reduce each rank must
send and receive 2(n-1)/n of the buffer (a ring's reduce-scatter plus all-gather, each moving
(n-1)/n), so busbw = algbw * 2(n-1)/n is the figure that compares with a link's speed whatever
the rank count. GB = 1e9 bytes.

Method (DESIGN.md): NCCL on GPUs, gloo on CPU; at every size a warm-up, then the ranks agree on
an iteration count (MAX of their estimates, so every rank makes the same number of calls);
an iteration's time is the slowest rank's (per-iteration times all-reduced with MAX); the
result is checked exactly: rank r sends base * (r % 16 + 1) with base small seeded integers, so
the fp32 sum base * sum_r (r % 16 + 1) is exact, and every differing element counts as wrong
(nccl-tests' #wrong). Under torchrun the group comes from the env:// rendezvous; in a single
process it is a group of one over a local HashStore, which runs the code path but moves no bytes
over any link.
"""

import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from bench.timing import Stats, iterations_for
from kernels import torch_device

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
DTYPE = "fp32"           # exact sums need a mantissa wide enough for them: fp32's 24 bits
ELEMENT_BYTES = 4
# How long the process group waits in any collective (rendezvous, a rank still measuring matmul)
# before NCCL's or gloo's own watchdog gives up.
GROUP_TIMEOUT_S = 1800.0
# One message size that takes longer than this is a hung rank or a dead link, not a slow one:
# even 1 GiB at 0.1 GB/s is 11 s per call. Override with COSTBENCH_TIMEOUT_S.
STEP_TIMEOUT_S = 300.0
NO_LINK_NOTE = ("all-reduce ran in a single process (world size 1): it exercises the code path "
                "but measures no link; launch with torchrun --nproc-per-node N for bandwidth")


# ---- pure arithmetic (unit-tested exactly) -------------------------------------------------

def message_sizes(lo_bytes: int, hi_bytes: int) -> list[int]:
    """Doubling sizes from lo to hi inclusive, as nccl-tests' -b lo -e hi -f 2."""
    if lo_bytes <= 0 or hi_bytes < lo_bytes or lo_bytes % ELEMENT_BYTES:
        raise ValueError(f"bad size range {lo_bytes}..{hi_bytes}")
    sizes, size = [], lo_bytes
    while size <= hi_bytes:
        sizes.append(size)
        size *= 2
    return sizes


def busbw_factor(world_size: int) -> float:
    """2(n-1)/n: the share of the buffer each rank sends (and receives) in an all-reduce."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    return 2 * (world_size - 1) / world_size


def bandwidths_gbps(nbytes: int, time_ms: float, world_size: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s (1e9 bytes/s) for one all-reduce of nbytes taking time_ms."""
    algbw = nbytes / (time_ms * 1e-3) / 1e9
    return algbw, algbw * busbw_factor(world_size)


def rank_multiplier(rank: int) -> int:
    """Rank r sends base * (r % 16 + 1): ranks differ, and values stay small at any rank count."""
    return rank % 16 + 1


def multiplier_sum(world_size: int) -> int:
    """sum over r < world_size of rank_multiplier(r), in closed form (16 | full cycles)."""
    full, rest = divmod(world_size, 16)
    return full * (16 * 17 // 2) + rest * (rest + 1) // 2


BASE_MAX = 8  # base values are integers in [1, BASE_MAX]: never zero, and sums stay exact


def sum_is_exact(world_size: int) -> bool:
    """Whether the largest expected sum fits fp32's 24-bit mantissa (true up to ~246k ranks)."""
    return BASE_MAX * multiplier_sum(world_size) < 2 ** 24


# ---- configuration -------------------------------------------------------------------------

@dataclass
class SweepConfig:
    """Which sizes, and how long to spend on each. Budgets in ms, not iteration counts."""
    sizes: list
    budget_ms: float = 200.0   # timed iterations per size aim at this much time
    warmup_ms: float = 50.0
    min_iters: int = 5
    max_iters: int = 1000      # bounds the event list and the time on the tiniest sizes
    step_timeout_s: float = STEP_TIMEOUT_S
    seed: int = 1234

    def __post_init__(self):
        if not self.sizes or any(s <= 0 or s % ELEMENT_BYTES for s in self.sizes):
            raise ValueError(f"sizes must be positive multiples of {ELEMENT_BYTES}: {self.sizes}")
        if self.budget_ms <= 0 or self.warmup_ms <= 0:
            raise ValueError("budget_ms and warmup_ms must be positive")
        if not 1 <= self.min_iters <= self.max_iters:
            raise ValueError(f"need 1 <= min_iters <= max_iters, got {self.min_iters}, {self.max_iters}")


def default_config(device: str, quick: bool = False) -> SweepConfig:
    """GPU: 32 KiB..1 GiB (quick: 1 MiB..256 MiB). CPU (gloo over shared memory/TCP): smaller."""
    timeout = float(os.environ.get("COSTBENCH_TIMEOUT_S", STEP_TIMEOUT_S))
    if device == "cuda":
        if quick:
            return SweepConfig(message_sizes(1 * MiB, 256 * MiB), 50.0, 20.0, 3, step_timeout_s=timeout)
        return SweepConfig(message_sizes(32 * KiB, 1 * GiB), step_timeout_s=timeout)
    if quick:
        return SweepConfig(message_sizes(32 * KiB, 4 * MiB), 30.0, 10.0, 3, step_timeout_s=timeout)
    return SweepConfig(message_sizes(32 * KiB, 64 * MiB), step_timeout_s=timeout)


# ---- the process group ---------------------------------------------------------------------

def backend_for(device: str) -> str:
    return "nccl" if device == "cuda" else "gloo"


def init_distributed(device: str) -> bool:
    """Join (or make) the default process group. Returns True if this call created it.

    Under torchrun (WORLD_SIZE set) the env:// rendezvous; otherwise a group of one over a
    local HashStore, so a single process runs the same code without opening a port.
    """
    if dist.is_initialized():
        return False
    timeout = timedelta(seconds=GROUP_TIMEOUT_S)
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if "WORLD_SIZE" in os.environ:
        dist.init_process_group(backend_for(device), timeout=timeout)
    else:
        dist.init_process_group(backend_for(device), store=dist.HashStore(), rank=0, world_size=1,
                                timeout=timeout)
    return True


class Watchdog:
    """Ends the process with a clear message if a step outlives its deadline.

    A rank that died or hangs leaves the others blocked inside a C++ collective where no Python
    exception can reach them; the group timeout eventually fires too, but its message names no
    size. The result file is already valid (it is rewritten after every record), so exiting is safe.
    """

    def __init__(self, seconds: float, what: str):
        self.seconds, self.what = seconds, what
        self._timer = None

    def _fire(self):
        rank = dist.get_rank() if dist.is_initialized() else 0
        sys.stderr.write(
            f"costbench: error: {self.what} did not finish within {self.seconds:g} s on rank {rank}: "
            "a rank is hung or dead, or the network is down (COSTBENCH_TIMEOUT_S sets the limit)\n")
        sys.stderr.flush()
        os._exit(1)

    def __enter__(self):
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        return False


# ---- buffers and the exact check -----------------------------------------------------------

def fill_source(numel: int, rank: int, device: str, seed: int) -> torch.Tensor:
    """This rank's send buffer: base * rank_multiplier(rank), base the same on every rank."""
    dev = torch_device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    base = torch.randint(1, BASE_MAX + 1, (numel,), generator=gen, device=dev, dtype=torch.float32)
    return base.mul_(rank_multiplier(rank))


def count_wrong(result: torch.Tensor, source: torch.Tensor, rank: int, world_size: int) -> int:
    """Elements of result that differ from the exact sum over ranks (source is this rank's input)."""
    # source / multiplier recovers base exactly (small integers); times the sum is exact too.
    expected = source / rank_multiplier(rank) * multiplier_sum(world_size)
    return int((result != expected).sum().item())


# ---- timing --------------------------------------------------------------------------------

def _time_iterations(buf, src, iters: int, device: str) -> list[float]:
    """Per-iteration all-reduce times in ms on this rank. The buffer is refilled before every
    call (all_reduce is in place; without it values grow n-fold per call into inf), outside the
    timed region."""
    if device == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        for start, end in zip(starts, ends):
            buf.copy_(src)
            start.record()
            dist.all_reduce(buf)  # the current stream waits for NCCL's, so `end` follows it
            end.record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) for s, e in zip(starts, ends)]
    times = []
    for _ in range(iters):
        buf.copy_(src)
        t0 = time.perf_counter()
        dist.all_reduce(buf)  # gloo's synchronous call returns when the sum is in buf
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _reduce(values, device: str, op) -> list[float]:
    """Element-wise reduction of a list of numbers over ranks (NCCL needs device tensors)."""
    dev = torch_device(device)
    t = torch.tensor(values, dtype=torch.float64, device=dev)
    dist.all_reduce(t, op=op)
    return t.tolist()


def measure_size(nbytes: int, device: str, cfg: SweepConfig) -> dict:
    """One schema record for one message size. Every rank must call this with the same args."""
    rank, world = dist.get_rank(), dist.get_world_size()
    src = fill_source(nbytes // ELEMENT_BYTES, rank, device, cfg.seed)
    buf = torch.empty_like(src)
    # Warm-up: the first call may set up connections; its time (slowest rank) sizes the rest.
    first_ms = _reduce(_time_iterations(buf, src, 1, device), device, dist.ReduceOp.MAX)[0]
    n_warm = iterations_for(cfg.warmup_ms, first_ms, 1, cfg.max_iters)
    warm = _time_iterations(buf, src, n_warm, device)
    per_iter_ms = _reduce([sorted(warm)[len(warm) // 2]], device, dist.ReduceOp.MAX)[0]
    iters = iterations_for(cfg.budget_ms, per_iter_ms, cfg.min_iters, cfg.max_iters)
    # Timed: an iteration lasts until the slowest rank has its sum.
    times_ms = _reduce(_time_iterations(buf, src, iters, device), device, dist.ReduceOp.MAX)
    # Check the last timed call's output; wrong is the total over ranks, known to every rank.
    wrong = int(_reduce([count_wrong(buf, src, rank, world)], device, dist.ReduceOp.SUM)[0])
    stats = Stats.from_samples(times_ms)
    algbw, busbw = bandwidths_gbps(nbytes, stats.median, world)
    return {"op": "allreduce", "dtype": DTYPE, "bytes": nbytes, "world_size": world,
            "backend": dist.get_backend(), "time_ms": stats.to_dict(),
            "algbw_gbps": algbw, "busbw_gbps": busbw, "wrong": wrong}


def sweep(device: str, quick: bool = False, config: SweepConfig | None = None):
    """Yield one record per message size, smallest first, as each finishes.

    Joins or creates the process group (see init_distributed); a group this call created is
    destroyed when the sweep ends. Every rank yields the same records.
    """
    cfg = config or default_config(device, quick)
    created = init_distributed(device)
    try:
        world = dist.get_world_size()
        if not sum_is_exact(world):
            raise ValueError(f"world size {world} is too large for an exact fp32 check")
        for nbytes in cfg.sizes:
            with Watchdog(cfg.step_timeout_s, f"all-reduce of {nbytes} bytes"):
                record = measure_size(nbytes, device, cfg)
            yield record
    finally:
        if created:
            dist.destroy_process_group()
