"""Which GPUs of a run are stragglers or throttling: pure functions over per-rank figures.

A rented node can hide one slow GPU (a bad PCIe link, a failing fan, a lower power limit), and
one slow GPU sets the pace of every synchronous training step. Two signs, each named with the
GPU's rank, host and UUID so that it can be reported to the provider:
- its MAMF is below SLOW_RANK (90%) of the median over the GPUs of its node (its host);
- its SM clock dropped by more than CLOCK_DROP (10%) between the fingerprints taken before and
  after the measurements, or NVML says after the run that a thermal or hardware slowdown holds
  its clocks down (the power cap alone is normal under a full load and is not flagged).
"""

import statistics

SLOW_RANK = 0.9
CLOCK_DROP = 0.9
THROTTLING = ("hw_slowdown", "sw_thermal_slowdown", "hw_thermal_slowdown", "hw_power_brake_slowdown")


def slow_ranks(values: list, threshold: float = SLOW_RANK) -> list:
    """[(rank, fraction of the median)] for ranks whose MAMF is below threshold x the median rank's.
    None (a rank with no correct result) is left to the correctness report."""
    known = [v for v in values if v]
    if not known:
        return []
    mid = statistics.median(known)
    return [(r, v / mid) for r, v in enumerate(values) if v and v < threshold * mid]


def _throttle_reason(gpu: dict, clock_drop: float) -> str | None:
    before, after = gpu.get("before") or {}, gpu.get("after") or {}
    reasons = []
    b, a = before.get("sm_clock_mhz"), after.get("sm_clock_mhz")
    if b and a is not None and a < clock_drop * b:
        reasons.append(f"SM clock dropped from {b} to {a} MHz during the run")
    held = [r for r in after.get("clock_event_reasons") or () if r in THROTTLING]
    if held:
        reasons.append(f"clocks held down after the run by {', '.join(held)}")
    return "; ".join(reasons) or None


def stragglers(gpus: list, mamf_by_rank: dict | None = None, threshold: float = SLOW_RANK,
               clock_drop: float = CLOCK_DROP) -> list:
    """[{"rank", "host", "uuid", "reason"}] for every flagged GPU, in rank order.

    gpus: one entry per rank, {"rank", "host", "before": snapshot, "after": snapshot} as
    bench.gpu_fingerprint reads them (uuid from the snapshots). mamf_by_rank: {dtype: [TFLOP/s
    per rank, None where a rank has none]}; the median is taken per host."""
    by_rank = {g.get("rank", i): g for i, g in enumerate(gpus)}
    reasons = {}
    for dtype, values in (mamf_by_rank or {}).items():
        hosts = {}
        for rank, value in enumerate(values):
            hosts.setdefault((by_rank.get(rank) or {}).get("host"), []).append(rank)
        for ranks in hosts.values():
            node = [values[r] for r in ranks]
            for i, fraction in slow_ranks(node, threshold):
                rank = ranks[i]
                median = node[i] / fraction
                reasons.setdefault(rank, []).append(
                    f"{dtype} MAMF {node[i]:.1f} TFLOP/s is {fraction:.0%} of its node's median {median:.1f}")
    for rank, gpu in by_rank.items():
        why = _throttle_reason(gpu, clock_drop)
        if why:
            reasons.setdefault(rank, []).append(why)
    out = []
    for rank in sorted(reasons):
        gpu = by_rank.get(rank) or {}
        snap = gpu.get("after") or gpu.get("before") or {}
        out.append({"rank": rank, "host": gpu.get("host") or snap.get("host"),
                    "uuid": snap.get("uuid") or (gpu.get("before") or {}).get("uuid"),
                    "reason": "; ".join(reasons[rank])})
    return out
