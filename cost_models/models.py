"""The model catalog (cost_models/data/models.csv) and models described by flags.

A ModelSpec holds what the FLOPs, memory and step-time formulas need: parameter counts (total, and
active per token for a mixture of experts), training tokens and the transformer shape (layers,
hidden, heads, KV heads, FFN width, vocabulary, sequence length, gated or plain MLP). Catalog rows
also carry the published training budget (GPU-hours, GPU count, hardware) for calibration checks.

A mixture of experts (optional columns, empty for a dense model) adds `experts` (routed experts per
MoE layer), `top_k` (experts each token is routed to) and `moe_ffn` (one expert's MLP width, when
it differs from `ffn`: Megatron's --moe-ffn-hidden-size). Every layer is an MoE layer (Mixtral;
Megatron's default --moe-layer-freq 1): interleaved dense layers and shared experts (DeepSeek,
Qwen-MoE) are not modelled.
"""

import dataclasses
import math

from cost_models.catalog import Column, as_of_date, load_data, one_of, positive, text
from cost_models.errors import InputError, unknown_name
from cost_models.flops import params_from_shape

MLP_KINDS = ("swiglu", "gelu")  # gated (3 matrices, Llama) or plain (2 matrices, GPT)
_SHAPE = ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq_len")
_COLUMNS = [
    Column("name"), Column("params", positive), Column("active_params", positive), Column("tokens", positive),
    *[Column(c, positive) for c in _SHAPE], Column("mlp", one_of(*MLP_KINDS), required=False),
    Column("published_gpu_hours", positive, required=False), Column("published_gpus", positive, required=False),
    Column("published_hardware", text, required=False),
    Column("experts", positive, required=False), Column("top_k", positive, required=False),
    Column("moe_ffn", positive, required=False), Column("source"), Column("as_of", as_of_date),
    Column("tokens_placeholder", one_of("yes"), required=False),
    Column("tied_embeddings", one_of("yes"), required=False),
]

# Without a shape, one is estimated from the parameter count: N ~ 12*L*h^2 (attention 4h^2 + MLP
# 8h^2 per layer, embeddings ignored) with the width/depth ratio h/L = 128, which GPT-3 175B (12288/96)
# and Llama 3.1 405B (16384/126 = 130) share; 8192 tokens is Llama 3's pretraining sequence length.
ASPECT_RATIO = 128
DEFAULT_SEQ_LEN = 8192
# The rest of an estimated shape: 128-wide heads (Llama 3, GPT-3), full multi-head attention and a
# plain 4h MLP, which is what N = 12*L*h^2 assumes; Llama 3's 128,256-token vocabulary.
HEAD_DIM = 128
DEFAULT_VOCAB = 128256
# --params (--active-params) beside a whole shape: the count sets the FLOPs (6ND), the shape the
# step's work, so the two must agree. 10% admits a rounded name ("7B" for Llama 2 7B's 6.74B: 3.8%)
# and what the shape formula leaves out (biases, tied embeddings); more is a contradiction that would
# price work the step never runs (an MFU above 100%).
SHAPE_PARAMS_TOLERANCE = 0.10


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    params: float          # total parameters (all experts): what memory and gradient traffic scale with
    active_params: float   # parameters used per token: what FLOPs scale with
    tokens: float          # training tokens
    layers: int
    hidden: int
    seq_len: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    mlp: str = "swiglu"
    shape_estimated: bool = False  # True when layers/hidden were derived from params
    published_gpu_hours: float | None = None
    published_gpus: int | None = None
    published_hardware: str | None = None
    source: str = "command line"
    as_of: str | None = None
    experts: int = 0               # routed experts per layer (0: dense)
    top_k: int = 0                 # experts per token (0: dense)
    moe_ffn: int | None = None     # one expert's MLP width (None: ffn)
    tokens_placeholder: bool = False   # the catalog's tokens are a unit (not published), not a claim
    tied_embeddings: bool = False  # the LM head is the input embedding's matrix (GPT-2/GPT-3): counted once

    def __post_init__(self):
        for what in ("params", "active_params", "tokens", "layers", "hidden", "seq_len"):
            value = getattr(self, what)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"model {self.name}: {what} must be a positive finite number, got {value!r}")
        for what in ("heads", "kv_heads", "ffn", "vocab"):
            value = getattr(self, what)
            if not (isinstance(value, int) and value > 0):
                raise InputError(f"model {self.name}: {what} must be a positive whole number, got {value!r}")
        if self.mlp not in MLP_KINDS:
            raise unknown_name("MLP kind", self.mlp, MLP_KINDS)
        check_heads(self.name, self.hidden, self.heads, self.kv_heads)
        check_experts(self.experts, self.top_k, f"model {self.name}: ")
        if self.moe_ffn is not None and not (isinstance(self.moe_ffn, int) and self.moe_ffn > 0):
            raise InputError(f"model {self.name}: moe_ffn must be a positive whole number, got {self.moe_ffn!r}")
        if self.active_params > self.params:
            raise InputError(f"model {self.name}: active params ({self.active_params:.4g}) exceed "
                             f"total params ({self.params:.4g})")

    @property
    def moe(self) -> bool:
        return self.experts > 0

    @property
    def expert_ffn(self) -> int:
        return self.moe_ffn or self.ffn

    def with_tokens(self, tokens: float) -> "ModelSpec":
        """The same model trained on `tokens`: a published budget was for the catalog's tokens, so it
        no longer applies (the published cluster still describes the hardware). Tokens given are no
        placeholder."""
        published = self.published_gpu_hours if tokens == self.tokens else None
        return dataclasses.replace(self, tokens=tokens, published_gpu_hours=published, tokens_placeholder=False)


def reshaped(spec: ModelSpec, changes: dict, flags: dict | None = None) -> ModelSpec:
    """A catalog model with some of its shape changed (`changes`: field -> value, e.g. layers=40).
    Its parameters follow the new shape: the catalog's count moved by what params_from_shape says
    the change adds (so a catalog quirk such as tied embeddings carries over), total and active.
    It is no longer the published model: renamed after the change, no published budget or cluster."""
    def count(s, top_k=0):
        return float(params_from_shape(s.layers, s.hidden, s.heads, s.kv_heads, s.ffn, s.vocab, s.mlp == "swiglu",
                                       tied=s.tied_embeddings, experts=s.experts, top_k=top_k, moe_ffn=s.moe_ffn))

    flags = flags or {}
    new = dataclasses.replace(spec, **changes)
    label = ", ".join(f"--{flags.get(k, k).replace('_', '-')} {v}" for k, v in changes.items())
    params = spec.params + count(new) - count(spec)
    active = spec.active_params + count(new, new.top_k) - count(spec, spec.top_k) if spec.moe else params
    # the catalog's rounded counts (Mixtral's published 46.70B / 12.88B) shift total and active by
    # slightly different offsets; where the shape leaves them within that rounding of each other
    # (--ffn 1: experts of a few weights) the active count must still not pass the total
    active = min(active, params)
    return dataclasses.replace(new, name=f"{spec.name} ({label})", params=params, active_params=active,
                               published_gpu_hours=None, published_gpus=None, published_hardware=None,
                               source=f"{spec.source}; shape changed on the command line ({label})")


def check_experts(experts, top_k, where="") -> None:
    """InputError unless both are 0 (dense) or both positive whole numbers with top_k <= experts."""
    for what, value in (("experts", experts), ("top_k", top_k)):
        if not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            raise InputError(f"{where}{what} must be a positive whole number, got {value!r}")
    if bool(experts) != bool(top_k):
        raise InputError(f"{where}a mixture of experts needs both experts and top_k (got {experts} and {top_k})")
    if top_k > experts:
        raise InputError(f"{where}top_k {top_k} exceeds the {experts} experts")


def _whole(value):
    return int(value) if value else 0


def check_heads(name: str, hidden: int, heads: int, kv_heads: int) -> None:
    """The attention shape's divisibility, shared by the cost model and `run --ops layer`. Named by
    the flags that set them (--hidden/--heads/--kv-heads): a catalog row is valid, so only a
    user's shape reaches these."""
    if hidden % heads:
        raise InputError(f"model {name}: --hidden {hidden} is not a multiple of --heads {heads}")
    if heads % kv_heads:
        raise InputError(f"model {name}: --kv-heads {kv_heads} must divide --heads {heads} "
                         f"(each KV head serves a whole group of query heads)")


def _spec(row: dict) -> ModelSpec:
    shape = {c: int(row[c]) for c in _SHAPE}
    gpus = row["published_gpus"]
    for what in ("experts", "top_k", "moe_ffn"):
        if row[what] and row[what] != int(row[what]):
            raise InputError(f"models.csv: {row['name']}: {what} {row[what]:g} is not a whole number")
    return ModelSpec(
        name=row["name"], params=row["params"], active_params=row["active_params"], tokens=row["tokens"],
        **shape, mlp=row["mlp"] or "swiglu", published_gpu_hours=row["published_gpu_hours"],
        published_gpus=int(gpus) if gpus else None, published_hardware=row["published_hardware"],
        source=row["source"], as_of=row["as_of"], experts=_whole(row["experts"]), top_k=_whole(row["top_k"]),
        moe_ffn=_whole(row["moe_ffn"]) or None, tokens_placeholder=row["tokens_placeholder"] == "yes",
        tied_embeddings=row["tied_embeddings"] == "yes",
    )


def models() -> list[ModelSpec]:
    """Every catalog model, in catalog order."""
    return [_spec(r) for r in load_data("models.csv", _COLUMNS)]


def find_model(name: str) -> ModelSpec:
    """A catalog model by name (case-insensitive); InputError with close matches if unknown."""
    catalog = models()
    for spec in catalog:
        if spec.name.lower() == name.strip().lower():
            return spec
    raise unknown_name("model", name, [s.name for s in catalog])


def _estimated_heads(hidden: float) -> int:
    """Heads of an estimated width: HEAD_DIM-wide, a multiple of 8 from 8 heads up (so that tensor
    parallelism up to a node of 8 divides them, as in every large catalog model; 71 heads, prime,
    would leave TP 1 only), else the nearest power of two."""
    n = hidden / HEAD_DIM
    return 8 * round(n / 8) if n >= 8 else 2 ** max(0, round(math.log2(max(n, 1))))


def _check_count(flag, given, derived, shape, seq_len) -> None:
    """InputError for a parameter count that contradicts the whole shape given beside it."""
    if given is None or abs(given / derived - 1) <= SHAPE_PARAMS_TOLERANCE:
        return
    dims = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in shape.items() if k != "mlp")
    raise InputError(f"{flag} {_count(given)}: the shape given ({dims}) has {_count(derived)} parameters; the "
                     f"count sets the FLOPs and the shape the step's work, so they must agree within "
                     f"{SHAPE_PARAMS_TOLERANCE:.0%}: drop {flag} (it is derived from the shape) or fix the shape")


def _count(n: float) -> str:
    """70B, 35.6M: a parameter count as people write it."""
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return f"{n:.3g}"


def custom_model(params: float | None, tokens: float, active_params: float | None = None,
                 layers: int | None = None, hidden: int | None = None, seq_len: int | None = None,
                 heads: int | None = None, kv_heads: int | None = None, ffn: int | None = None,
                 vocab: int | None = None, mlp: str | None = None, name: str = "custom",
                 experts: int = 0, top_k: int = 0, moe_ffn: int | None = None) -> ModelSpec:
    """A model from command-line flags.

    With the whole shape given and no `params`, the parameters are derived from it
    (flops.params_from_shape). With `params` and a missing layers/hidden, the shape is estimated
    (ASPECT_RATIO, HEAD_DIM; a plain 4h MLP so that N = 12*L*h^2 holds); the active parameters
    set the width of a mixture of experts. `experts`, `top_k`, `moe_ffn` make every layer an MoE
    layer; derived parameters then count all experts (total) and the top_k (active).
    """
    check_experts(experts, top_k, "--experts/--top-k: ")
    if params is None and (layers is None or hidden is None):
        raise InputError("a model by shape needs --layers and --hidden (or --params to estimate them)")
    estimated = layers is None or hidden is None
    if estimated and experts and active_params is None:
        # The total alone cannot say how much of it a token uses (the width a shape would be estimated from).
        raise InputError(f"--params {_count(params)} with --experts {experts} --top-k {top_k} but no --layers/--hidden: "
                         "give --active-params (the parameters each token uses) or the whole shape")
    if estimated:
        active = params if active_params is None else active_params
        if hidden is None:
            # N = 12*L*h^2 and L = h/128  =>  h = (128*N/12)^(1/3); the active params set the width.
            raw = (ASPECT_RATIO * active / 12) ** (1 / 3) if layers is None else math.sqrt(active / (12 * layers))
            if heads:                                      # given: whole heads
                hidden = heads * max(1, round(raw / heads))
            else:                                          # HEAD_DIM-wide heads, as the catalog's models
                heads = _estimated_heads(raw)
                hidden = heads * HEAD_DIM
        if layers is None:
            layers = active / (12 * hidden**2)
        estimate = 12 * max(1, round(layers)) * hidden**2      # what N = 12*L*h^2 gives for the whole layers
        if abs(estimate - active) > SHAPE_PARAMS_TOLERANCE * active:
            # too small (or a --layers/--hidden too large) for whole layers and heads: --params 1000 once
            # became 1 layer of hidden 128, 200x the count, and 63 GiB a GPU
            raise InputError(f"--params {_count(active)}: no estimated shape comes within "
                             f"{SHAPE_PARAMS_TOLERANCE:.0%} of it (the nearest, {max(1, round(layers))} layer(s) of hidden "
                             f"{int(hidden)}, has {_count(estimate)} in its layers); give the shape (--layers "
                             f"--hidden --heads --ffn --vocab)")
        heads = heads or _estimated_heads(hidden)
        mlp = mlp or "gelu"
    heads = heads or max(1, round(hidden / HEAD_DIM))
    mlp = mlp or "swiglu"
    ffn = ffn or (4 * hidden if mlp == "gelu" else 256 * math.ceil(8 * hidden / 3 / 256))  # Llama: 8h/3, x256
    shape = dict(layers=max(1, round(layers)), hidden=int(hidden), heads=int(heads),
                 kv_heads=int(kv_heads or heads), ffn=int(ffn), vocab=int(vocab or DEFAULT_VOCAB), mlp=mlp)
    dims = (shape["layers"], shape["hidden"], shape["heads"], shape["kv_heads"], shape["ffn"], shape["vocab"],
            mlp == "swiglu")
    moe = dict(experts=experts, moe_ffn=moe_ffn)
    derived = float(params_from_shape(*dims, **moe))
    derived_active = float(params_from_shape(*dims, top_k=top_k, **moe)) if experts else derived
    if not estimated:
        _check_count("--params", params, derived, shape, seq_len)
        _check_count("--active-params", active_params, derived_active, shape, seq_len)
    total = params if params is not None else derived
    if active_params is None:   # a mixture of experts: the shape's active share of the total
        active_params = derived_active * total / derived if experts else total
    return ModelSpec(name=name, params=total, active_params=active_params, tokens=tokens,
                     seq_len=seq_len or DEFAULT_SEQ_LEN, shape_estimated=estimated, experts=experts, top_k=top_k,
                     moe_ffn=moe_ffn, **shape)
