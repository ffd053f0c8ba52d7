"""The model catalog (cost_models/data/models.csv) and models described by flags.

A ModelSpec holds what the FLOPs and memory formulas need: parameter counts (total, and active per
token for a mixture of experts), training tokens and the transformer shape. Catalog rows also carry
the published training budget (GPU-hours, GPU count, hardware) for calibration checks.
"""

import dataclasses
import math

from cost_models.catalog import Column, as_of_date, load_data, positive, text
from cost_models.errors import InputError, unknown_name

_SHAPE = ("layers", "hidden", "heads", "kv_heads", "ffn", "vocab", "seq_len")
_COLUMNS = [
    Column("name"), Column("params", positive), Column("active_params", positive), Column("tokens", positive),
    *[Column(c, positive) for c in _SHAPE],
    Column("published_gpu_hours", positive, required=False), Column("published_gpus", positive, required=False),
    Column("published_hardware", text, required=False), Column("source"), Column("as_of", as_of_date),
]

# Without a shape, one is estimated from the parameter count: N ~ 12*L*h^2 (attention 4h^2 + MLP
# 8h^2 per layer, embeddings ignored) with the width/depth ratio h/L = 128, which GPT-3 175B (12288/96)
# and Llama 3.1 405B (16384/126 = 130) share; 8192 tokens is Llama 3's pretraining sequence length.
ASPECT_RATIO = 128
DEFAULT_SEQ_LEN = 8192


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    name: str
    params: float          # total parameters (all experts): what memory and gradient traffic scale with
    active_params: float   # parameters used per token: what FLOPs scale with
    tokens: float          # training tokens
    layers: int
    hidden: int
    seq_len: int
    heads: int | None = None
    kv_heads: int | None = None
    ffn: int | None = None
    vocab: int | None = None
    shape_estimated: bool = False  # True when layers/hidden were derived from params
    published_gpu_hours: float | None = None
    published_gpus: int | None = None
    published_hardware: str | None = None
    source: str = "command line"
    as_of: str | None = None

    def __post_init__(self):
        for what in ("params", "active_params", "tokens", "layers", "hidden", "seq_len"):
            value = getattr(self, what)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"model {self.name}: {what} must be a positive finite number, got {value!r}")
        if self.active_params > self.params:
            raise InputError(f"model {self.name}: active params ({self.active_params:.4g}) exceed "
                             f"total params ({self.params:.4g})")

    def with_tokens(self, tokens: float) -> "ModelSpec":
        return dataclasses.replace(self, tokens=tokens)


def _spec(row: dict) -> ModelSpec:
    shape = {c: int(row[c]) for c in _SHAPE}
    gpus = row["published_gpus"]
    return ModelSpec(
        name=row["name"], params=row["params"], active_params=row["active_params"], tokens=row["tokens"],
        **shape, published_gpu_hours=row["published_gpu_hours"],
        published_gpus=int(gpus) if gpus else None, published_hardware=row["published_hardware"],
        source=row["source"], as_of=row["as_of"],
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


def custom_model(params: float, tokens: float, active_params: float | None = None,
                 layers: int | None = None, hidden: int | None = None, seq_len: int | None = None,
                 heads: int | None = None, name: str = "custom") -> ModelSpec:
    """A model from command-line flags; a missing layers/hidden is estimated (see ASPECT_RATIO)."""
    active = params if active_params is None else active_params
    estimated = layers is None or hidden is None
    if hidden is None and layers is None:
        # N = 12*L*h^2 and L = h/128  =>  h = (128*N/12)^(1/3); the active params set the width.
        hidden = (ASPECT_RATIO * active / 12) ** (1 / 3)
    if hidden is None:
        hidden = math.sqrt(active / (12 * layers))
    if layers is None:
        layers = active / (12 * hidden**2)
    return ModelSpec(
        name=name, params=params, active_params=active, tokens=tokens,
        layers=max(1, round(layers)), hidden=max(1, round(hidden)),
        seq_len=seq_len or DEFAULT_SEQ_LEN, heads=heads, shape_estimated=estimated,
    )
