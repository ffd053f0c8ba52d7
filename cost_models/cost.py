"""Training cost: model + cluster -> step time -> GPU-hours -> dollars per provider x GPU x pricing kind.

    plan_training(...)   the time side for one model on one device type and cluster (TrainingPlan):
                         the fastest feasible parallel layout (or the one given) and its step time
                         from parts (step_time.py), then GPU-hours with goodput (training_time.py)
    price_rows(plan, prices)   one dict per price row: $/GPU-hour x GPU-hours; offers that sell the cluster first, then by the bill
    row_fabrics(plan, prices)  the fabrics the rows' instances are sold on: with plans timed on each
                         (--network own), price_rows bills each row the hours of its own fabric
    estimate(...)        both, as a pandas DataFrame (plan in df.attrs["plan"])
    estimate_grid(...)   many models x GPUs x cluster sizes x price rows

pandas is imported only by estimate/estimate_grid so that `costbench cost` starts fast.
"""

import dataclasses
import functools
import math

import numpy as np

from cost_models import flops as flops_mod
from cost_models import memory, parallelism, rates as rates_mod, step_time, training_time
from cost_models.errors import CannotRun, InputError, NoLayoutError
from cost_models.hardware import DTYPES, GpuSpec, find_gpu
from cost_models.models import ModelSpec, find_model
from cost_models.networks import DEFAULT_NETWORK, Network, find_network
from cost_models.prices import (DEFAULT_STALE_MONTHS, SPOT_NOTE, Price, age_days, commitment_usd, is_stale,
                                load_prices, select, today)
from cost_models.throughput import CPU, Throughput

DEFAULT_MODEL = "llama3-70b"
DEFAULT_GPU = "H100-SXM"
GPUS_PER_NODE = parallelism.GPUS_PER_NODE
OWN_NETWORK = "own"   # --network own: each price row timed on the fabric its instance is sold with


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """The time side of an estimate: everything except prices."""

    model: ModelSpec
    gpu: GpuSpec
    gpus: int
    training_flops: float                   # model FLOPs (6ND + causal attention; no recompute)
    min_gpus: int                           # smallest power-of-two cluster with a layout that fits memory
    achieved_tflops_per_gpu: float | None   # model FLOPs / step time; None when GPU-hours were given
    mfu: float | None                       # achieved / datasheet peak
    gpu_hours: float
    wall_clock_days: float
    assumptions: dict
    parallelism: dict | None = None         # the layout (parallelism.Layouts.pick); None without the step model
    step: dict | None = None                # {"seconds", "parts": {part: s}}; None without the step model

    def __post_init__(self):
        if not (self.gpu_hours > 0 and math.isfinite(self.gpu_hours)):
            raise InputError(f"GPU-hours must be a positive finite number, got {self.gpu_hours!r}")


def _resolve_model(model, tokens):
    spec = model if isinstance(model, ModelSpec) else find_model(model)
    return spec.with_tokens(tokens) if tokens is not None else spec


def _check_fraction(name, value):
    if value is not None and not (isinstance(value, (int, float)) and 0 < value <= 1):
        raise InputError(f"{name}: {value!r} must be in (0, 1]")


def cpu_device(throughput: Throughput) -> GpuSpec:
    """The device "cpu" from a CPU result file: no datasheet, so its measured MAMF stands in for the
    peak (MFU is then relative to MAMF) and its measured copy bandwidth for HBM. No fp8: a CPU has no
    fp8 GEMM (kernels.matmul runs fp8 on NVIDIA GPUs of compute capability 8.9+ only)."""
    if not throughput.mamf_tflops and not throughput.measured_layer:
        raise InputError(f"{throughput.source}: a CPU has no catalog figures and this file measured no matmul "
                         f"(run costbench run --device cpu --ops matmul,membw,layer)")
    # the copy: its "HBM", the GEMM roofline's bandwidth and the optimizer's. Not the layer's
    # element-wise rate: eager, unfused kernels run far below a copy, and as the roofline's bandwidth
    # they made thin GEMMs look memory-bound and every larger one too fast (hostile tester)
    bw = throughput.membw_gbps
    if bw is None:
        raise InputError(f"{throughput.source}: a CPU has no catalog figures and this file has no copy bandwidth "
                         f"(summary.membw_gbps): run costbench run --device cpu --ops membw (with layer, matmul) on it")
    best = max([*throughput.mamf_tflops.values(), throughput.layer.get("gemm_tflops") or 0])
    peaks = {d: throughput.mamf_tflops.get(d, best) for d in DTYPES if d != "fp8"} | {"fp8": None}
    stand_in = CPU_PEAK_MAMF if throughput.mamf_tflops else CPU_PEAK_LAYER
    # without machine.host_memory_gb the memory is unknown: not checked (bench.cmd_cost warns so)
    return GpuSpec(name=CPU, peak_tflops=peaks, memory_gb=throughput.host_memory_gb or 1e6, hbm_tbps=bw / 1000,
                   nvlink_gbps=None, tdp_w=1, mamf_fraction=1.0,
                   source=f"measured: {throughput.source} (peak: {stand_in})", as_of="2026")


DATASHEET_SLACK = 1.05   # a measured rate may pass the datasheet by rounding, not by more


def _check_within_datasheet(throughput: Throughput, hw: GpuSpec) -> None:
    """InputError naming the field when a GPU file's measured compute rate passes its GPU's dense
    datasheet peak in that dtype (its memory bandwidth the HBM's, a bus bandwidth the NVLink's) by
    more than DATASHEET_SLACK:
    no kernel beats the datasheet, so the figure is a typo or a hand edit, and it would price a
    run at an MFU above 100%."""
    src = throughput.source

    def check(field, value, dtype):
        peak = hw.peak_tflops.get(dtype)
        if value is not None and peak and value > DATASHEET_SLACK * peak:
            raise InputError(f"{src}: {field}: {value:.4g} TFLOP/s is above the {hw.name}'s {dtype} datasheet peak "
                             f"{peak:g}; no kernel beats the datasheet: fix or re-measure the file")

    for dtype, value in throughput.mamf_tflops.items():
        check(f"summary.mamf_tflops.{dtype}", value, dtype)
    layer = throughput.layer
    dtype = layer.get("dtype") or "bf16"
    check("summary.layer.gemm_tflops", layer.get("gemm_tflops"), dtype)
    check("summary.layer.attention_tflops", layer.get("attention_tflops"), dtype)
    for m, n, k, _, seconds in layer.get("gemms", ()):
        check(f"a layer GEMM record ({m} x {n} x {k})", 2 * m * n * k / seconds / 1e12, dtype)
    # a bus bandwidth passes neither the NVLink's both-directions figure (NVLS all-reduce, the switch
    # reducing, reads about 480 GB/s on an H100's 900) nor, across nodes, anything NVLink does not
    link = hw.nvlink_gbps
    busbws = [("summary.busbw_gbps_max", throughput.busbw_gbps)] + [
        (f"summary.collectives.{op}.busbw_gbps_max", v) for op, v in throughput.collectives.items()]
    for field, value in busbws:
        if value is not None and link and value > DATASHEET_SLACK * link:
            raise InputError(f"{src}: {field}: {value:g} GB/s is above the {hw.name}'s NVLink {link:g} GB/s "
                             f"(both directions); no collective beats its link: fix or re-measure the file")
    hbm = hw.hbm_tbps * 1000
    for field, value in (("summary.membw_gbps", throughput.membw_gbps),
                         ("summary.layer.elementwise_gbps", layer.get("elementwise_gbps"))):
        if value is not None and hbm and value > DATASHEET_SLACK * hbm:
            raise InputError(f"{src}: {field}: {value:g} GB/s is above the {hw.name}'s HBM bandwidth "
                             f"{hbm:g} GB/s; fix or re-measure the file")


def _check_cpu_rates(throughput: Throughput, spec: ModelSpec, dtype: str) -> None:
    """A CPU has no datasheet: its GEMM rate in `dtype` must be measured, as a MAMF in that dtype or
    as a layer of this very model in it. Otherwise the stand-in peak (cpu_device) would be another
    dtype's or another model's rate, labelled as the catalog, and the catalog fractions (attention
    at ATTENTION_FRACTION of it) would be made up from it."""
    if dtype in throughput.mamf_tflops:
        return
    layer = throughput.layer
    ok, why = _layer_matches(layer, spec, dtype) if layer.get("gemm_tflops") else (False, "it measured no layer")
    if not ok:
        fix = ("costbench run measures no fp16 on a CPU (no fast kernel): price it at --dtype bf16" if dtype == "fp16"
               else f"run costbench run --device cpu --ops matmul,membw,layer --model {spec.name} on it")
        raise InputError(f"{throughput.source}: a CPU has no catalog figures, and this file measured no {dtype} "
                         f"matmul and no {dtype} layer of {spec.name} ({why}); {fix}")


# What stands in for a CPU's datasheet peak (cpu_device), which its MFU is relative to.
CPU_PEAK_MAMF = "its measured MAMF"
CPU_PEAK_LAYER = "its measured layer GEMM rate (no matmul was measured)"


def _device(gpu, throughput):
    if isinstance(gpu, GpuSpec):
        return gpu
    if (gpu or "").strip().lower() == CPU:
        if throughput is None or throughput.gpu != CPU:
            raise InputError("--gpu cpu: the cpu device has no catalog figures; give --results FILE from a CPU run")
        return cpu_device(throughput)
    return find_gpu(gpu)


def device_rates(hw: GpuSpec, net: Network, dtype: str, throughput: Throughput | None, spec: ModelSpec,
                 sustained: float | None = None) -> tuple[rates_mod.Rates, rates_mod.Rates | None, dict]:
    """(rates, fp8 linear-layer rates or None, {"measured": [...], "catalog": [...]}) for the step model.

    A result file from this device replaces each catalog rate it measured (rates.py says which field
    feeds which part); `sustained` overrides GEMM_SUSTAINED_FRACTION (--efficiency).
    """
    base_dtype = "bf16" if dtype == "fp8" else dtype
    frac = rates_mod.GEMM_SUSTAINED_FRACTION if sustained is None else sustained
    cat = rates_mod.catalog_rates(hw, net, base_dtype, sustained=frac)
    lin = rates_mod.catalog_rates(hw, net, base_dtype, linear_dtype="fp8", sustained=frac) if dtype == "fp8" else None
    mine = throughput is not None and throughput.gpu == hw.name
    new, origin = {}, dict(cat.origin)
    if mine:
        tp_, src = throughput, throughput.source
        if hw.name != CPU:
            _check_within_datasheet(tp_, hw)
        layer_ok, layer_why = _layer_matches(tp_.layer, spec, base_dtype)
        measured_name = tp_.layer.get("model") or "a layer"
        if measured_name != spec.name:
            measured_name += " (this model's shape)"
        shrunk = tp_.layer.get("width_divisor") or 1
        at_shapes = f" (a smaller problem: widths / {shrunk})" if shrunk > 1 else ""
        if base_dtype in tp_.mamf_tflops:
            new.update(gemm_tflops=frac * tp_.mamf_tflops[base_dtype])
            mamf = tp_.mamf_tflops[base_dtype]
            origin["gemm"] = f"measured: {frac:g} x {base_dtype} MAMF {mamf:.4g} ({src}), roofline"
        ew = tp_.layer.get("elementwise_gbps")
        if tp_.membw_gbps:
            new["membw_gbps"] = tp_.membw_gbps
            origin["optimizer"] = f"measured: Adam's bytes at the copy's {tp_.membw_gbps:g} GB/s ({src})"
        if ew or tp_.membw_gbps:
            new["elementwise_gbps"] = ew or tp_.membw_gbps
            origin["memory_bound"] = (f"measured: element-wise kernels {ew:g} GB/s ({src})" if ew else
                                      f"measured: copy {tp_.membw_gbps:g} GB/s ({src})")
            if ew and tp_.membw_gbps:
                origin["memory_bound"] += f"; the optimizer and GEMM operands at the copy's {tp_.membw_gbps:g} GB/s"
        if tp_.layer.get("gemm_tflops"):
            gemms, seconds, not_used = _measured_layer_gemms(tp_.layer, spec) if layer_ok else (None, 0, layer_why)
            if gemms is not None and sustained is None:
                at, rate = tp_.layer["tp"], tp_.layer["gemm_tflops"]
                mb = (tp_.layer.get("shape") or {}).get("micro_batch") or 1
                scale = step_time.layer_gemm_scale(gemms, seconds, dataclasses.replace(cat, **new), frac,
                                                   peak_tflops=hw.peak(base_dtype))
                new["gemm_scale"] = scale
                origin["gemm"] = (f"measured: {measured_name} layer GEMMs at TP {at}, micro-batch {mb}{at_shapes}, "
                                  f"{rate:.4g} TFLOP/s ({src}), {scale:.3g} x the time of the roofline on "
                                  f"{_roofline_basis(origin['gemm'])} at those shapes (burst derated by {frac:g}): "
                                  f"every layout's GEMMs x {scale:.3g}")
            else:
                why = (f"--efficiency {sustained:g} replaces the file's measured layer GEMM rate" if gemms is not None
                       else f"the file's layer GEMM rate not used: {not_used}")
                origin["gemm"] += f" ({why})"
        if tp_.layer.get("attention_tflops") and layer_ok:
            new["attention_tflops"] = tp_.layer["attention_tflops"]
            origin["attention"] = f"measured: {tp_.layer['attention_tflops']:g} TFLOP/s ({src})"
            timed, full = tp_.layer.get("tokens"), ((tp_.layer.get("shape") or {}).get("micro_batch") or 1) * spec.seq_len
            if shrunk > 1 or (timed is not None and timed < full):   # --quick: attention's rate grows with s
                origin["attention"] += (f" (a smaller problem: {timed or '?'} tokens, widths / {shrunk}, against "
                                        f"{full:,} tokens here; used as measured)")
        intra = [tp_.collectives[o] for o in ("allgather", "reducescatter") if o in tp_.collectives]
        link = min(intra) if intra else tp_.busbw_gbps
        # A one-node run measured the link TP uses inside a node: NVLink, or PCIe / shared memory on a
        # device without NVLink (a PCIe GPU, a CPU's gloo ranks), which the catalog can only guess.
        fit = step_time.fit_tp_collectives(tp_.tp_collective_times) if tp_.nodes <= 1 else None
        if fit:
            new["tp_gbps"], new["tp_latency_us"], sizes = fit
            origin["tp_comm"] = (f"measured: all-gather/reduce-scatter over {sizes} sizes in one node fitted to "
                                 f"busbw {fit[0]:.4g} GB/s + {fit[1]:.3g} us a hop (the slower op's best size alone: {link:g} GB/s) ({src})")
        elif link and tp_.nodes <= 1:
            new["tp_gbps"] = link
            origin["tp_comm"] = f"measured: busbw {link:g} GB/s in one node ({src})"
        if link and tp_.nodes > 1:
            new["fabric_gbps"] = min(cat.fabric_gbps, link)
            origin["dp_comm"] = f"measured: busbw {link:g} GB/s across {tp_.nodes} nodes ({src}), capped by {cat.origin['dp_comm']}"
        a2a = tp_.collectives.get("alltoall")
        if a2a and tp_.nodes <= 1:
            new["a2a_node_gbps"] = a2a
            origin["ep_comm"] = f"measured: all-to-all busbw {a2a:g} GB/s in one node ({src}); across nodes {cat.origin['dp_comm']}"
        elif a2a and tp_.nodes > 1:
            new["a2a_fabric_gbps"] = min(cat.fabric_gbps, a2a)
            origin["ep_comm"] = (f"measured: all-to-all busbw {a2a:g} GB/s across {tp_.nodes} nodes ({src}), capped by "
                                 f"{cat.origin['dp_comm']}")
        if hw.name != CPU:   # a CPU's "catalog" is its own file; dp_comm and ep_comm name their cap already
            for part in ("gemm", "attention", "memory_bound", "tp_comm", "optimizer"):
                if origin[part].startswith("measured"):
                    origin[part] += f"; replaces the {cat.origin[part]}"
        else:   # what the file did not measure is a stand-in, not a datasheet's (its "peak" is the file's MAMF)
            origin = {part: ("not measured in this file, assumed: " + o.removeprefix("catalog: ").replace(
                                 f"{base_dtype} peak", f"{base_dtype} MAMF (a CPU's stand-in for a peak)")
                             if o.startswith("catalog: ") else o) for part, o in origin.items()}
    elif throughput is not None:
        why = f"{throughput.source} is from {throughput.gpu or throughput.device_name or 'an unknown device'}, not {hw.name}"
        origin = {k: f"{v}; {why}" for k, v in origin.items()}
    rates = dataclasses.replace(cat, **new, origin=origin)
    if lin is not None:
        # The measured bf16 layer's distance from its roofline (gemm_scale) is a property of these
        # shapes on this device (tile quantisation, thin operands, launch cost), so the fp8 GEMMs at
        # the same shapes keep it: dropping it would make a device whose layer ran slow look fast in fp8.
        lin = dataclasses.replace(lin, membw_gbps=rates.membw_gbps, elementwise_gbps=rates.elementwise_gbps,
                                  gemm_scale=rates.gemm_scale)
        lin_origin = lin.origin["gemm"]
        if mine and "fp8" in throughput.mamf_tflops:
            lin = dataclasses.replace(lin, gemm_tflops=frac * throughput.mamf_tflops["fp8"])
            lin_origin = f"measured: {frac:g} x fp8 MAMF {throughput.mamf_tflops['fp8']:.4g} ({throughput.source}), roofline"
        origin["gemm"] = lin_origin + " (fp8 linear layers; attention and the rest bf16)"
        if rates.gemm_scale != 1:
            origin["gemm"] += (f"; the LM head and router bf16; every GEMM, fp8 or bf16, x {rates.gemm_scale:.3g}, "
                               "the measured bf16 layer's distance from its roofline")
    measured = [p for p, o in origin.items() if o.startswith("measured")]   # fp8: the catalog's GEMM rate
    return rates, lin, {"measured": measured, "catalog": [p for p in origin if p not in measured]}


def _roofline_basis(gemm_origin: str) -> str:
    """'0.8 x bf16 MAMF 750 (file)' from a GEMM origin line (measured or catalog, roofline noted)."""
    text = gemm_origin.removeprefix("measured: ").removeprefix("catalog: ")
    return text.removesuffix(", roofline for thin shapes").removesuffix(", roofline")


def _measured_layer_gemms(layer: dict, spec: ModelSpec) -> tuple[list | None, float, str]:
    """(GEMMs (m, n, k, count) as timed, their measured seconds, why not) for a usable summary.layer:
    its GEMM records' shapes and times; for a file without them (summary only), the priced model's
    layer at the measured TP and micro-batch (step_time.layer_linears, the LM head where the layer
    timed it) at the summary's rate, unless the run timed a smaller problem (--quick), whose shapes
    only its records hold."""
    if layer.get("gemms"):
        gemms = [g[:4] for g in layer["gemms"]]
        return gemms, sum(g[3] * g[4] for g in layer["gemms"]), ""
    shape = layer.get("shape") or {}
    mb = shape.get("micro_batch") or 1
    shrunk, tokens = layer.get("width_divisor") or 1, layer.get("tokens")
    if shrunk > 1 or (tokens is not None and tokens != mb * spec.seq_len):
        return None, 0.0, (f"it timed a smaller problem ({tokens or '?'} tokens, widths / {shrunk}) and holds no "
                           "GEMM records to say which shapes")
    linears = step_time.layer_linears(spec, layer["tp"], mb)
    if "vocab" in shape and not shape["vocab"]:
        linears = linears[:-1]          # the layer op timed no LM head
    gemms = step_time.passes(linears)
    flops = sum(2.0 * m * n * k * c for m, n, k, c in gemms)
    return gemms, flops / (layer["gemm_tflops"] * 1e12), ""


def _layer_matches(layer: dict, spec: ModelSpec, dtype: str) -> tuple[bool, str]:
    """(usable, why not) for a result file's summary.layer against the model being priced: the
    same shape (summary.layer.shape: every width the layer runs, the sequence, the MLP kind and
    experts; the vocabulary where the LM head was measured), whatever either is called; a file
    without the shape (written before it was recorded, when every layer was timed as a dense
    SwiGLU one) by the catalog name alone, and never for a mixture of experts. Then the dtype and
    a known TP."""
    name, shape = layer.get("model"), layer.get("shape")
    if shape is not None:
        if shape.get("unknown"):
            return False, (f"its shape has fields this version cannot compare ({', '.join(shape['unknown'])}): "
                           "a newer costbench wrote it")
        differ = [f"{what} {theirs} vs {ours}" for what, theirs, ours in _shape_pairs(shape, spec) if theirs != ours]
        if differ:
            return False, f"it measured {name or 'another shape'} ({', '.join(differ)})"
    elif spec.moe:
        return False, "it does not record its shape (an older file, whose layer op timed no experts)"
    elif name is None or name.startswith("custom") or spec.name == "custom":
        what = "an unnamed shape" if name is None or name.startswith("custom") else name
        return False, f"it measured {what}, which cannot be matched to {spec.name}"
    elif name != spec.name:
        return False, f"it measured {name}, not {spec.name}"
    if layer.get("dtype") not in (None, dtype):
        return False, f"it measured {layer['dtype']}, not {dtype}"
    if not layer.get("tp"):
        return False, "it does not say at which TP"
    return True, ""


def _shape_pairs(shape: dict, spec: ModelSpec):
    """(field, the measured layer's, the priced model's) for each field the layer's work depends
    on. A mixture of experts (every layer an MoE layer) runs its experts' width, never the dense one."""
    yield from (("hidden", shape["hidden"], spec.hidden), ("heads", shape["heads"], spec.heads),
                ("KV heads", shape["kv_heads"], spec.kv_heads), ("seq", shape["seq"], spec.seq_len),
                ("MLP", shape["mlp"], spec.mlp), ("experts", shape["experts"], spec.experts),
                ("top-k", shape["top_k"], spec.top_k))
    if shape["experts"] and spec.moe:
        yield "expert ffn", shape["moe_ffn"] or shape["ffn"], spec.expert_ffn
    else:
        yield "ffn", shape["ffn"], spec.ffn
    if shape["vocab"] is not None:
        yield "vocab", shape["vocab"], spec.vocab


@dataclasses.dataclass(frozen=True)
class Search:
    """The step model over the feasible layouts of one model on one cluster."""

    layouts: parallelism.Layouts
    parts: dict            # part -> seconds per step, over layouts
    fits: np.ndarray       # bool over layouts
    gpu_bytes: np.ndarray
    best: int | None       # index of the fastest fitting layout (seconds per token), None if none fits


def _chosen_text(chosen: str, given: dict) -> str:
    """'given', 'searched', or 'searched around --tp 8 --pp 16' when some degrees were given."""
    if chosen == "given":
        return "given"
    if not given:
        return "searched"
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in given.items())
    return f"searched around {flags}"


def _recomputed(spec: ModelSpec, lay, usable, recompute: str | None, n_layers: int | None):
    """Layers per stage each full-recompute layout recomputes (0 for the others): --recompute-layers
    N, N of each stage's (all of a stage holding fewer, as the search may try shallower pipelines);
    else --recompute full, every layer of the stage; else, searched, only as many as memory needs."""
    per_stage = parallelism.stage_layers(spec.layers, lay.pp)[0]
    full = lay.recompute == memory.FULL
    if n_layers is not None:
        return np.where(full, np.minimum(n_layers, per_stage), 0).astype(int)
    if recompute == "full":
        return np.where(full, per_stage, 0).astype(int)
    return memory.fit_recompute(spec, lay, usable)


def search_layouts(spec: ModelSpec, hw: GpuSpec, gpus: int, rates, lin_rates=None, batch: int | None = None,
                   recipe: dict | None = None, goodput: float | None = None, **given) -> Search:
    """Every feasible layout on at most `gpus` GPUs (parallelism.candidates, `given` fixing any of
    tp, pp, micro_batch, global_batch, recompute, vpp, ep, cp), its memory and step time; the fastest in
    wall-clock time per token that fits: step seconds / (batch x goodput of the GPUs it runs on),
    `goodput` if given, else training_time.goodput (fewer GPUs, fewer interruptions)."""
    n_layers = given.pop("recompute_layers", None)
    lay = parallelism.candidates(spec, gpus, batch or training_time.default_batch(spec.seq_len), **given)
    usable = memory.usable_bytes(hw.memory_gb)
    lay = dataclasses.replace(lay, recompute_layers=_recomputed(spec, lay, usable, given.get("recompute"), n_layers))
    need = memory.gpu_bytes(spec, lay)
    fits = need <= usable
    parts = step_time.step_parts(spec, lay, rates, lin_rates, **(recipe or {}))
    good = training_time.run_goodput(lay.gpus_used, goodput)
    per_token = np.where(fits, parts["seconds"] / (lay.global_batch * good), np.inf)
    best = int(np.argmin(per_token)) if fits.any() else None
    return Search(lay, parts, fits, need, best)


MAX_SEARCHED_GPUS = 2**20   # the memory search's power-of-two sizes end here; a larger --gpus is tried as given


def min_gpus_that_fit(spec: ModelSpec, hw: GpuSpec, batch: int | None = None, **given) -> int | None:
    """Smallest power-of-two cluster (1 .. 2^20; times TP*PP*CP when given) with a layout that fits memory; None if none."""
    unit = given.get("tp", 1) * given.get("pp", 1) * given.get("cp", 1)
    top = int(math.log2(MAX_SEARCHED_GPUS)) + 1
    sizes = sorted({2**k for k in range(top)} | {unit * 2**k for k in range(top)})
    return _first_that_fits(spec, hw, sizes, batch, given)


def _first_that_fits(spec, hw, sizes, batch, given) -> int | None:
    """The first of `sizes` (ascending) with a layout that fits memory; None if none."""
    default_batch = batch or training_time.default_batch(spec.seq_len)
    # every GPU holds at least its share of the replicated 6 bytes per parameter: fewer never fit
    floor = spec.params * memory.REPLICATED_BYTES_PER_PARAM / memory.usable_bytes(hw.memory_gb)
    given = dict(given)
    n_layers = given.pop("recompute_layers", None)
    for size in (s for s in sizes if s >= floor):
        try:
            lay = parallelism.candidates(spec, size, default_batch, **given)
        except InputError:
            continue
        # the fewest bytes each layout can need: every layer recomputed, unless --recompute-layers caps it
        layers = None if n_layers is None else _recomputed(spec, lay, None, "full", n_layers)
        if (memory.gpu_bytes(spec, lay, layers) <= memory.usable_bytes(hw.memory_gb)).any():
            return size
    return None


def fewest_gpus_that_fit(spec: ModelSpec, hw: GpuSpec, upto: int, **given) -> int:
    """The fewest GPUs, any count up to `upto` (a size known to fit: min_gpus_that_fit), with a layout
    that fits memory: for messages only (min_gpus_that_fit, powers of two, is what the rest uses).
    Fitting is monotone in the count (the layouts of n GPUs are among those of n + 1: TP*CP*PP*DP <= GPUs),
    so a bisection finds it in log2(upto) layout checks, not one per count."""
    lo, hi = 1, upto                    # the answer lies in [lo, hi]; hi fits
    while lo < hi:
        mid = (lo + hi) // 2
        if _first_that_fits(spec, hw, [mid], None, given) is None:
            lo = mid + 1
        else:
            hi = mid
    return hi


def catalog_gpus_label(spec: ModelSpec) -> str:
    """Where a catalog model's GPU count comes from: "published", or, where models.csv's source says the
    count was assumed (Llama 2 70B's 2,048, Llama 3 70B's 16,384), that it is an assumption."""
    return "assumed: models.csv, not published" if "assumed" in (spec.source or "") else "published"


def default_gpus(spec: ModelSpec, gpu: GpuSpec, need: int, hours_at) -> tuple[int, str]:
    """(GPU count, why) for a run given no --gpus: the published count for catalog models trained
    on this GPU type; else the smallest power of two (at least one node) that holds the model and
    trains within DEFAULT_TARGET_DAYS, capped at MAX_DEFAULT_GPUS (but never below what memory
    needs). `hours_at(size)` -> GPU-hours, NaN where no layout fits."""
    if spec.published_gpus and (spec.published_hardware or "") == gpu.name:
        return max(spec.published_gpus, need), catalog_gpus_label(spec)
    days_rule = f"default: smallest power of two within {training_time.DEFAULT_TARGET_DAYS} days"
    sizes = [2**k for k in range(3, int(math.log2(training_time.MAX_DEFAULT_GPUS)) + 1) if 2**k >= need]
    if not sizes:
        return need, "default: the memory minimum"
    feasible = []
    for size in sizes:
        hours = hours_at(size)
        if math.isfinite(hours):
            feasible.append(size)
            if hours / size / 24 <= training_time.DEFAULT_TARGET_DAYS:
                return size, days_rule
    if not feasible:
        return need, "default: the memory minimum"
    return feasible[-1], (f"default: the {training_time.MAX_DEFAULT_GPUS:,}-GPU cap; "
                          f"none finishes within {training_time.DEFAULT_TARGET_DAYS} days")


def plan_training(model=DEFAULT_MODEL, gpu: str | GpuSpec = DEFAULT_GPU, gpus: int | None = None,
                  tokens: float | None = None, network: str | None = None,
                  throughput: Throughput | None = None, mfu: float | None = None,
                  efficiency: float | None = None, goodput: float | None = None,
                  tp: int | None = None, pp: int | None = None, micro_batch: int | None = None,
                  global_batch: int | None = None, recompute: str | None = None, vpp: int | None = None,
                  ep: int | None = None, cp: int | None = None, dtype: str = "bf16", gpu_hours: float | None = None,
                  recipe: dict | None = None, recompute_layers: int | None = None) -> TrainingPlan:
    """The time model for one scenario. Keywords (all optional; the CLI flag in brackets):

    model        catalog name or ModelSpec [--model, or --params/--layers/...]
    gpu          catalog GPU name, GpuSpec, or "cpu" with a CPU `throughput` [--gpu]
    gpus         cluster size; default: published (catalog model on its GPU), else default_gpus() [--gpus]
    tokens       training tokens, replacing the model's [--tokens]
    network      inter-node fabric, networks.csv [--network]
    throughput   measured rates from a result file (Throughput.from_result) [--results]
    tp, pp, micro_batch, global_batch (sequences), recompute ("none"|"selective"|"full"), vpp
                 (virtual pipeline stages), ep (expert parallelism, MoE models), cp (context
                 parallelism), recompute_layers (with recompute "full": layers per pipeline stage
                 recomputed; default all of them): fix that
                 part of the layout; the rest is searched [--tp ... --cp, --vpp, --recompute-layers]
    dtype        "bf16" or "fp8" (fp8: the linear layers' GEMMs only) [--dtype]
    efficiency   fraction of MAMF a training GEMM sustains (rates.GEMM_SUSTAINED_FRACTION) [--efficiency]
    goodput      productive share of wall-clock time (default: training_time.goodput) [--goodput]
    mfu          skip the step model: achieved = peak x mfu over whole steps [--mfu]
    gpu_hours    skip all time modelling: price this figure [--gpu-hours]
    recipe       step_time.step_parts options for older software (flash_attention, sequence_parallel, overlap_dp,
                 distributed_optimizer);
                 default today's Megatron recipe (no CLI flag: scripts/calibration.py uses it for 2021 runs)

    Each is independent of the others, so a what-if varies one keyword and keeps the rest.
    """
    _check_fraction("mfu", mfu)
    _check_fraction("efficiency", efficiency)
    _check_fraction("goodput", goodput)
    # An override that another replaces would be dropped without a word: say which one wins instead.
    overridden = [f for f, v in (("--mfu", mfu), ("--efficiency", efficiency), ("--goodput", goodput)) if v is not None]
    if gpu_hours is not None and overridden:
        raise InputError(f"--gpu-hours and {', '.join(overridden)}: --gpu-hours prices that figure as it is, so "
                         f"{' and '.join(overridden)} would change nothing; give one or the other")
    if mfu is not None and efficiency is not None:
        raise InputError("--mfu and --efficiency: --mfu replaces the step model whose GEMM rate --efficiency sets; "
                         "give one or the other")
    if dtype not in DTYPES:
        from cost_models.errors import unknown_name
        raise unknown_name("dtype", dtype, DTYPES)
    skip = "--gpu-hours" if gpu_hours is not None else "--mfu" if mfu is not None else None
    layout_flags = dict(tp=tp, pp=pp, micro_batch=micro_batch, global_batch=global_batch, recompute=recompute,
                        recompute_layers=recompute_layers, vpp=vpp, ep=ep, cp=cp, network=network)
    unused = [f"--{k.replace('_', '-')}" for k, v in layout_flags.items() if v is not None]
    if skip and unused:   # they set the step model's layout and links, which skip replaces: silently ignored before
        raise InputError(f"{skip} and {', '.join(unused)}: {skip} skips the step model, and {', '.join(unused)} "
                         f"only shape it, so they would change nothing; give one or the other")
    spec = _resolve_model(model, tokens)
    hw = _device(gpu, throughput)
    if skip and throughput is not None and hw.name != CPU:
        raise InputError(f"{skip} and --results {throughput.source}: {skip} skips the step model, the only user of "
                         f"a GPU file's measured rates, so the file would change nothing; give one or the other")
    if hw.name == CPU and dtype == "fp8":
        raise InputError(f"--dtype fp8: {throughput.source} is a CPU run, and a CPU has no fp8 GEMM rate (costbench "
                         f"run measures fp8 only on NVIDIA GPUs of compute capability 8.9 or newer); price the CPU "
                         f"at --dtype bf16 or fp16")
    if hw.name == CPU:
        _check_cpu_rates(throughput, spec, dtype)
    net = find_network(network or DEFAULT_NETWORK)
    if net.scope != "inter-node":   # --network is the fabric between nodes; NVLink already carries what stays in one
        from cost_models.networks import networks
        fabrics = ", ".join(n.name for n in networks() if n.scope == "inter-node")
        raise InputError(f"--network {net.name}: an {net.scope} link, not a fabric between nodes (the step model "
                         f"runs the traffic inside a node over the GPU's own NVLink); give one of {fabrics}")
    peak = hw.peak(dtype)
    if dtype == "fp8":
        # MFU of an fp8 run is quoted against the bf16 peak, so that it reads on the scale of bf16 runs;
        # with fp8 GEMMs at up to twice that rate it can pass 100% (assumptions.mfu_basis says so)
        peak = hw.peak("bf16")
    # the input embedding does no multiply-adds (flops.py); a shape estimated from --params alone
    # (N = 12*L*h^2) holds no embedding to leave out, and a tied one is the LM head's weight, which does
    embedding = 0 if spec.shape_estimated or spec.tied_embeddings else spec.vocab * spec.hidden
    total_flops = float(flops_mod.training_flops(spec.active_params, spec.tokens, spec.layers, spec.hidden,
                                                 spec.seq_len, embedding=embedding))
    given = {k: v for k, v in layout_flags.items() if v is not None and k != "network"}
    parallelism.check_given(spec, tp, pp, recompute, ep, micro_batch, global_batch, cp)
    parallelism.check_recompute_layers(spec, recompute, recompute_layers, pp)
    parallelism.check_vpp(spec, vpp, pp)
    default_batch = training_time.default_batch(spec.seq_len)
    if micro_batch and not global_batch and default_batch % micro_batch:   # was "no layout fits ... memory"
        raise InputError(f"--micro-batch {micro_batch}: the default global batch of {default_batch:,} sequences "
                         f"(~16M tokens) is not a whole number of micro-batches of {micro_batch}; give --global-batch")
    parallelism.check_batch(spec, ep, micro_batch, global_batch or default_batch, global_batch is not None)
    if gpus:
        parallelism.check_cluster(gpus, tp, pp, ep, cp)
    need = min_gpus_that_fit(spec, hw, **given)
    if need is None and gpus and gpus > MAX_SEARCHED_GPUS:   # beyond the power-of-two sizes: the one asked
        need = _first_that_fits(spec, hw, [gpus], None, given)
    usable = memory.usable_bytes(hw.memory_gb) / 2**30
    assumptions = {
        "flops": "model FLOPs 6*N*D" + (f" with N less the input embedding ({embedding / 1e9:.3g}B, a lookup)"
                                        if embedding else " with the tied embedding counted once, as the LM head"
                                        if spec.tied_embeddings else "") + " + causal attention 6*L*s*h per token (no recompute counted)",
        "dtype": dtype, "peak_tflops": peak, "min_gpus_for_memory": need,
        **({"mfu_basis": f"the bf16 peak ({peak:g} TFLOP/s), not the fp8 peak ({hw.peak('fp8'):g}): an fp8 run's "
                         "MFU reads on the bf16 scale and may pass 100%"} if dtype == "fp8" else {}),
        "memory": f"Megatron distributed optimizer (6 B/param + 12 B/param over DP x CP) + activations "
                  f"(Korthikanti 2022), {memory.USABLE_FRACTION:.0%} of {hw.memory_gb:g} GiB usable",
    }
    if spec.moe:
        assumptions["moe"] = (f"{spec.experts} experts, top-{spec.top_k}, expert MLP {spec.expert_ffn}, every layer; "
                              f"Megatron alltoall dispatcher, dropless and balanced (no capacity factor or load "
                              f"imbalance), expert-tensor-parallel = TP, all-to-all not overlapped")
    if spec.tokens_placeholder:
        assumptions["tokens"] = (f"placeholder: {spec.name}'s training tokens are not published; the catalog's "
                                 f"{spec.tokens / 1e12:g}T tokens is a unit, so GPU-hours, days and cost are per that "
                                 f"many tokens, not its real budget (give --tokens)")
    if spec.shape_estimated:
        assumptions["shape"] = (f"estimated from params: {spec.layers} layers, hidden {spec.hidden}, "
                                f"{spec.heads} heads, ffn {spec.ffn}, seq {spec.seq_len}")

    skipped = mfu is not None or gpu_hours is not None   # the step-model path says why itself, below
    if skipped and gpus and need and gpus < need:        # --mfu and --gpu-hours skip the step model, not memory
        fewest = fewest_gpus_that_fit(spec, hw, need, **given)
        if gpus < fewest:
            raise NoLayoutError(f"--gpus {gpus}: {spec.name} does not fit in the memory of {gpus:,} {hw.name} GPUs "
                                f"({usable:.0f} GiB usable each); the fewest it fits is {fewest:,}")
    if gpu_hours is not None:
        count = gpus or spec.published_gpus
        days = gpu_hours / count / 24 if count else float("nan")
        implied = total_flops / (gpu_hours * 3600 * peak * 1e12)
        top = hw.peak(dtype)     # fp8: its own peak bounds what is possible (the MFU is on the bf16 scale)
        at_peak = total_flops / (3600 * top * 1e12)    # GPU-hours at 100% of that peak
        if gpu_hours < at_peak:   # faster than the peak: not a training run here
            raise CannotRun(f"--gpu-hours {gpu_hours:,.0f}: {spec.name}'s {total_flops:.3g} FLOPs in that many {hw.name} "
                             f"GPU-hours is {at_peak / gpu_hours:.0%} of the {dtype} peak ({top:g} TFLOP/s); at the "
                             f"peak it takes {at_peak:,.0f} GPU-hours")
        assumptions.update({"gpu_hours_from": "given (--gpu-hours); time model skipped",
                            "gpus_from": "--gpus" if gpus else catalog_gpus_label(spec) if count else "unknown",
                            "implied_mfu_end_to_end": round(implied, 4)})
        return TrainingPlan(spec, hw, count or 0, total_flops, need or 0, None, None, float(gpu_hours), days,
                            assumptions)
    if need is None:
        upto = f"{gpus:,}" if gpus and gpus > MAX_SEARCHED_GPUS else "2^20"
        raise NoLayoutError(f"{spec.name}: no layout fits {hw.name} memory ({hw.memory_gb:g} GiB) on any cluster up to {upto} GPUs"
                         + (f" with {', '.join(f'--{k} {v}'.replace('_', '-') for k, v in given.items())}" if given else ""))

    if mfu is not None:
        achieved = peak * mfu

        def at(size):   # (GPU-hours, days, goodput): the whole run as one step of total FLOPs / rate
            return tuple(float(x) for x in training_time.gpu_hours(total_flops / (achieved * 1e12 * size), 1, 1,
                                                                    size, goodput))
        count, count_from = (gpus, "--gpus") if gpus else default_gpus(spec, hw, need, lambda size: at(size)[0])
        hours, days, good = at(count)
        basis = "bf16" if dtype == "fp8" else dtype     # an fp8 MFU is on the bf16 scale (peak above)
        assumptions.update({"achieved_tflops_from": f"--mfu {mfu:g} x {basis} peak {peak:g}"
                            + (" (fp8 runs' MFU is quoted on the bf16 scale)" if dtype == "fp8" else "")
                            + "; step model skipped",
                            "gpus_from": count_from, "goodput": round(good, 4)})
        return TrainingPlan(spec, hw, int(count), total_flops, need, achieved, mfu, hours, days, assumptions)

    rates, lin_rates, provenance = device_rates(hw, net, dtype, throughput, spec, efficiency)
    if not spec.moe:   # a dense model has no all-to-all to source
        rates = dataclasses.replace(rates, origin={k: v for k, v in rates.origin.items() if k != "ep_comm"})
        provenance = {k: [p for p in v if p != "ep_comm"] for k, v in provenance.items()}

    @functools.cache     # default_gpus's sizes, then the chosen one again: one search each
    def run(size):
        try:
            found = search_layouts(spec, hw, size, rates, lin_rates, recipe=recipe, goodput=goodput, **given)
        except InputError:
            return None
        return found if found.best is not None else None

    def hours_at(size):
        found = run(size)
        if found is None:
            return float("nan")
        i = found.best
        good = training_time.run_goodput(found.layouts.gpus_used[i], goodput)
        return float(training_time.gpu_hours(spec.tokens, found.layouts.global_batch[i] * spec.seq_len,
                                             found.parts["seconds"][i], size, good)[0])

    if gpus is not None:
        count, count_from = gpus, "--gpus"
    else:
        count, count_from = default_gpus(spec, hw, need, hours_at)
    found = run(count)
    if found is None:
        try:
            lay = search_layouts(spec, hw, count, rates, lin_rates, recipe=recipe, goodput=goodput, **given)
            least = float(np.min(lay.gpu_bytes)) / 2**30
            digits = 0 if f"{least:.0f}" != f"{usable:.0f}" else 1 if f"{least:.1f}" != f"{usable:.1f}" else 2
            # enough digits that the two differ ("72 GiB per GPU, 72 GiB usable" read as a contradiction)
            why = f"the smallest layout needs {least:.{digits}f} GiB per GPU, {usable:.{digits}f} GiB usable"
        except InputError as e:
            why = str(e)
        fewest = fewest_gpus_that_fit(spec, hw, need, **given) if count < need else need
        raise NoLayoutError(f"--gpus {count}: no layout of {spec.name} fits {count:,} {hw.name} GPUs ({why}); "
                            f"{'the fewest it fits is' if count < fewest else 'it fits on'} {fewest:,} {hw.name} GPUs")
    i = found.best
    used = int(found.layouts.gpus_used[i])
    if gpus is None and used < count and run(used) is not None:
        # A default size is ours to choose: billing GPUs the batch cannot use buys no time (a global
        # batch of 1 on the 16,384 default ran 24 and billed 680x the GPU-hours). Every layout that
        # fits on `used` GPUs also fits on `count`, so the best there is this one: same days, fewer GPUs.
        count, count_from, found = used, f"{count_from}; cut to the {used:,} GPUs its fastest layout uses", run(used)
        i = found.best
    # "given" only when every degree but DP (which fills the cluster) was: a layout with --vpp or the
    # recompute's layer count left to the search is a searched one (a README example read "given"
    # while the search picked its interleaving)
    pinned = {"tp", "pp", "vpp", "micro_batch", "global_batch", "recompute"} | ({"ep"} if spec.moe else set())
    layout = found.layouts.pick(i, "given" if pinned <= set(given) else "search")
    if recipe:      # older software (scripts/calibration.py): say which, and what it does not change
        assumptions["recipe"] = ", ".join(f"{k}={v}" for k, v in sorted(recipe.items()))
        if recipe.get("sequence_parallel") is False:
            layout["sequence_parallel"] = False
            assumptions["recipe"] += "; memory still estimated with sequence-parallel activation sharding"
        if recipe.get("flash_attention") is False:
            # Korthikanti et al.'s 5*a*s^2*b bytes a layer of stored scores are not in gpu_bytes: a memory
            # estimate only (the calibration's 2021 runs fit either way), so say it rather than hide it
            assumptions["recipe"] += "; memory leaves out the unfused attention's stored s x s scores"
        if recipe.get("distributed_optimizer") is False:
            # 16 bytes a parameter unsharded, not 6 + 12/DP: the 2021 layouts fit either way (at most
            # ~2.4B parameters a GPU, 39 GB of 80)
            assumptions["recipe"] += "; memory still estimated with the distributed optimizer's sharding"
    if rates.gemm_scale != 1:   # say that the answer rests on the measured layer
        assumptions["layer_gemm_rate"] = (
            f"used: every layout's roofline GEMM time x {rates.gemm_scale:.3g}, the measured layer's distance from it"
            + ("; the fp8 linear layers at the fp8 roofline" if lin_rates is not None else ""))
    parts = {p: float(found.parts[p][i]) for p in step_time.PARTS}
    if layout["cp"] > 1:   # the K/V all-gathers ride the TP link inside a node, else the fabric
        link = "tp_comm" if layout["tp"] * layout["cp"] <= GPUS_PER_NODE else "dp_comm"
        kind = "measured" if link in provenance["measured"] else "catalog"
        rates = dataclasses.replace(rates, origin={**rates.origin, "cp_comm": f"{kind}: K/V all-gathers over CP "
                                                   f"{layout['cp']} at the {link} rate ({rates.origin[link]})"})
        provenance = {**provenance, kind: [*provenance[kind], "cp_comm"]}
    # The pipeline sends ride the link between stages: the fabric once the pipeline spans nodes
    # (step_time.step_parts); the bubble and the overlap slowdown follow from the other parts.
    if layout["pp"] > 1:
        link = "dp_comm" if layout["gpus_used"] > GPUS_PER_NODE else "tp_comm"
        kind = "measured" if link in provenance["measured"] else "catalog"
        rates = dataclasses.replace(rates, origin={**rates.origin, "pp_comm": f"{kind}: activation sends between "
                                                   f"stages at the {link} rate ({rates.origin[link]})"})
        provenance = {**provenance, kind: [*provenance[kind], "pp_comm"]}
    seconds = float(found.parts["seconds"][i])
    batch_tokens = layout["global_batch"] * spec.seq_len
    if spec.tokens < batch_tokens:   # less than one step: the time would be a fraction of a step
        raise InputError(f"--tokens {spec.tokens:,.0f}: fewer than one global batch ({layout['global_batch']:,} "
                         f"sequences of {spec.seq_len:,} = {batch_tokens:,} tokens, one {seconds:.3g} s step); "
                         "train on more tokens or give a smaller --global-batch")
    used = layout["gpus_used"]
    good = training_time.run_goodput(used, goodput)    # hours below are billed on all `count` GPUs
    hours, days, good = (float(x) for x in training_time.gpu_hours(spec.tokens, batch_tokens, seconds, count, good))
    achieved = total_flops / spec.tokens * batch_tokens / seconds / used / 1e12
    assumptions.update({
        "gpus_from": count_from,
        "layout": (f"{_chosen_text(layout['chosen'], given)}: fastest in wall-clock time per token of "
                   f"{int(found.fits.sum()):,} layouts that fit in memory, of {len(found.layouts):,} that divide the cluster"),
        "gpu_memory_gib": round(float(found.gpu_bytes[i]) / 2**30, 1),
        "rates": rates.origin,
        "measured_parts": provenance["measured"], "catalog_parts": provenance["catalog"],
        "derived_parts": ["pp_bubble", "dp_overlap"],    # from the compute and DP parts above, no rate of their own
        "network": net.name,
        # share of the data-parallel traffic hidden behind compute (1: all of it; also 1 without DP traffic)
        "overlap": round(1 - parts["dp_comm"] / float(found.parts["dp_comm_total"][i]), 4)
        if found.parts["dp_comm_total"][i] > 0 else 1.0,
        "overlap_slowdown": (f"the hidden DP traffic slows the compute beside it by "
                             f"{step_time.OVERLAP_COMPUTE_SLOWDOWN:.1%} (Lee et al. 2025, arXiv 2507.03114): the part dp_overlap"
                             if (recipe or {}).get("overlap_dp", True) else
                             "none: the recipe runs the DP collectives after the backward (overlap_dp=False)"),
        "global_batch_tokens": batch_tokens,
        **({"idle_gpus": f"{count - used:,} of the {count:,} GPUs idle (billed): no faster layout uses them "
                         f"at a global batch of {layout['global_batch']:,} sequences"} if used < count else {}),
        "goodput": round(good, 4),
        "goodput_from": "given (--goodput)" if goodput is not None else
        f"= 1 / (1 + {training_time.FAILURES_PER_GPU_HOUR * training_time.HOURS_LOST_PER_FAILURE * training_time.LLAMA3_GPUS:.3f}"
        f" x {used:,} / {training_time.LLAMA3_GPUS:,}): Llama 3's interruption rate (466 in 54 days at 16,384 GPUs, "
        f"90% effective time) on the {used:,} GPUs the layout runs",
    })
    return TrainingPlan(spec, hw, int(count), total_flops, need, achieved, achieved / peak, hours, days,
                        assumptions, parallelism=layout, step={"seconds": seconds, "parts": parts})


def price_rows(plan: TrainingPlan, prices: list[Price], ref_date=None,
               stale_months: float = DEFAULT_STALE_MONTHS, fabric_plans: dict | None = None,
               instances: list[Price] | None = None) -> list[dict]:
    """One row per price for the plan's GPU: cost = GPU-hours x $/GPU-hour; billed_usd = the larger
    of cost and the term's commitment; rows that sell a cluster of the plan's size first, then the
    smallest bill first.

    Each row also carries its region, its age in days at `ref_date` (default: prices.today())
    and whether it is stale (older than `stale_months`), and for term kinds (reserved-1y/3y,
    capacity-block) commitment_usd: what the term costs whatever the run uses (prices.commitment_usd).
    A spot row carries a note: interruptions are not modelled (goodput unchanged). `offer` marks a
    row whose offer is not a cluster of the plan's size (Price.offer; offer_note says why it matters).

    fabric_plans: network name -> the plan timed on that fabric (--network own; row_fabrics names
    them): a row whose instance is sold on one of them is billed that plan's hours and days, and
    `network` says which; the rest are `plan`'s. Every row carries its gpu_hours and wall_clock_days.
    instances: the prices to find a reserved row's on-demand instance in (default `prices`): all
    that were loaded, where `prices` were filtered to one pricing kind.
    """
    ref = ref_date or today()
    rows = []
    on_demand = _instances_once(prices, instances)
    for p in prices:
        if p.gpu != plan.gpu.name:
            continue
        own = _sold_on(p, on_demand)
        timed = (fabric_plans or {}).get(own[1]) if own else None
        row_plan = timed or plan
        low, high = p.range_or_none()
        cost = row_plan.gpu_hours * p.usd_per_gpu_hour
        rows.append({
            "provider": p.provider, "gpu": p.gpu, "pricing": p.pricing, "region": p.region,
            "usd_per_gpu_hour": p.usd_per_gpu_hour, "cost_usd": cost,
            "cost_usd_low": row_plan.gpu_hours * low if low is not None else None,
            "cost_usd_high": row_plan.gpu_hours * high if high is not None else None,
            "commitment_usd": commitment_usd(p, plan.gpus, row_plan.wall_clock_days),
            "as_of": p.as_of, "age_days": age_days(p, ref), "stale": is_stale(p, ref, stale_months),
            "source": p.source, "note": SPOT_NOTE if p.pricing == "spot" else None,
            "instance_gpus": p.instance_gpus, "marketplace": p.marketplace, "offer": p.offer(plan.gpus, GPUS_PER_NODE),
            "network": row_plan.assumptions.get("network"), "gpu_hours": row_plan.gpu_hours,
            "wall_clock_days": row_plan.wall_clock_days,
            **_own_fabric(own, row_plan),
        })
        # what the run is billed: its hours at the rate, or a term's commitment where that is more
        rows[-1]["billed_usd"] = max(cost, rows[-1]["commitment_usd"] or 0.0)
    # offers that sell the cluster first, then by the bill: a reserved-3y row committing $477M once
    # ranked 4th on its run-hours, and a 1-GPU marketplace listing topped a 16,384-GPU table
    return sorted(rows, key=lambda r: (r["offer"] is not None, r["billed_usd"], r["provider"], r["pricing"],
                                       r["region"]))


def _instances_once(prices: list[Price], instances: list[Price] | None) -> dict:
    """_on_demand_instances once per table, and only where a row may need it (a reserved row names
    no instance)."""
    return _on_demand_instances(instances or prices) if any(p.pricing != "on-demand" for p in prices) else {}


def _on_demand_instances(prices: list[Price]) -> dict:
    """(provider, gpu, region) -> (instance, network) of the on-demand rows whose source names an
    instance: the catalog's, replaced by the prices in use (a --prices file's). A reserved row's
    source is a discount off its on-demand row and names none."""
    from cost_models.networks import instance_fabric
    from cost_models.prices import catalog_prices

    return {(q.provider, q.gpu, q.region): found for q in [*catalog_prices(), *prices]
            if q.pricing == "on-demand" and (found := instance_fabric(q.source, q.gpu))}


def _sold_on(p: Price, on_demand: dict) -> tuple[str, str] | None:
    """(instance, network) the row's instance is sold with: its source's (networks.instance_fabric,
    an instance of the row's GPU), else its on-demand row's; None where costbench does not know it."""
    from cost_models.networks import instance_fabric

    return instance_fabric(p.source, p.gpu) or on_demand.get((p.provider, p.gpu, p.region))


def cheapest_billed(rows: list[dict], prices: list[Price], gpus: int, node_gpus: int = GPUS_PER_NODE) -> list[dict]:
    """price_rows' rows cut to one per provider x GPU x pricing kind, as prices.cheapest_regions
    chooses (offers closer to a cluster of `gpus` first, ties by region) but by the bill rather than
    the rate: with --network own, a region selling another instance on a faster fabric can cost
    less at a higher rate (GCP's A3 Mega against A3 High). Keeps the rows' order."""
    gaps = {(p.provider, p.gpu, p.pricing, p.region): p.cluster_gaps(gpus, node_gpus) for p in prices}
    best = {}
    for r in sorted(rows, key=lambda r: (*gaps.get((r["provider"], r["gpu"], r["pricing"], r["region"]),
                                                   (False, False)), r["billed_usd"], r["region"])):
        best.setdefault((r["provider"], r["gpu"], r["pricing"]), r)
    keep = {id(r) for r in best.values()}
    return [r for r in rows if id(r) in keep]


def _own_fabric(found: tuple[str, str] | None, plan: TrainingPlan) -> dict:
    """fabric: the network the row's instance is sold with (_sold_on), fabric_instance: that
    instance; both None where costbench does not know it or it is the one the row was timed on.
    Where set, the row's GPU-hours would differ: it was timed on another fabric."""
    timed = plan.assumptions.get("network")
    instance, net = found if found and timed and found[1] != timed else (None, None)
    return {"fabric": net, "fabric_instance": instance}


def row_fabrics(plan: TrainingPlan, prices: list[Price], instances: list[Price] | None = None) -> list[str]:
    """The network each of the plan's GPU's price rows runs on when each is timed on its own
    (--network own): its instance's fabric (_sold_on), else the one the plan was timed on; each
    once, in the order of the rows. Empty without the step model (--mfu, --gpu-hours: no fabric is
    modelled). instances: as price_rows'."""
    timed = plan.assumptions.get("network")
    if timed is None:
        return []
    on_demand = _instances_once(prices, instances)
    found = (_sold_on(p, on_demand) for p in prices if p.gpu == plan.gpu.name)
    return list(dict.fromkeys(f[1] if f else timed for f in found))


def offer_note(plan: TrainingPlan, networks: list[str] | None = None) -> str:
    """Why a row with an `offer` mark is priced as it is: the time side is a cluster of the plan's size
    in NVLink nodes on a fabric (`networks`: the offer rows', where --network own timed them on
    several), which small instances or a marketplace do not sell."""
    fabric = " or ".join(networks or []) or plan.assumptions.get("network", "the assumed fabric")
    return (f"rows marked in 'offer' sell instances of fewer than {GPUS_PER_NODE} GPUs or a marketplace host's GPUs: "
            f"the time is for {plan.gpus:,} GPUs in {GPUS_PER_NODE}-GPU NVLink nodes on {fabric}, which they do not "
            f"sell; their cost is those GPU-hours at their rate, not a quote for such a cluster")


def estimate(model="llama3-70b", gpu: str = DEFAULT_GPU, pricing: str = "on-demand",
             providers: list[str] | None = None, prices: list[Price] | str | None = None, **plan_kwargs):
    """pandas DataFrame, one row per provider x GPU x pricing kind (as price_rows orders them: offers
    that sell the cluster first, then by the bill), with the plan's
    gpu_hours and wall_clock_days as columns and the TrainingPlan in df.attrs["plan"]."""
    import pandas as pd

    plan = plan_training(model, gpu, **plan_kwargs)
    table = prices if isinstance(prices, list) else load_prices(prices)
    rows = price_rows(plan, select(table, plan.gpu.name, pricing, providers))
    df = pd.DataFrame(rows, columns=["provider", "gpu", "pricing", "region", "usd_per_gpu_hour", "cost_usd",
                                     "cost_usd_low", "cost_usd_high", "commitment_usd", "billed_usd", "as_of",
                                     "age_days", "stale", "source", "note", "instance_gpus", "marketplace", "offer"])
    df["model"] = plan.model.name
    df["gpus"] = plan.gpus
    df["gpu_hours"] = plan.gpu_hours
    df["wall_clock_days"] = plan.wall_clock_days
    df.attrs["plan"] = plan
    return df


def estimate_grid(models, gpus, cluster_sizes, prices: list[Price] | None = None, pricing: str = "on-demand",
                  network: str | None = None, efficiency: float | None = None, dtype: str = "bf16"):
    """Every model x price row (provider x GPU) x cluster size: the step model (layout search
    vectorised over layouts) per model x GPU x size, joined with the price rows.

    Same defaults as plan_training (catalog rates, no result file). Scenarios whose cluster cannot
    hold the model get NaN hours and cost. Returns a DataFrame with columns model, gpu, provider,
    pricing, gpus, gpu_hours, wall_clock_days, usd_per_gpu_hour, cost_usd.
    """
    import pandas as pd

    specs = [m if isinstance(m, ModelSpec) else find_model(m) for m in models]
    hws = [find_gpu(g) for g in gpus]
    _check_fraction("efficiency", efficiency)
    table = select(prices if prices is not None else load_prices(), None, pricing)
    table = [p for p in table if p.gpu in {h.name for h in hws}]
    sizes = [int(c) for c in cluster_sizes]
    rows = []
    for spec in specs:
        for hw in hws:
            for size in sizes:
                try:
                    hours = plan_training(spec, hw, gpus=size, network=network, efficiency=efficiency,
                                          dtype=dtype).gpu_hours
                except InputError:
                    hours = float("nan")
                rows += [{"model": spec.name, "gpu": p.gpu, "provider": p.provider, "pricing": p.pricing,
                          "gpus": size, "gpu_hours": hours, "wall_clock_days": hours / size / 24,
                          "usd_per_gpu_hour": p.usd_per_gpu_hour, "cost_usd": hours * p.usd_per_gpu_hour}
                         for p in table if p.gpu == hw.name]
    return pd.DataFrame(rows, columns=["model", "gpu", "provider", "pricing", "gpus", "gpu_hours",
                                       "wall_clock_days", "usd_per_gpu_hour", "cost_usd"])
