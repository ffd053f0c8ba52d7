"""GPU-hours and wall-clock time of a training run. Works on scalars or broadcast numpy arrays.

    gpu_hours = G * (compute_s + exposed_comm_s) / 3600 / goodput

- compute_s = training FLOPs / (G * achieved TFLOP/s * 1e12), achieved = base * efficiency, with
  base = the measured MAMF for the dtype (a result file from this GPU) or peak * the catalog's MAMF
  fraction. `efficiency` covers what a real step loses against a lone matmul: smaller and odd
  shapes, tensor/pipeline-parallel communication, pipeline bubbles, non-matmul kernels.
- exposed_comm_s = steps * comm_per_step * (1 - overlap). The model is split over a sharding group
  of m GPUs (tensor/pipeline/FSDP) and replicated over dp = G / m groups. m is the memory minimum
  (memory.sharding_degree), kept fractional rather than rounded up to a power of two as real TP x
  PP degrees are: with rounding a slightly larger model would get half the gradient traffic per
  GPU at each power of two and come out cheaper (the TP/PP cost that offsets it is in the
  efficiency, not modelled apart). Llama 3.1 405B: m = 98 against Meta's TP8 x PP16 = 128. Each step every GPU reduce-scatters its
  shard's bf16 gradients and all-gathers the updated bf16 weights across dp ranks: 2 collectives
  of S = 2 bytes * params / m each, ring time S * (dp-1)/dp / busbw (nccl-tests' definition) plus
  (dp-1) latency hops each. steps = tokens / global batch tokens.
- goodput: failures arrive at a fixed rate per GPU-hour and each costs every GPU the same time
  (restart + work since the last checkpoint), so the lost share grows with G:
  goodput = 1 / (1 + failures_per_gpu_hour * G * hours_lost_per_failure).

Calibrated once, on Llama 3 (see DEFAULT_EFFICIENCY and the goodput constants); nothing is tuned
per model.
"""

import numpy as np

# Goodput, from "The Llama 3 Herd of Models" (sec. 3.3.4): 466 job interruptions in a 54-day
# snapshot of 405B pretraining on 16,384 H100s, and "over 90% effective training time" (taken as
# 90%). Rate per GPU-hour from the count; the hours lost per interruption from the 90%.
LLAMA3_INTERRUPTIONS, LLAMA3_DAYS, LLAMA3_GPUS, LLAMA3_GOODPUT = 466, 54, 16384, 0.90
FAILURES_PER_GPU_HOUR = LLAMA3_INTERRUPTIONS / (LLAMA3_DAYS * 24 * LLAMA3_GPUS)   # 2.19e-5
HOURS_LOST_PER_FAILURE = (1 / LLAMA3_GOODPUT - 1) / (FAILURES_PER_GPU_HOUR * LLAMA3_GPUS)  # ~0.31 h

# Fraction of base (MAMF) throughput a training step achieves. Calibrated once: the value for
# which the estimates of Llama 3 70B (6.4M GPU-hours) and Llama 3.1 405B (30.84M) on H100-SXM at
# 16,384 GPUs, with every other default as below, have a geometric-mean ratio to the published
# figures of 1 (solved by bisection: 0.4827, rounded; ratios 0.95 and 1.06, scripts/bench_cost.py
# prints them). It gives 0.48 * 794.5 = 381 TFLOP/s per GPU while computing, 38.6% MFU, a little
# below Llama 3 paper Table 4's 400 (16k GPUs) because the 70B's published hours imply less than
# the 405B's.
DEFAULT_EFFICIENCY = 0.48
# Share of the data-parallel gradient traffic hidden behind backward compute (bucketed
# reduce-scatter / prefetched all-gather in FSDP and Megatron). An assumption, not calibrated.
DEFAULT_OVERLAP = 0.8
# Global batch: 1024 sequences of 8192 tokens, the middle stage of Llama 3 405B's 4M-8M-16M
# token schedule (Llama 3 paper sec. 3.4.1).
DEFAULT_BATCH_TOKENS = 1024 * 8192
# A cluster a catalog model without a published size gets by default: the smallest power of two
# that holds the model and finishes within DEFAULT_TARGET_DAYS, capped at MAX_DEFAULT_GPUS.
DEFAULT_TARGET_DAYS = 30
MAX_DEFAULT_GPUS = 16384


def goodput(gpus):
    """Share of wall-clock time that is productive training on a cluster of `gpus` GPUs."""
    return 1 / (1 + FAILURES_PER_GPU_HOUR * HOURS_LOST_PER_FAILURE * np.asarray(gpus, dtype=float))


def sharding_group(degree, gpus):
    """GPUs one model replica is split over: the memory minimum (at least 1), at most G."""
    return np.minimum(np.maximum(np.asarray(degree, dtype=float), 1.0), gpus)


def comm_seconds_per_step(params, group, gpus, busbw_gbps, latency_us):
    """Reduce-scatter + all-gather of one replica shard's bf16 gradients/weights across dp ranks."""
    dp = np.asarray(gpus, dtype=float) / group
    shard_bytes = 2.0 * np.asarray(params) / group
    ring = np.where(dp > 1, (dp - 1) / np.maximum(dp, 1), 0.0)
    hops = np.maximum(dp - 1, 0) * np.asarray(latency_us) * 1e-6
    return 2 * (shard_bytes * ring / (np.asarray(busbw_gbps) * 1e9) + hops)


def training_time(flops, tokens, params, gpus, sharding, achieved_tflops, busbw_gbps, latency_us,
                  overlap=DEFAULT_OVERLAP, batch_tokens=DEFAULT_BATCH_TOKENS, goodput_fraction=None):
    """The time model (module docstring). Returns a dict of arrays: compute_hours,
    exposed_comm_hours (both in GPU-hours, before goodput), goodput, gpu_hours, wall_clock_days."""
    gpus = np.asarray(gpus, dtype=float)
    compute_s = np.asarray(flops) / (gpus * np.asarray(achieved_tflops) * 1e12)
    group = sharding_group(sharding, gpus)
    steps = np.asarray(tokens) / batch_tokens
    exposed_s = steps * comm_seconds_per_step(params, group, gpus, busbw_gbps, latency_us) * (1 - np.asarray(overlap))
    good = goodput(gpus) if goodput_fraction is None else np.broadcast_to(goodput_fraction, np.shape(gpus))
    gpu_hours = gpus * (compute_s + exposed_s) / 3600 / good
    return {
        "compute_hours": gpus * compute_s / 3600,
        "exposed_comm_hours": gpus * exposed_s / 3600,
        "sharding_group": group,
        "goodput": good,
        "gpu_hours": gpu_hours,
        "wall_clock_days": gpu_hours / gpus / 24,
    }
