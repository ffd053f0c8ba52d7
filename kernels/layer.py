"""One transformer layer's own work, at its real shapes on one tensor-parallel rank, timed piece by piece.

What a decoder layer runs in training, as Megatron-LM runs it with tensor parallelism (TP) N
and sequence parallelism (Shoeybi et al. 2019, "Megatron-LM"; Korthikanti et al. 2022, "Reducing
Activation Recomputation in Large Transformer Models", sec. 4.2.2 for sequence parallelism). The
MLP is the model's: gated (SwiGLU, Llama) or plain (GeLU, GPT-3), dense or a mixture of experts:

- GEMMs (one nn.Linear each, y = x W^T with W (n, k); m = tokens of one micro-batch, micro-batch
  x seq, because sequence parallelism all-gathers the sequence before each column-parallel layer):
    qkv      n = (heads + 2 kv_heads) head_dim / N, k = hidden       (column-parallel, fused)
    attn_out n = hidden,                            k = hidden / N   (row-parallel)
    gate_up  n = 2 ffn / N,                         k = hidden       (column-parallel, fused; SwiGLU)
    up       n = ffn / N,                           k = hidden       (column-parallel; GeLU instead)
    down     n = hidden,                            k = ffn / N      (row-parallel)
    lm_head  n = padded vocab / N,                  k = hidden       (once per model)
  A mixture of experts (E experts, top_k = k, expert width f) replaces gate_up/up and down by
    router       m = tokens / N,  n = E,                 k = hidden  (on the sequence-parallel slice)
    expert_gate_up (or expert_up), expert_down: the dense pair at width f, E of them ("count"), each
                 on m = ceil(tokens x k / E) tokens: balanced routing with every expert on this GPU,
                 i.e. expert parallelism 1 (Megatron-Core's alltoall dispatcher, expert-tensor
                 parallelism = TP: the rank holds f / N of each expert and all-gathers the TP
                 group's routed tokens, so it runs tokens x k rows in all). At EP > 1 each GPU holds
                 E / EP experts of EP times the tokens: thicker GEMMs, not measured here. The experts
                 run one after another, as Megatron's SequentialMLP; its TEGroupedMLP
                 (--moe-grouped-gemm) runs them as one grouped GEMM, which may be faster for small m.
  each in three passes, the (M, N, K) of the GEMM as run:
    fwd    Y  = X  W^T : (m, n, k)  layout "TN"
    dgrad  dX = dY W   : (m, k, n)  layout "NN"
    wgrad  dW = dY^T X : (n, k, m)  layout "NT"
  Layouts are cuBLAS's names for the call torch makes (column-major, first letter for the weight
  side): "TN" is nn.Linear's forward (B = W.t(), the matmul kernel's default); "NT" has the
  activation gradient transposed. The vocabulary is padded as Megatron pads it
  (make_vocab_size_divisible_by = 128, times N: megatron/training/tokenizer/tokenizer.py,
  _vocab_size_with_padding), so Llama 3's 128256 at TP 8 is 129024, 16128 per rank.
  KV heads per rank are kv_heads / N: N must divide them, as Megatron-Core's attention requires
  (num_query_groups_per_partition = divide(num_query_groups, N)) and the cost model assumes.
- Attention: torch.nn.functional.scaled_dot_product_attention, causal, heads / N query heads and
  the KV heads above (GQA through enable_gqa, torch >= 2.5), FlashAttention's kernel forced on CUDA.
  FLOPs are model FLOPs, as MFU and the step model (cost_models) count them: the forward is the two
  GEMMs QK^T and PV, 2 x 2 b s^2 h d, halved by the causal mask (FlashAttention skips the masked
  blocks): 2 b s^2 h d; the backward is four GEMMs (dV, dP, dQ, dK), 2x the forward.
  FlashAttention's own benchmark (benchmarks/benchmark_flash_attention.py) counts the same forward
  but 2.5x for the backward, because its kernel recomputes QK^T there; that recomputation is the
  kernel's cost, not the model's work, so it shows here as a lower backward rate.
- Element-wise work, sized as it runs: RMSNorm (x2) and the residual adds (x2) on the
  sequence-parallel slice (tokens / N rows of hidden), SwiGLU on tokens x ffn / N (GeLU, the tanh
  form Megatron's bias-GeLU fusion uses, for a plain MLP; on tokens x k rows of f / N for experts),
  rotary embeddings on q and k, and for experts the two permutations Megatron-Core's alltoall
  dispatcher runs (moe/token_dispatcher.py): the slice's tokens into their k routed copies, and
  after the TP all-gather the routed rows sorted from [TP rank][expert] chunks to [expert][TP rank]
  (sort_chunks_by_idxs, run when a GPU holds more than one expert), each x2 (undone on the way back). RMSNorm stands in for a
  GPT's LayerNorm (the same bytes but a bias) and rotary for its learned positions, as the step
  model (cost_models/step_time.py) counts them. "bytes" is the least a fused kernel must read and write; gbps is those
  bytes over the median time, i.e. the effective bandwidth of what eager torch runs. SwiGLU and
  rotary run as several eager kernels here, where Transformer Engine fuses each into one, so
  their rates are lower bounds of a fused training stack's.

Every piece is checked: GEMMs as kernels.matmul checks a matmul (float64 on a 16x16 sample of
the output); attention (output and the three gradients) against a float64 reference of one KV
group; element-wise ops against float64 on sampled rows (rows are independent in all of them).

Machines smaller than the model (a CPU) cannot run full shapes in seconds, so a plan may cap the
tokens and divide every width of the rank's problem by a power of two (head size kept): the
records then say so (width_divisor > 1) and their rates describe those smaller shapes.
"""

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F

from cost_models.errors import InputError
from cost_models.models import check_experts, check_heads
from kernels import free_bytes, matmul, torch_device
from kernels.matmul import rel_err
from kernels.timing import benchmark

GEMMS = ("qkv", "attn_out", "gate_up", "down", "lm_head")  # a dense SwiGLU model's (RankShape.linears)
PASSES = ("fwd", "dgrad", "wgrad")
LAYOUTS = {"fwd": "TN", "dgrad": "NN", "wgrad": "NT"}
ELEMENTWISE = ("rmsnorm", "swiglu", "residual", "rotary")  # a dense SwiGLU model's (elementwise_ops)
MLP_KINDS = ("swiglu", "gelu")
GATHERS = ("permute", "sort_chunks")  # a mixture of experts' token permutations (elementwise_ops)
VOCAB_MULTIPLE = 128  # Megatron's make_vocab_size_divisible_by default
RMS_EPS = 1e-5  # Llama 3's rms_norm_eps
ROPE_THETA = 500000.0  # Llama 3's rope_theta (only the angles' spread depends on it)
SAMPLE_ROWS = 64  # rows of an element-wise output checked against float64
FLASH_DTYPES = ("bf16", "fp16")  # FlashAttention's kernels take no fp32 inputs
FLASH_MAX_CAPABILITY = (12, 1)  # sdp_utils.cpp check_flash_attention_hardware_support: [sm80, sm121]

# Largest max|out - ref| / max|ref| accepted, beyond kernels.matmul.TOLERANCE for the GEMMs.
# Attention (FlashAttention 2, Dao 2023): P is rounded to the input dtype before P V and dS
# before the gradient GEMMs; each is one rounding (2^-9 bf16, 2^-11 fp16) of values whose sums
# stay within max|ref| for random data, so a few roundings add up to ~1e-2 in bf16 for the
# gradients. A wrong mask, scale or GQA mapping errs by O(0.1..1). fp32 runs on CPU only.
ATTENTION_TOLERANCE = {"fp32": 1e-4, "bf16": 4e-2, "fp16": 1e-2}
# Element-wise: one output rounding (bf16 2^-9 of max|ref|) plus intermediates torch keeps in the
# input dtype (SwiGLU's silu(gate) before the product, rotary's two products before the sum):
# 4 roundings is 8e-3.
ELEMENTWISE_TOLERANCE = {"fp32": 1e-5, "tf32": 1e-5, "bf16": 1.6e-2, "fp16": 4e-3}


# ---- shapes --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LayerShape:
    """A model's transformer shape, before tensor parallelism (from the catalog or flags)."""

    name: str
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    seq: int
    vocab: int | None = None  # None: no LM head measured
    micro_batch: int = 1
    mlp: str = "swiglu"
    experts: int = 0  # routed experts per layer (0: dense)
    top_k: int = 0  # experts per token
    moe_ffn: int | None = None  # one expert's MLP width (None: ffn)

    def __post_init__(self):
        for what in ("hidden", "heads", "kv_heads", "ffn", "seq", "micro_batch"):
            value = getattr(self, what)
            if not (isinstance(value, int) and value > 0):
                raise InputError(f"model {self.name}: {what} must be a positive whole number, got {value!r}")
        for what in ("vocab", "moe_ffn"):
            value = getattr(self, what)
            if value is not None and not (isinstance(value, int) and value > 0):
                raise InputError(f"model {self.name}: {what} must be a positive whole number, got {value!r}")
        if self.mlp not in MLP_KINDS:
            raise InputError(f"model {self.name}: mlp must be one of {', '.join(MLP_KINDS)}, got {self.mlp!r}")
        check_experts(self.experts, self.top_k, f"model {self.name}: ")
        if self.moe_ffn is not None and not self.experts:
            raise InputError(f"model {self.name}: moe_ffn needs experts and top_k")
        check_heads(self.name, self.hidden, self.heads, self.kv_heads)
        if self.seq < 2:   # one token attends to itself alone: dq and dk are 0, nothing to time or check
            raise InputError(f"model {self.name}: --seq {self.seq}: the layer op needs at least 2 tokens (with one, "
                             "causal attention's query and key gradients are zero)")
        if self.head_dim % 2:   # rotary embeddings turn pairs of a head's dimensions
            raise InputError(f"model {self.name}: head size {self.head_dim} (--hidden {self.hidden} / --heads "
                             f"{self.heads}) must be even: rotary embeddings rotate pairs of dimensions")

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @property
    def expert_ffn(self) -> int:
        return self.moe_ffn or self.ffn

    def key(self) -> dict:
        """What the measured work depends on (every field but the display name): result files
        record it so that a cost model of the same shape, named or not, can use the measurement."""
        out = dataclasses.asdict(self)
        del out["name"]
        return out


@dataclasses.dataclass(frozen=True)
class Gemm:
    """One GEMM C(m, n) = A(m, k) B(k, n) of the layer as run (see the module docstring), run
    `count` times per layer (an expert's GEMM once per expert)."""

    name: str
    pass_: str
    m: int
    n: int
    k: int
    per: str = "layer"  # "model" for the LM head
    count: int = 1

    @property
    def layout(self) -> str:
        return LAYOUTS[self.pass_]

    @property
    def flops(self) -> int:
        return 2 * self.m * self.n * self.k


@dataclasses.dataclass(frozen=True)
class RankShape:
    """What one TP rank runs per micro-batch. Widths are per rank except hidden (TP keeps it);
    width_divisor > 1 marks a proportionally smaller problem (see shrink)."""

    model: str
    tp: int
    batch: int
    seq: int
    hidden: int
    heads: int  # query heads on this rank
    kv_heads: int  # KV heads on this rank (>= 1)
    head_dim: int
    ffn: int  # ffn / tp
    vocab: int | None  # padded vocab / tp
    width_divisor: int = 1
    mlp: str = "swiglu"
    experts: int = 0
    top_k: int = 0
    expert_ffn: int = 0  # one expert's width / tp (0: dense)
    model_shape: dict | None = None  # LayerShape.key() of the model this rank's share is of

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    @property
    def sp_tokens(self) -> int:
        """Rows of the sequence-parallel region (norms, residual): the sequence split over TP."""
        return math.ceil(self.tokens / self.tp)

    @property
    def expert_tokens(self) -> int:
        """Tokens each expert runs at expert parallelism 1 under balanced routing: tokens x k / E."""
        return math.ceil(self.tokens * self.top_k / self.experts) if self.experts else 0

    @property
    def activation_rows(self) -> int:
        """Rows of the MLP activation: the tokens, or their k routed copies through the experts."""
        return self.experts * self.expert_tokens if self.experts else self.tokens

    @property
    def activation_width(self) -> int:
        return self.expert_ffn if self.experts else self.ffn

    def linears(self) -> list[tuple[str, int, int, int, str, int]]:
        """(name, m tokens, out features n, in features k, per, count) of each linear layer on this rank."""
        m = self.tokens
        out = [("qkv", m, (self.heads + 2 * self.kv_heads) * self.head_dim, self.hidden, "layer", 1),
               ("attn_out", m, self.hidden, self.heads * self.head_dim, "layer", 1)]
        up, gated = ("gate_up", 2) if self.mlp == "swiglu" else ("up", 1)
        if self.experts:
            e, me, f = self.experts, self.expert_tokens, self.expert_ffn
            out += [("router", self.sp_tokens, e, self.hidden, "layer", 1),
                    (f"expert_{up}", me, gated * f, self.hidden, "layer", e),
                    ("expert_down", me, self.hidden, f, "layer", e)]
        else:
            out += [(up, m, gated * self.ffn, self.hidden, "layer", 1),
                    ("down", m, self.hidden, self.ffn, "layer", 1)]
        if self.vocab:
            out.append(("lm_head", m, self.vocab, self.hidden, "model", 1))
        return out

    def gemms(self) -> list[Gemm]:
        out = []
        for name, m, n, k, per, count in self.linears():
            out += [Gemm(name, "fwd", m, n, k, per, count), Gemm(name, "dgrad", m, k, n, per, count),
                    Gemm(name, "wgrad", n, k, m, per, count)]
        return out


def padded_vocab(vocab: int, tp: int) -> int:
    """Megatron's padding: up to a multiple of 128 x tp, so every rank's slice is a multiple of 128."""
    multiple = VOCAB_MULTIPLE * tp
    return -(-vocab // multiple) * multiple


def shard(shape: LayerShape, tp: int) -> RankShape:
    """One rank's share at TP degree tp; InputError when tp cannot split this model."""
    if not (isinstance(tp, int) and tp >= 1):
        raise InputError(f"--tp {tp!r}: must be a positive whole number")
    if shape.heads % tp:
        raise InputError(f"--tp {tp}: does not divide {shape.name}'s {shape.heads} attention heads")
    if shape.kv_heads % tp:   # Megatron-Core divides the query groups over TP (divide(): no replicas)
        raise InputError(f"--tp {tp}: does not divide {shape.name}'s {shape.kv_heads} KV heads "
                         f"(Megatron splits the KV heads over TP, whole on each rank)")
    if shape.experts and shape.expert_ffn % tp:   # every layer an MoE layer: the dense width is never run
        raise InputError(f"--tp {tp}: does not divide {shape.name}'s expert width {shape.expert_ffn}")
    if not shape.experts and shape.ffn % tp:
        raise InputError(f"--tp {tp}: does not divide {shape.name}'s FFN width {shape.ffn}")
    return RankShape(model=shape.name, tp=tp, batch=shape.micro_batch, seq=shape.seq,
                     hidden=shape.hidden, heads=shape.heads // tp, kv_heads=shape.kv_heads // tp,
                     head_dim=shape.head_dim, ffn=shape.ffn // tp,
                     vocab=padded_vocab(shape.vocab, tp) // tp if shape.vocab else None,
                     mlp=shape.mlp, experts=shape.experts, top_k=shape.top_k,
                     expert_ffn=shape.expert_ffn // tp if shape.experts else 0, model_shape=shape.key())


def shrink(rank: RankShape, max_tokens: int | None, max_hidden: int | None) -> RankShape:
    """A smaller problem of the same form: at most max_tokens tokens (one sequence of that length)
    and every width divided by the smallest power of two that brings hidden to max_hidden or
    below (heads and KV heads at least 1, head size kept). None: no cap."""
    out = rank
    if max_tokens and rank.tokens > max_tokens:
        out = dataclasses.replace(out, batch=1, seq=min(rank.seq, max_tokens))
    f = 1
    while max_hidden and rank.hidden // f > max_hidden:
        f *= 2
    if f == 1:
        return out
    heads = max(1, rank.heads // f)
    kv = max(1, min(heads, rank.kv_heads // f))
    while heads % kv:  # keep GQA's grouping whole
        kv -= 1
    return dataclasses.replace(out, hidden=rank.hidden // f, heads=heads, kv_heads=kv,
                               ffn=max(1, rank.ffn // f), vocab=rank.vocab and max(1, rank.vocab // f),
                               expert_ffn=rank.expert_ffn and max(1, rank.expert_ffn // f), width_divisor=f)


# ---- how much to measure per device --------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Plan:
    """Shape caps and timing budgets for one device. None caps: the model's real shapes."""

    max_tokens: int | None
    max_hidden: int | None
    budget_ms: float
    warmup_ms: float
    min_iters: int
    max_iters: int = 1000  # a CPU op that measured 10 us in the warm-up can stall for ms on a busy host


PLANS = {
    # A GPU runs every real shape in milliseconds (the 70B LM head at TP 1: 17 TFLOP, ~25 ms on an H100).
    ("cuda", False): Plan(None, None, budget_ms=100.0, warmup_ms=25.0, min_iters=5),
    ("cuda", True): Plan(None, None, budget_ms=25.0, warmup_ms=10.0, min_iters=5),
    # A CPU reaches ~0.1 TFLOP/s: 1024 tokens at hidden <= 1024 keeps the largest GEMM near 1 s...
    ("cpu", False): Plan(1024, 1024, budget_ms=200.0, warmup_ms=20.0, min_iters=5, max_iters=200),
    # ...and 256 tokens at hidden <= 512 keeps a dtype's whole layer near a second on 2 cores.
    ("cpu", True): Plan(256, 512, budget_ms=20.0, warmup_ms=5.0, min_iters=3, max_iters=50),
}


def plan_shape(shape: LayerShape, tp: int, device: str, quick: bool) -> RankShape:
    plan = PLANS[device, quick]
    return shrink(shard(shape, tp), plan.max_tokens, plan.max_hidden)


def default_dtypes(device: str) -> list[str]:
    """bf16 on a GPU (what training runs); fp32 and bf16 on a CPU, as kernels.matmul does."""
    return ["bf16"] if device == "cuda" else ["fp32", "bf16"]


def describe_shrink(shape: LayerShape, rank: RankShape) -> str:
    """One line saying how a shrunk problem differs from the model's (see shrink)."""
    full = shape.micro_batch * shape.seq
    parts = [f"{rank.tokens} tokens instead of {full}"] if rank.tokens != full else []
    if rank.width_divisor > 1:
        ffn = f"expert ffn {rank.expert_ffn}" if rank.experts else f"ffn {rank.ffn}"
        heads = f"{rank.heads} head{'s' if rank.heads != 1 else ''}"
        kv = f"{rank.kv_heads} KV head{'s' if rank.kv_heads != 1 else ''}"
        parts.append(f"widths / {rank.width_divisor} (hidden {rank.hidden}, {heads}, {kv}, {ffn} per rank)")
    return ", ".join(parts) + ": the rates describe these smaller shapes"


def unsupported_reason(dtype: str, device: str) -> str | None:
    """Why the layer cannot be measured in dtype on device, or None."""
    if dtype == "fp8":
        return "fp8 layer GEMMs are not measured (the fp8 path times the forward TN layout only)"
    return matmul.unsupported_reason(dtype, device)


def attention_skip_reason(dtype: str, device: str, head_dim: int | None = None) -> str | None:
    """Why attention cannot run on FlashAttention's kernel here, or None. Its limits
    (torch's aten/src/ATen/native/transformers/cuda/sdp_utils.cpp, can_use_flash_attention):
    fp16/bf16 inputs, compute capability 8.0 to 12.1 (check_flash_attention_hardware_support), a
    head size that is a multiple of 8 and at most 256, and for training on sm 8.6-8.9 and 12.x no
    head size in (192, 224] (check_requires_grad_and_head_dim_gt192_constraints_on_sm86_89_or_120).
    Where one fails, the forced FLASH_ATTENTION backend raises "No available kernel"."""
    if device != "cuda":
        return None
    if dtype not in FLASH_DTYPES:
        return f"attention in {dtype}: FlashAttention runs bf16/fp16 only (training runs attention in bf16)"
    if head_dim is not None and (head_dim % 8 or head_dim > 256):
        return f"attention: FlashAttention needs a head size that is a multiple of 8, at most 256; got {head_dim}"
    if torch.version.hip:
        return None
    cc = torch.cuda.get_device_capability()
    if not (8, 0) <= cc <= FLASH_MAX_CAPABILITY:
        return (f"attention: FlashAttention needs compute capability >= 8.0 and <= "
                f"{FLASH_MAX_CAPABILITY[0]}.{FLASH_MAX_CAPABILITY[1]}; this GPU has {cc[0]}.{cc[1]}")
    if head_dim is not None and 192 < head_dim <= 224 and ((8, 6) <= cc <= (8, 9) or cc[0] == 12):
        return (f"attention: FlashAttention's backward does not take head size {head_dim} (in (192, 224]) "
                f"on compute capability {cc[0]}.{cc[1]}")
    return None


def _time(fn: Callable[[], object], device: str, plan: Plan):
    return benchmark(fn, device=device, warmup_ms=plan.warmup_ms, budget_ms=plan.budget_ms,
                     min_iters=plan.min_iters, max_iters=plan.max_iters)


def _dtype(dtype: str) -> torch.dtype:
    return matmul.TORCH_DTYPES[dtype]


def _randn(shape, dtype: str, device: str, gen: torch.Generator) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, device=torch_device(device)).to(_dtype(dtype))


def _worst(errs) -> float | None:
    errs = list(errs)
    return None if any(e is None for e in errs) else max(errs)


# ---- GEMMs ---------------------------------------------------------------------------------

def gemm_problem(g: Gemm, dtype: str, device: str, seed: int = 0) -> matmul.Problem:
    """The operands of g with the strides torch's autograd gives them (see LAYOUTS): the forward
    (TN) and dgrad (NN) are kernels.matmul's layouts; wgrad's A is the transposed gradient."""
    if g.layout != "NT":
        return matmul.make_problem(g.m, g.n, g.k, dtype, device, seed=seed, layout=g.layout)
    gen = torch.Generator(device=torch_device(device)).manual_seed(seed)
    a = _randn((g.k, g.m), dtype, device, gen).t()  # dY.t(), dY (tokens, out features) row-major
    b = _randn((g.k, g.n), dtype, device, gen)  # X (tokens, in features) row-major
    return matmul.Problem(dtype, a, b, torch.empty(g.m, g.n, dtype=_dtype(dtype), device=torch_device(device)))


def measure_gemm(g: Gemm, dtype: str, device: str, plan: Plan) -> dict:
    with matmul._fp32_precision(dtype):
        problem = gemm_problem(g, dtype, device)
        stats = _time(problem.run, device, plan)
        err = problem.max_rel_err()  # the last timed iteration's output
    return {"op": "gemm", "name": g.name, "pass": g.pass_, "dtype": dtype, "m": g.m, "n": g.n, "k": g.k,
            "layout": g.layout, "flops": g.flops, "per": g.per, "count": g.count, "time_ms": stats.to_dict(),
            "tflops": g.flops / (stats.median * 1e-3) / 1e12,
            "correct": err is not None and err <= matmul.TOLERANCE[dtype], "max_rel_err": err}


# ---- attention -----------------------------------------------------------------------------

def attention_flops(batch: int, heads: int, seq: int, head_dim: int, pass_: str) -> float:
    """Model FLOPs of causal attention (module docstring): forward 2 b s^2 h d, backward 2x."""
    fwd = 2 * batch * seq**2 * heads * head_dim
    return fwd if pass_ == "fwd" else 2 * fwd


def _sdpa_backend(device: str):
    """FlashAttention on CUDA, forced, so a silent fallback to the math kernel cannot pass for it.
    On CPU torch's own choice (its flash kernel for these inputs)."""
    if device == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.FLASH_ATTENTION)
    return contextlib.nullcontext()


def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Causal attention with GQA: q (b, h, s, d), k and v (b, kv, s, d)."""
    return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=q.shape[1] != k.shape[1])


def attention_reference(q, k, v, dout, chunk: int = 512):
    """Float64 causal attention and its gradients for one KV group, chunked over query rows so
    no s x s matrix is held whole: q, dout (g, s, d); k, v (s, d). Returns out, dq, dk, dv.
    The backward is FlashAttention's: dS = P * (dP - rowsum(dO * O)) (Dao 2023, Algorithm 2)."""
    q, k, v, dout = (t.double() for t in (q, k, v, dout))
    g, s, d = q.shape
    scale = d**-0.5
    out, dq = torch.empty_like(q), torch.empty_like(q)
    dk, dv = torch.zeros_like(k), torch.zeros_like(v)
    keys = torch.arange(s, device=q.device)
    for i0 in range(0, s, chunk):
        rows = slice(i0, min(s, i0 + chunk))
        scores = (q[:, rows] @ k.t()) * scale  # (g, c, s)
        visible = keys[rows, None] >= keys[None, :]  # query i sees keys j <= i
        p = scores.masked_fill(~visible, float("-inf")).softmax(-1)
        o = p @ v
        out[:, rows] = o
        dp = dout[:, rows] @ v.t()
        ds = p * (dp - (dout[:, rows] * o).sum(-1, keepdim=True))
        dq[:, rows] = (ds @ k) * scale
        dk += (ds.transpose(1, 2) @ q[:, rows]).sum(0) * scale
        dv += (p.transpose(1, 2) @ dout[:, rows]).sum(0)
    return out, dq, dk, dv


def measure_attention(rank: RankShape, dtype: str, device: str, plan: Plan) -> Iterator[dict]:
    """Forward then backward records. The backward is timed as autograd runs it: the gradients
    of q, k, v from one saved forward (retain_graph so every iteration reuses it)."""
    gen = torch.Generator(device=torch_device(device)).manual_seed(1)
    b, h, kv, s, d = rank.batch, rank.heads, rank.kv_heads, rank.seq, rank.head_dim
    q = _randn((b, h, s, d), dtype, device, gen).requires_grad_()
    k = _randn((b, kv, s, d), dtype, device, gen).requires_grad_()
    v = _randn((b, kv, s, d), dtype, device, gen).requires_grad_()
    dout = _randn((b, h, s, d), dtype, device, gen)
    last = {}
    with _sdpa_backend(device):
        def forward():
            last["out"] = sdpa(q, k, v)

        fwd_stats = _time(forward, device, plan)
        out = last["out"]

        def backward():
            last["grads"] = torch.autograd.grad(out, (q, k, v), dout, retain_graph=True)

        bwd_stats = _time(backward, device, plan)
    # one KV group of batch 0: KV head 0 and the query heads that share it
    group = h // kv
    ref = attention_reference(q[0, :group].detach(), k[0, 0].detach(), v[0, 0].detach(), dout[0, :group])
    dq, dk, dv = last["grads"]
    errs = {"fwd": rel_err(out[0, :group].detach(), ref[0]),
            "bwd": _worst([rel_err(dq[0, :group], ref[1]), rel_err(dk[0, 0], ref[2]), rel_err(dv[0, 0], ref[3])])}
    kernel = type(out.grad_fn).__name__.removesuffix("Backward0")  # which SDPA kernel ran
    for pass_, stats in (("fwd", fwd_stats), ("bwd", bwd_stats)):
        flops = attention_flops(b, h, s, d, pass_)
        err = errs[pass_]
        yield {"op": "attention", "pass": pass_, "dtype": dtype, "batch": b, "heads": h, "kv_heads": kv,
               "head_dim": d, "seq": s, "causal": True, "flops": flops, "count": 1,
               "flops_convention": "model: causal fwd 2*b*s^2*h*d, bwd 2x fwd (recompute not counted)",
               "kernel": kernel, "time_ms": stats.to_dict(), "tflops": flops / (stats.median * 1e-3) / 1e12,
               "correct": err is not None and err <= ATTENTION_TOLERANCE[dtype], "max_rel_err": err}


# ---- element-wise work ---------------------------------------------------------------------

def rmsnorm(x, w):
    return F.rms_norm(x, (x.shape[-1],), w, eps=RMS_EPS)


def swiglu(gate_up):
    """Megatron's fused layout: the gate/up GEMM's output is [gate | up] along features."""
    gate, up = gate_up.chunk(2, dim=-1)
    return F.silu(gate) * up


def gelu(x):
    """GeLU in the tanh form Megatron's bias-GeLU fusion computes (megatron/core/fusions/fused_bias_gelu.py)."""
    return F.gelu(x, approximate="tanh")


def permute(x, index):
    """The MoE dispatcher's permutation: each token's row copied once per routed expert, grouped by expert."""
    return x.index_select(0, index)


def residual(x, y):
    return x + y


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def rotary(x, cos, sin):
    """Rotary embeddings, non-interleaved halves (Llama, Megatron's default): x (tokens, heads, d),
    cos and sin (tokens, 1, d)."""
    return x * cos + rotate_half(x) * sin


# Float64 references, written independently of the timed functions above so that a wrong
# formula fails the check too, not only a wrong kernel.
def rmsnorm_ref(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS) * w


def swiglu_ref(gate_up):
    half = gate_up.shape[-1] // 2
    gate, up = gate_up[..., :half], gate_up[..., half:]
    return gate * torch.sigmoid(gate) * up


def gelu_ref(x):
    return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def permute_ref(x, index):
    return x[index]


def rotary_ref(x, cos, sin):
    """The rotation as complex multiplication: (x1 + i x2) e^{i theta}, x1 and x2 the halves."""
    half = x.shape[-1] // 2
    z = torch.complex(x[..., :half], x[..., half:]) * torch.complex(cos[..., :half], sin[..., :half])
    return torch.cat((z.real, z.imag), dim=-1)


def rope_tables(seq: int, batch: int, head_dim: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin per token (token t at position t mod seq), float64, (tokens, 1, d)."""
    inv = ROPE_THETA ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=device) / head_dim)
    angles = torch.outer(torch.arange(seq, dtype=torch.float64, device=device), inv).repeat(batch, 1)
    angles = torch.cat((angles, angles), dim=-1)[:, None, :]
    return angles.cos(), angles.sin()


@dataclasses.dataclass
class _Elementwise:
    """One element-wise op as the layer runs it: fn over inputs (the first `grad` of them need
    gradients), ref its float64 reference, bytes moved forward and backward, and how many times
    a layer runs it."""

    name: str
    fn: Callable
    ref: Callable
    inputs: list
    fwd_bytes: int
    bwd_bytes: int
    count: int
    grad: int = 1
    rowwise: tuple = ()  # indices of inputs whose rows are the output's rows (the sample is taken there)


def elementwise_ops(rank: RankShape, dtype: str, device: str) -> list[_Elementwise]:
    gen = torch.Generator(device=torch_device(device)).manual_seed(2)
    es = torch.empty((), dtype=_dtype(dtype)).element_size()
    h, sp, m = rank.hidden, rank.sp_tokens, rank.tokens
    rows, f = rank.activation_rows, rank.activation_width
    x = _randn((sp, h), dtype, device, gen)
    w = (1 + 0.1 * _randn((h,), "fp32", device, gen)).to(_dtype(dtype))
    cos, sin = rope_tables(rank.seq, rank.batch, rank.head_dim, torch_device(device))
    q = _randn((m, rank.heads, rank.head_dim), dtype, device, gen)
    k = _randn((m, rank.kv_heads, rank.head_dim), dtype, device, gen)
    qk = (rank.heads + rank.kv_heads) * m * rank.head_dim

    def rope_qk(q, k, cos, sin):
        return rotary(q, cos, sin), rotary(k, cos, sin)

    def rope_qk_ref(q, k, cos, sin):
        return rotary_ref(q, cos, sin), rotary_ref(k, cos, sin)

    if rank.mlp == "swiglu":
        # read gate and up, write the product; backward reads dy, gate, up and writes both grads
        act = _Elementwise("swiglu", swiglu, swiglu_ref, [_randn((rows, 2 * f), dtype, device, gen)],
                           3 * rows * f * es, 5 * rows * f * es, count=1, rowwise=(0,))
    else:
        # read x, write y; backward reads dy and x, writes dx
        act = _Elementwise("gelu", gelu, gelu_ref, [_randn((rows, f), dtype, device, gen)],
                           2 * rows * f * es, 3 * rows * f * es, count=1, rowwise=(0,))
    ops = {
        # read x, write y (+ the weight); backward reads dy, x, w and writes dx, dw
        "rmsnorm": _Elementwise("rmsnorm", rmsnorm, rmsnorm_ref, [x, w], (2 * sp * h + h) * es,
                                (3 * sp * h + 2 * h) * es, count=2, grad=2, rowwise=(0,)),
        act.name: act,
        # read two, write one; in the backward the skip's and the branch's gradients meet in one add
        "residual": _Elementwise("residual", residual, residual, [x, _randn((sp, h), dtype, device, gen)],
                                 3 * sp * h * es, 3 * sp * h * es, count=2, grad=2, rowwise=(0, 1)),
        # read q, k and the cos/sin tables, write q, k; the backward rotates the gradients back
        "rotary": _Elementwise("rotary", rope_qk, rope_qk_ref, [q, k, cos.to(_dtype(dtype)), sin.to(_dtype(dtype))],
                               (2 * qk + 2 * rank.tokens * rank.head_dim) * es,
                               (2 * qk + 2 * rank.tokens * rank.head_dim) * es, count=1, grad=2, rowwise=(0, 1, 2, 3)),
    }
    if rank.experts:
        # Permutation 1: the slice's tokens, k copies each in a random order (the routing); read sp
        # rows, write sp x k; the backward sums the copies' gradients back (read sp x k, write sp).
        # The unpermute after the experts moves the same bytes the other way: count 2.
        index = torch.randperm(sp * rank.top_k, generator=torch.Generator().manual_seed(4)).to(x.device) % sp
        copies = sp * rank.top_k
        ops["permute"] = _Elementwise("permute", permute, permute_ref, [x, index], (sp + copies) * h * es,
                                      (copies + sp) * h * es, count=2)
        # Permutation 2 (Megatron's sort_chunks_by_idxs, with more than one local expert): the TP
        # group's routed tokens, all-gathered, reordered from [TP rank][expert] chunks to
        # [expert][TP rank]; read and write every row, the backward the same; undone before the
        # reduce-scatter (combine_preprocess): count 2.
        routed = _randn((rows, h), dtype, device, gen)
        ops["sort_chunks"] = _Elementwise("sort_chunks", permute, permute_ref,
                                          [routed, chunk_order(rows, rank.tp, rank.experts).to(x.device)],
                                          2 * rows * h * es, 2 * rows * h * es, count=2)
    return [ops[name] for name in elementwise_names(rank)]


def chunk_order(rows: int, tp: int, experts: int) -> torch.Tensor:
    """Rows in TP x E chunks ([TP rank][expert], as the TP all-gather leaves them), reordered by
    expert ([expert][TP rank]): the index sort_chunks_by_idxs gathers with."""
    chunks = torch.arange(rows).tensor_split(tp * experts)
    return torch.cat([chunks[r * experts + e] for e in range(experts) for r in range(tp)])


def elementwise_names(rank: RankShape) -> list[str]:
    """The element-wise ops of this rank's layer, in the order they are measured."""
    return ["rmsnorm", rank.mlp, "residual", "rotary"] + (list(GATHERS) if rank.experts else [])


def _as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


def _elementwise_check(op: _Elementwise, outs, grads, douts, rows) -> tuple[float | None, float | None]:
    """Float64 errors of the forward outputs and of the gradients, on the sampled rows (and on all
    rows for gradients that sum over rows: RMSNorm's weight)."""
    if op.name in GATHERS:
        return _gather_check(op, outs, grads, douts)

    def pick(t, i):
        return t[rows] if i in op.rowwise else t

    ins64 = [pick(t, i).double().requires_grad_(i < op.grad) if t.is_floating_point() else pick(t, i)
             for i, t in enumerate(op.inputs)]
    ref = _as_tuple(op.ref(*ins64))
    fwd = _worst(rel_err(o[rows], r) for o, r in zip(outs, ref))
    if grads is None:
        return fwd, None
    ref_grads = torch.autograd.grad(ref, ins64[:op.grad], [d[rows].double() for d in douts])
    bwd = []
    for i, (g, r) in enumerate(zip(grads, ref_grads)):
        if i in op.rowwise:
            bwd.append(rel_err(g[rows], r))
    if op.name == "rmsnorm":  # the weight's gradient sums over all rows
        x, dy = op.inputs[0].double(), douts[0].double()
        dw = (dy * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + RMS_EPS)).sum(0)
        bwd.append(rel_err(grads[1], dw))
    return fwd, _worst(bwd)


def _gather_check(op: _Elementwise, outs, grads, douts) -> tuple[float | None, float | None]:
    """A gather is exact, so every row is checked: the output against x[index] (advanced indexing,
    another kernel than the timed index_select), each input row's gradient against the float64 sum
    of its copies' gradients."""
    x, index = op.inputs
    ref = op.ref(x.detach(), index)
    fwd = 0.0 if torch.equal(outs[0], ref) else rel_err(outs[0], ref)
    if grads is None:
        return fwd, None
    dx = torch.zeros(x.shape, dtype=torch.float64, device=x.device).index_add_(0, index, douts[0].double())
    return fwd, rel_err(grads[0], dx)


def measure_elementwise(rank: RankShape, dtype: str, device: str, plan: Plan) -> Iterator[dict]:
    """Forward and backward records per op. The backward is autograd's, from one saved forward,
    except the residual add's: autograd passes its gradient through without a kernel, and the
    work is where the skip's gradient and the branch's meet, one add of the same size."""
    gen = torch.Generator(device=torch_device(device)).manual_seed(3)
    for op in elementwise_ops(rank, dtype, device):
        ins = [t.requires_grad_(i < op.grad) if t.is_floating_point() else t for i, t in enumerate(op.inputs)]
        last = {}

        def forward():
            last["out"] = _as_tuple(op.fn(*ins))

        fwd_stats = _time(forward, device, plan)
        outs = last["out"]
        douts = [_randn(o.shape, dtype, device, gen) for o in outs]
        rows = torch.randperm(outs[0].shape[0], generator=torch.Generator().manual_seed(0))[:SAMPLE_ROWS]
        rows = rows.to(outs[0].device)
        if op.name == "residual":
            branch = _randn(douts[0].shape, dtype, device, gen)

            def backward():
                last["grads"] = torch.add(douts[0], branch)

            bwd_stats = _time(backward, device, plan)
            errs = (_elementwise_check(op, [o.detach() for o in outs], None, douts, rows)[0],
                    rel_err(last["grads"][rows], douts[0][rows].double() + branch[rows].double()))
        else:
            def backward():
                last["grads"] = torch.autograd.grad(outs, ins[:op.grad], douts, retain_graph=True)

            bwd_stats = _time(backward, device, plan)
            errs = _elementwise_check(op, [o.detach() for o in outs], last["grads"], douts, rows)
        shapes = [list(t.shape) for t in ins]
        for pass_, stats, nbytes, err in (("fwd", fwd_stats, op.fwd_bytes, errs[0]),
                                          ("bwd", bwd_stats, op.bwd_bytes, errs[1])):
            yield {"op": "elementwise", "name": op.name, "pass": pass_, "dtype": dtype, "shapes": shapes,
                   "bytes": nbytes, "count": op.count, "time_ms": stats.to_dict(),
                   "gbps": nbytes / (stats.median * 1e-3) / 1e9,
                   "correct": err is not None and err <= ELEMENTWISE_TOLERANCE[dtype], "max_rel_err": err}


# ---- the layer -----------------------------------------------------------------------------

def tolerance(record: dict) -> float:
    """The largest max_rel_err a record of this module may have."""
    table = {"gemm": matmul.TOLERANCE, "attention": ATTENTION_TOLERANCE, "elementwise": ELEMENTWISE_TOLERANCE}
    return table[record["op"]][record["dtype"]]


# The bytes one op holds at once, over its operands' bytes: the op's output, the correctness
# check's fp32 copies and the allocator's slack. A bound to refuse on, not a prediction.
PEAK_FACTOR = 3


def peak_bytes(rank: RankShape, device: str) -> tuple[float, str]:
    """(bytes, what) of the largest op the layer measurement runs at rank's shapes, in fp32 (the
    widest dtype it times, and what its references compute in): the biggest GEMM's three operands,
    attention's q, k, v, output and their gradients (plus the b x h x s x s scores of the math
    kernel a CPU runs), the MLP activation's rows; each x PEAK_FACTOR."""
    four = 4.0
    sizes = []
    for g in rank.gemms():
        sizes.append(((g.m * g.k + g.k * g.n + g.m * g.n) * four,   # one problem, timed count times
                      f"the {g.name} {g.pass_} GEMM ({g.m:,} x {g.n:,} x {g.k:,})"))
    b, h, kv, sq, d = rank.batch, rank.heads, rank.kv_heads, rank.seq, rank.head_dim
    attn = 2 * b * sq * d * (2 * h + 2 * kv) * four + (3 * b * h * sq * sq * four if device == "cpu" else 0)
    sizes.append((attn, f"attention ({h} head{'s' if h != 1 else ''} of {d:,}, sequence {sq:,})"))
    rows = rank.activation_rows
    sizes.append((rows * (3 * rank.activation_width + 4 * rank.hidden) * four,
                  f"the element-wise work ({rows:,} rows of hidden {rank.hidden:,})"))
    size, what = max(sizes)
    return PEAK_FACTOR * size, what


def check_fits(rank: RankShape, device: str, free: float | None = None) -> None:
    """InputError, before anything runs or is written, when the layer's largest op would not fit in
    the device's free memory (a shape typed in range, e.g. --hidden 1e7 over 2 heads, would
    otherwise be killed by the kernel's OOM killer or fail inside an allocation)."""
    free = free_bytes(device) if free is None else free
    need, what = peak_bytes(rank, device)
    if free is not None and need > free:
        raise InputError(f"--ops layer: {rank.model} at --tp {rank.tp} needs about {need / 2**30:,.1f} GiB for "
                         f"{what} on one {device} rank, more than the {free / 2**30:,.1f} GiB free; "
                         f"give a smaller shape or a larger --tp")


def count(rank: RankShape, dtype: str, device: str) -> int:
    """How many records measure() yields (for a progress bar)."""
    attention = 0 if attention_skip_reason(dtype, device, rank.head_dim) else 2
    return len(rank.gemms()) + attention + 2 * len(elementwise_names(rank))


def measure(rank: RankShape, dtype: str, device: str, quick: bool) -> Iterator[dict]:
    """Every record of one layer (and the LM head) in dtype, each as soon as it is measured.
    Every record carries model, tp, tokens, width_divisor and shape (the model's LayerShape.key(),
    which a cost model matches its own shape against). Raises ValueError for a dtype that cannot
    run here (see unsupported_reason)."""
    reason = unsupported_reason(dtype, device)
    if reason:
        raise ValueError(f"layer {dtype} on {device}: {reason}")
    plan = PLANS[device, quick]
    context = {"model": rank.model, "tp": rank.tp, "tokens": rank.tokens, "width_divisor": rank.width_divisor,
               "shape": rank.model_shape}
    for g in rank.gemms():
        yield {**measure_gemm(g, dtype, device, plan), **context}
    if not attention_skip_reason(dtype, device, rank.head_dim):
        for rec in measure_attention(rank, dtype, device, plan):
            yield {**rec, **context}
    for rec in measure_elementwise(rank, dtype, device, plan):
        yield {**rec, **context}
