"""The matmul kernel and its MAMF shape search: what a GPU (or CPU) really delivers per dtype.

"Maximum achievable matmul FLOPS" (MAMF) follows Stas Bekman's mamf-finder
(github.com/stas00/ml-engineering, compute/accelerator/benchmarks/mamf-finder.py): time torch.mm
over many shapes with the L2 cache flushed between iterations and report the best. Datasheet peaks
are not reachable, and which shape comes closest differs by GPU, so we search: a default set of
large squares and Llama-like transformer shapes (m = tokens, k/n = hidden/FFN widths), then a
hill-climb around the best one. FLOPs = 2*m*n*k; the figure is the median time's TFLOP/s.

Each measured shape is checked against a float64 reference on a 16x16 sample of the output
(see max_rel_err) so a fast but wrong kernel never becomes a MAMF.
fp8 is e4m3 with per-tensor scales through torch._scaled_mm, fast accumulation on, as in
torchao's float8 training forward; it needs compute capability >= 8.9 (Ada, Hopper, Blackwell)
and torch >= 2.5 (before 2.5 torch._scaled_mm returned a tuple (out, amax)).

Method as mamf-finder's, where it matters for the figure: the second operand is column-major by
default (B = randn(n, k).t(), the "TN" layout cuBLAS runs for nn.Linear; "NN" on request), the GPU
is warmed up before the first timed shape (warm_up; mamf-finder: 30 s, "a cold accelerator gives
a higher score"), and the search's winner is re-measured with a longer budget, which is the MAMF
quoted (kernels.records explains the phases and the search's acceptance rule).
"""

import contextlib
import dataclasses
import math
import time
from collections.abc import Iterable, Iterator

import torch

from kernels.records import LAYOUTS, PHASES, best_matmul, clearly_better, tflops_at
from kernels.timing import benchmark
from cost_models.hardware import DTYPES  # torch-free, so the CLI validates dtypes without torch
from kernels import torch_device

DEVICES = ("cpu", "cuda")
FP8_MIN_TORCH = (2, 5)
TORCH_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32,
                "fp32": torch.float32}
FP8_MAX = 448.0  # largest finite float8_e4m3fn

# Largest acceptable max_rel_err (definition in max_rel_err). The reference multiplies the very
# inputs the kernel saw (already rounded to bf16/fp16/fp8), so what remains is accumulation
# and output rounding:
# - fp32: fp32 accumulation; random-walk error ~ u*sqrt(k)/4 of max|ref| with u = 6e-8,
#   about 2e-6 at k = 16384 even summed sequentially.
# - tf32: inputs rounded to 10 mantissa bits inside the tensor core (the reference uses the
#   fp32 inputs): ~2^-11 per product, ~3e-4 of max|ref|; truncation instead of rounding doubles it.
# - bf16/fp16: output rounding <= 2^-9 (bf16) of |ref| <= max|ref|, i.e. 2e-3; fp32 accumulation.
# - fp8: output in bf16 (2e-3 as above) plus fast accumulation, whose accumulator keeps about
#   14 mantissa bits on Hopper (DeepSeek-V3 report, sec. 3.3.2): ~2^-14*sqrt(k)/4 = 2e-3 at
#   k = 16384. 2e-2 leaves 5x margin, while real faults (a lost scale, a dropped k-block, a
#   transposed operand) give errors of order 0.1 to 1.
TOLERANCE = {"fp32": 1e-5, "tf32": 2e-3, "bf16": 1e-2, "fp16": 1e-2, "fp8": 2e-2}

WARMUP_MS = {"cpu": 30.0, "cuda": 25.0}  # cuda: do_bench's default warm-up
BUDGET_MS = {"cpu": 200.0, "cuda": 100.0}  # cuda: do_bench's default rep
SAMPLE = 16  # rows and columns of the output checked against the float64 reference
WARMUP_S = {"cpu": 0.0, "cuda": 30.0}  # mamf-finder's 30 s; a CPU has no boost clock to settle
WARMUP_SHAPE = {"cpu": 512, "cuda": 8192}  # a square matmul that keeps the device fully busy

_CPU_UNSUPPORTED = {
    "fp16": "fp16 matmul on CPU has no fast kernel and no CPU training uses it; measured: fp32, bf16",
    "tf32": "tf32 is an NVIDIA tensor-core format (compute capability >= 8.0); not on CPU",
    "fp8": "fp8 matmul needs an NVIDIA GPU with compute capability >= 8.9; not on CPU",
}
_MIN_CAPABILITY = {"bf16": (8, 0), "tf32": (8, 0), "fp8": (8, 9)}


@dataclasses.dataclass(frozen=True)
class SearchPlan:
    """What search() measures: the default shapes in order, then a hill-climb around the best
    with each step in turn (coarse to fine) until no neighbour improves or max_shapes is hit."""

    shapes: tuple[tuple[int, int, int], ...]
    steps: tuple[int, ...]
    max_shapes: int  # defaults included
    max_dim: int  # no neighbour beyond this (memory and time)
    budget_ms: float  # per shape
    remeasure_ms: float  # the winner's second, longer measurement (and the sustained re-timing)

    def __post_init__(self):
        if not self.shapes or self.max_shapes < len(self.shapes):
            raise ValueError(f"SearchPlan: max_shapes {self.max_shapes} < {len(self.shapes)} default shapes")
        if any(s <= 0 for s in self.steps) or any(d <= 0 for shape in self.shapes for d in shape):
            raise ValueError("SearchPlan: shapes and steps must be positive")
        if not self.remeasure_ms >= self.budget_ms > 0:
            raise ValueError("SearchPlan: need remeasure_ms >= budget_ms > 0")


# Llama 3 (Hugging Face configs) linear layers over an 8192-token batch, as (m, n, k) = (tokens,
# out features, in features): 8B hidden 4096, FFN 14336, fused QKV 4096 + 2*8*128 = 6144;
# 70B hidden 8192, FFN 28672, fused QKV 10240.
_LLAMA_SHAPES = ((8192, 6144, 4096), (8192, 14336, 4096), (8192, 4096, 14336),
                 (8192, 10240, 8192), (8192, 28672, 8192), (8192, 8192, 28672))
PLANS = {
    ("cuda", False): SearchPlan(
        # 2048x2048x13312: mamf-finder's best bf16 shape on H100 SXM (ml-engineering's mamf-finder results table)
        shapes=((4096, 4096, 4096), (8192, 8192, 8192), (16384, 16384, 16384), (2048, 2048, 13312))
        + _LLAMA_SHAPES,
        steps=(1024, 512, 256), max_shapes=60, max_dim=32768, budget_ms=BUDGET_MS["cuda"],
        remeasure_ms=2000.0),
    ("cuda", True): SearchPlan(
        shapes=((4096, 4096, 4096), (8192, 8192, 8192), (8192, 28672, 8192)),
        steps=(256,), max_shapes=9, max_dim=32768, budget_ms=50.0, remeasure_ms=500.0),
    # CPUs reach ~0.1-1 TFLOP/s: shapes 10-20x smaller per side keep an iteration near 10 ms.
    ("cpu", False): SearchPlan(
        shapes=((256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048),
                (1024, 1792, 512), (1024, 512, 1792)),
        steps=(256, 128), max_shapes=24, max_dim=4096, budget_ms=BUDGET_MS["cpu"], remeasure_ms=1000.0),
    # quick: 4 defaults + one round of 6 neighbours; ~1.5 s for fp32, ~3 s for bf16 on 2 cores
    ("cpu", True): SearchPlan(
        shapes=((256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (1024, 1792, 512)),
        steps=(128,), max_shapes=10, max_dim=2048, budget_ms=100.0, remeasure_ms=200.0),
}


def _validate(dtype: str, device: str, layout: str = "TN") -> None:
    if dtype not in DTYPES:
        raise ValueError(f"unknown matmul dtype {dtype!r}; choose from {', '.join(DTYPES)}")
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}; choose from {', '.join(DEVICES)}")
    if layout not in LAYOUTS:
        raise ValueError(f"unknown matmul layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    if dtype == "fp8" and layout != "TN":
        raise ValueError("matmul fp8: only the TN layout (torch._scaled_mm takes B column-major)")


def torch_version() -> tuple[int, int]:
    """(major, minor) of the torch in use: "2.4.1+cu121" -> (2, 4)."""
    major, minor = torch.__version__.split("+")[0].split(".")[:2]
    return int(major), int("".join(c for c in minor if c.isdigit()) or 0)


def default_dtypes(device: str) -> list[str]:
    _validate("fp32", device)
    return ["fp32", "bf16"] if device == "cpu" else list(DTYPES)


def unsupported_reason(dtype: str, device: str) -> str | None:
    """Why dtype cannot be measured on device here, or None if it can."""
    _validate(dtype, device)
    if device == "cpu":
        return _CPU_UNSUPPORTED.get(dtype)
    if dtype == "fp8" and torch_version() < FP8_MIN_TORCH:
        return (f"fp8 needs torch >= {FP8_MIN_TORCH[0]}.{FP8_MIN_TORCH[1]} (before it torch._scaled_mm "
                f"returned (out, amax)); this is torch {torch.__version__}")
    if not torch.cuda.is_available():
        return "CUDA is not available (torch.cuda.is_available() is False)"
    if torch.version.hip:
        # compute capabilities mean nothing on ROCm; its fp8 is e4m3fnuz, not e4m3fn
        return "fp8 on ROCm uses e4m3fnuz; costbench times NVIDIA e4m3fn only" if dtype == "fp8" else None
    need = _MIN_CAPABILITY.get(dtype)
    have = torch.cuda.get_device_capability()
    if need and have < need:
        name = torch.cuda.get_device_name()
        return f"{dtype} needs compute capability >= {need[0]}.{need[1]}; {name} has {have[0]}.{have[1]}"
    return None


def candidate_shapes(dtype: str, device: str, quick: bool) -> list[tuple[int, int, int]]:
    """The default (m, n, k) shapes search() measures first (all multiples of 16, as fp8 needs)."""
    _validate(dtype, device)
    return list(PLANS[device, quick].shapes)


def _mm(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """The op timed for every dtype but fp8 (one indirection, so tests can swap in a wrong one)."""
    return torch.mm(a, b, out=out)


@dataclasses.dataclass
class Problem:
    """One shape's operands and output, allocated once; run() is what gets timed."""

    dtype: str
    a: torch.Tensor  # (m, k) in the compute dtype; fp8: quantised, a_real = a * scale_a
    b: torch.Tensor  # (k, n); column-major (a transposed (n, k) tensor) in the TN layout
    out: torch.Tensor  # (m, n), written in place by run()
    scale_a: torch.Tensor | None = None  # fp8 only: float32 dequantisation scales
    scale_b: torch.Tensor | None = None

    def run(self) -> torch.Tensor:
        if self.dtype != "fp8":
            return _mm(self.a, self.b, self.out)
        return torch._scaled_mm(self.a, self.b, scale_a=self.scale_a, scale_b=self.scale_b,
                                out_dtype=self.out.dtype, use_fast_accum=True, out=self.out)

    def max_rel_err(self, sample: int = SAMPLE, seed: int = 0) -> float | None:
        """Check the last run()'s output on `sample` random rows x columns; see max_rel_err."""
        g = torch.Generator().manual_seed(seed)
        rows = torch.randperm(self.a.shape[0], generator=g)[:sample].to(self.a.device)
        cols = torch.randperm(self.b.shape[1], generator=g)[:sample].to(self.a.device)
        a = _take(self.a, 0, rows) * (1.0 if self.scale_a is None else self.scale_a.double())
        b = _take(self.b, 1, cols) * (1.0 if self.scale_b is None else self.scale_b.double())
        return max_rel_err(self.out[rows][:, cols], a, b)


def _take(x: torch.Tensor, dim: int, index: torch.Tensor) -> torch.Tensor:
    """x.index_select(dim, index) in float64. float8 tensors are indexed as their raw bytes, as
    not every torch build has index kernels for float8."""
    if x.dtype == torch.float8_e4m3fn:
        return x.view(torch.uint8).index_select(dim, index).view(x.dtype).float().double()
    return x.index_select(dim, index).double()


def _quantize_fp8(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor dynamic scaling (torchao's tensorwise recipe): the amax maps to e4m3's 448."""
    scale = (x.abs().max().float() / FP8_MAX).clamp(min=1e-12)
    return (x / scale).clamp(-FP8_MAX, FP8_MAX).to(torch.float8_e4m3fn), scale


def make_problem(m: int, n: int, k: int, dtype: str, device: str, seed: int = 0,
                 layout: str = "TN") -> Problem:
    """Seeded normal random operands (never zeros: zeros run faster on real GPUs). TN: B is
    randn(n, k).t(), column-major as mamf-finder builds it and as nn.Linear's weight is used;
    NN: B is randn(k, n), row-major."""
    _validate(dtype, device, layout)
    dev = torch_device(device)
    g = torch.Generator(device=dev).manual_seed(seed)
    a = torch.randn(m, k, generator=g, device=dev)
    b_nk = torch.randn(n, k, generator=g, device=dev)  # B^T, row-major: B = b_nk.t() is column-major
    if dtype == "fp8":
        a8, scale_a = _quantize_fp8(a)
        b8, scale_b = _quantize_fp8(b_nk)
        out = torch.empty(m, n, dtype=torch.bfloat16, device=dev)
        return Problem(dtype, a8, b8.t(), out, scale_a, scale_b)
    t = TORCH_DTYPES[dtype]
    b = b_nk.to(t).t() if layout == "TN" else b_nk.t().contiguous().to(t)
    return Problem(dtype, a.to(t), b, torch.empty(m, n, dtype=t, device=dev))


def max_rel_err(out: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> float | None:
    """max |out - a@b| / max |a@b| over a sample: out (r, c), a (r, k) and b (k, c) as the kernel
    saw them. None if out holds NaN or inf.

    Why this normalisation: per element, |out - ref| / |ref| explodes where a dot product cancels
    to near 0; Higham's |a|@|b| denominator is robust to that but grows like k while the dot
    products of random data grow like sqrt(k), so it dilutes real faults (a dropped half of the
    k-sum would pass bf16's limit at k = 16384). The sample's max |ref| is neither: for random
    inputs it is ~3*sqrt(k) and every fault shows at its true size.
    """
    return rel_err(out, a.double() @ b.double())


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float | None:
    """max |out - ref| / max |ref| (max_rel_err's measure, for a given reference); None if out
    holds NaN or inf."""
    diff = (out.double() - ref.double()).abs().max().item()
    if not math.isfinite(diff):
        return None
    return diff / max(ref.double().abs().max().item(), 1e-300)


@contextlib.contextmanager
def _fp32_precision(dtype: str):
    """tf32 is fp32 matmul with tensor-core rounding allowed; fp32 must not get it, whatever
    the caller's global setting."""
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("high" if dtype == "tf32" else "highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(before)


def measure(m: int, n: int, k: int, dtype: str, device: str, budget_ms: float | None = None,
            layout: str = "TN", phase: str = "search") -> dict:
    """Time one shape and check its result: one matmul record of DESIGN.md's schema
    (max_rel_err is None where the output is not finite); `phase` as kernels.records says."""
    if phase not in PHASES:
        raise ValueError(f"unknown matmul phase {phase!r}; choose from {', '.join(PHASES)}")
    reason = unsupported_reason(dtype, device)
    if reason:
        raise ValueError(f"matmul {dtype} on {device}: {reason}")
    if min(m, n, k) < 1 or (dtype == "fp8" and (m % 16 or n % 16 or k % 16)):
        raise ValueError(f"matmul {dtype}: bad shape {m}x{n}x{k} (positive; multiples of 16 for fp8)")
    with _fp32_precision(dtype):
        problem = make_problem(m, n, k, dtype, device, layout=layout)
        stats = benchmark(problem.run, device=device, warmup_ms=WARMUP_MS[device],
                          budget_ms=budget_ms or BUDGET_MS[device])
        err = problem.max_rel_err()  # the output of the last timed iteration
    return {"op": "matmul", "dtype": dtype, "m": m, "n": n, "k": k, "layout": layout, "phase": phase,
            "time_ms": stats.to_dict(),
            "tflops": 2 * m * n * k / (stats.median * 1e-3) / 1e12,
            "correct": err is not None and err <= TOLERANCE[dtype], "max_rel_err": err}


def neighbours(shape: tuple[int, int, int], step: int, max_dim: int) -> list[tuple[int, int, int]]:
    """The shapes one step away in m, n or k, within [step, max_dim]."""
    out = []
    for i in range(3):
        for delta in (step, -step):
            d = shape[i] + delta
            if step <= d <= max_dim:
                out.append(shape[:i] + (d,) + shape[i + 1:])
    return out


def search(dtype: str, device: str, quick: bool, layout: str = "TN") -> Iterator[dict]:
    """Measure the default shapes, then hill-climb around the best correct one, moving only to a
    neighbour that is better beyond the measured spread (kernels.records.clearly_better); yield
    each record as soon as it is measured, and last the winner re-measured with the plan's longer
    budget (phase "remeasure": the MAMF quoted), followed by the next-best shapes' where it falls
    under HOLDS_UP of its search figure. Raises ValueError for an unsupported dtype."""
    _validate(dtype, device, layout)
    reason = unsupported_reason(dtype, device)
    if reason:
        raise ValueError(f"matmul {dtype} on {device}: {reason}")
    plan = PLANS[device, quick]
    seen, top, records_seen = set(), None, []

    def visit(shapes):
        """Measure those of shapes not seen yet (within max_shapes); return whether top moved."""
        nonlocal top
        moved = False
        for shape in shapes:
            if shape in seen or len(seen) >= plan.max_shapes:
                continue
            seen.add(shape)
            record = measure(*shape, dtype, device, plan.budget_ms, layout=layout)
            records_seen.append(record)
            yield record
            if clearly_better(record, top):
                top, moved = record, True
        return moved

    yield from visit(plan.shapes)
    for step in plan.steps:  # coarse to fine; climb while a neighbour improves
        moved = top is not None
        while moved and len(seen) < plan.max_shapes:
            moved = yield from visit(neighbours((top["m"], top["n"], top["k"]), step, plan.max_dim))
    if top is None:
        return
    # The winner re-measured with the longer budget. Where it does not hold up (under half its
    # search figure: the search saw a spike, or the machine got busy), the next-best shapes are
    # re-measured too and the best remeasure is the MAMF: a loaded CPU once quoted 0.0042 TFLOP/s
    # for a shape its search had read at 0.72, beside 0.27 at 1024^3 and 0.36 sustained.
    # The best median is re-measured beside the winner where even its slowest iterations (p90
    # time) beat the winner's median: a winner measured on a busy machine has a wide band that no
    # neighbour's median clears (clearly_better), so the search stayed at 256^3 (median 0.0041
    # TFLOP/s) while 1024^3 had run at 0.067 (hostile tester). A leader by noise alone is not.
    ranked = [r for r in sorted(records_seen, key=lambda r: -r["tflops"]) if r["correct"]]
    leader = ranked[0] if ranked else top
    if leader is not top and tflops_at(leader, leader["time_ms"]["p90"]) <= top["tflops"]:
        leader = top
    first = [top] + ([leader] if leader is not top else [])
    fallbacks = [r for r in ranked if r is not top and r is not leader][:REMEASURE_FALLBACKS]
    held = False
    for i, candidate in enumerate(first + fallbacks):
        if held and i >= len(first):
            return
        again = measure(candidate["m"], candidate["n"], candidate["k"], dtype, device, plan.remeasure_ms,
                        layout=layout, phase="remeasure")
        yield again
        held = held or held_up(again, candidate)


HOLDS_UP = 0.5            # a remeasure at least this share of its search figure stands
REMEASURE_FALLBACKS = 2   # next-best shapes re-measured where the winner does not hold up


def held_up(remeasure: dict, searched: dict) -> bool:
    """Whether a shape's remeasure stands beside its search figure (at least HOLDS_UP of it)."""
    return remeasure["tflops"] >= HOLDS_UP * searched["tflops"]


def remeasure_budget_ms(device: str, quick: bool) -> float:
    """The longer budget of the winner's re-measurements (remeasure and sustained)."""
    return PLANS[device, quick].remeasure_ms


def warm_up(device: str, seconds: float) -> int:
    """Keep the device busy with square bf16 (CPU: fp32) matmuls for about `seconds`, so that the
    first timed shape does not run on a cold GPU, whose boost clocks read high (mamf-finder warms
    up 30 s). Returns the number of matmuls run; 0 seconds runs none."""
    if not seconds >= 0:
        raise ValueError(f"warm-up seconds must be >= 0, got {seconds}")
    if seconds == 0:
        return 0
    side = WARMUP_SHAPE[device]
    dtype = "fp32" if device == "cpu" else "bf16"
    problem = make_problem(side, side, side, dtype, device)
    deadline, count = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        for _ in range(10):  # the host enqueues ahead of the GPU: sync every few calls to read the clock
            problem.run()
        if device == "cuda":
            torch.cuda.synchronize()
        count += 10
    return count


def best(records: Iterable[dict]) -> dict | None:
    """The MAMF record of one dtype's matmul records (kernels.records.best_matmul: the remeasure,
    else the highest-tflops correct search record)."""
    matmuls = [r for r in records if r.get("op") == "matmul"]
    dtypes = sorted({r["dtype"] for r in matmuls})
    if len(dtypes) > 1:
        raise ValueError(f"best(): records of several dtypes {dtypes}; pass one dtype's records")
    return best_matmul(matmuls, dtypes[0]) if dtypes else None
