"""`costbench cost`: what training a model costs, in GPU-hours, days and dollars per provider.

The numbers come from cost_models (plan_training, then price_rows); this module parses flags,
loads a result file through bench.results (cost_models never imports bench) and prints a table,
JSON or CSV. print_cost_table() is what the bare `costbench` job calls after measuring.
"""

import argparse
import sys

from bench.cli import csv_list, fraction, number, positive, positive_int
from bench.cmd_catalog import (FORMATS, add_age_argument, age_text, check_choice, choices_help, emit, usd,
                               warn_stale)
from bench.table import days, footer_text, si, warn
from cost_models.errors import InputError
from cost_models.hardware import TRAINING_DTYPES
from cost_models.prices import DEFAULT_STALE_MONTHS, PRICING_KINDS

PRICING_CHOICES = (*PRICING_KINDS, "all")
PRICING_NOTES = {"spot": "interruptions not modelled: a lower bound",
                 "reserved-3y": "the whole term is paid: see the commitment column",
                 "all": "every kind"}

COLUMNS = [("provider", "provider", ""), ("gpu", "GPU", ""), ("pricing", "pricing", ""),
           ("region", "region", ""), ("usd_per_gpu_hour", "$/GPU-h", ".2f"), ("cost_usd", "cost", usd),
           ("commitment_usd", "term commitment", usd), ("billed_usd", "you pay", usd),
           ("cost_usd_low", "low", usd), ("cost_usd_high", "high", usd), ("as_of", "as of", ""),
           ("_age", "age", ""), ("offer", "offer", "")]
ROW_KEYS = ("provider", "gpu", "pricing", "region", "usd_per_gpu_hour", "cost_usd", "cost_usd_low",
            "cost_usd_high", "commitment_usd", "billed_usd", "as_of", "age_days", "stale", "source", "note", "instance_gpus",
            "marketplace", "offer", "fabric", "fabric_instance", "network")
# a JSON row's own time too: with --network own, rows on other fabrics are billed other hours
JSON_ROW_KEYS = (*ROW_KEYS, "gpu_hours", "wall_clock_days")
# the row's fabric and hours, shown only when the rows differ in them (--network own)
OWN_COLUMNS = [("network", "network", ""), ("gpu_hours", "GPU-h", si)]


def table_columns(rows: list[dict]) -> list:
    """COLUMNS less those no row fills (low/high without a published range, a term's columns without
    a term, offer where every row sells the cluster): the default table was 133 columns wide."""
    optional = {"commitment_usd", "cost_usd_low", "cost_usd_high", "offer"}
    keep = [c for c in COLUMNS if c[0] not in optional or any(r.get(c[0]) for r in rows)]
    keep = [c for c in keep if c[0] != "billed_usd" or any(r.get("commitment_usd") for r in rows)]
    if len({r.get("network") for r in rows}) > 1:   # --network own timed the rows on several fabrics
        at = next(i for i, c in enumerate(keep) if c[0] == "usd_per_gpu_hour")
        keep[at:at] = OWN_COLUMNS[:1]
        keep[at + 2:at + 2] = OWN_COLUMNS[1:]
    return keep


def _figures(x: float) -> str:
    """3 significant figures, written out past 1,000 (a B200's 1,055 TFLOP/s, a CPU's 2,327 s step,
    not 1.06e+03 or 2.33e+03)."""
    return f"{x:,.0f}" if x >= 1000 else f"{x:.3g}"


def overhead(text):
    """--virtualization-overhead: a share of step time in [0, 0.5] (virtualization.MAX_OVERHEAD)."""
    from cost_models.virtualization import check_overhead

    try:
        return check_overhead(number(text))
    except InputError as e:
        raise argparse.ArgumentTypeError(str(e).split(": ", 1)[-1]) from None


def add_arguments(parser, command) -> None:
    what = parser.add_argument_group("model (a catalog name, --params and --tokens, or a shape)")
    what.add_argument("--model", help="catalog model (costbench models); default llama3-70b")
    what.add_argument("--params", type=positive, help="total parameters, e.g. 70B (else derived from the shape)")
    what.add_argument("--active-params", type=positive, help="parameters active per token (mixture of experts)")
    what.add_argument("--tokens", type=positive, help="training tokens, e.g. 15T (overrides the catalog's)")
    for flag, text in (("layers", "transformer layers"), ("hidden", "hidden size"), ("heads", "attention heads"),
                       ("kv-heads", "key/value heads (grouped-query attention)"), ("ffn", "MLP width"),
                       ("vocab", "vocabulary size"), ("seq", "training sequence length (default 8192)")):
        what.add_argument(f"--{flag}", type=positive_int, help=text)
    what.add_argument("--experts", type=positive_int, help="mixture of experts: routed experts per layer (with --top-k)")
    what.add_argument("--top-k", type=positive_int, help="mixture of experts: experts per token (at most --experts)")
    what.add_argument("--moe-ffn", type=positive_int, help="mixture of experts: one expert's MLP width (default --ffn)")
    hw = parser.add_argument_group("cluster")
    hw.add_argument("--gpu", help="GPU type (costbench gpus) or cpu; default H100-SXM, or the --results file's device")
    hw.add_argument("--gpus", type=positive_int, help="cluster size (default: published scale, else sized to ~30 days)")
    hw.add_argument("--network", help="inter-node fabric (costbench networks), or own: each price row timed on the "
                                      "fabric its instance is sold with where costbench knows it, the rest on "
                                      "ib-ndr-400; default ib-ndr-400")
    hw.add_argument("--results", metavar="FILE", help="a costbench result file: its measured rates for its device")
    hw.add_argument("--dtype", default="bf16", help=choices_help(TRAINING_DTYPES, "bf16", {
        "fp16": "2021-era mixed precision: the fp16 peak, memory as bf16",
        "fp8": "speeds the linear layers' GEMMs only; not on a CPU"}))
    lay = parser.add_argument_group("parallel layout (searched for the fastest that fits when not given)")
    lay.add_argument("--tp", type=positive_int, help="tensor-parallel degree (within a node of 8; with sequence parallelism)")
    lay.add_argument("--pp", type=positive_int, help="pipeline-parallel stages (1F1B)")
    lay.add_argument("--micro-batch", type=positive_int, help="sequences per micro-batch")
    lay.add_argument("--global-batch", type=positive_int,
                     help="sequences per step (default: the power of two nearest 16M tokens; kept whatever the "
                          "cluster, which may leave GPUs idle)")
    lay.add_argument("--cp", type=positive_int,
                     help="context-parallel degree: splits each sequence over CP GPUs (2 x CP load-balanced chunks, "
                          "K/V all-gathered per layer); default: searched for sequences above 8K tokens")
    lay.add_argument("--ep", type=positive_int,
                     help="expert-parallel degree (MoE models; divides DP and the experts)")
    lay.add_argument("--recompute", help="none, selective (Megatron's: the core attention re-run in the backward; with FlashAttention it saves no memory) or full; default: searched over none and full (as many layers as memory needs)")
    lay.add_argument("--recompute-layers", type=positive_int,
                     help="with --recompute full: layers of each pipeline stage recomputed (per stage, where Megatron's "
                          "--recompute-num-layers counts per interleaved chunk); default every layer; searched: as many as memory needs")
    lay.add_argument("--vpp", type=positive_int,
                     help="virtual pipeline stages per GPU (interleaved 1F1B; 1: plain 1F1B); default: searched "
                          "over 1, 2, 4, 8. The JSON's parallelism.flags gives a searched layout back as these flags")
    eff = parser.add_argument_group("overrides")
    eff.add_argument("--mfu", type=fraction, help="model FLOPs utilisation over whole steps; skips the step model")
    eff.add_argument("--efficiency", type=fraction,
                     help="fraction of MAMF a training GEMM sustains (default 0.76, calibrated: cost_models/rates.py; the step model's GEMM rate)")
    eff.add_argument("--goodput", type=fraction, help="productive share of wall-clock time (default: from cluster size)")
    eff.add_argument("--gpu-hours", type=positive, help="skip the time model: price this many GPU-hours")
    eff.add_argument("--virtualization-overhead", type=overhead, default=0.0,
                     help="share of step time lost on a VM, [0, 0.5]: time / (1 - overhead) (default 0: bare metal)")
    money = parser.add_argument_group("prices")
    money.add_argument("--pricing", default="on-demand", help=choices_help(PRICING_CHOICES, "on-demand", PRICING_NOTES))
    money.add_argument("--providers", type=csv_list, help="only these providers, comma-separated")
    money.add_argument("--region", help="price this region only (default: each provider's cheapest region, named)")
    money.add_argument("--prices", metavar="FILE", help="CSV with prices.csv's columns: overrides or adds rows (gpu cpu allowed)")
    add_age_argument(money)
    parser.add_argument("--format", default="table", help=choices_help(FORMATS, "table"))


_SHAPE_FLAGS = {"layers": "layers", "hidden": "hidden", "heads": "heads", "kv_heads": "kv_heads", "ffn": "ffn",
                "vocab": "vocab", "seq": "seq_len"}
_MOE_FLAGS = {"experts": "experts", "top_k": "top_k", "moe_ffn": "moe_ffn"}


def _model(args):
    from cost_models.models import custom_model, find_model, reshaped

    shape = {field: getattr(args, flag) for flag, field in _SHAPE_FLAGS.items()}
    moe = {field: getattr(args, flag) for flag, field in _MOE_FLAGS.items() if getattr(args, flag) is not None}
    if moe and args.model:   # before the pairing rule, which would ask a catalog MoE for what it has
        spec = find_model(args.model)
        has = f" ({spec.name} has {spec.experts} experts, top-{spec.top_k})" if spec.moe else ""
        raise InputError(f"--{'/--'.join(k.replace('_', '-') for k in moe)}: --experts/--top-k/--moe-ffn describe a "
                         f"model by shape (--layers/--hidden or --params), not a catalog model{has}")
    if moe and (args.experts is None) != (args.top_k is None):
        raise InputError("--experts and --top-k go together (a mixture of experts needs both)")
    if args.experts is not None and args.top_k is not None and args.top_k > args.experts:
        raise InputError(f"--top-k {args.top_k} exceeds --experts {args.experts}")
    if args.moe_ffn is not None and args.experts is None:
        raise InputError("--moe-ffn needs --experts and --top-k")
    by_shape = args.layers is not None and args.hidden is not None
    if args.model and args.params:
        raise InputError("--model and --params are exclusive: name a catalog model (its shape flags change it) "
                         "or describe one")
    if args.model or (args.params is None and not by_shape):
        if args.active_params is not None:
            raise InputError("--active-params needs --params (the total)")
        spec = find_model(args.model or "llama3-70b")
        if moe:
            raise InputError("--experts/--top-k/--moe-ffn describe a model by shape (--layers/--hidden or --params), "
                             "not a catalog model")
        changed = {k: v for k, v in shape.items() if v is not None and v != getattr(spec, k)}
        return reshaped(spec, changed, {field: flag for flag, field in _SHAPE_FLAGS.items()}) if changed else spec
    if args.tokens is None:
        raise InputError(f"{'--params' if args.params else '--layers/--hidden'} needs --tokens "
                         f"(e.g. --tokens 15T; Chinchilla-optimal is ~20 per parameter)")
    if args.active_params is not None and args.params is not None and args.active_params > args.params:
        raise InputError(f"--active-params {args.active_params:g} exceeds --params {args.params:g}")
    return custom_model(args.params, args.tokens, args.active_params, **shape, **moe)


def check_dtype(dtype: str) -> None:
    """--dtype: one of TRAINING_DTYPES; tf32/fp32 (which `run` measures) are named as not modelled."""
    from cost_models.hardware import DTYPES

    if dtype in DTYPES and dtype not in TRAINING_DTYPES:
        raise InputError(f"--dtype {dtype}: training in {dtype} is not modelled (the memory and step models assume "
                         f"2-byte mixed precision); choose {choices_help(TRAINING_DTYPES)}")
    check_choice("dtype", dtype, TRAINING_DTYPES)


def gpu_to_price(requested: str | None, measured: str | None, source: str | None = None,
                 device_name: str | None = None) -> str:
    """The device a cost table prices: the one asked for (--gpu; "cpu" too), else the one a result
    file measured (a catalog GPU, or "cpu"), else DEFAULT_GPU. With `source` (a --results file) from
    a GPU the catalog lacks and no --gpu, that is an error naming the file."""
    from cost_models.cost import DEFAULT_GPU
    from cost_models.hardware import find_gpu
    from cost_models.throughput import CPU

    if requested is not None:   # --gpu '' is a mistake (an empty shell variable), not "the default"
        if not requested.strip():
            raise InputError("--gpu '': empty; name a GPU (costbench gpus lists them) or cpu")
        return CPU if requested.strip().lower() == CPU else find_gpu(requested).name
    if measured == CPU:
        return CPU
    if measured:  # a normalized name from the file, which a newer or edited file may not share with this catalog
        try:
            return find_gpu(measured).name
        except InputError as e:
            raise InputError(f"{source or 'the result file'}: machine.gpu.normalized: {e}") from None
    if source is not None:
        raise InputError(f"{source}: measured on {device_name or 'a GPU'} that is not in the GPU catalog, so it has "
                         f"no datasheet to compare with; name the GPU to price with --gpu (costbench gpus)")
    return DEFAULT_GPU


def warn_other_device(throughput, gpu: str, command: str = "cost") -> None:
    """One stderr line when a --results file measured another device than the one priced: its rates
    are then not used (cost_models.cost.device_rates), which the rates text alone says too quietly."""
    if throughput is None or throughput.gpu == gpu:
        return
    what = throughput.gpu or f"{throughput.device_name or 'a GPU'} (not in the GPU catalog)"
    warn(command, f"{throughput.source} measured {what}, not the {gpu} priced: its rates are "
                  f"not used; {gpu} is priced at the catalog's rates")


def warn_other_dtype(throughput, gpu: str, dtype: str, command: str = "cost") -> None:
    """One stderr line when a GPU file for the device priced measured its compute in other dtypes
    than the one priced: its MAMF and layer rates are then not used (device_rates), and the catalog's
    take their place, which can be faster than what the file measured."""
    from cost_models.throughput import CPU

    if throughput is None or throughput.gpu != gpu or gpu == CPU:   # a CPU file without the dtype is refused
        return
    base = "bf16" if dtype == "fp8" else dtype
    measured = sorted(set(throughput.mamf_tflops) | ({throughput.layer.get("dtype") or "bf16"}
                                                     if throughput.measured_layer else set()))
    if measured and base not in measured:
        warn(command, f"{throughput.source} measured {', '.join(measured)}, not {base}: its GEMM "
                      f"and attention rates are not used for --dtype {dtype}; those parts are the catalog's")


FAR_BELOW_PEAK = 0.1   # a MAMF under a tenth of the datasheet peak: no healthy GPU of the catalog measures that


def _far_below_peak(throughput) -> str | None:
    """Why a GPU file's MAMF is not that GPU's (CPU-speed rates under an H100's name were priced at
    0.1% MFU without a word), or None."""
    from cost_models.hardware import find_gpu
    from cost_models.throughput import CPU

    if throughput is None or throughput.gpu in (None, CPU):
        return None
    peaks = find_gpu(throughput.gpu).peak_tflops
    for dtype, tflops in sorted(throughput.mamf_tflops.items()):
        peak = peaks.get(dtype)
        if peak and tflops < FAR_BELOW_PEAK * peak:
            return (f"its {dtype} MAMF {tflops:.3g} TFLOP/s is {tflops / peak:.1%} of the {throughput.gpu} datasheet's "
                    f"{peak:g}: priced as measured, but a GPU that slow is throttled, shared or not the GPU named")
    return None


def warn_unsound(throughput, command: str = "cost") -> None:
    """One stderr line when a --results file's run failed checks or stopped early: its rates come
    from the records that passed and the parts it measured, which the user should know before
    trusting a price built on them."""
    from cost_models.throughput import CPU

    no_memory = throughput is not None and throughput.gpu == CPU and not throughput.host_memory_gb
    slow = _far_below_peak(throughput)
    if throughput is None or (throughput.complete and not throughput.failed_checks and not no_memory and not slow):
        return
    why = []
    if throughput.failed_checks:
        why.append(f"{throughput.failed_checks} of its measurements failed their correctness check (left out of "
                   "its rates: look at the run before trusting them)")
    if not throughput.complete:
        why.append("its run stopped before the end (complete: false: what it did not measure is the catalog's)")
    if no_memory:   # a CPU's memory is its host's: without it nothing bounds the layouts
        why.append("no machine.host_memory_gb: the cpu device's memory is unknown, so no layout is refused for memory")
    if slow:
        why.append(slow)
    warn(command, f"{throughput.source}: {'; '.join(why)}")


def _throughput(path):
    if path is None:
        return None
    from bench.results import load
    from cost_models.throughput import Throughput

    return Throughput.from_result(load(path), source=path)


TERM_LINE = ("term        reserved/capacity-block rows: `cost` is the run's hours at the rate; "
             "`term commitment` = GPUs x term hours x rate, paid even if the run is shorter")
OWN_PRICES_LINE = ("prices      list prices, each provider's region whose bill on its own fabric is the lowest (preferring "
                   "one that sells whole 8-GPU nodes) unless --region; `costbench prices` for every region, source and age")
PRICES_LINE = ("prices      list prices, cheapest region per provider (preferring one that sells whole 8-GPU nodes) unless --region; "
               "`costbench prices` for every region, source and age")


def step_line(plan) -> str:
    """One line: the step time and its parts, largest first, e.g. '9.83 s = gemm 5.27 + pp_bubble 2.93 + ...'."""
    parts = sorted(plan.step["parts"].items(), key=lambda kv: -kv[1])
    # parts under 0.01% of the step are left out (a fixed 0.5 ms hid every part of a small model's step)
    shown = [(k, v) for k, v in parts if v > 0 and v >= 1e-4 * plan.step["seconds"]]
    return f"{_figures(plan.step['seconds'])} s = " + " + ".join(f"{k} {_figures(v)}" for k, v in shown)



def degrees(plan, detail: bool = False) -> str:
    """'TP 8 x CP 2 x PP 8 x DP 128 (EP 8) = 13,824 of the 16,384 GPUs (2,560 idle)': the degrees,
    which multiply out to the GPUs used; with `detail`, sequence parallelism and interleaving too."""
    p = plan.parallelism
    interleave = f" (interleaved x{p['virtual_stages']})" if detail and p["virtual_stages"] > 1 else ""
    ep = f" (EP {p['ep']})" if p.get("ep", 1) > 1 else ""
    used = p.get("gpus_used", plan.gpus)
    idle = f" = {used:,} of the {plan.gpus:,} GPUs ({plan.gpus - used:,} idle)" if used < plan.gpus else ""
    cp = f" x CP {p['cp']}" if p.get("cp", 1) > 1 else ""
    sp = " (+SP)" if detail and p["sequence_parallel"] else ""
    return f"TP {p['tp']}{sp}{cp} x PP {p['pp']}{interleave} x DP {p['dp']}{ep}{idle}"


def layout_line(plan) -> str:
    from cost_models.parallelism import stage_layers

    p = plan.parallelism
    stage = int(stage_layers(plan.model.layers, p["pp"])[0])
    rc = p["recompute"] + (f" on {p['recompute_layers']} of the {stage} layers per stage" if p["recompute"] == "full" else "")
    return (f"{degrees(plan, detail=True)}, micro-batch {p['micro_batch']}, global batch {p['global_batch']:,} seqs, "
            f"recompute {rc}")


def placeholder_line(name: str, tokens: float, label: str = "tokens      ", hint: str = "give --tokens") -> str:
    """The line a table prints for a catalog model whose tokens are a unit, not published (Mixtral)."""
    return (f"{label}{si(tokens)} is a placeholder unit, not {name}'s training tokens (not published): "
            f"GPU-hours, days and cost are per {si(tokens)} tokens; {hint}")


def network_line(network: str, rows) -> str:
    """One fabric times every provider's row; where a row's instance is sold on another (its 'fabric'),
    say so and how to time it: GCP's A3 High takes 1.57x the GPU-hours of ib-ndr-400 for Llama 3 70B."""
    other = [r for r in rows if r.get("fabric")]
    own = list(dict.fromkeys(f"{r['provider']} {r['fabric_instance']} on {r['fabric']}" for r in other))
    head = f"network     {network} for every row (--network; `costbench networks`)"
    if not own:
        return head + "; a provider's own fabric may differ: `costbench whatif --vary network=...`"
    nets = list(dict.fromkeys(r["fabric"] for r in other))
    return (f"{head}; rows whose instance is sold on another fabric, so their hours differ: {', '.join(own)} "
            f"(JSON/CSV: fabric): --network own times each row on its own")


def own_network_line(plan, rows, fabric_plans: dict) -> str:
    """--network own: which providers' rows ran on which fabric, with each other fabric's hours,
    days and layout; the summary's lines are those of the rest."""
    timed = plan.assumptions["network"]

    def who(net):
        return ", ".join(dict.fromkeys(r["provider"] for r in rows if r.get("network") == net))

    if not rows:
        return f"network     {timed} (--network own: no price row to time on its own fabric)"
    parts = []
    for net, p in fabric_plans.items():
        if who(net):
            parts.append(f"{who(net)} on {net}: {si(p.gpu_hours)} GPU-hours, {days(p.wall_clock_days)} days "
                         f"({degrees(p)})")
    rest = "the other rows" if parts else "every row"
    # plans_per_fabric describes the default fabric unless no row runs on it
    why = ("the default: costbench does not know their instances' fabric" if timed == _default_network()
           else "their instances' fabric")
    return (f"network     each row on its own fabric (--network own): {'; '.join(parts) + '; ' if parts else ''}"
            f"{rest} on {timed} ({why}), which the lines above and below describe")


def _default_network() -> str:
    from cost_models.networks import DEFAULT_NETWORK

    return DEFAULT_NETWORK


def _summary_lines(plan, note=None, prices_line=None, rows=(), fabric_plans=None) -> list[str]:
    m, a = plan.model, plan.assumptions
    cluster = f"{plan.gpus:,} x {plan.gpu.name} ({a.get('gpus_from', 'given')})" if plan.gpus else plan.gpu.name
    lines = [
        f"model       {m.name}: {si(m.params, 4)} params ({si(m.active_params, 4)} active), "
        f"{si(m.tokens)} tokens, {plan.training_flops:.3g} FLOPs ({a['flops']})",
        f"cluster     {cluster}; memory fits on {plan.min_gpus:,} GPUs (the fewest of the power-of-two sizes)",
    ]
    if "shape" in a:
        lines.insert(1, f"shape       {a['shape']}")
    if "tokens" in a:
        lines.insert(1, placeholder_line(m.name, m.tokens))
    if plan.step is not None:
        measured = ", ".join(a["measured_parts"]) or "none"
        mfu_of = ""
        if plan.gpu.name == "cpu":
            from cost_models.cost import CPU_PEAK_LAYER, CPU_PEAK_MAMF

            peak = CPU_PEAK_LAYER if CPU_PEAK_LAYER in plan.gpu.source else CPU_PEAK_MAMF
            mfu_of = f" of {peak} (a CPU has no datasheet peak)"
        elif "mfu_basis" in a:   # fp8: the bf16 scale, and the share of the fp8 peak beside it
            fp8 = plan.achieved_tflops_per_gpu / plan.gpu.peak("fp8")
            mfu_of = f" of the bf16 peak ({fp8:.1%} of the fp8 peak)"
        lines += [
            f"layout      {layout_line(plan)} ({a['layout']}; {a['gpu_memory_gib']:g} GiB per GPU)",
            f"step        {step_line(plan)}",
            f"throughput  {_figures(plan.achieved_tflops_per_gpu)} TFLOP/s per GPU, MFU {plan.mfu:.1%}{mfu_of}; "
            f"measured parts: {measured}; catalog: {', '.join(a['catalog_parts']) or 'none'}"
            + (f"; layer GEMM rate {a['layer_gemm_rate'].split(':')[0]}" if "layer_gemm_rate" in a else ""),
            f"goodput     {a['goodput']:.1%} ({a['goodput_from']})",
            network_line(a["network"], rows) if fabric_plans is None else own_network_line(plan, rows, fabric_plans),
        ]
    elif plan.achieved_tflops_per_gpu is not None:
        lines += [f"throughput  {_figures(plan.achieved_tflops_per_gpu)} TFLOP/s per GPU ({a['achieved_tflops_from']})",
                  f"goodput     {a['goodput']:.1%}"]
    else:
        lines.append(f"throughput  {a['gpu_hours_from']}; implied end-to-end MFU {a['implied_mfu_end_to_end']:.1%}"
                     + (" of the bf16 peak" if "mfu_basis" in a else ""))
    if "virtualization_overhead" in a:
        lines.append(f"vm          virtualization overhead {a['virtualization_overhead']}")
    days_text = f", {days(plan.wall_clock_days)} days wall clock" if plan.gpus else ""
    published = ""
    if m.published_gpu_hours:
        # GPU-hours grow with the cluster (more communication, a longer bubble per token): a budget
        # is compared like for like only at its own cluster's size, which may not be known
        size = ("; its cluster size not published: compare at the size you assume, --gpus" if not m.published_gpus
                else f" at {m.published_gpus:,} GPUs" + (", an assumed count" if "assumed" in (m.source or "") else "")
                if plan.gpus != m.published_gpus else "")
        # the ratio only like for like: the published GPU at the published (or assumed) cluster size
        ratio = (f", this estimate {plan.gpu_hours / m.published_gpu_hours:.2f}x of it"
                 if plan.gpu.name == m.published_hardware and not size else "")
        published = f" (published: {si(m.published_gpu_hours, 4)} on {m.published_hardware}{ratio}{size})"
    lines.append(f"time        {si(plan.gpu_hours)} GPU-hours{days_text}{published}")
    if plan.gpus and not str(a.get("gpus_from", "")).startswith("--gpus"):
        # the size follows the GPU and model (a catalog count is the GPU it was published on, the
        # default rule another's): two `cost --gpu` calls are then not like for like
        lines.append("compare     the default cluster is sized per GPU: compare GPUs at one size with --gpus N or "
                     "`costbench whatif --vary gpu=...`; days against dollars: `costbench whatif --vary gpus=...`")
    if note:
        lines.append(f"note        {note}")
    lines.append(prices_line or PRICES_LINE)
    lines.append("scope       GPU-hours at list price (the instance, host included); not storage, egress, "
                 "experiments or failed runs beyond goodput, support or taxes")
    return lines


def _no_price_note(plan, prices, pricing, providers, region=None) -> str:
    """Why the table is empty, saying what does exist: the GPUs the chosen providers (or region)
    have prices for, and the providers that have prices for this GPU."""
    from cost_models.prices import select

    kind = "" if pricing == "all" else f"{pricing} "
    who = f" from {', '.join(providers)}" if providers else ""
    where = f" in {region}" if region else ""
    have = sorted({p.gpu for p in select(prices, None, pricing, providers)
                   if region is None or p.region.casefold() == region.casefold()})
    others = sorted({p.provider for p in select(prices, plan.gpu.name, pricing)})
    return (f"no {kind}prices for {plan.gpu.name}{who}{where}; {'those have ' if who or where else 'GPUs with '}"
            f"{kind}prices for: {', '.join(have) or 'none'}; {plan.gpu.name} {kind}prices exist from: "
            f"{', '.join(others) or 'nobody'}. Add your own with --prices FILE")


def is_own(network) -> bool:
    """--network own (any case, spaces around it), not a fabric's name."""
    from cost_models.cost import OWN_NETWORK

    return isinstance(network, str) and network.strip().lower() == OWN_NETWORK


def plans_per_fabric(plan, prices, plan_kwargs: dict, overhead: float, instances=None):
    """--network own: (the plan the summary describes, {network: plan} for the rows on other
    fabrics). Each fabric the rows are sold on (cost_models.cost.row_fabrics) is timed at the same
    cluster size, its layout searched again (a slower fabric may favour less data parallelism);
    the summary's plan is the default fabric's where a row runs on it, else the first row's.
    instances: all the prices loaded (a reserved row's on-demand instance; price_rows)."""
    import dataclasses

    from cost_models.cost import plan_training, row_fabrics
    from cost_models.virtualization import with_overhead

    timed = plan.assumptions.get("network")
    nets = row_fabrics(plan, prices, instances)
    # a size the default rule chose on the default fabric is held for every fabric: say so
    sized = plan.assumptions.get("gpus_from", "given")
    if sized.startswith("default") and any(net != timed for net in nets):
        sized += f" on {timed}, held for every row's fabric (--network own)"

    def described(p):
        return dataclasses.replace(p, assumptions={**p.assumptions, "gpus_from": sized, "network_mode": OWN_MODE})

    plans = {timed: plan, **{net: with_overhead(plan_training(**{**plan_kwargs, "network": net, "gpus": plan.gpus}),
                                                overhead) for net in nets if net != timed}}
    plans = {net: described(p) for net, p in plans.items()}
    main = plans[timed] if timed in nets or not nets else plans[nets[0]]
    others = {net: p for net, p in plans.items() if net in nets and net != main.assumptions["network"]}
    return main, others


OWN_MODE = ("own (--network own): each price row timed on the fabric its instance is sold with "
            "(cost_models/networks.py INSTANCE_FABRICS), a row whose fabric costbench does not know on the default")


def _plan_figures(p) -> dict:
    return {"gpu_hours": p.gpu_hours, "wall_clock_days": p.wall_clock_days, "achieved_tflops_per_gpu":
            p.achieved_tflops_per_gpu, "mfu": p.mfu, "parallelism": p.parallelism, "step": p.step,
            "assumptions": p.assumptions}


def json_doc(plan, rows, note=None, fabric_plans=None) -> dict:
    m = plan.model
    return {
        "model": {"name": m.name, "params": m.params, "active_params": m.active_params, "tokens": m.tokens},
        "training_flops": plan.training_flops, "gpu": plan.gpu.name, "gpus": plan.gpus or None,
        "achieved_tflops_per_gpu": plan.achieved_tflops_per_gpu, "mfu": plan.mfu,
        "gpu_hours": plan.gpu_hours, "wall_clock_days": plan.wall_clock_days,
        "parallelism": plan.parallelism, "step": plan.step,
        "assumptions": plan.assumptions, "note": note,
        # --network own: the plans of the rows on other fabrics than the one above (the rows' network)
        **({"fabric_plans": {net: _plan_figures(p) for net, p in fabric_plans.items()}}
           if fabric_plans is not None else {}),
        "rows": [{k: r[k] for k in JSON_ROW_KEYS} for r in rows],
    }


def _cheapest_bills(plan, rows, chosen, fabric_plans):
    """--network own without --region: each provider's region with the lowest bill on its own fabric
    (cost_models.cost.cheapest_billed), and the plans and prices of the rows kept: (plan the summary
    describes, rows, their prices, fabric_plans)."""
    from cost_models.cost import GPUS_PER_NODE, cheapest_billed

    rows = cheapest_billed(rows, chosen, plan.gpus, GPUS_PER_NODE)
    used = {(r["provider"], r["gpu"], r["pricing"], r["region"]) for r in rows}
    chosen = [p for p in chosen if (p.provider, p.gpu, p.pricing, p.region) in used]
    nets = list(dict.fromkeys(r["network"] for r in rows))
    if rows and plan.assumptions["network"] not in nets:   # the regions chosen run another: describe that
        plan = fabric_plans[nets[0]]
    return plan, rows, chosen, {net: p for net, p in fabric_plans.items()
                                if net in nets and net != plan.assumptions["network"]}


def run_cost(plan_kwargs: dict, pricing="on-demand", providers=None, prices_file=None, fmt="table", out=None,
             region=None, stale_months=DEFAULT_STALE_MONTHS, virtualization_overhead=0.0, command="cost",
             warn_age=True):
    """Plan, price and print (on `out`, default sys.stdout). Returns the TrainingPlan. warn_age
    False: no price-age line (whatif gives one for all its values' rows).

    Without `region`, each provider x GPU x pricing kind is priced at its cheapest region (the
    region column names it; with --network own, the one whose bill on its own fabric is the
    lowest); with it, only that region's rows. virtualization_overhead:
    cost_models.virtualization (0: bare metal).
    """
    from cost_models.cost import plan_training, price_rows
    from cost_models.prices import cheapest_regions, load_prices, select, today
    from cost_models.virtualization import with_overhead   # checks the overhead before planning

    out = out or sys.stdout
    check_choice("format", fmt, FORMATS)
    check_choice("pricing", pricing, PRICING_CHOICES)
    own = is_own(plan_kwargs.get("network"))
    if not own and plan_kwargs.get("network") is not None:
        from cost_models.networks import find_network

        try:
            find_network(plan_kwargs["network"])
        except InputError as e:   # the names of the fabrics, and the word that is not one
            sep = " Or" if str(e).endswith("?") else "; or"
            raise InputError(f"{e}{sep} own: each price row on the fabric its instance is sold with") from None
    if own:
        plan_kwargs = {**plan_kwargs, "network": None}   # the rows whose fabric is unknown: the default
        skip = next((f for f, k in (("--gpu-hours", "gpu_hours"), ("--mfu", "mfu")) if plan_kwargs.get(k) is not None), None)
        if skip:
            raise InputError(f"{skip} and --network own: {skip} skips the step model, the only part that times a "
                             f"fabric, so every row would cost the same; give one or the other")
    prices = load_prices(prices_file)
    chosen = select(prices, None, pricing, providers, region)   # validates names before the slower part
    plan = with_overhead(plan_training(**plan_kwargs), virtualization_overhead)
    if region is None and not own:   # own: each region's bill on its own fabric chooses (below)
        from cost_models.cost import GPUS_PER_NODE

        chosen = cheapest_regions(chosen, plan.gpus, GPUS_PER_NODE)
    fabric_plans = None
    if own:
        plan, fabric_plans = plans_per_fabric(plan, chosen, plan_kwargs, virtualization_overhead, prices)
    ref = today()
    rows = price_rows(plan, chosen, ref, stale_months, fabric_plans, instances=prices)
    if own and region is None:
        plan, rows, chosen, fabric_plans = _cheapest_bills(plan, rows, chosen, fabric_plans)
    if warn_age:
        warn_stale([p for p in chosen if p.gpu == plan.gpu.name], ref, stale_months, command)
    for r in rows:
        r["_age"] = age_text(r["age_days"], r["stale"])
    note = None if rows else _no_price_note(plan, prices, pricing, providers, region)
    prices_line = PRICES_LINE if not own or region else OWN_PRICES_LINE
    if any(r["pricing"] == "spot" for r in rows):
        from cost_models.prices import SPOT_NOTE
        prices_line += f"\nspot        {SPOT_NOTE.removeprefix('spot: ')}"
    if any(r["commitment_usd"] is not None for r in rows):
        prices_line += "\n" + TERM_LINE + "; `you pay` = the larger: the offers that sell the cluster first, each block ranked by it"
    if any(r["offer"] for r in rows):
        from cost_models.cost import offer_note
        nets = list(dict.fromkeys(r["network"] for r in rows if r["offer"] and r["network"]))
        prices_line += f"\noffer       {offer_note(plan, nets)}"
    if fmt == "table":
        if rows:
            emit(rows, table_columns(rows), fmt, out)
            out.write("\n")
        out.write(footer_text(_summary_lines(plan, note, prices_line, rows, fabric_plans), out) + "\n")
    else:
        figures = {"model": plan.model.name, "gpus": plan.gpus, "gpu_hours": plan.gpu_hours,
                   "wall_clock_days": plan.wall_clock_days}
        # no price to show (a CPU without a --prices row, a GPU nobody lists): the CSV still has one
        # row, of the same columns, carrying the time; the note says why on stderr. Each row's own
        # hours (--network own bills rows on other fabrics other hours)
        priced = ([{**{k: r[k] for k in ROW_KEYS}, **figures, "gpu_hours": r["gpu_hours"],
                    "wall_clock_days": r["wall_clock_days"]} for r in rows]
                  or [{**dict.fromkeys(ROW_KEYS), "note": note, **figures}])
        emit(priced, COLUMNS, fmt, out, json_doc(plan, rows, note, fabric_plans))
        if note and fmt == "csv":
            print(f"costbench {command}: {note}", file=sys.stderr)
    return plan


def print_cost_table(model: str = "llama3-70b", result: dict | None = None, gpu: str | None = None,
                     result_source: str = "this run", out=None, **plan_kwargs):
    """The bare `costbench` job's closing table: `model`'s training cost across providers.

    result: a schema-1 result dict (e.g. the run just measured). Its measured rates are used when it
    is from `gpu`; with gpu=None the result's GPU is priced if it is in the catalog, else H100-SXM
    (a CPU's own cost is `costbench cost --results FILE --prices ...`). Returns the TrainingPlan.
    """
    from cost_models.throughput import CPU, Throughput

    throughput = Throughput.from_result(result, source=result_source) if result is not None else None
    measured = throughput.gpu if throughput is not None and throughput.gpu != CPU else None
    gpu = gpu_to_price(gpu, measured)
    return run_cost({"model": model, "gpu": gpu, "throughput": throughput, **plan_kwargs}, out=out)


def main(args, command: str = "cost", warn_age: bool = True) -> int:
    """`costbench cost`; `command` names the command its warnings speak for (whatif runs this, with
    warn_age False: it warns once of its values' price ages)."""
    from cost_models.parallelism import RECOMPUTE

    if args.recompute is not None:
        check_choice("recompute", args.recompute, RECOMPUTE)
    check_dtype(args.dtype)
    spec = _model(args)
    if args.tokens is not None:
        spec = spec.with_tokens(args.tokens)
    throughput = _throughput(args.results)
    gpu = gpu_to_price(args.gpu, throughput.gpu if throughput is not None else None, args.results,
                       throughput.device_name if throughput is not None else None)
    plan_kwargs = {"model": spec, "gpu": gpu, "gpus": args.gpus, "network": args.network,
                   "throughput": throughput, "mfu": args.mfu, "efficiency": args.efficiency,
                   "goodput": args.goodput, "tp": args.tp, "pp": args.pp, "micro_batch": args.micro_batch,
                   "global_batch": args.global_batch, "recompute": args.recompute, "ep": args.ep, "cp": args.cp, "dtype": args.dtype,
                   "recompute_layers": args.recompute_layers, "vpp": args.vpp,
                   "gpu_hours": args.gpu_hours}
    warn_other_device(throughput, gpu, command)
    warn_other_dtype(throughput, gpu, args.dtype, command)
    warn_unsound(throughput, command)
    run_cost(plan_kwargs, args.pricing, args.providers, args.prices, args.format, region=args.region,
             stale_months=args.stale_months, virtualization_overhead=args.virtualization_overhead, command=command,
             warn_age=warn_age)
    return 0
