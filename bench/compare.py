"""Compare result files side by side: what each machine delivered and what training would cost there.

    compare(paths, model="llama3-70b") -> pandas DataFrame, one row per setup, best first

A setup is (tag, GPU, nodes, world size); several runs of one setup are summarised (median of each
figure, `n_runs`, and the spread (max - min) / median of the headline figures), not listed as
rivals. Each row holds the measured MAMF per dtype and its efficiency, memory bandwidth, the best
bus bandwidth per collective and at 256 MiB, flagged stragglers, the provider's price (the tag's
part before "/" is the provider, the part after it the region, as in `costbench run --tag
coreweave/us-east`), delivered compute per dollar and the days and dollars to train the model from
that run's measured components (cost_models.cost.plan_training with the run's Throughput: the path
`costbench cost --results FILE` takes).

Delivered compute per dollar, in $ per PFLOP-hour: a GPU that sustains M TFLOP/s for one hour
delivers M / 1000 PFLOP-hours, so $/PFLOP-hour = ($/GPU-hour) / (M / 1000), with M the measured
MAMF of PER_PFLOP_DTYPES' first measured dtype (bf16, what training runs; named in `pflop_dtype`).

An unreadable file found in a directory is skipped with a warning (load_runs returns them): one
bad file among many should not hide the others. A file named on the command line is one the user
meant: unreadable, it is an error (InputError), as `cost --results` makes it. Torch-free: bench.results.load reads the files.
"""

import glob
import math
import os

from bench.results import COLLECTIVES, MIB_256  # torch-free; the one home of both
from cost_models.errors import InputError

PER_PFLOP_DTYPES = ("bf16", "fp16", "tf32", "fp32")  # never fp8: training's matmuls are not priced at fp8
DEFAULT_MODEL = "llama3-70b"
DEFAULT_PRICING = "on-demand"
SPREAD_OF = ("mamf_bf16", "mamf_fp16", "mamf_tf32", "mamf_fp32", "mamf_fp8", "membw_gbps",
             "busbw_allreduce_gbps", "cost_usd")


# ---- reading ------------------------------------------------------------------------------------

def expand(paths) -> list[str]:
    """Files as given; a directory contributes its *.json files (not recursive: results/ holds one
    folder per purpose, e.g. results/reference/, and a run's folder is what a user points at)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(glob.glob(os.path.join(p, "*.json")))
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def load_runs(paths) -> tuple[list[tuple[str, dict]], list[str]]:
    """([(path, result doc)], [warning lines]) for the given files and directories."""
    from bench.results import load

    runs, warnings = [], []
    files = expand(paths)
    for p in paths:
        if os.path.isdir(p) and not glob.glob(os.path.join(p, "*.json")):
            warnings.append(f"{p}: directory holds no *.json result files")
    named = {os.path.normpath(p) for p in paths if not os.path.isdir(p)}
    for path in files:
        try:
            runs.append((path, load(path)))
        except InputError as e:
            if os.path.normpath(path) in named:
                raise
            warnings.append(f"skipped {e}")
    return runs, warnings


def load_usable_runs(paths, warn=None) -> list[tuple[str, dict]]:
    """load_runs, its warnings passed to warn(line); InputError when no file is readable. Then
    the last reason is the error line itself (one file given: one line naming it and what is
    wrong with it, not a warning followed by a bare "no readable result files")."""
    warn = warn or (lambda _: None)
    runs, warnings = load_runs(paths)
    if runs:
        for w in warnings:
            warn(w)
        return runs
    for w in warnings[:-1]:
        warn(w)
    where = ", ".join(map(str, paths))
    last = warnings[-1].removeprefix("skipped ") if warnings else "nothing to read"
    more = f" ({len(warnings) - 1} more above)" if len(warnings) > 1 else ""
    where = "" if last.startswith(where) else f" in {where}"
    raise InputError(f"no readable result files{where}: {last}{more}")


# ---- one run --------------------------------------------------------------------------------------

def provider_region(tag: str | None) -> tuple[str | None, str | None]:
    """'coreweave/us-east' -> ('coreweave', 'us-east'); 'aws' -> ('aws', None); None -> (None, None)."""
    if not tag:
        return None, None
    provider, _, region = tag.partition("/")
    return provider.strip().lower() or None, region.strip() or None


def gpu_name(doc: dict) -> str:
    """The run's GPU as compare shows it: catalog name, else torch's name, else 'cpu'."""
    m = doc["machine"]
    gpu = m.get("gpu") or {}
    if m.get("device") != "cuda":
        return "cpu"
    return gpu.get("normalized") or gpu.get("name") or "gpu"


def _num(x):
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def stragglers(summary: dict) -> list[str]:
    """One line per flagged GPU: summary.stragglers (the fingerprint's verdict: rank, host, uuid,
    reason) where the file has it, else ranks below 90% of the median rank's MAMF."""
    listed = summary.get("stragglers")
    if isinstance(listed, list):
        out = []
        for s in listed:
            if isinstance(s, dict):
                who = " ".join(str(s[k]) for k in ("rank", "host", "uuid") if s.get(k) is not None)
                out.append(f"rank {who}: {s.get('reason', 'flagged')}" if who else str(s.get("reason", s)))
            else:
                out.append(str(s))
        return out
    from bench.stragglers import slow_ranks

    out = []
    for dtype, values in (summary.get("mamf_tflops_by_rank") or {}).items():
        if isinstance(values, list):
            out += [f"rank {r}: {dtype} MAMF {f:.0%} of the median rank's" for r, f in slow_ranks(values)]
    return out


def busbw_per_size(doc: dict, op: str) -> dict:
    """{bytes: best busbw GB/s} over the records the op's figures quote (results.quoted_collective_records)."""
    from bench.results import quoted_collective_records

    out = {}
    for r in quoted_collective_records(doc["records"], op):
        if _num(r.get("busbw_gbps")) is not None and isinstance(r.get("bytes"), int):
            out[r["bytes"]] = max(out.get(r["bytes"], 0.0), float(r["busbw_gbps"]))
    return out


def collective_figures(doc: dict, op: str) -> tuple[float | None, float | None]:
    """(best busbw, busbw at 256 MiB) in GB/s: summary.collectives where written, else the records."""
    s = doc["summary"]
    entry = (s.get("collectives") or {}).get(op) or {}
    best, at256 = _num(entry.get("busbw_gbps_max")), _num(entry.get("busbw_gbps_256mib"))
    if op == "allreduce" and best is None:
        best = _num(s.get("busbw_gbps_max"))
    sizes = busbw_per_size(doc, op)
    if best is None and sizes:
        best = max(sizes.values())
    if at256 is None:
        at256 = sizes.get(MIB_256)
    if (doc["machine"].get("world_size") or 1) == 1 and not best:
        return None, None  # one process: no link measured, 0 by definition, not a figure to rank
    return best, at256


def _price(prices, provider, region, gpu, pricing, gpus=None):
    """(Price or None, note): the tag's provider's row for this GPU and pricing kind: in the tag's
    region where the catalog lists it, else a row for every region ("all" or none), else the
    provider's cheapest region for a cluster of `gpus` (cheapest_regions, as `costbench cost`
    prices a provider)."""
    from cost_models.cost import GPUS_PER_NODE
    from cost_models.prices import cheapest_regions

    rows = [p for p in prices if p.provider == provider and p.gpu == gpu and p.pricing == pricing]
    if not rows:
        return None, f"no {pricing} price for {provider}/{gpu}"
    exact = [p for p in rows if region and p.region.lower() == region.lower()]
    if exact:
        return exact[0], None
    everywhere = [p for p in rows if p.region in ("", "all")]
    best = everywhere[0] if everywhere else cheapest_regions(rows, gpus, GPUS_PER_NODE)[0]
    note = (f"region {region} not priced; {best.region} used" if region and best.region not in ("", "all")
            else None)
    return best, note


def run_row(path: str, doc: dict, model: str, prices, pricing: str, gpus: int | None = None) -> dict:
    """The figures of one result file (keys as the DataFrame's columns); `gpus`: the cluster to
    plan on (default: sized as `cost` sizes it)."""
    from cost_models.cost import price_rows

    s, m = doc["summary"], doc["machine"]
    provider, region = provider_region(doc.get("tag"))
    gpu = gpu_name(doc)
    row = {"tag": doc.get("tag") or "(no tag)", "provider": provider, "region": region, "gpu": gpu,
           "device": m.get("device"), "nodes": int(m.get("nodes") or 1), "world_size": int(m.get("world_size") or 1),
           "run_id": doc.get("run_id"), "created_at": doc.get("created_at"), "file": path,
           "complete": s.get("complete", True) is not False}
    notes = [] if row["complete"] else ["incomplete run"]
    for dtype, v in (s.get("mamf_tflops") or {}).items():
        if _num(v):
            row[f"mamf_{dtype}"] = float(v)
            row[f"eff_{dtype}"] = _num((s.get("efficiency") or {}).get(dtype))
            row[f"peak_{dtype}"] = _num((s.get("peak_tflops") or {}).get(dtype))
    row["membw_gbps"] = _num(s.get("membw_gbps"))
    row["membw_efficiency"] = _num(s.get("membw_efficiency"))
    for op in COLLECTIVES:
        row[f"busbw_{op}_gbps"], row[f"busbw_{op}_256mib_gbps"] = collective_figures(doc, op)
    flagged = stragglers(s)
    row["stragglers"], row["straggler_detail"] = len(flagged), "; ".join(flagged) or None

    dtype = next((d for d in PER_PFLOP_DTYPES if row.get(f"mamf_{d}")), None)
    row["pflop_dtype"] = dtype
    plan, row["_throughput"] = _plan(path, doc, gpu, model, notes, gpus)
    a = plan.assumptions if plan else {}
    row["measured_parts"] = ", ".join(a.get("measured_parts") or ()) or None
    row["catalog_parts"] = ", ".join(a.get("catalog_parts") or ()) or None
    if row["catalog_parts"]:   # a run that measured less may rank cheaper on the catalog's faster rates
        notes.append(f"catalog parts: {row['catalog_parts']}")
    row["failed_checks"] = _failed(doc)
    if row["failed_checks"]:   # a check that fails is loud, here too: this table ranks providers
        notes.append(f"{row['failed_checks']} measurement(s) failed their correctness check")
    price = None
    if provider is None:
        notes.append("no tag: no provider to price" if not doc.get("tag") else
                     "its tag names no provider (the part before '/'): nothing to price")
    else:
        price, why = _price(prices, provider, region, gpu, pricing, plan.gpus if plan else None)
        if price is None and gpu == "cpu":   # the row it lacks: with its pricing kind where others exist
            kinds = sorted({p.pricing for p in prices if p.provider == provider and p.gpu == gpu})
            why = (f"CPU run: no {pricing} price (a --prices row with gpu cpu, provider {provider} and pricing "
                   f"{pricing} prices it; the file has {', '.join(kinds)})" if kinds else
                   f"CPU run: no price (a --prices row with gpu cpu and provider {provider} prices it)")
        notes += [why] if why else []
    row["pricing"] = pricing
    row["usd_per_gpu_hour"] = price.usd_per_gpu_hour if price else None
    row["price_region"] = (price.region or None) if price else None
    row["price_as_of"] = price.as_of if price else None
    row["price_source"] = price.source if price else None
    row["usd_per_pflop_hour"] = (price.usd_per_gpu_hour / (row[f"mamf_{dtype}"] / 1000)
                                 if price and dtype else None)

    row["model"] = model
    row["cluster_gpus"] = plan.gpus if plan else None
    row["cluster_gpus_from"] = plan.assumptions.get("gpus_from") if plan else None
    row["gpu_hours"] = plan.gpu_hours if plan else None
    row["days"] = plan.wall_clock_days if plan else None
    row["step_s"] = (getattr(plan, "step", None) or {}).get("seconds") if plan else None
    priced = price_rows(plan, [price])[0] if plan and price else {}
    for key in ("cost_usd", "cost_usd_low", "cost_usd_high", "commitment_usd", "billed_usd", "age_days", "stale",
                "offer"):
        row[key] = priced.get(key)
    if priced.get("offer"):
        notes.append(f"offer: {priced['offer']}, not a {plan.gpus:,}-GPU cluster of NVLink nodes on a fabric")
    for end in ("low", "high"):  # no published range: both ends are the list price
        if row[f"cost_usd_{end}"] is None:
            row[f"cost_usd_{end}"] = row["cost_usd"]
    row["_plan"] = plan  # for charts; "_" keys stay out of the DataFrame
    row["note"] = "; ".join(notes) or None
    return row


def _failed(doc) -> int:
    from cost_models.throughput import failed_checks

    s = doc["summary"]
    layer = s.get("layer") if isinstance(s.get("layer"), dict) else {}
    return failed_checks(doc.get("records"), s.get("failed_checks"), layer.get("failed_checks"))


def _plan(path, doc, gpu, model, notes, gpus=None):
    """(plan_training from the run's measured components, the run's Throughput), or None for the plan
    and a note where the run cannot be planned (a GPU not in the catalog, figures the model needs missing)."""
    from cost_models.cost import plan_training
    from cost_models.hardware import find_gpu
    from cost_models.throughput import Throughput

    if gpu != "cpu":  # a CPU is the device "cpu", planned from its own measured rates as `cost --results` does
        try:
            find_gpu(gpu)
        except InputError:
            notes.append(f"{gpu} not in the GPU catalog")
            return None, None
    throughput = Throughput.from_result(doc, source=path)
    try:
        return plan_training(model=model, gpu=gpu, throughput=throughput, gpus=gpus), throughput
    except InputError as e:  # e.g. a CPU run without the membw or layer figures the step model needs
        notes.append(f"no cost to train: {e}")
        return None, throughput


# ---- many runs -------------------------------------------------------------------------------------

KEY = ["tag", "gpu", "nodes", "world_size"]

def one_cluster_per_setup(rows: list[dict], docs: dict, model: str, prices, pricing: str) -> list[dict]:
    """Runs of one setup (KEY) that were sized to different clusters, planned again on the largest of
    them (each run then finishes within the sizing's 30 days): their medians were once of days and
    costs at 1,024 and 2,048 GPUs, shown as a "1,536-GPU" row that neither run had."""
    groups: dict = {}
    for i, r in enumerate(rows):
        groups.setdefault(tuple(r[k] for k in KEY), []).append(i)
    for members in groups.values():
        sizes = {rows[i]["cluster_gpus"] for i in members if rows[i]["cluster_gpus"]}
        if len(sizes) < 2:
            continue
        target = max(sizes)
        for i in members:
            if rows[i]["cluster_gpus"] and rows[i]["cluster_gpus"] != target:
                try:
                    rows[i] = run_row(rows[i]["file"], docs[rows[i]["file"]], model, prices, pricing, gpus=target)
                except InputError as e:   # cannot be planned there: it keeps its own size, and says so
                    rows[i]["note"] = "; ".join(x for x in (rows[i]["note"], f"not re-planned on {target:,} GPUs: "
                                                            f"{e}") if x)
            rows[i]["cluster_gpus_from"] = (f"the largest cluster any of this setup's {len(members)} runs was "
                                            f"sized to ({', '.join(f'{n:,}' for n in sorted(sizes))})")
    return rows



def summarise(rows: list[dict]):
    """DataFrame, one row per setup (KEY): numeric columns are medians over its runs."""
    import pandas as pd

    df = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows])
    numeric = [c for c in df.columns if c not in KEY and pd.api.types.is_numeric_dtype(df[c])
               and not pd.api.types.is_bool_dtype(df[c])]
    out = []
    for key, group in df.groupby(KEY, sort=False, dropna=False):
        first = group.iloc[0].to_dict()
        row = {**first, **{c: group[c].median() for c in numeric}}
        row["n_runs"] = len(group)
        if row.get("cluster_gpus") == row.get("cluster_gpus"):   # a GPU count, not NaN: whole, as planned
            row["cluster_gpus"] = int(round(row["cluster_gpus"])) if row["cluster_gpus"] is not None else None
        for c in SPREAD_OF:
            if c in group and group[c].notna().sum() > 1 and group[c].median():
                row[f"{c}_spread"] = (group[c].max() - group[c].min()) / group[c].median()
            elif c in group:
                row[f"{c}_spread"] = None if len(group) > 1 else 0.0
        row["complete"] = bool(group["complete"].all())
        row["run_ids"] = ", ".join(str(x) for x in group["run_id"])
        row["files"] = ", ".join(group["file"])
        # each run's note items once; the catalog parts as one item, the union (set below)
        items = [i for n in group["note"] if isinstance(n, str) for i in n.split("; ")]
        row["note"] = "; ".join(dict.fromkeys(i for i in items if not i.startswith("catalog parts: "))) or None
        row["straggler_detail"] = "; ".join(dict.fromkeys(
            n for n in group["straggler_detail"] if isinstance(n, str))) or None
        row["stragglers"] = int(group["stragglers"].max())
        if "failed_checks" in group:   # a count, the worst run's (a median of 0 and 3 read 1.5, shown 0.0 as a float)
            row["failed_checks"] = int(group["failed_checks"].fillna(0).max())
        # the parts any run took from the catalog, and those every run measured: one run's lists
        # once stood for the merged row's median
        parts = [str(p).split(", ") if isinstance(p, str) else [] for p in group["catalog_parts"]]
        row["catalog_parts"] = ", ".join(dict.fromkeys(x for ps in parts for x in ps)) or None
        if row["catalog_parts"]:
            row["note"] = "; ".join(x for x in (f"catalog parts: {row['catalog_parts']}", row["note"]) if x)
        lists = [p.split(", ") if isinstance(p, str) else [] for p in group["measured_parts"]]
        row["measured_parts"] = ", ".join(x for x in dict.fromkeys(x for ps in lists for x in ps)
                                          if all(x in ps for ps in lists)) or None
        dtype = row.get("pflop_dtype")
        mamf = row.get(f"mamf_{dtype}") if isinstance(dtype, str) else None
        if row.get("usd_per_gpu_hour") and mamf:   # the footer's formula on the row's own figures
            row["usd_per_pflop_hour"] = row["usd_per_gpu_hour"] / (mamf / 1000)
        out.append(row)
    table = pd.DataFrame(out).drop(columns=["run_id", "file", "created_at"], errors="ignore")
    # as cost ranks: offers that sell the cluster first, then by what the run is billed
    table["_no_cluster"] = table["offer"].map(lambda o: isinstance(o, str) and bool(o))
    table = table.sort_values(["_no_cluster", "billed_usd", "usd_per_pflop_hour", "tag"], na_position="last",
                              kind="stable").drop(columns=["_no_cluster"])
    return table.reset_index(drop=True)


def compare_runs(runs: list[tuple[str, dict]], model: str = DEFAULT_MODEL, prices=None,
                 pricing: str = DEFAULT_PRICING, warn=None):
    """compare() on already loaded runs; the per-run rows (with each run's TrainingPlan under
    "_plan", for charts) are in df.attrs["runs"]."""
    from cost_models.models import find_model
    from cost_models.prices import PRICING_KINDS, load_prices

    if pricing not in PRICING_KINDS:  # one kind per comparison; `costbench cost --pricing all` lists them all
        from cost_models.errors import unknown_name
        raise unknown_name("pricing", pricing, PRICING_KINDS)
    warn = warn or (lambda _: None)
    find_model(model)  # an unknown model is bad input, not one warning per file
    table = prices if isinstance(prices, list) else load_prices(prices)
    rows, docs, skipped, ids = [], {}, [], {}
    for path, doc in runs:
        run_id = doc.get("run_id")
        if run_id and run_id in ids:   # a copy of a run is not a second measurement (medians, spread)
            warn(f"skipped {path}: the same run_id as {ids[run_id]} (a copy?); each run is counted once")
            continue
        try:
            rows.append(run_row(path, doc, model, table, pricing))
            docs[path] = doc
            if run_id:
                ids[run_id] = path
        except InputError as e:  # a field the cost model rejects (a negative MAMF): skip that file
            skipped.append(str(e))
    if not rows:   # the reason is the error line itself (a warning then a bare error said it twice)
        for line in skipped[:-1]:
            warn(f"skipped {line}")
        more = f" ({len(skipped) - 1} more above)" if len(skipped) > 1 else ""
        raise InputError(f"no usable result files: {skipped[-1] if skipped else ', '.join(p for p, _ in runs)}{more}")
    for line in skipped:
        warn(f"skipped {line}")
    rows = one_cluster_per_setup(rows, docs, model, table, pricing)
    for row in rows:
        if not row["complete"]:   # as cost --results warns: what the run did not measure is the catalog's
            warn(f"{row['file']}: its run stopped before the end (complete: false): what it "
                                       "did not measure is the catalog's")
        if row["failed_checks"]:
            warn(f"{row['file']}: {row['failed_checks']} of its measurements failed their "
                                       "correctness check (the figures come from those that passed: look at the "
                                       "run before trusting them)")
    df = summarise(rows)
    df.attrs["runs"] = rows
    return df


def compare(paths, model: str = DEFAULT_MODEL, prices=None, pricing: str = DEFAULT_PRICING, warn=None):
    """DataFrame comparing the runs in `paths` (files and directories), best first: by cost to train
    `model`, then by $ per delivered PFLOP-hour. Unreadable files are skipped and reported through
    warn(line) (default: ignored; the CLI prints them on stderr). No readable file -> InputError.
    prices: a --prices CSV path or a list of cost_models.prices.Price (default: the catalog)."""
    runs = load_usable_runs(paths, warn)
    return compare_runs(runs, model, prices, pricing, warn)
