"""Training cost: FLOPs -> GPU-hours -> dollars per provider x GPU x pricing kind.

    plan_training(...)   the time side for one model on one GPU type and cluster (TrainingPlan)
    price_rows(plan, prices)   one dict per price row: $/GPU-hour x GPU-hours, cheapest first
    estimate(...)        both, as a pandas DataFrame (plan in df.attrs["plan"])
    estimate_grid(...)   vectorised over models x GPUs x cluster sizes x price rows

pandas is imported only by estimate/estimate_grid so that `costbench cost` starts fast.
"""

import dataclasses
import math

import numpy as np

from cost_models import flops as flops_mod
from cost_models import memory, training_time
from cost_models.errors import InputError
from cost_models.hardware import GpuSpec, find_gpu
from cost_models.models import ModelSpec, find_model
from cost_models.networks import DEFAULT_NETWORK, Network, find_network
from cost_models.prices import (DEFAULT_STALE_MONTHS, SPOT_NOTE, Price, age_days, commitment_usd, is_stale,
                                load_prices, select, today)
from cost_models.throughput import Throughput

DEFAULT_MODEL = "llama3-70b"
DEFAULT_GPU = "H100-SXM"
GPUS_PER_NODE = 8  # HGX/DGX nodes: up to 8 GPUs talk over NVLink, beyond that over the network


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """The time side of an estimate: everything except prices."""

    model: ModelSpec
    gpu: GpuSpec
    gpus: int
    training_flops: float
    min_gpus: int
    achieved_tflops_per_gpu: float | None   # while computing; None when GPU-hours were given
    mfu: float | None                       # achieved / datasheet peak
    gpu_hours: float
    wall_clock_days: float
    assumptions: dict

    def __post_init__(self):
        if not (self.gpu_hours > 0 and math.isfinite(self.gpu_hours)):
            raise InputError(f"GPU-hours must be a positive finite number, got {self.gpu_hours!r}")


def _resolve_model(model, tokens):
    spec = model if isinstance(model, ModelSpec) else find_model(model)
    return spec.with_tokens(tokens) if tokens is not None else spec


def _check_fraction(name, value):
    if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise InputError(f"{name}: {value!r} must be in (0, 1]")


def intra_node_gbps(gpu: GpuSpec, net: Network) -> float:
    """Per-GPU, one-direction bandwidth inside a node: half the GPU's both-directions NVLink
    figure; a GPU without NVLink (PCIe) talks through the fabric even inside its node."""
    return gpu.nvlink_gbps / 2 if gpu.nvlink_gbps else net.gbps_per_gpu


def link_by_size(gpus, intra_gbps, inter_gbps, net: Network):
    """(busbw GB/s, latency us) for clusters of `gpus`, broadcasting: a cluster of one node
    (<= GPUS_PER_NODE) talks over NVLink (its latency from networks.csv), a larger one over `net`."""
    single = np.asarray(gpus) <= GPUS_PER_NODE
    return (np.where(single, intra_gbps, inter_gbps),
            np.where(single, find_network("nvlink").latency_us, net.latency_us))


def _link(gpu: GpuSpec, net: Network, gpus, throughput: Throughput | None):
    """(busbw GB/s, latency us, where from) for the data-parallel traffic, vectorised over gpus.

    A measured busbw from this GPU type replaces NVLink inside a node and caps the fabric across
    nodes (a ring is as fast as its slowest link).
    """
    intra, inter = intra_node_gbps(gpu, net), net.gbps_per_gpu
    measured = throughput is not None and throughput.busbw_gbps and throughput.gpu == gpu.name
    origin = f"{net.name} {net.gbps_per_gpu:g} GB/s per GPU"
    if measured:
        intra, inter = throughput.busbw_gbps, min(inter, throughput.busbw_gbps)
        origin = f"measured busbw {throughput.busbw_gbps:g} GB/s ({throughput.source}), capped by {origin}"
    busbw, latency = link_by_size(gpus, intra, inter, net)
    if np.all(np.asarray(gpus) <= GPUS_PER_NODE):
        origin = (f"measured busbw {intra:g} GB/s ({throughput.source})" if measured
                  else f"NVLink {intra:g} GB/s per GPU")
    return busbw, latency, origin


def _base_tflops(gpu: GpuSpec, dtype: str, throughput: Throughput | None):
    """(TFLOP/s, where from): measured MAMF when the result file is from this GPU, else catalog."""
    if throughput is not None and throughput.gpu == gpu.name and dtype in throughput.mamf_tflops:
        return throughput.mamf_tflops[dtype], f"measured {dtype} MAMF ({throughput.source})"
    why = ""
    if throughput is not None:
        why = (f"; {throughput.source} is from {throughput.gpu or 'no catalog GPU'}, not {gpu.name}"
               if throughput.gpu != gpu.name else f"; {throughput.source} has no {dtype} MAMF")
    frac = gpu.mamf_tflops(dtype) / gpu.peak(dtype)
    return gpu.mamf_tflops(dtype), f"catalog: {dtype} peak {gpu.peak(dtype):g} x MAMF fraction {frac:.3f}{why}"


def default_gpus(spec: ModelSpec, gpu: GpuSpec, need: int, hours_at) -> tuple[int, str]:
    """(GPU count, why) for a run given no --gpus: the published count for catalog models trained
    on this GPU type; else the smallest power of two (at least one node) that holds the model and
    trains within DEFAULT_TARGET_DAYS, capped at MAX_DEFAULT_GPUS (but never below what memory
    needs). `hours_at(gpus_array)` -> GPU-hours."""
    if spec.published_gpus and (spec.published_hardware or "") == gpu.name:
        return max(spec.published_gpus, need), "published"
    days_rule = f"default: smallest power of two within {training_time.DEFAULT_TARGET_DAYS} days"
    sizes = 2 ** np.arange(3, int(math.log2(training_time.MAX_DEFAULT_GPUS)) + 1)
    sizes = sizes[sizes >= need]
    if sizes.size == 0:
        return need, "default: the memory minimum"
    days = hours_at(sizes) / sizes / 24
    ok = sizes[days <= training_time.DEFAULT_TARGET_DAYS]
    if ok.size:
        return int(ok[0]), days_rule
    return int(sizes[-1]), (f"default: the {training_time.MAX_DEFAULT_GPUS:,}-GPU cap; "
                            f"none finishes within {training_time.DEFAULT_TARGET_DAYS} days")


def plan_training(model="llama3-70b", gpu: str = DEFAULT_GPU, gpus: int | None = None,
                  tokens: float | None = None, network: str | None = None,
                  throughput: Throughput | None = None, mfu: float | None = None,
                  efficiency: float | None = None, overlap: float | None = None,
                  goodput: float | None = None, batch_tokens: float | None = None,
                  recompute: bool = False, dtype: str = "bf16",
                  gpu_hours: float | None = None) -> TrainingPlan:
    """The time model for one scenario (formulas: flops.py, memory.py, training_time.py).

    mfu overrides achieved TFLOP/s as peak * mfu, over whole steps (so no separate exposed
    communication), as Llama 3's Table 4 reports it; goodput still applies. gpu_hours skips the
    time model and prices a reported figure.
    """
    _check_fraction("mfu", mfu)
    _check_fraction("efficiency", efficiency)
    _check_fraction("goodput", goodput)
    if overlap is not None and not 0 <= overlap <= 1:
        raise InputError(f"overlap: {overlap!r} must be in [0, 1]")
    spec = _resolve_model(model, tokens)
    hw = gpu if isinstance(gpu, GpuSpec) else find_gpu(gpu)
    net = find_network(network or DEFAULT_NETWORK)
    peak = hw.peak(dtype)
    total_flops = float(flops_mod.training_flops(spec.active_params, spec.tokens, spec.layers, spec.hidden,
                                                 spec.seq_len, recompute=recompute))
    degree = float(memory.sharding_degree(spec.params, spec.layers, spec.hidden, spec.seq_len, hw.memory_gb, recompute))
    need = math.ceil(degree)
    assumptions = {
        "flops": f"{'8' if recompute else '6'}*N*D + causal attention, {'full' if recompute else 'no'} recompute",
        "dtype": dtype, "peak_tflops": peak, "min_gpus_for_memory": need,
        "memory": f"{memory.BYTES_PER_PARAM} B/param + activations, {memory.USABLE_FRACTION:.0%} of {hw.memory_gb:g} GB usable",
    }
    if spec.shape_estimated:
        assumptions["shape"] = f"estimated from params: {spec.layers} layers, hidden {spec.hidden}, seq {spec.seq_len}"

    if gpu_hours is not None:
        count = gpus or spec.published_gpus
        days = gpu_hours / count / 24 if count else float("nan")
        implied = total_flops / (gpu_hours * 3600 * peak * 1e12)
        assumptions.update({"gpu_hours_from": "given (--gpu-hours); time model skipped",
                            "gpus_from": "--gpus" if gpus else "published" if count else "unknown",
                            "implied_mfu_end_to_end": round(implied, 4)})
        return TrainingPlan(spec, hw, count or 0, total_flops, need, None, None, float(gpu_hours), days,
                            assumptions)

    if mfu is not None:
        achieved, origin = peak * mfu, f"--mfu {mfu:g} x {dtype} peak {peak:g}"
        eff_overlap = 1.0  # an MFU measured over whole steps already includes communication
    else:
        base, origin = _base_tflops(hw, dtype, throughput)
        eff = efficiency if efficiency is not None else training_time.DEFAULT_EFFICIENCY
        achieved = base * eff
        origin = f"{base:.1f} ({origin}) x efficiency {eff:g}"
        eff_overlap = training_time.DEFAULT_OVERLAP if overlap is None else overlap
    batch = batch_tokens or training_time.DEFAULT_BATCH_TOKENS

    def run(sizes):
        busbw, latency, _ = _link(hw, net, sizes, throughput)
        return training_time.training_time(total_flops, spec.tokens, spec.params, sizes, degree, achieved,
                                           busbw, latency, eff_overlap, batch, goodput)

    if gpus is not None:
        count, count_from = gpus, "--gpus"
    else:
        count, count_from = default_gpus(spec, hw, need, lambda s: run(s)["gpu_hours"])
    if count < need:
        raise InputError(f"--gpus {count}: {spec.name} needs at least {need} {hw.name} GPUs "
                         f"({hw.memory_gb:g} GB each) to hold weights, gradients, Adam states and activations")
    t = {k: float(v) for k, v in run(np.asarray(count)).items()}
    _, _, link_origin = _link(hw, net, count, throughput)
    assumptions.update({
        "achieved_tflops_from": origin,
        "gpus_from": count_from,
        "sharding_group_gpus": round(t["sharding_group"], 1),
        "network": link_origin,
        "overlap": eff_overlap, "batch_tokens": batch,
        "exposed_comm_share": round(t["exposed_comm_hours"] / (t["compute_hours"] + t["exposed_comm_hours"]), 4),
        "goodput": round(t["goodput"], 4),
        "goodput_from": "given (--goodput)" if goodput is not None else
        "Llama 3: 466 interruptions in 54 days at 16,384 GPUs, 90% effective time",
    })
    return TrainingPlan(spec, hw, int(count), total_flops, need, achieved, achieved / peak,
                        t["gpu_hours"], t["wall_clock_days"], assumptions)


def price_rows(plan: TrainingPlan, prices: list[Price], ref_date=None,
               stale_months: float = DEFAULT_STALE_MONTHS) -> list[dict]:
    """One row per price for the plan's GPU: cost = GPU-hours x $/GPU-hour, cheapest first.

    Each row also carries its region, its age in days at `ref_date` (default: prices.today())
    and whether it is stale (older than `stale_months`), and for term kinds (reserved-1y/3y,
    capacity-block) commitment_usd: what the term costs whatever the run uses (prices.commitment_usd).
    A spot row carries a note: interruptions are not modelled (goodput unchanged).
    """
    ref = ref_date or today()
    rows = []
    for p in prices:
        if p.gpu != plan.gpu.name:
            continue
        low, high = p.range_or_none()
        cost = plan.gpu_hours * p.usd_per_gpu_hour
        rows.append({
            "provider": p.provider, "gpu": p.gpu, "pricing": p.pricing, "region": p.region,
            "usd_per_gpu_hour": p.usd_per_gpu_hour, "cost_usd": cost,
            "cost_usd_low": plan.gpu_hours * low if low is not None else None,
            "cost_usd_high": plan.gpu_hours * high if high is not None else None,
            "commitment_usd": commitment_usd(p, plan.gpus, plan.wall_clock_days),
            "as_of": p.as_of, "age_days": age_days(p, ref), "stale": is_stale(p, ref, stale_months),
            "source": p.source, "note": SPOT_NOTE if p.pricing == "spot" else None,
        })
    return sorted(rows, key=lambda r: (r["cost_usd"], r["provider"], r["pricing"], r["region"]))


def estimate(model="llama3-70b", gpu: str = DEFAULT_GPU, pricing: str = "on-demand",
             providers: list[str] | None = None, prices: list[Price] | str | None = None, **plan_kwargs):
    """pandas DataFrame, one row per provider x GPU x pricing kind (cheapest first), with the plan's
    gpu_hours and wall_clock_days as columns and the TrainingPlan in df.attrs["plan"]."""
    import pandas as pd

    plan = plan_training(model, gpu, **plan_kwargs)
    table = prices if isinstance(prices, list) else load_prices(prices)
    rows = price_rows(plan, select(table, plan.gpu.name, pricing, providers))
    df = pd.DataFrame(rows, columns=["provider", "gpu", "pricing", "region", "usd_per_gpu_hour", "cost_usd",
                                     "cost_usd_low", "cost_usd_high", "commitment_usd", "as_of", "age_days",
                                     "stale", "source", "note"])
    df["model"] = plan.model.name
    df["gpus"] = plan.gpus
    df["gpu_hours"] = plan.gpu_hours
    df["wall_clock_days"] = plan.wall_clock_days
    df.attrs["plan"] = plan
    return df


def estimate_grid(models, gpus, cluster_sizes, prices: list[Price] | None = None, pricing: str = "on-demand",
                  network: str | None = None, efficiency: float | None = None, dtype: str = "bf16"):
    """Every model x price row (provider x GPU) x cluster size at once, vectorised with numpy.

    Same formulas and defaults as plan_training (catalog MAMF, no result file). Scenarios whose
    cluster cannot hold the model get NaN hours and cost. Returns a DataFrame with columns model,
    gpu, provider, pricing, gpus, gpu_hours, wall_clock_days, usd_per_gpu_hour, cost_usd.
    """
    import pandas as pd

    specs = [m if isinstance(m, ModelSpec) else find_model(m) for m in models]
    hws = [find_gpu(g) for g in gpus]
    net = find_network(network or DEFAULT_NETWORK)
    table = select(prices if prices is not None else load_prices(), None, pricing)
    table = [p for p in table if p.gpu in {h.name for h in hws}]
    eff = training_time.DEFAULT_EFFICIENCY if efficiency is None else efficiency
    _check_fraction("efficiency", eff)

    def col(values):  # model-level quantities as an (M, 1, 1) column
        return np.array(values, dtype=float)[:, None, None]

    # Axes: models (M) x GPU types (G) x cluster sizes (C).
    size = np.array(cluster_sizes, dtype=float)[None, None, :]
    params, active, tokens = col([s.params for s in specs]), col([s.active_params for s in specs]), col([s.tokens for s in specs])
    layers, hidden, seq = col([s.layers for s in specs]), col([s.hidden for s in specs]), col([s.seq_len for s in specs])
    mem = np.array([h.memory_gb for h in hws])[None, :, None]
    achieved = np.array([h.mamf_tflops(dtype) * eff for h in hws])[None, :, None]
    intra = np.array([intra_node_gbps(h, net) for h in hws])[None, :, None]
    busbw, latency = link_by_size(size, intra, net.gbps_per_gpu, net)
    total_flops = flops_mod.training_flops(active, tokens, layers, hidden, seq)
    degree = memory.sharding_degree(params, layers, hidden, seq, mem)
    t = training_time.training_time(total_flops, tokens, params, size, degree, achieved, busbw, latency)
    hours = np.where(size >= np.ceil(degree), t["gpu_hours"], np.nan)  # (M, G, C)

    # Join with price rows: each row picks its GPU's slice -> (M, P, C).
    gpu_index = {h.name: i for i, h in enumerate(hws)}
    idx = np.array([gpu_index[p.gpu] for p in table], dtype=int)
    usd = np.array([p.usd_per_gpu_hour for p in table])
    hours_p = np.broadcast_to(hours, (len(specs), len(hws), size.shape[-1]))[:, idx, :]
    cost = hours_p * usd[None, :, None]
    m_i, p_i, c_i = np.indices(cost.shape).reshape(3, -1)
    sizes = size.ravel()[c_i]
    return pd.DataFrame({
        "model": np.array([s.name for s in specs], dtype=object)[m_i],
        "gpu": np.array([p.gpu for p in table], dtype=object)[p_i],
        "provider": np.array([p.provider for p in table], dtype=object)[p_i],
        "pricing": np.array([p.pricing for p in table], dtype=object)[p_i],
        "gpus": sizes.astype(int),
        "gpu_hours": hours_p.ravel(),
        "wall_clock_days": hours_p.ravel() / sizes / 24,
        "usd_per_gpu_hour": usd[p_i],
        "cost_usd": cost.ravel(),
    })
