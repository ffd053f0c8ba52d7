"""GPU-hours and wall-clock time of a training run from its step time, and goodput.

    gpu_hours = steps * step_seconds * G / 3600 / goodput,   steps = tokens / (global batch * seq)

step_seconds comes from the step model (step_time.py) for the chosen layout. goodput: failures
arrive at a fixed rate per GPU-hour and each costs every GPU the same time (restart + work since
the last checkpoint), so the lost share grows with G:
goodput = 1 / (1 + failures_per_gpu_hour * G * hours_lost_per_failure).
Works on scalars or broadcast numpy arrays.
"""

import numpy as np

# Goodput, from "The Llama 3 Herd of Models" (sec. 3.3.4): 466 job interruptions in a 54-day
# snapshot of 405B pretraining on 16,384 H100s, and "over 90% effective training time" (taken as
# 90%). Rate per GPU-hour from the count; the hours lost per interruption from the 90%.
LLAMA3_INTERRUPTIONS, LLAMA3_DAYS, LLAMA3_GPUS, LLAMA3_GOODPUT = 466, 54, 16384, 0.90
FAILURES_PER_GPU_HOUR = LLAMA3_INTERRUPTIONS / (LLAMA3_DAYS * 24 * LLAMA3_GPUS)   # 2.19e-5
HOURS_LOST_PER_FAILURE = (1 / LLAMA3_GOODPUT - 1) / (FAILURES_PER_GPU_HOUR * LLAMA3_GPUS)  # ~0.31 h

# Global batch when none is given: 16M tokens (2048 sequences of 8192), what Llama 3 405B trained
# with at 8K and 16K H100s (Llama 3 paper Table 4: batch 32 x DP 64 and 16 x DP 128); at another
# sequence length, the power of two of sequences nearest 16M tokens (default_batch).
DEFAULT_BATCH_TOKENS = 2048 * 8192
# A cluster a catalog model without a published size gets by default: the smallest power of two
# that holds the model and finishes within DEFAULT_TARGET_DAYS, capped at MAX_DEFAULT_GPUS.
DEFAULT_TARGET_DAYS = 30
MAX_DEFAULT_GPUS = 16384


def default_batch(seq_len) -> int:
    """Sequences per step when none is given: the power of two nearest (in ratio) to
    DEFAULT_BATCH_TOKENS / seq_len, at least 1 (a power of two divides over any power-of-two DP)."""
    return int(2 ** max(0, round(np.log2(DEFAULT_BATCH_TOKENS / float(seq_len)))))


def goodput(gpus):
    """Share of wall-clock time that is productive training on a cluster of `gpus` GPUs."""
    return 1 / (1 + FAILURES_PER_GPU_HOUR * HOURS_LOST_PER_FAILURE * np.asarray(gpus, dtype=float))


def run_goodput(gpus_used, given=None):
    """The goodput of a run on `gpus_used` GPUs: `given` (--goodput) if set, else goodput() of the
    GPUs the layout runs (a cluster's idle spares do not interrupt it)."""
    return goodput(gpus_used) if given is None else given


def gpu_hours(tokens, batch_tokens, step_seconds, gpus, goodput_fraction=None):
    """(GPU-hours, wall-clock days, goodput) of a run of `tokens` at `batch_tokens` per step."""
    gpus = np.asarray(gpus, dtype=float)
    good = goodput(gpus) if goodput_fraction is None else np.broadcast_to(goodput_fraction, np.shape(gpus))
    hours = np.asarray(tokens) / np.asarray(batch_tokens) * np.asarray(step_seconds) * gpus / 3600 / good
    return hours, hours / gpus / 24, good
