"""The rates a training step runs at on one device: the step model's hardware inputs.

Each rate is measured (a result file from this device: cost_models.throughput) or, for a device
nobody measured, the catalog's datasheet figure times a documented fraction. `Rates.origin` says
which, per part, and goes into the cost output's assumptions.

- GEMMs: a linear layer's GEMM (m x k) @ (k x n) takes max(2mnk / R, bytes / B) + GEMM_OVERHEAD_S
  (a roofline with a fixed launch-and-tail cost): R is the rate a large GEMM sustains in a training
  step, B the HBM bandwidth, bytes the bf16 operands and result. The achieved rate falls for thin
  shapes (small m, n or k: bytes dominate) and for small ones (the fixed cost dominates). R is
  GEMM_SUSTAINED_FRACTION x MAMF (measured, else the catalog's). A measured layer (summary.layer
  and its GEMM records, of a layer of the priced model's shape at some TP and micro-batch) says how
  far this device's GEMMs at the model's own shapes fall from that roofline: Rates.gemm_scale =
  (measured time / GEMM_SUSTAINED_FRACTION) / the roofline's time for those very GEMMs, and every
  layout's GEMMs take the roofline x gemm_scale (step_time.layer_gemm_scale). So the measurement
  informs every TP, micro-batch and expert-parallel degree, the roofline carrying it from the shapes
  timed to the shapes run, and the burst it was timed in is derated to a training step's like MAMF
  is. MAMF is a
  best-of-search burst on a cool GPU (ml-engineering mamf-finder: A100 SXM 271.2, H100 SXM 794.5,
  B200 1745 TFLOP/s bf16); a training step runs its GEMMs back to back for hours at the power limit, at the model's shapes, with fused epilogues.
- Attention (FlashAttention, causal): the attention's model FLOPs (flops.py: forward 2*s*h per token
  and layer, backward twice that) over summary.layer.attention_tflops or ATTENTION_FRACTION x the
  dtype's peak. The fraction is of model FLOPs: FlashAttention's own benchmarks count its backward
  at 2.5x the forward (it recomputes the scores), so 0.50 here is 0.58 of peak in their count.
  FlashAttention-2 reaches up to 73% of the A100's peak forward and 63% backward (Dao 2023,
  "FlashAttention-2", sec. 4.1): 0.56 in model FLOPs, so 0.50 is FA-2's level on an A100 at its
  shapes' low end. On an H100 FA-2 reaches about a third of peak forward (335-370 TFLOP/s, head
  size 128) and FlashAttention-3 about two thirds (600-650, up to 75%; its backward 1.5-1.75x FA-2's:
  Shah et al. 2024, abstract and sec. 4.1): 0.50 is near FA-3 forward and backward and about twice
  what FA-2 sustains there. So on an H100 the catalog's attention is FA-3-era; a run on older
  kernels is slower than it says, and a measured layer (run --ops layer: torch's SDPA on the
  machine) replaces the figure.
- Memory-bound work (norms, activations, residuals, rotary): bytes over the measured element-wise
  rate of the model's own kernels (summary.layer.elementwise_gbps: eager, unfused, so below a copy),
  else the measured copy bandwidth (summary.membw_gbps), else HBM_FRACTION x the datasheet bandwidth:
  a device copy reaches about 3.0 of the H100's 3.35 TB/s and 4.3 of the H200's 4.8 (single-GPU
  readings with torch 2.11, 2026-11). The optimizer's streaming update and the GEMM roofline's
  operand traffic run at the copy bandwidth (membw_gbps), not at the element-wise kernels' rate.
- Collectives: tensor parallelism inside a node over NVLink (a one-node run's all-gather and
  reduce-scatter records fitted to a busbw and a per-hop latency, step_time.fit_tp_collectives, or
  its best busbw where the sweep cannot tell them apart; else NVLINK_FRACTION x half the GPU's
  both-directions NVLink figure and the catalog's NVLink latency);
  data and pipeline parallelism across nodes over the fabric (networks.csv per-GPU line rate x
  FABRIC_FRACTION, capped by a measured multi-node busbw). A GPU without NVLink (PCIe) does its
  tensor-parallel traffic over the fabric too in the catalog's figures; a one-node run on such a
  device (a PCIe GPU, a CPU's gloo ranks) measured its in-node link, which replaces that guess.
- Expert-parallel token all-to-alls (mixture of experts): over NVLink at the tensor-parallel rate
  when the EP x TP ranks they span fit in a node, else over the fabric at the data-parallel rate;
  a measured all-to-all busbw (summary.collectives.alltoall: one node, or across nodes capped by
  the fabric) replaces the one it measured. nccl-tests' all-to-all busbw counts the (n-1)/n of the
  send buffer that leaves a rank, as the step model does.

The fractions are the step model's defaults, set once on the calibration runs (scripts/
calibration.py: Narayanan et al. 2021 Table 1, Llama 3 Table 4, Llama 3 70B / 3.1 405B and
Llama 2 70B GPU-hours) and nowhere tuned per model or GPU.
"""

import dataclasses

from cost_models.hardware import GpuSpec
from cost_models.networks import Network, find_network

# Set on the calibration runs, the one fitted default of the step model: the fraction (scanned in
# steps of 0.01) that minimises the worst calibration error, 7.6% at 0.76 (0.75: 8.2%, 0.77: 8.5%,
# 0.80: 11.0%), re-set when the backward TP collectives became overlapped (it was 0.80 while they
# were counted exposed). H100: 0.76 x 794.5 = 604 TFLOP/s bf16 sustained; A100: 206.
GEMM_SUSTAINED_FRACTION = 0.76
GEMM_OVERHEAD_S = 5e-6          # launch + tail of one GEMM kernel (a few microseconds on any GPU)
ATTENTION_FRACTION = 0.50
HBM_FRACTION = 0.90             # 3.0/3.35 (H100), 4.3/4.8 (H200): single-GPU readings, torch 2.11, 2026-11
NVLINK_FRACTION = 0.80
FABRIC_FRACTION = 0.80


@dataclasses.dataclass(frozen=True)
class Rates:
    """What one device delivers, in the step model's units (all positive)."""

    gemm_tflops: float          # R: a large GEMM's sustained rate
    gemm_shaped: bool           # True: R is a large-GEMM rate, apply the roofline; False: measured at the shapes
    attention_tflops: float
    membw_gbps: float           # copy bandwidth: the GEMM roofline's B, the optimizer
    tp_gbps: float              # tensor-parallel busbw (all-gather / reduce-scatter) inside a node
    fabric_gbps: float          # per-GPU busbw across nodes (data- and pipeline-parallel traffic)
    tp_latency_us: float
    fabric_latency_us: float
    origin: dict                # part -> where its rate came from
    a2a_node_gbps: float | None = None     # all-to-all busbw inside a node (None: tp_gbps)
    a2a_fabric_gbps: float | None = None   # all-to-all busbw across nodes (None: fabric_gbps)
    # Time multiplier on every roofline GEMM: how far a measured layer's GEMMs fell from the roofline
    # at the shapes it timed (step_time.layer_gemm_scale); 1 without one.
    gemm_scale: float = 1.0
    elementwise_gbps: float | None = None   # the memory-bound kernels' rate (None: membw_gbps)

    @property
    def memory_bound_gbps(self) -> float:
        return self.elementwise_gbps or self.membw_gbps

    @property
    def alltoall_node_gbps(self) -> float:
        return self.a2a_node_gbps or self.tp_gbps

    @property
    def alltoall_fabric_gbps(self) -> float:
        return self.a2a_fabric_gbps or self.fabric_gbps

    def __post_init__(self):
        for f in ("gemm_tflops", "attention_tflops", "membw_gbps", "tp_gbps", "fabric_gbps", "gemm_scale"):
            if not getattr(self, f) > 0:
                raise ValueError(f"Rates.{f} must be positive, got {getattr(self, f)!r}")


def catalog_rates(gpu: GpuSpec, net: Network, dtype: str = "bf16", linear_dtype: str | None = None,
                  sustained: float = GEMM_SUSTAINED_FRACTION) -> Rates:
    """Rates from the catalog alone. `linear_dtype` (e.g. fp8) sets the linear layers' GEMM rate;
    attention and everything else run in `dtype` (fp8 recipes keep attention in bf16). `sustained`:
    the fraction of MAMF a training GEMM sustains (--efficiency)."""
    lin = linear_dtype or dtype
    nvlink = find_network("nvlink")
    has_nvlink = bool(gpu.nvlink_gbps)
    tp = NVLINK_FRACTION * gpu.nvlink_gbps / 2 if has_nvlink else FABRIC_FRACTION * net.gbps_per_gpu
    return Rates(
        gemm_tflops=sustained * gpu.mamf_tflops(lin), gemm_shaped=True,
        attention_tflops=ATTENTION_FRACTION * gpu.peak(dtype),
        membw_gbps=HBM_FRACTION * gpu.hbm_tbps * 1000,
        tp_gbps=tp, fabric_gbps=FABRIC_FRACTION * net.gbps_per_gpu,
        tp_latency_us=nvlink.latency_us if has_nvlink else net.latency_us, fabric_latency_us=net.latency_us,
        origin={
            "gemm": f"catalog: {sustained:g} x {lin} MAMF {gpu.mamf_tflops(lin):.4g} "
                    f"(peak {gpu.peak(lin):g} x {gpu.mamf_tflops(lin) / gpu.peak(lin):.3f}), roofline for thin shapes",
            "attention": f"catalog: {ATTENTION_FRACTION:g} x {dtype} peak {gpu.peak(dtype):g} (FlashAttention)",
            "memory_bound": f"catalog: {HBM_FRACTION:g} x HBM {gpu.hbm_tbps:g} TB/s",
            "tp_comm": (f"catalog: {NVLINK_FRACTION:g} x NVLink {gpu.nvlink_gbps / 2:g} GB/s one way" if has_nvlink
                        else f"catalog: no NVLink, {net.name}"),
            "dp_comm": f"catalog: {FABRIC_FRACTION:g} x {net.name} {net.gbps_per_gpu:g} GB/s per GPU",
            "ep_comm": "catalog: all-to-all at the tp_comm rate inside a node (EP x TP <= 8), else at the dp_comm rate",
            "optimizer": f"catalog: Adam's bytes at {HBM_FRACTION:g} x HBM {gpu.hbm_tbps:g} TB/s",
        })
