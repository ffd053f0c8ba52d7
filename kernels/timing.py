"""Time one operation: warm up, then sample it per iteration within a budget in milliseconds.

The method is triton.testing.do_bench's (triton/testing.py): budgets in ms rather than iteration
counts, so a 0.05 ms kernel and a 200 ms one both get a sensible number of samples; on CUDA a pair
of events per iteration, an L2 flush between iterations outside the events, and one synchronize
at the end. Stats follows pytest-benchmark's: one small class, the median is the figure quoted.

CPU: time.perf_counter around a synchronous call; caches are not flushed there, as
torch.utils.benchmark does not flush them either (scripts/bench_matmul_cpu.py compares the two).
torch is imported lazily, by the CUDA path only.
"""

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

DEVICES = ("cpu", "cuda")
FLUSH_MIN_BYTES = 256 * 2**20  # do_bench's 256 MB; bigger than any current L2 (H100: 50 MB)


@dataclasses.dataclass(frozen=True)
class Stats:
    """Summary of per-iteration times, all in ms except n (the sample count)."""

    min: float
    median: float
    mean: float
    p10: float
    p90: float
    stdev: float  # sample standard deviation (n - 1); 0 for a single sample
    n: int

    @classmethod
    def from_samples(cls, samples_ms: Sequence[float]) -> "Stats":
        xs = sorted(float(x) for x in samples_ms)
        if not xs:
            raise ValueError("Stats.from_samples: no samples")
        if not all(math.isfinite(x) and x >= 0 for x in xs):
            raise ValueError(f"Stats.from_samples: times must be finite and >= 0, got {xs}")
        n = len(xs)
        mean = math.fsum(xs) / n
        var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
        return cls(min=xs[0], median=percentile(xs, 0.5), mean=mean, p10=percentile(xs, 0.1),
                   p90=percentile(xs, 0.9), stdev=math.sqrt(var), n=n)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def percentile(sorted_xs: Sequence[float], q: float) -> float:
    """The q-quantile (0 <= q <= 1) of sorted values, interpolating linearly between the two
    nearest ranks: numpy.percentile's default ("linear"), so numbers agree with numpy's."""
    pos = (len(sorted_xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_xs) - 1)
    return sorted_xs[lo] + (sorted_xs[hi] - sorted_xs[lo]) * (pos - lo)


def iterations_for(budget_ms: float, per_iter_ms: float, min_iters: int, max_iters: int) -> int:
    """How many iterations fit in budget_ms at per_iter_ms each, clamped to [min_iters, max_iters].
    A per-iteration time of 0 (below the clock's resolution) gets max_iters."""
    if per_iter_ms <= 0:
        return max_iters
    return max(min_iters, min(max_iters, int(budget_ms / per_iter_ms)))


def flush_bytes(l2_bytes: int) -> int:
    """Size of the buffer written between iterations to evict the operands from L2: twice the L2,
    and never less than 256 MB, so the flush also works where the L2 size is misreported (0)."""
    return max(FLUSH_MIN_BYTES, 2 * int(l2_bytes))


def benchmark(fn: Callable[[], object], *, device: str, budget_ms: float, warmup_ms: float,
              min_iters: int = 5, max_iters: int = 1000, flush_l2: bool = True) -> Stats:
    """Time fn() per iteration: warm up for about warmup_ms, then measure for about budget_ms
    (never fewer than min_iters nor more than max_iters samples). flush_l2 applies to CUDA."""
    if device not in DEVICES:
        raise ValueError(f"benchmark: device must be one of {DEVICES}, got {device!r}")
    if not budget_ms > 0 or not warmup_ms >= 0:
        raise ValueError(f"benchmark: need budget_ms > 0 and warmup_ms >= 0, got {budget_ms}, {warmup_ms}")
    if not 1 <= min_iters <= max_iters:
        raise ValueError(f"benchmark: need 1 <= min_iters <= max_iters, got {min_iters}, {max_iters}")
    run = _cuda_samples if device == "cuda" else _cpu_samples
    return Stats.from_samples(run(fn, budget_ms, warmup_ms, min_iters, max_iters, flush_l2))


def _cpu_samples(fn, budget_ms, warmup_ms, min_iters, max_iters, flush_l2):
    # Warm up by the clock, with at least two calls: the first pays for one-time work (kernel
    # JIT, allocation) and can outlast the whole warm-up, so it never sizes the measurement;
    # the median of the later calls does.
    warm = []
    deadline = time.perf_counter() + warmup_ms / 1e3
    while len(warm) < 2 or (time.perf_counter() < deadline and len(warm) < max_iters):
        t0 = time.perf_counter()
        fn()
        warm.append((time.perf_counter() - t0) * 1e3)
    n = iterations_for(budget_ms, percentile(sorted(warm[1:]), 0.5), min_iters, max_iters)
    # The median sizes n, but on a shared host a few iterations can be preempted for tens of ms:
    # stop at twice the budget (never before min_iters), so the wall time stays bounded.
    deadline = time.perf_counter() + 2 * budget_ms / 1e3
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        samples.append((t1 - t0) * 1e3)
        if t1 > deadline and len(samples) >= min_iters:
            break
    return samples


def _cuda_samples(fn, budget_ms, warmup_ms, min_iters, max_iters, flush_l2):
    import torch

    dev = torch.cuda.current_device()
    cache = None
    if flush_l2:
        l2 = getattr(torch.cuda.get_device_properties(dev), "L2_cache_size", 0)
        cache = torch.empty(flush_bytes(l2), dtype=torch.int8, device=dev)

    def step():
        if cache is not None:
            cache.zero_()  # outside the events: evicts the operands so each iteration reads HBM
        fn()

    # The host enqueues faster than the GPU runs, so the clock cannot pace the warm-up; estimate
    # an iteration (flush included, as do_bench does) from 5 calls between one event pair instead.
    step()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        step()
    end.record()
    torch.cuda.synchronize()
    per_iter_ms = start.elapsed_time(end) / 5
    for _ in range(iterations_for(warmup_ms, per_iter_ms, 1, max_iters)):
        step()

    n = iterations_for(budget_ms, per_iter_ms, min_iters, max_iters)
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for s, e in zip(starts, ends):
        if cache is not None:
            cache.zero_()
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()  # the only host-device sync of the measurement
    return [s.elapsed_time(e) for s, e in zip(starts, ends)]
