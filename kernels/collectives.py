"""Collective bandwidth: all-reduce, reduce-scatter, all-gather and all-to-all over torch.distributed.

Reference: NVIDIA/nccl-tests (src/common.cu, all_reduce.cu, reduce_scatter.cu, all_gather.cu,
alltoall.cu; doc/PERFORMANCE.md). Sizes and bandwidths are nccl-tests' own: for every op the
size S reported is max(send bytes, receive bytes) of one rank, algbw = S / time, and busbw =
algbw x the op's factor, the share of S that crosses each rank's link in a ring:

    all-reduce       S = the buffer              factor 2(n-1)/n (reduce-scatter + all-gather)
    reduce-scatter   S = the full input          factor (n-1)/n  (each rank keeps S/n)
    all-gather       S = the gathered output     factor (n-1)/n  (each rank sends S/n)
    all-to-all       S = one rank's send buffer  factor (n-1)/n  (S/n stays on the rank)

The chunked ops round S down to a multiple of n elements, as nccl-tests does (count/n*n).
GB = 1e9 bytes.

Method: at every size a warm-up; the ranks agree on an iteration count (MAX of their estimates,
so every rank makes the same number of calls). Two timings follow:
- per iteration (DESIGN.md): an event pair (CUDA) or perf_counter (CPU) around each call; the
  iteration's time is the slowest rank's (MAX over ranks) -> time_ms; the same per-iteration
  times averaged over ranks, median over iterations -> time_ms_rank_mean.
- nccl-tests' way (common.cu BenchTime): a barrier, then `iters` calls launched back to back
  and timed together on the host, divided by the count, averaged over ranks -> nccl_tests.
Then, as nccl-tests' -c, the buffers are filled afresh and one untimed call is checked exactly:
every rank holds the same seeded integers `base` in [1, 8]; rank r contributes base x (r % 16 + 1),
so every expected value is a small integer product or sum, exact in fp32 (see expected_output).

In place: torch.distributed.all_reduce has no separate output, so all-reduce is always in place
(NCCL runs the same kernel either way). Reduce-scatter and all-gather run out of place by
default and in place on request, with nccl-tests' offsets (the output is the rank's chunk of
the input, resp. the input is the rank's chunk of the output). All-to-all has no in-place form
here: nccl-tests does not check it either (alltoall.cu: "We don't support in-place alltoall").

Under torchrun the group comes from the env:// rendezvous; in a single process it is a group of
one over a local HashStore, which runs the code path but moves no bytes over any link. Start-up
(joining the group and a first barrier) and every message size run under a Watchdog, so a rank
that stalls or dies ends the job within the timeout; a collective that fails outright (gloo:
"Connection closed by peer") raises RankFailure with one line.
"""

import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from kernels import select_cuda_device, torch_device
from kernels.timing import Stats, iterations_for

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
DTYPE = "fp32"           # exact sums need a mantissa wide enough for them: fp32's 24 bits
ELEMENT_BYTES = 4
OPS = ("allreduce", "reducescatter", "allgather", "alltoall")
NAMES = {"allreduce": "all-reduce", "reducescatter": "reduce-scatter", "allgather": "all-gather",
         "alltoall": "all-to-all"}
INPLACE_ONLY = ("allreduce",)      # torch.distributed.all_reduce writes its input
NO_INPLACE = {"alltoall": "in-place all-to-all is not run: nccl-tests does not check it either "
                          "(alltoall.cu), and send and receive would overwrite the same buffer"}
# How long the process group waits in a collective for a rank that is legitimately busy (rank 0
# still measuring matmul on CPU while the others wait at the next phase's barrier). Hangs are
# caught sooner, by the Watchdog around start-up and around every message size.
GROUP_TIMEOUT_S = 1800.0
# Default for COSTBENCH_TIMEOUT_S: start-up, and one message size, taking longer than this is a
# hung rank or a dead link, not a slow one: even 4 GiB at 0.1 GB/s is 43 s per call.
STEP_TIMEOUT_S = 300.0
RANK_FAILED_EXIT = 3     # SPEC.md's exit status for a failed or hung rank (bench.cli maps the same)
NO_LINK_NOTE = ("a single process (world size 1) exercises the collectives' code path but measures "
                "no link; launch with torchrun --nproc-per-node N for bandwidth")


class RankFailure(RuntimeError):
    """A collective failed because another rank died or the network broke. str() is one line."""


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


def busbw_factor(op: str, world_size: int) -> float:
    """nccl-tests' bus-bandwidth factor: 2(n-1)/n for all-reduce, (n-1)/n for the others."""
    if world_size < 1:
        raise ValueError(f"world_size must be >= 1, got {world_size}")
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}")
    share = (world_size - 1) / world_size
    return 2 * share if op == "allreduce" else share


def bandwidths_gbps(op: str, nbytes: int, time_ms: float, world_size: int) -> tuple[float, float]:
    """(algbw, busbw) in GB/s (1e9 bytes/s) for one call moving nccl-tests' size nbytes."""
    algbw = nbytes / (time_ms * 1e-3) / 1e9 if time_ms > 0 else 0.0
    return algbw, algbw * busbw_factor(op, world_size)


def op_bytes(op: str, nbytes: int, world_size: int) -> int:
    """nccl-tests' size for a requested size: the chunked ops round down to n equal chunks."""
    if op == "allreduce":
        return nbytes - nbytes % ELEMENT_BYTES
    unit = ELEMENT_BYTES * world_size
    return nbytes - nbytes % unit


def rank_multiplier(rank: int) -> int:
    """Rank r contributes base * (r % 16 + 1): ranks differ, and values stay small at any count."""
    return rank % 16 + 1


def multiplier_sum(world_size: int) -> int:
    """sum over r < world_size of rank_multiplier(r), in closed form (16 | full cycles)."""
    full, rest = divmod(world_size, 16)
    return full * (16 * 17 // 2) + rest * (rest + 1) // 2


BASE_MAX = 8  # base values are integers in [1, BASE_MAX]: never zero, and sums stay exact


def sum_is_exact(world_size: int) -> bool:
    """Whether the largest expected sum fits fp32's 24-bit mantissa (true up to ~246k ranks)."""
    return BASE_MAX * multiplier_sum(world_size) < 2 ** 24


def base_values(numel: int, device: str, seed: int) -> torch.Tensor:
    """The seeded integers in [1, BASE_MAX] every rank draws alike (random, never zero)."""
    dev = torch_device(device)
    gen = torch.Generator(device=dev).manual_seed(seed)
    return torch.randint(1, BASE_MAX + 1, (numel,), generator=gen, device=dev, dtype=torch.float32)


def send_values(op: str, base: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """What rank contributes: base * m_r over the whole buffer, or (all-gather) its chunk of it."""
    if op == "allgather":
        return base.chunk(world_size)[rank] * rank_multiplier(rank)
    return base * rank_multiplier(rank)


def expected_output(op: str, base: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """The exact result on rank, given every rank r sent send_values(op, base, r, n), m_r = r%16+1:
    all-reduce: base * sum(m); reduce-scatter: chunk `rank` of that; all-gather: chunk j holds
    base_j * m_j; all-to-all: chunk j holds what rank j sent to this rank, base_rank * m_j."""
    total = multiplier_sum(world_size)
    if op == "allreduce":
        return base * total
    chunks = base.chunk(world_size)
    if op == "reducescatter":
        return chunks[rank] * total
    if op == "allgather":
        return torch.cat([c * rank_multiplier(j) for j, c in enumerate(chunks)])
    if op == "alltoall":
        return torch.cat([chunks[rank] * rank_multiplier(j) for j in range(world_size)])
    raise ValueError(f"unknown collective {op!r}")


def count_wrong(result: torch.Tensor, expected: torch.Tensor) -> int:
    """Elements that differ from the exact expected values (nccl-tests' #wrong)."""
    return int((result != expected).sum().item())


# ---- configuration -------------------------------------------------------------------------

@dataclass
class SweepConfig:
    """Which sizes, and how long to spend on each. Budgets in ms, not iteration counts."""
    sizes: list
    budget_ms: float = 200.0   # timed iterations per size aim at this much time (each method)
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
        if not self.step_timeout_s > 0:
            raise ValueError(f"step_timeout_s must be positive, got {self.step_timeout_s}")


def default_config(device: str, quick: bool = False, max_bytes: int | None = None,
                   step_timeout_s: float = STEP_TIMEOUT_S) -> SweepConfig:
    """GPU: 32 KiB..4 GiB (quick: 1 MiB..256 MiB); the inter-node plateau often lies past 1 GiB.
    CPU (gloo over shared memory/TCP): 32 KiB..64 MiB (quick: ..4 MiB). max_bytes replaces the top."""
    lo, hi = {("cuda", False): (32 * KiB, 4 * GiB), ("cuda", True): (1 * MiB, 256 * MiB),
              ("cpu", False): (32 * KiB, 64 * MiB), ("cpu", True): (32 * KiB, 4 * MiB)}[device, quick]
    if max_bytes is not None:
        hi = max_bytes
        lo = min(lo, max_bytes)
    budgets = dict(budget_ms=50.0, warmup_ms=20.0, min_iters=3) if device == "cuda" and quick else \
        dict(budget_ms=30.0, warmup_ms=10.0, min_iters=3) if quick else {}
    return SweepConfig(message_sizes(lo, hi), step_timeout_s=step_timeout_s, **budgets)


# ---- the process group, and what ends a hung one -------------------------------------------

def backend_for(device: str) -> str:
    return "nccl" if device == "cuda" else "gloo"


def _default_on_timeout(message: str) -> None:
    sys.stderr.write(f"costbench: error: {message}\n")
    sys.stderr.flush()
    os._exit(RANK_FAILED_EXIT)


class Watchdog:
    """Ends the process if a step outlives its deadline: on_timeout(message) must not return.

    A rank that died or hangs leaves the others blocked inside a C++ collective (or the
    rendezvous) where no Python exception can reach them, and the group's own timeout is long
    (a busy rank is legitimately awaited). The default on_timeout prints one line and exits 3;
    bench.runner's also finishes the result file first.
    """

    def __init__(self, seconds: float, what: str, on_timeout: Callable[[str], None] | None = None):
        self.seconds, self.what = seconds, what
        self.on_timeout = on_timeout or _default_on_timeout
        self._timer = None

    def _fire(self):
        rank = dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))
        self.on_timeout(f"{self.what} did not finish within {self.seconds:g} s on rank {rank}: a rank is "
                        "stalled or dead, or the network is down (COSTBENCH_TIMEOUT_S sets the limit)")
        os._exit(RANK_FAILED_EXIT)  # in case on_timeout returned

    def __enter__(self):
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        return False


def one_line(error: BaseException) -> str:
    """gloo's and NCCL's messages span lines (C++ frames, hints) and start with a source location
    ("[/path/gloo/transport/tcp/pair.cc:534] Connection closed by peer"): keep the first non-empty
    line, without the location."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    if not lines:
        return type(error).__name__
    return re.sub(r"^\[[^\]]*:\d+\]\s*", "", lines[0])


def init_distributed(device: str, timeout_s: float = STEP_TIMEOUT_S,
                     on_timeout: Callable[[str], None] | None = None, env_rendezvous: bool | None = None) -> bool:
    """Join (or make) the default process group; True if this call created it.

    Under torchrun (env_rendezvous; default: WORLD_SIZE is set) the env:// rendezvous; otherwise a group of one over a
    local HashStore, so a single process runs the same code without opening a port. Joining
    and a first barrier must finish within timeout_s: a rank that never arrives (stalled before
    or inside init_process_group) ends the job then, not after the group's 30-minute timeout.
    """
    if dist.is_initialized():
        return False
    if env_rendezvous is None:
        env_rendezvous = "WORLD_SIZE" in os.environ
    group_timeout = timedelta(seconds=max(GROUP_TIMEOUT_S, timeout_s))
    world = int(os.environ.get("WORLD_SIZE", 1))
    kwargs = {}
    if device == "cuda":
        index = select_cuda_device()  # LOCAL_RANK % device_count(): one-GPU-per-process launchers work too
        kwargs["device_id"] = torch.device("cuda", index)  # binds NCCL now, as all_reduce_bench does
    with Watchdog(timeout_s, f"start-up (joining the group of {world} ranks and a first barrier)", on_timeout):
        try:
            if env_rendezvous:
                dist.init_process_group(backend_for(device), timeout=group_timeout, **kwargs)
            else:
                dist.init_process_group(backend_for(device), store=dist.HashStore(), rank=0, world_size=1,
                                        timeout=group_timeout, **kwargs)
            dist.barrier()
        except (RuntimeError, ValueError) as e:  # DistNetworkError, a refused connection, ...
            raise RankFailure(f"start-up: could not join the group of {world} ranks: {one_line(e)}") from None
    return True


def barrier(what: str) -> None:
    """A barrier whose failure (a dead peer) is a RankFailure with one line."""
    try:
        dist.barrier()
    except RuntimeError as e:
        raise RankFailure(f"{what}: {one_line(e)}") from None


# ---- one collective's buffers --------------------------------------------------------------

def _all_gather():
    # all_gather_single / reduce_scatter_single are the names from torch 2.13 on; the older
    # all_gather_into_tensor / reduce_scatter_tensor still work there (with a warning) and before.
    return getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


def _reduce_scatter():
    return getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor


class Buffers:
    """Send/receive buffers of one op at one size on this rank, nccl-tests' in-place offsets.

    call() runs the collective once; reset() restores the input where a call changes it (in-place
    all-reduce and reduce-scatter: outside every timed region); fill() re-initialises for the
    check; output is the tensor to compare with expected_output.
    """

    def __init__(self, op: str, nbytes: int, inplace: bool, device: str, seed: int):
        self.op, self.inplace = op, inplace
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.base = base_values(nbytes // ELEMENT_BYTES, device, seed)
        self.src = send_values(op, self.base, self.rank, self.world)
        r, n, src = self.rank, self.world, self.src
        if op == "allreduce":
            self.buf = torch.empty_like(src)
            self.output, self._call = self.buf, lambda: dist.all_reduce(self.buf)
        elif op == "reducescatter":
            self.buf = torch.empty_like(src) if inplace else src
            self.output = self.buf.chunk(n)[r] if inplace else torch.empty(src.numel() // n, device=src.device)
            fn = _reduce_scatter()
            self._call = lambda: fn(self.output, self.buf)
        elif op == "allgather":
            self.output = torch.empty_like(self.base)
            self.buf = self.output.chunk(n)[r] if inplace else src
            fn = _all_gather()
            self._call = lambda: fn(self.output, self.buf)
        elif op == "alltoall":
            if inplace:
                raise ValueError(NO_INPLACE["alltoall"])
            self.buf, self.output = src, torch.empty_like(src)
            self._call = lambda: dist.all_to_all_single(self.output, self.buf)
        else:
            raise ValueError(f"unknown collective {op!r}")
        self.needs_reset = op == "allreduce" or (op == "reducescatter" and inplace)
        self.fill()

    def call(self):
        self._call()

    def reset(self):
        if self.needs_reset:
            self.buf.copy_(self.src)

    def fill(self):
        """Fresh inputs; a separate output zeroed, so a call that writes nothing is caught."""
        if self.op == "allgather" or (self.op != "allreduce" and not self.inplace):
            self.output.zero_()
        if self.buf is not self.src:
            self.buf.copy_(self.src)

    def wrong(self) -> int:
        return count_wrong(self.output, expected_output(self.op, self.base, self.rank, self.world))


# ---- timing --------------------------------------------------------------------------------

def _per_iteration(bufs: Buffers, iters: int, device: str) -> list[float]:
    """Per-call times in ms on this rank, the reset outside the timed region."""
    if device == "cuda":
        starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
        for start, end in zip(starts, ends):
            bufs.reset()
            start.record()
            bufs.call()  # the current stream waits for NCCL's, so `end` follows it
            end.record()
        torch.cuda.synchronize()
        return [s.elapsed_time(e) for s, e in zip(starts, ends)]
    times = []
    for _ in range(iters):
        bufs.reset()
        t0 = time.perf_counter()
        bufs.call()  # gloo's synchronous call returns when the result is in place
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def _back_to_back(bufs: Buffers, iters: int, device: str) -> float:
    """nccl-tests' BenchTime: barrier, `iters` calls launched back to back, one wait, / iters.
    No reset between calls (in-place all-reduce values grow, as in nccl-tests' in-place runs;
    the check runs afterwards on fresh buffers)."""
    dist.barrier()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        bufs.call()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / iters


def _reduce(values, device: str, op) -> list[float]:
    """Element-wise reduction of a list of numbers over ranks (NCCL needs device tensors)."""
    t = torch.tensor(values, dtype=torch.float64, device=torch_device(device))
    dist.all_reduce(t, op=op)
    return t.tolist()


def measure_size(op: str, nbytes: int, device: str, cfg: SweepConfig, inplace: bool = False) -> dict:
    """One schema record for one op at nccl-tests' size nbytes. Every rank calls it alike."""
    world = dist.get_world_size()
    bufs = Buffers(op, nbytes, inplace, device, cfg.seed)
    # Warm-up: the first call may set up connections; its time (slowest rank) sizes the rest.
    first_ms = _reduce(_per_iteration(bufs, 1, device), device, dist.ReduceOp.MAX)[0]
    warm = _per_iteration(bufs, iterations_for(cfg.warmup_ms, first_ms, 1, cfg.max_iters), device)
    per_iter_ms = _reduce([sorted(warm)[len(warm) // 2]], device, dist.ReduceOp.MAX)[0]
    iters = iterations_for(cfg.budget_ms, per_iter_ms, cfg.min_iters, cfg.max_iters)
    mine = _per_iteration(bufs, iters, device)
    slowest = _reduce(mine, device, dist.ReduceOp.MAX)          # an iteration ends with the slowest rank
    mean = [t / world for t in _reduce(mine, device, dist.ReduceOp.SUM)]  # gloo has no AVG
    nccl_ms = _reduce([_back_to_back(bufs, iters, device)], device, dist.ReduceOp.SUM)[0] / world
    bufs.fill()
    bufs.call()  # the checked call, untimed (nccl-tests' -c)
    if device == "cuda":
        torch.cuda.synchronize()
    wrong = int(_reduce([bufs.wrong()], device, dist.ReduceOp.SUM)[0])
    stats = Stats.from_samples(slowest)
    algbw, busbw = bandwidths_gbps(op, nbytes, stats.median, world)
    nt_algbw, nt_busbw = bandwidths_gbps(op, nbytes, nccl_ms, world)
    return {"op": op, "dtype": DTYPE, "bytes": nbytes, "world_size": world, "backend": dist.get_backend(),
            "inplace": bool(inplace or op in INPLACE_ONLY), "time_ms": stats.to_dict(),
            "time_ms_rank_mean": Stats.from_samples(mean).median,
            "algbw_gbps": algbw, "busbw_gbps": busbw,
            "nccl_tests": {"time_ms": nccl_ms, "algbw_gbps": nt_algbw, "busbw_gbps": nt_busbw, "iters": iters},
            "wrong": wrong}


def _fits(op: str, nbytes: int, device: str) -> bool:
    """Whether every rank has room for this size (base, input, output, check), agreed over ranks so
    that all skip it together; a one-rank OOM would leave the others waiting. On CPU the ranks of
    one host share its memory (--max-bytes 1T on a 23 GiB host swept on towards the OOM killer)."""
    from kernels import free_bytes

    need = 4 * nbytes + (nbytes if op != "allgather" else 0)
    free = free_bytes(device)
    if free is None:   # nothing to ask (not Linux): the allocation's own error ends the sweep
        return True
    if device != "cuda":
        need *= _local_ranks()
    return _reduce([1.0 if free > need else 0.0], device, dist.ReduceOp.MIN)[0] > 0


def _local_ranks() -> int:
    """The ranks on this host (torchrun's LOCAL_WORLD_SIZE); 1 when unset or not a whole number."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE", 1)))
    except ValueError:
        return 1


def sweep(op: str, device: str, config: SweepConfig, inplace: bool = False,
          on_timeout: Callable[[str], None] | None = None, notes: list | None = None):
    """Yield one record per message size of one op, smallest first, as each finishes.

    Needs the process group (init_distributed). Every rank yields the same records. A size
    that does not split into n chunks of whole elements is left out; a size that does not fit in
    some rank's GPU (or host) memory ends the op's sweep (records so far stand; a line goes to notes).
    A failed collective
    raises RankFailure; a hung one ends the process through the Watchdog.
    """
    if op not in OPS:
        raise ValueError(f"unknown collective {op!r}")
    if inplace and op in NO_INPLACE:
        raise ValueError(NO_INPLACE[op])
    world = dist.get_world_size()
    if not sum_is_exact(world):
        raise ValueError(f"world size {world} is too large for an exact fp32 check")
    mode = "in place" if inplace else "out of place"
    for nbytes in dict.fromkeys(op_bytes(op, s, world) for s in config.sizes):
        if nbytes == 0:
            continue
        what = f"{NAMES[op]} ({mode}) of {nbytes} bytes"
        with Watchdog(config.step_timeout_s, what, on_timeout):
            try:
                fits = _fits(op, nbytes, device)
                record = measure_size(op, nbytes, device, config, inplace) if fits else None
            except RuntimeError as e:  # gloo: "Connection closed by peer"; NCCL: a remote error
                raise RankFailure(f"{what} failed: {one_line(e)}") from None
        if record is None:
            if notes is not None:
                room = "GPU memory" if device == "cuda" else "host memory"
                notes.append(f"{what}: not run, some rank lacks the {room}; larger sizes skipped")
            return
        yield record
