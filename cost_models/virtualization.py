"""Bare metal versus a virtual machine: a fraction of step time lost to virtualisation.

A VM that is `overhead` slower than bare metal delivers (1 - overhead) of its throughput, so each
step takes step_time / (1 - overhead): GPU-hours and wall-clock days are divided by (1 - overhead),
achieved TFLOP/s and MFU multiplied by it. Applied to a finished TrainingPlan (from
cost.plan_training) so it holds for every time model the plan came from, the step model included:
where the plan carries a `step` breakdown, the extra time is one more part, "virtualization", so the
parts still add up to the step's seconds. Default 0: bare metal. The claim it lets one try: bare
metal is 5-10% faster than VMs (industry analysis 2025).
"""

import dataclasses
import math

from cost_models.errors import InputError


# Published VM overheads on GPU training are a few percent (the 5-10% claim above); 0.5 already
# doubles the run. Above it the figure is a typo (50 for 0.05) or a slowdown that is not
# virtualisation, and it would silently multiply every total (0.999: x1000).
MAX_OVERHEAD = 0.5


def check_overhead(overhead: float) -> float:
    if not (isinstance(overhead, (int, float)) and math.isfinite(overhead) and 0 <= overhead <= MAX_OVERHEAD):
        raise InputError(f"virtualization-overhead: {overhead!r} must be in [0, {MAX_OVERHEAD:g}] "
                         f"(a share of step time: 0.05 = 5% slower than bare metal)")
    return overhead


def with_overhead(plan, overhead: float):
    """The plan as it runs on a VM `overhead` slower than bare metal (the plan itself at 0)."""
    check_overhead(overhead)
    if overhead == 0:
        return plan
    keep = 1 - overhead
    changes = {"gpu_hours": plan.gpu_hours / keep, "wall_clock_days": plan.wall_clock_days / keep,
               "assumptions": {**plan.assumptions, "virtualization_overhead":
                               f"{overhead:g}: step time / (1 - {overhead:g}), GPU-hours and days x {1 / keep:.4g}"}}
    if plan.achieved_tflops_per_gpu is not None:
        changes["achieved_tflops_per_gpu"] = plan.achieved_tflops_per_gpu * keep
    if plan.mfu is not None:
        changes["mfu"] = plan.mfu * keep
    step = getattr(plan, "step", None)   # the step model's breakdown, where it ran
    if step:
        seconds = step["seconds"] / keep
        changes["step"] = {**step, "seconds": seconds,
                           "parts": {**step["parts"], "virtualization": seconds - step["seconds"]}}
    return dataclasses.replace(plan, **changes)
