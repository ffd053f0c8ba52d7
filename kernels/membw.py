"""Memory bandwidth: a large device-to-device copy, GB/s counting the bytes read and written.

What the step model uses for the memory-bound part of training (norms, activations, optimizer
updates). The method is the one STREAM's "Copy" kernel and the usual `torch` copy benchmarks use:
dst.copy_(src) over buffers far larger than any cache, so every byte crosses the memory bus once
read and once written: GB/s = 2 * bytes / time (1e9 bytes). Timed by kernels.timing (CUDA: event
pairs per iteration; no L2 flush, the buffers are 40x the largest L2 already). Efficiency is
against the datasheet's HBM bandwidth (cost_models/data/gpus.csv hbm_tbps); a device copy
reaches about 90% of it (single-GPU readings, 2026-11: H100 80GB HBM3 ~3.0 of 3.35 TB/s, H200
~4.3 of 4.8 TB/s).

The copy is checked: the destination equals the source on a seeded sample of positions (and the
buffers are filled with random bytes first, so a copy that did nothing fails).
"""

import torch

from kernels import torch_device
from kernels.timing import benchmark

GiB, MiB = 1 << 30, 1 << 20
# GPU: 2 GiB per buffer (4 GiB in all): ~1 ms per copy on an H100, far beyond the 50-60 MB L2s,
# capped at 1/8 of the device's memory so a small GPU (or a MIG slice) still fits.
# CPU: 64 MiB per buffer, far beyond a CPU's last-level cache; ~10-30 ms per copy.
NBYTES = {"cuda": 2 * GiB, "cpu": 64 * MiB}
BUDGET_MS = {"cuda": 200.0, "cpu": 150.0}
WARMUP_MS = {"cuda": 25.0, "cpu": 30.0}
SAMPLE = 1 << 16  # positions compared after the copy


def default_bytes(device: str) -> int:
    if device == "cuda":
        total = torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory
        return min(NBYTES["cuda"], total // 8 // MiB * MiB)
    return NBYTES["cpu"]


def gbps(nbytes: int, time_ms: float) -> float:
    """Bytes read plus bytes written, per second, in GB/s (1e9)."""
    return 2 * nbytes / (time_ms * 1e-3) / 1e9


def copy_matches(dst: torch.Tensor, src: torch.Tensor, sample: int = SAMPLE, seed: int = 0) -> bool:
    """Whether dst equals src at `sample` seeded random positions (all of them if fewer)."""
    n = src.numel()
    if n <= sample:
        return bool(torch.equal(dst, src))
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, n, (sample,), generator=g).to(src.device)
    return bool(torch.equal(dst[idx], src[idx]))


def measure(device: str, nbytes: int | None = None, budget_ms: float | None = None) -> dict:
    """Time dst.copy_(src) on device and check it: one "membw" record (SPEC.md)."""
    if device not in BUDGET_MS:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(BUDGET_MS)}")
    nbytes = nbytes or default_bytes(device)
    if nbytes < 1:
        raise ValueError(f"membw: bytes must be positive, got {nbytes}")
    dev = torch_device(device)
    g = torch.Generator(device=dev).manual_seed(0)
    src = torch.randint(0, 256, (nbytes,), generator=g, dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    stats = benchmark(lambda: dst.copy_(src), device=device, budget_ms=budget_ms or BUDGET_MS[device],
                      warmup_ms=WARMUP_MS[device], flush_l2=False)
    record = {"op": "membw", "dtype": "u8", "bytes": nbytes, "time_ms": stats.to_dict(),
              "gbps": gbps(nbytes, stats.median), "correct": copy_matches(dst, src)}
    del src, dst
    if device == "cuda":
        torch.cuda.empty_cache()  # give the 4 GiB back before the next phase allocates its own
    return record
