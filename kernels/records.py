"""Rules over matmul records shared by the kernels that write them and the readers that summarise
them (bench.results): which record is the MAMF, which the sustained figure, and when a shape beats
another beyond noise. No torch import: reading a result file must not need torch.

Phases (a matmul record's "phase"; records written before phases existed count as "search"):
- "search": one shape of the MAMF search (kernels.matmul.search);
- "remeasure": the search's winner timed again with a longer budget. This is the MAMF quoted:
  the best of many noisy medians is biased upward (the winner's curse), a fresh longer
  measurement of the same shape is not;
- "sustained": the winner timed again at the end of the run, after the GPU has been busy for the
  whole run (clocks settled under heat and power limits); "burst" is the remeasure.
"""

PHASES = ("search", "remeasure", "sustained")
LAYOUTS = ("TN", "NN")  # TN: B column-major (nn.Linear, mamf-finder); NN: both row-major


def _correct(records, dtype: str, phase: str) -> list:
    return [r for r in records if r.get("op") == "matmul" and r.get("dtype") == dtype
            and r.get("correct") and r.get("phase", "search") == phase]


def best_matmul(records: list, dtype: str) -> dict | None:
    """The MAMF record of one dtype: the best correct remeasure record (several where the search's
    winner did not hold up: kernels.matmul.search), else (an old file, or a run interrupted before
    the remeasure) the highest-tflops correct search record."""
    remeasured = _correct(records, dtype, "remeasure")
    if remeasured:
        return max(remeasured, key=lambda r: r["tflops"])
    return max(_correct(records, dtype, "search"), key=lambda r: r["tflops"], default=None)


def sustained_matmul(records: list, dtype: str) -> dict | None:
    """The end-of-run re-timing of the MAMF shape, or None when the run did not get that far."""
    sustained = _correct(records, dtype, "sustained")
    return sustained[-1] if sustained else None


def tflops_at(record: dict, time_ms: float) -> float:
    """The record's shape's TFLOP/s at a given time per matmul (2*m*n*k FLOPs)."""
    return 2 * record["m"] * record["n"] * record["k"] / (time_ms * 1e-3) / 1e12


def clearly_better(candidate: dict, top: dict | None) -> bool:
    """Whether the search moves from `top` to `candidate`: only on an improvement beyond the
    measured spread, never on noise.

    The rule: the candidate's median throughput must beat the top's p90 throughput (the top's
    throughput at its p10 time: what it reaches on its 10% fastest iterations). Two shapes
    running at the same speed have medians inside each other's p10..p90 band, so with a strict
    `>` on medians the search would step to whichever sample happened to run fast and drift
    upward on noise; with this rule it stays. A real improvement larger than the top's spread
    is taken. The shapes differ in FLOPs, so both sides are compared as TFLOP/s."""
    if not candidate.get("correct"):
        return False
    if top is None:
        return True
    return candidate["tflops"] > tflops_at(top, top["time_ms"]["p10"])
