"""The GPU catalog: datasheet peaks, memory, bandwidths and the default MAMF fraction per GPU.

Data: cost_models/data/gpus.csv (each row cites its datasheet and where its MAMF fraction comes
from). Two entry points the rest of costbench relies on:

- normalize_device_name(torch_name, memory_gb) maps what torch.cuda.get_device_name() reports
  ("NVIDIA H100 80GB HBM3", "NVIDIA H100 PCIe", "NVIDIA A100-SXM4-80GB") to a catalog name.
- find_gpu(name) resolves what a user types ("h100", "H100-SXM", a torch name) to a GpuSpec.

A MIG slice ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", as torch names it) is a fraction of a GPU's
SMs and memory: it is never normalised to the whole GPU (no peak, no efficiency, no price), and
find_gpu refuses it with the reason (mig_profile tells it apart).
"""

import dataclasses
import re

from cost_models.catalog import Column, as_of_date, fraction, load_data, non_negative, positive, text
from cost_models.errors import CannotRun, InputError, unknown_name

DTYPES = ("bf16", "fp16", "tf32", "fp32", "fp8")
# The dtypes a training run is priced in (`costbench cost --dtype`): bf16 and fp16 are the 2-byte
# mixed precision the memory model (memory.py: 2-byte weights and activations) and the step model
# assume, fp16 as 2021-era runs trained (Narayanan et al. 2021: scripts/calibration.py); fp8 speeds
# the linear layers' GEMMs only. tf32/fp32 training (4-byte activations) is not modelled.
TRAINING_DTYPES = ("bf16", "fp16", "fp8")

_COLUMNS = [
    Column("name"), Column("aliases", text, required=False),
    *[Column(f"{d}_tflops", positive, required=False) for d in DTYPES],
    Column("memory_gb", positive), Column("hbm_tbps", positive),
    Column("nvlink_gbps", non_negative, required=False), Column("tdp_w", positive),
    Column("mamf_fraction", fraction), Column("mamf_fraction_fp8", fraction, required=False),
    Column("source"), Column("as_of", as_of_date),
]


@dataclasses.dataclass(frozen=True)
class GpuSpec:
    """One GPU model. peak_tflops: dense datasheet peak per dtype (None where unsupported)."""

    name: str
    peak_tflops: dict
    memory_gb: float
    hbm_tbps: float
    nvlink_gbps: float | None
    tdp_w: float
    mamf_fraction: float  # measured bf16 MAMF / bf16 peak; the default "achievable" ceiling
    source: str
    as_of: str
    mamf_fraction_fp8: float | None = None
    aliases: tuple = ()

    def __post_init__(self):
        if set(self.peak_tflops) != set(DTYPES):
            raise InputError(f"GPU {self.name}: peak_tflops needs exactly the dtypes {', '.join(DTYPES)}")
        if not self.peak_tflops["bf16"]:
            raise InputError(f"GPU {self.name}: needs a bf16 peak")
        for what in ("memory_gb", "hbm_tbps", "tdp_w"):
            if not getattr(self, what) > 0:
                raise InputError(f"GPU {self.name}: {what} must be positive")
        for what in ("mamf_fraction", "mamf_fraction_fp8"):
            value = getattr(self, what)
            if value is not None and not 0 < value <= 1:
                raise InputError(f"GPU {self.name}: {what} must be in (0, 1]")

    def peak(self, dtype: str) -> float:
        """Datasheet dense peak for `dtype` in TFLOP/s; InputError if this GPU lacks the dtype."""
        if dtype not in self.peak_tflops:
            raise unknown_name("dtype", dtype, DTYPES)
        value = self.peak_tflops[dtype]
        if value is None:
            have = [d for d in DTYPES if self.peak_tflops[d]]
            raise CannotRun(f"GPU {self.name} has no {dtype} peak (it has {', '.join(have)})")
        return value

    def mamf_tflops(self, dtype: str = "bf16") -> float:
        """Default achievable matmul TFLOP/s: peak x the measured MAMF fraction for that dtype."""
        frac = self.mamf_fraction_fp8 if dtype == "fp8" and self.mamf_fraction_fp8 else self.mamf_fraction
        return self.peak(dtype) * frac


def _spec(row: dict) -> GpuSpec:
    return GpuSpec(
        name=row["name"], peak_tflops={d: row[f"{d}_tflops"] for d in DTYPES},
        memory_gb=row["memory_gb"], hbm_tbps=row["hbm_tbps"], nvlink_gbps=row["nvlink_gbps"],
        tdp_w=row["tdp_w"], mamf_fraction=row["mamf_fraction"], source=row["source"],
        as_of=row["as_of"], mamf_fraction_fp8=row["mamf_fraction_fp8"],
        aliases=tuple(a.strip() for a in (row["aliases"] or "").split(";") if a.strip()),
    )


def gpus() -> list[GpuSpec]:
    """Every catalog GPU, in catalog order."""
    return [_spec(r) for r in load_data("gpus.csv", _COLUMNS)]


def _key(name: str) -> str:
    """Case, spaces and underscores do not matter in GPU names: 'H100 SXM' == 'h100-sxm'."""
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def mig_profile(name: str) -> str | None:
    """The MIG profile of a slice's name ("NVIDIA H100 80GB HBM3 MIG 1g.10gb" -> "1g.10gb";
    "MIG" alone -> "MIG"), or None for a whole GPU."""
    n = _key(name)
    found = re.search(r"(?:^|-)(\d+g\.\d+gb)(?:-|$)", n)
    if found:   # a profile alone names a slice too ("H100 1g.10gb" was priced as a whole H100)
        return found.group(1)
    return "MIG" if re.search(r"(?:^|-)mig(?:-|$)", n) else None


def normalize_device_name(torch_name: str, memory_gb: float | None = None) -> str | None:
    """Catalog name for a torch device name, or None when the GPU is not in the catalog.

    torch reports e.g. "NVIDIA H100 80GB HBM3" (SXM), "NVIDIA H100 PCIe", "NVIDIA H200",
    "NVIDIA A100-SXM4-80GB". PCIe and NVL variants are told apart from SXM by name; an A100 whose
    name omits the memory size is told apart by `memory_gb` (40 GB vs 80 GB).
    """
    n = _key(torch_name).removeprefix("nvidia-")
    if mig_profile(n):
        return None  # a slice is not the whole GPU: rating or pricing it as one would mislead

    def model(prefix: str) -> bool:
        # a whole token: "h100-80gb-hbm3" is an H100, "h1000" is not
        return n == prefix or n.startswith(prefix + "-")

    if "pcie" in n or "nvl" in n.replace("nvlink", ""):
        # Only the H100 PCIe is catalogued; H100/H200 NVL and A100 PCIe differ in clocks/memory.
        if model("h100") and "pcie" in n:
            return "H100-PCIe"
        return None
    if model("gh200"):
        # "NVIDIA GH200 480GB" names the CPU's LPDDR5X; the GPU has 96 GB HBM3 (catalogued) or
        # 144 GB HBM3e (not catalogued: other bandwidth), told apart by the memory torch reports
        return "GH200" if memory_gb is None or memory_gb < 120 else None
    for prefix, name in (("gb200", "GB200"), ("b200", "B200"), ("h200", "H200-SXM"),
                         ("h800", "H800-SXM"), ("h100", "H100-SXM"), ("l40s", "L40S")):  # torch: "NVIDIA L40S"
        if model(prefix):
            return name
    if model("a100"):
        if "40gb" in n:
            return "A100-SXM-40GB"
        if "80gb" in n:
            return "A100-SXM-80GB"
        if memory_gb is not None:
            return "A100-SXM-40GB" if memory_gb < 60 else "A100-SXM-80GB"
        return None
    return None


def find_gpu(name: str) -> GpuSpec:
    """The catalog GPU for a user-typed name, alias or torch device name; InputError if unknown."""
    profile = mig_profile(name)
    if profile:
        raise InputError(f"GPU {name!r} is a MIG slice ({profile}), not a whole GPU: it has a fraction "
                         "of the GPU's compute and memory and no price of its own, so costbench neither "
                         "rates nor prices it as the whole GPU; name the whole GPU")
    catalog = gpus()
    key = _key(name)
    for spec in catalog:
        if key == _key(spec.name) or key in (_key(a) for a in spec.aliases):
            return spec
    normalized = normalize_device_name(name)
    if normalized is not None:
        return next(s for s in catalog if s.name == normalized)
    raise unknown_name("GPU", name, [s.name for s in catalog])
