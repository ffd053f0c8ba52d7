"""The report's charts (matplotlib, Agg backend: no display needed), one function per chart.

Each function takes the compare DataFrame (bench.compare; the per-run rows with their TrainingPlan
are in df.attrs["runs"]) and the loaded result documents, and returns a matplotlib Figure, or None
where nothing can be drawn. Every chart has a title, units on its axes and a legend; what could
not be drawn is said in the chart rather than left out silently.

    cost_by_provider   1. cost to train per provider x pricing kind, low/high range as error bars
    matmul_shapes      2. matmul TFLOP/s per shape, dtype and run, datasheet peak drawn
    busbw_by_size      3. busbw against message size (log x) per collective and run, link speed drawn
    days_vs_cost       4. days against cost as the cluster grows, per GPU type (catalog and measured)
    step_breakdown     5. one training step's time by part, per run
    whatif_chart       6. a `costbench whatif` JSON, when given
"""

import math

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from bench.compare import COLLECTIVES, KEY, busbw_per_size  # noqa: E402
from bench.results import catalog_gpu  # noqa: E402
from bench.table import si  # noqa: E402
from cost_models.errors import InputError  # noqa: E402
from cost_models.prices import PRICING_KINDS  # noqa: E402

CLUSTER_SIZES = (256, 512, 1024, 2048, 4096, 8192, 16384)
COLLECTIVE_TITLE = {"allreduce": "all-reduce", "reducescatter": "reduce-scatter", "allgather": "all-gather",
                    "alltoall": "all-to-all"}
plt.rcParams.update({"font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.grid": True,
                     "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
                     "legend.fontsize": 8, "legend.framealpha": 0.9})


def _money(value, _pos=None) -> str:
    """Axis ticks and bar labels: $20M, $19.2M, $950K (three significant digits at most)."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= scale:
            return f"${value / scale:.3g}{suffix}"
    return f"${value:.3g}"


def _line_label(ax, y, text):
    """A label on a horizontal reference line, at the left edge whatever the x scale."""
    ax.text(0.01, y, text, transform=ax.get_yaxis_transform(), va="bottom", fontsize=8, color="0.25")


def _label(row) -> str:
    """A run's name in legends: its tag, and the GPU where the tag does not say it."""
    return f"{_tag(row)} ({row['gpu']}, {row['world_size']} ranks)"


def _tag(row) -> str:
    return chart_text(row["tag"])


def chart_text(text: str) -> str:
    """Text from a file (a tag, a provider) for a chart: one printable line (a newline or ESC would
    break a legend), its "$" escaped (two of them are read as mathtext: a tag "aws/$\\frac x" beside
    a "$2.00" price stopped the report with a ValueError)."""
    from bench.table import printable
    return printable(str(text)).replace("$", r"\$")


def _message(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, wrap=True,
            fontsize=10, color="0.35")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def _representative(df, gpu):
    """The per-run row (with its plan) of the best-ranked setup on `gpu`, or None."""
    return next((row for row in _setups(df) if row["gpu"] == gpu), None)


# ---- 1 ----------------------------------------------------------------------------------------------

def cost_by_provider(df, model: str, prices=None, size=(10, 6)):
    """Horizontal bars: cost to train `model` per provider x pricing kind, for each catalog GPU the
    runs measured (plan from the best-ranked run of that GPU) or, with no GPU run, the default GPU
    on catalog figures. Error bars: the price's published low/high."""
    from cost_models.cost import DEFAULT_GPU, GPUS_PER_NODE, plan_training, price_rows
    from cost_models.prices import cheapest_regions, load_prices

    table = prices if isinstance(prices, list) else load_prices(prices)
    plans = []
    for gpu in dict.fromkeys(df["gpu"]):
        row = _representative(df, gpu)
        if row is not None:
            plans.append((row["_plan"], f"measured throughput of {_tag(row)} (a provider with its own run: that run's)"))
    if not plans:
        plans = [(plan_training(model, DEFAULT_GPU), "catalog throughput: no run measured a catalog GPU")]
    # A provider with a run of its own on that GPU is priced on that run's throughput, as the compare
    # table beside the chart prices it; the others on the representative run's.
    own = {(r["gpu"], r.get("provider")): r["_plan"] for r in _setups(df) if r.get("provider")}
    bars = []
    for plan, origin in plans:
        chosen = cheapest_regions(table, plan.gpus, GPUS_PER_NODE)   # as `costbench cost` prices a provider
        for price in chosen:
            mine = own.get((plan.gpu.name, price.provider), plan)
            bars += [{**r, "origin": origin} for r in price_rows(mine, [price])]
    fig, ax = plt.subplots(figsize=(size[0], max(size[1], 0.32 * len(bars) + 1.5)))
    title = f"Cost to train {model} per provider and pricing kind"
    ax.set_title(title)
    if not bars:
        _message(ax, "no price rows for the runs' GPUs")
        return fig
    # as cost ranks (cheapest on top): offers that sell the cluster before those that do not, then
    # by what the run is billed (a reserved-3y bar committing $829M sat above on-demand ones)
    bars.sort(key=lambda r: (r["gpu"], r["offer"] is not None, r["billed_usd"]), reverse=True)
    colors = {k: f"C{i}" for i, k in enumerate(PRICING_KINDS)}
    y = range(len(bars))
    costs = [r["cost_usd"] for r in bars]
    lows = [r["cost_usd"] - (r["cost_usd_low"] if r["cost_usd_low"] is not None else r["cost_usd"]) for r in bars]
    highs = [(r["cost_usd_high"] if r["cost_usd_high"] is not None else r["cost_usd"]) - r["cost_usd"] for r in bars]
    ax.barh(list(y), costs, color=[colors[r["pricing"]] for r in bars])
    ranged = [i for i, (lo, hi) in enumerate(zip(lows, highs)) if lo or hi]  # no whisker where no range is published
    if ranged:
        ax.errorbar([costs[i] for i in ranged], ranged, xerr=[[lows[i] for i in ranged], [highs[i] for i in ranged]],
                    fmt="none", ecolor="0.15", capsize=4, elinewidth=1.2, label="published low–high")
    ax.set_yticks(list(y), [chart_text(f"{r['provider']} {r['pricing']}"
                                  f"{' (' + r['region'] + ')' if r.get('region') not in (None, '', 'all') else ''}"
                                  f" · {r['gpu']}") for r in bars], fontsize=8)
    extras = [_bar_extra(r) for r in bars]
    for yi, r, h, extra in zip(y, bars, highs, extras):
        # two "$" in one text would be read as mathtext ("$14.3M (term commitment $829M)" lost its spaces)
        text = f"  {_money(r['cost_usd'])}{extra}".replace("$", r"\$")
        ax.text(r["cost_usd"] + h, yi, text, va="center", ha="left", fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(_money))
    ax.set_xlabel("cost to train (US$, list price × GPU-hours; error bar: published low–high price)")
    ax.set_xlim(0, max(c + h for c, h in zip(costs, highs)) * (1.6 if any(extras) else 1.18))
    from matplotlib.patches import Patch
    kinds = [k for k in PRICING_KINDS if any(r["pricing"] == k for r in bars)]
    handles = [Patch(color=colors[k], label=k) for k in kinds] + ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, title="pricing", loc="upper right")  # cheapest bars are on top: room there
    origins = "; ".join(dict.fromkeys(f"{p.gpu.name}: {p.gpus:,} GPUs, {si(p.gpu_hours)} GPU-hours, "
                                      f"{o}" for p, o in plans))
    if any(r["pricing"] == "spot" for r in bars):
        from cost_models.prices import SPOT_NOTE
        origins += f"; {SPOT_NOTE}"
    import textwrap
    origins = textwrap.fill(origins, 150)   # one line ran off the figure's right edge
    fig.text(0.01, 0.005, origins.replace("$", r"\$"), fontsize=8, color="0.3")
    fig.tight_layout(rect=(0, 0.015 * (origins.count("\n") + 2), 1, 1))
    return fig


def _bar_extra(r: dict) -> str:
    """What a bar's length leaves out, as the cost table says it: a reserved or capacity-block term
    commits to more than the run's hours (aws reserved-3y drew as $12.4M beside a $829M commitment),
    and an offer that is no cluster of NVLink nodes."""
    parts = [f"term commitment {_money(r['commitment_usd'])}"] if r.get("commitment_usd") else []
    parts += [r["offer"]] if r.get("offer") else []
    return f" ({'; '.join(parts)})" if parts else ""


# ---- 2 ----------------------------------------------------------------------------------------------

def matmul_shapes(df, runs, size=(10, 6)):
    """TFLOP/s against the shape's work (2mnk, log x) for every correct matmul record, one colour
    per run and one marker per dtype; dashed lines: each GPU's datasheet peak for the dtypes shown."""
    fig, ax = plt.subplots(figsize=size)
    ax.set_title("Matmul TFLOP/s per shape, dtype and run")
    markers = {"bf16": "o", "fp16": "s", "tf32": "^", "fp32": "D", "fp8": "*"}
    drawn, peaks, values = False, {}, []
    for i, (label, doc) in enumerate(runs):
        recs = [r for r in doc["records"] if r.get("op") == "matmul" and r.get("correct")
                and r.get("phase", "search") == "search"]
        for dtype in dict.fromkeys(r["dtype"] for r in recs):
            pts = sorted((2 * r["m"] * r["n"] * r["k"], r["tflops"]) for r in recs if r["dtype"] == dtype)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=markers.get(dtype, "x"), linestyle="none",
                    markersize=5, alpha=0.8, color=f"C{i % 10}", label=f"{label} · {dtype}")
            values += [p[1] for p in pts]
            drawn = True
            spec = catalog_gpu(doc["machine"])  # None for CPU runs, MIG slices, GPUs not in the catalog
            if spec is not None:
                peaks[(spec.name, dtype)] = spec.peak(dtype)
    if not drawn:
        _message(ax, "no matmul records in these runs")
        return fig
    values += list(peaks.values())
    ax.set_xscale("log")
    if max(values) / max(min(values), 1e-9) > 50:
        ax.set_yscale("log")
    for (gpu, dtype), peak in sorted(peaks.items()):
        ax.axhline(peak, linestyle="--", linewidth=1, color="0.3")
        _line_label(ax, peak, f"{gpu} {dtype} datasheet peak: {peak:g} TFLOP/s")
    ax.set_xlabel("work per matmul, 2·m·n·k FLOPs (log scale)")
    ax.set_ylabel("TFLOP/s (median over iterations)")
    if not peaks:
        ax.text(0.99, 0.02, "no datasheet peak: CPU runs or GPUs not in the catalog", transform=ax.transAxes,
                ha="right", fontsize=8, color="0.35")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="run · dtype")
    fig.tight_layout()
    return fig


# ---- 3 ----------------------------------------------------------------------------------------------

def _link_gbps(doc):
    """(GB/s per GPU, name) of the link a run's collectives crossed: NVLink within one node, the
    default fabric across nodes (networks.csv); None for CPU runs and GPUs not in the catalog."""
    from cost_models.networks import DEFAULT_NETWORK, find_network

    spec = catalog_gpu(doc["machine"])  # None for CPU runs, MIG slices, GPUs not in the catalog
    if spec is None:
        return None
    net = find_network(DEFAULT_NETWORK)
    if (doc["machine"].get("nodes") or 1) > 1:
        return net.gbps_per_gpu, f"{net.name} {net.gbps_per_gpu:g} GB/s per GPU"
    if not spec.nvlink_gbps:  # a PCIe GPU talks through the fabric even inside its node
        return net.gbps_per_gpu, f"{net.name} {net.gbps_per_gpu:g} GB/s"
    gbps = spec.nvlink_gbps / 2  # the catalog's figure counts both directions; busbw is one way
    return gbps, f"{spec.name} NVLink {gbps:g} GB/s one way"


def busbw_by_size(df, runs, size=(11, 7)):
    """One panel per collective present: busbw (GB/s) against message size (log x), a line per run;
    dashed: the link each run crossed."""
    ops = [op for op in COLLECTIVES
           if any(r.get("op") == op and (r.get("world_size") or 1) > 1 for _, d in runs for r in d["records"])]
    if not ops:
        fig, ax = plt.subplots(figsize=(size[0], size[1] / 2))
        ax.set_title("Bus bandwidth against message size")
        _message(ax, "no collective measured across more than one process in these runs "
                     "(a one-process all-reduce measures no link)")
        return fig
    cols = 2 if len(ops) > 1 else 1
    rows = math.ceil(len(ops) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(size[0], size[1] * rows / 2 + 1), squeeze=False)
    fig.suptitle("Bus bandwidth against message size, per collective and run", fontweight="bold")
    for ax, op in zip(axes.flat, ops):
        ax.set_title(COLLECTIVE_TITLE[op], fontsize=11)
        links = {}
        for i, (label, doc) in enumerate(runs):
            pts = {b: v for b, v in busbw_per_size(doc, op).items()
                   if (doc["machine"].get("world_size") or 1) > 1}  # one process measures no link
            if pts:
                xs = sorted(pts)
                ax.plot(xs, [pts[x] for x in xs], marker="o", markersize=3, color=f"C{i % 10}", label=label)
                link = _link_gbps(doc)
                if link:
                    links[link[1]] = link[0]
        for name, gbps in links.items():
            ax.axhline(gbps, linestyle="--", color="0.3", linewidth=1)
            _line_label(ax, gbps, f"link: {name}")
        if not links:
            ax.text(0.99, 0.02, "no link speed: CPU (gloo) runs", transform=ax.transAxes, ha="right",
                    fontsize=8, color="0.35")
        ax.set_xscale("log", base=2)
        ax.xaxis.set_major_formatter(FuncFormatter(_bytes))
        ax.set_xlabel("message size (bytes, nccl-tests convention; log scale)")
        ax.set_ylabel("busbw (GB/s)")
        ax.set_ylim(0, max([ax.get_ylim()[1]] + [g * 1.12 for g in links.values()]))
        ax.legend(loc="center left", fontsize=7)
    for ax in list(axes.flat)[len(ops):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _bytes(n, _pos=None) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n:g} B"


# ---- 4 ----------------------------------------------------------------------------------------------

def days_vs_cost(df, model: str, prices=None, sizes=CLUSTER_SIZES, size=(10, 6)):
    """Wall-clock days (log x) against cost as the cluster grows, one line per GPU type with an
    on-demand price (catalog throughput, the cheapest provider), and a dashed line per measured
    GPU run (its own throughput and its provider's price). Points are labelled with the GPU count."""
    from cost_models.cost import estimate_grid, plan_training
    from cost_models.hardware import gpus as catalog_gpus
    from cost_models.parallelism import GPUS_PER_NODE
    from cost_models.prices import cluster_order, load_prices, select

    table = select(prices if isinstance(prices, list) else load_prices(prices), None, "on-demand")
    # catalog lines for the catalog's GPUs only: a user's "cpu" row prices the measured CPU runs below
    known = {g.name for g in catalog_gpus()}
    gpus = sorted({p.gpu for p in table if p.gpu in known})
    grid = estimate_grid([model], gpus, list(sizes), prices=table)
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(f"Training {model}: days against cost\nas the cluster grows from {sizes[0]:,} to {sizes[-1]:,} GPUs")
    for i, gpu in enumerate(gpus):
        g = grid[grid["gpu"] == gpu].dropna(subset=["cost_usd"])
        if g.empty:
            continue
        # the cheapest offer of a cluster, by the rule `cost` and `compare` price with (whole nodes
        # before a cheaper 1-GPU or marketplace listing): the line once priced 16,384 H100s at a
        # 1-GPU marketplace listing
        best = min((p for p in table if p.gpu == gpu), key=lambda p: cluster_order(p, sizes[0], GPUS_PER_NODE))
        cheapest = best.provider
        g = g[(g["provider"] == cheapest) & (g["usd_per_gpu_hour"] == best.usd_per_gpu_hour)]
        g = g.drop_duplicates("gpus").sort_values("gpus")
        if g.empty:
            continue
        offer = best.offer(sizes[0], GPUS_PER_NODE)
        ax.plot(g["wall_clock_days"], g["cost_usd"], marker="o", markersize=3, color=f"C{i % 10}",
                label=f"{gpu} (catalog, {chart_text(cheapest)} \\${best.usd_per_gpu_hour:.2f}/GPU-h"
                      + (f"; {offer}" if offer else "") + ")")
        for _, p in g.iloc[[0, -1]].iterrows():
            ax.annotate(f"{p['gpus']:,}", (p["wall_clock_days"], p["cost_usd"]), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color=f"C{i % 10}")
    for j, row in enumerate(_setups(df)):
        plan = row["_plan"]
        price = row.get("usd_per_gpu_hour")
        if not price:   # no price of its own provider (the compare table says "no price"): none invented here
            continue
        pts = []
        for n in sizes:
            try:
                p = plan_training(model, plan.gpu.name, gpus=n, throughput=row["_throughput"])
            except InputError:  # too few GPUs to hold the model
                continue
            pts.append((p.wall_clock_days, p.gpu_hours * price))
        if pts:
            color = f"C{(gpus.index(row['gpu']) if row['gpu'] in gpus else 9) % 10}"
            ax.plot(*zip(*pts), linestyle=("--", ":", "-.")[j % 3], marker="x+^v"[j % 4], color=color, linewidth=1.2,
                    label=f"{_tag(row)} (measured {row['gpu']}, \\${price:.2f}/GPU-h)")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    costs = [y for line in ax.get_lines() for y in line.get_ydata() if y > 0]
    spread = bool(costs) and max(costs) / min(costs) > 20   # a CPU run's $1B beside GPUs' $10M flattened them
    if spread:
        ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.set_xlabel("wall-clock days to train (log scale; fewer GPUs → right)")
    ax.set_ylabel(f"cost to train (US$, on-demand list price{'; log scale' if spread else ''})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), title="GPU type (price)")
    fig.tight_layout()
    return fig


def _planned_run(df, setup):
    """The first per-run row (with its plan) of one setup (a row of df), or None where none has a plan."""
    return next((x for x in df.attrs.get("runs", []) if all(x[k] == setup[k] for k in KEY)
                 and x.get("_plan") is not None), None)


def _setups(df):
    """One per-run row (with its plan) per setup of df, in df's order: the setup's first run."""
    return [run for _, r in df.iterrows() if (run := _planned_run(df, r)) is not None]


# ---- 5 ----------------------------------------------------------------------------------------------

def step_parts(plan) -> tuple[dict, str]:
    """({part: seconds}, where from) for one training step of a plan: the step model's parts
    (plan.step); none where the time model was skipped (--gpu-hours, --mfu)."""
    step = getattr(plan, "step", None)
    if isinstance(step, dict) and step.get("parts"):
        return dict(step["parts"]), "step model (plan.step.parts)"
    return {}, "no step model (GPU-hours or MFU given)"


def step_breakdown(df, model: str, size=(10, 5.5)):
    """Stacked horizontal bar per run: one training step's time by part."""
    fig, ax = plt.subplots(figsize=size)
    ax.set_title(f"Time of one training step of {model}, by part, per run")
    bars, origins = [], set()
    for _, r in df.iterrows():
        run = _planned_run(df, r)
        if run is None:
            bars.append((_label(r), {}, "CPU run or GPU not in the catalog: no training plan"))
            continue
        parts, origin = step_parts(run["_plan"])
        origins.add(origin)
        plan = run["_plan"]
        unit = "CPUs" if plan.gpu.name == "cpu" else "GPUs"
        bars.append((f"{_label(r)}\n{plan.gpus:,} {unit}", parts, origin))
    if not any(parts for _, parts, _ in bars):  # CPU runs only: show what a catalog GPU's step looks like
        from cost_models.cost import DEFAULT_GPU, plan_training

        plan = plan_training(model, DEFAULT_GPU)
        parts, origin = step_parts(plan)
        origins.add(origin)
        bars.insert(0, (f"{DEFAULT_GPU} catalog figures\n(no GPU run) {plan.gpus:,} GPUs", parts, origin))
    names = list(dict.fromkeys(k for _, parts, _ in bars for k in parts))
    for yi, (label, parts, why) in enumerate(bars):
        left = 0.0
        for j, name in enumerate(names):
            v = parts.get(name, 0.0)
            if v:
                # tab20: the step has 11 parts, one more than the default cycle (gemm and optimizer shared a blue)
                ax.barh(yi, v, left=left, color=plt.get_cmap("tab20")(j % 20),
                        label=name if yi == _first(bars, name) else None)
                left += v
        if parts:
            ax.text(left, yi, f"  {left:.2f} s", va="center", fontsize=8)
        else:
            ax.text(0, yi, "  " + why, va="center", fontsize=8, color="0.35")
    ax.set_yticks(range(len(bars)), [b[0] for b in bars], fontsize=8)
    ax.set_ylim(len(bars) - 0.5, -0.5)  # first run on top; rows without bars keep their room
    ax.set_xlabel("seconds per optimizer step (global batch)")
    note = "; ".join(sorted(origins)) or "no run has a training plan"
    fig.text(0.01, 0.005, note, fontsize=8, color="0.3", va="bottom")
    if names:
        ax.legend(title="part", loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: never over a bar
        ax.set_xlim(0, max(sum(p.values()) for _, p, _ in bars if p) * 1.2)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _first(bars, name):
    return next(i for i, (_, parts, _) in enumerate(bars) if parts.get(name))


# ---- 6 ----------------------------------------------------------------------------------------------

def whatif_chart(frame, size=(10, 5)):
    """`costbench whatif` as bars: cost (left axis) and days (right axis) per value of the varied input.
    frame: DataFrame with columns value, cost (US$) and optionally days; attrs["vary"] names the input."""
    fig, ax = plt.subplots(figsize=size)
    vary = frame.attrs.get("vary", "input")
    ax.set_title(f"What if: {vary} varied, everything else fixed")
    labels = [str(v) for v in frame["value"]]
    x = range(len(labels))
    ax.bar([i - 0.2 for i in x], frame["cost"], width=0.4, color="C0", label="cost to train at the cheapest price (US$)")
    ax.yaxis.set_major_formatter(FuncFormatter(_money))
    ax.set_ylabel("cost to train (US$)")
    ax.set_xticks(list(x), labels)
    ax.set_xlim(-0.6, len(labels) - 0.4)         # keep a value without bars (it cannot run) on the axis
    for i, missing in enumerate(frame["cost"].isna() & frame.get("days", frame["cost"]).isna()):
        if missing:
            ax.text(i, 0, "no layout fits", ha="center", va="bottom", rotation=90, color="0.4")
    ax.set_xlabel(vary)
    handles = ax.get_legend_handles_labels()
    if "days" in frame and frame["days"].notna().any():
        ax2 = ax.twinx()
        ax2.bar([i + 0.2 for i in x], frame["days"], width=0.4, color="C1", label="wall-clock days")
        ax2.set_ylabel("wall-clock days")
        ax2.grid(False)
        h2 = ax2.get_legend_handles_labels()
        handles = (handles[0] + h2[0], handles[1] + h2[1])
    ax.legend(*handles, loc="upper left")
    fig.tight_layout()
    return fig
