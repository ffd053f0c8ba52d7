"""What-if: one input varied, everything else fixed; one row per value.

Each row is built from one cost evaluation's JSON document (what `costbench cost --format json`
prints for that value), so a what-if row is by construction the same numbers as a separate cost
call. This module only condenses those documents into rows, adds ratios to the first row that fits
and the claims that apply (cost_models.claims); bench/cmd_whatif.py runs the evaluations. A value
no parallel layout fits (too few GPUs for the model, say) is a row of its own with the reason.

frame(doc) turns a what-if JSON document into a pandas DataFrame (one row per value) for charts
(`costbench report` draws one from it).
"""

from cost_models import claims

RATIO_OF = ("gpu_hours", "wall_clock_days", "cost_usd_min", "cost_usd_max")



def value_label(value) -> str:
    """A varied value as a person types it: 15T for 15e12 tokens (a number the flags accept back)."""
    if isinstance(value, (list, tuple)):   # --providers aws: a list of one
        return ",".join(value_label(v) for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1e4:
        for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
            if abs(value) >= scale:
                return f"{value / scale:g}{suffix}"
    return str(value)

def _comm_share(cost: dict):
    """Share of step time spent in exposed communication: from the step model's parts where it ran,
    else the older model's assumptions['exposed_comm_share']."""
    step = cost.get("step")
    if step and step.get("seconds"):
        parts = step.get("parts", {})
        # the collectives' exposed time and dp_overlap (compute slowed by the DP collectives beside
        # it); the pipeline bubble is idle time, not communication, and once counted here
        comm = sum(v for k, v in parts.items() if k.endswith("_comm") or k == "dp_overlap")
        return comm / step["seconds"]
    return cost.get("assumptions", {}).get("exposed_comm_share")


def _fabric_rows(cost: dict):
    """--network own: {network: {"providers", "gpu_hours"}} for the price rows timed on another fabric
    than the document's (its fabric_plans); None where every row was timed on one."""
    plans = cost.get("fabric_plans")
    if plans is None:
        return None
    return {net: {"providers": list(dict.fromkeys(r["provider"] for r in cost.get("rows") or [] if r.get("network") == net)),
                  "gpu_hours": p["gpu_hours"], "idle_gpus": (p.get("assumptions") or {}).get("idle_gpus")}
            for net, p in plans.items()}


def row(value, cost: dict, measured: bool = False, measured_from: str | None = None) -> dict:
    """One what-if row from one cost JSON document. cost_usd_min/max: over its price rows."""
    prices = cost.get("rows") or []

    def bill(p):   # what the run is billed (older cost documents lack billed_usd)
        return p.get("billed_usd", p["cost_usd"])

    by_provider = {}   # what each provider bills for this cluster (the claims compare these, as the table)
    for p in prices:
        if not p.get("offer"):   # a listing that does not sell a cluster of this size is no such price
            by_provider[p["provider"]] = min(bill(p), by_provider.get(p["provider"], float("inf")))
    # min and max over the offers that sell this cluster (a 1-GPU or marketplace listing only where
    # none does), each what the run is billed: the cheapest was once a marketplace listing, and a
    # reserved-3y row's $104M commitment read as 1.03x on-demand
    capable = [p for p in prices if not p.get("offer")] or prices
    cheapest = min(capable, key=bill) if capable else None
    a = cost.get("assumptions", {})
    return {
        "value": value, "model": cost["model"]["name"], "gpu": cost["gpu"], "gpus": cost["gpus"],
        "gpu_hours": cost["gpu_hours"], "wall_clock_days": cost["wall_clock_days"],
        "achieved_tflops_per_gpu": cost.get("achieved_tflops_per_gpu"), "mfu": cost.get("mfu"),
        "cost_usd_min": bill(cheapest) if cheapest else None,
        "cost_usd_max": max(map(bill, capable)) if capable else None,
        "commitment_usd": cheapest.get("commitment_usd") if cheapest else None,   # the cheapest row's term
        "cheapest": (f"{cheapest['provider']} {cheapest['pricing']}"
                     + (f" ({cheapest['offer']}: not a cluster of this size)" if cheapest.get("offer") else "")
                     if cheapest else None),
        "price_rows": len(capable), "price_rows_left_out": len(prices) - len(capable),
        "cost_usd_by_provider": by_provider,
        "measured": measured, "measured_from": measured_from,
        "tokens_placeholder": "tokens" in a, "tokens": cost["model"].get("tokens"),
        "network": a.get("network"), "fabric_rows": _fabric_rows(cost),
        "overlap": a.get("overlap"), "exposed_comm_share": _comm_share(cost),
        "parallelism": cost.get("parallelism"), "step": cost.get("step"),
        # GPUs billed but idle (eth-100 at 16,384: 2,560) change the row's hours: say so on the row
        "note": "; ".join(n for n in (cost.get("note"), a.get("idle_gpus")) if n) or None,
        "fits": True,
    }


def cannot_run_row(value, reason: str, gpu=None, gpus=None, kind: str = "no layout fits") -> dict:
    """The row of a value that cannot run (cost_models.errors.CannotRun: no layout fits, a dtype the
    GPU lacks): the row's fields, its figures None, `cannot` = kind and the reason as its note, so
    the table goes on to the other values. The note starts with words, not the flag the reason
    names (a CSV cell starting with '-' is quoted)."""
    keys = row(None, {"model": {"name": None}, "gpu": None, "gpus": None, "gpu_hours": None,
                      "wall_clock_days": None}).keys()
    return {**dict.fromkeys(keys), "value": value, "gpu": gpu, "gpus": gpus, "measured": False, "fits": False,
            "cannot": kind, "note": f"does not run: {reason}"}


def add_ratios(rows: list[dict]) -> list[dict]:
    """ratio_<x> = row's x / the first fitting row's x (None where either is missing or that is 0)."""
    first = next((r for r in rows if r.get("fits", True)), rows[0])
    for r in rows:
        for key in RATIO_OF:
            a, b = r.get(key), first.get(key)
            r[f"ratio_{key}"] = a / b if a is not None and b else None
    return rows


def document(vary: str, rows: list[dict], fixed: dict | None = None) -> dict:
    """The what-if JSON: {"vary", "rows" (with ratios), "claims" (those that apply), "fixed"}."""
    rows = add_ratios(rows)
    fitting = [r for r in rows if r.get("fits", True)]      # claims compare only values that can run
    return {"vary": vary, "rows": rows, "claims": claims.evaluate(vary, fitting), "fixed": fixed or {}}


def flat_rows(doc: dict) -> list[dict]:
    """The rows with `parallelism` flattened to tp/pp/dp/... and `step` to step_seconds and
    step_<part> (the CSV had no layout at all, where the table shows one), and --network own's
    fabric_rows to gpu_hours_<network> (the hours the rows sold on that fabric are billed)."""
    flat = []
    for r in doc["rows"]:
        out = {k: v for k, v in r.items() if k not in ("parallelism", "step", "cost_usd_by_provider", "fabric_rows")}
        out.update({f"gpu_hours_{net}": x["gpu_hours"] for net, x in (r.get("fabric_rows") or {}).items()})
        out.update(r.get("parallelism") or {})
        step = r.get("step") or {}
        if step:
            out["step_seconds"] = step.get("seconds")
            out.update({f"step_{k}": v for k, v in step.get("parts", {}).items()})
        flat.append(out)
    return flat


def frame(doc: dict):
    """pandas DataFrame, one row per varied value, for charts: the row fields with `parallelism`
    flattened to tp/pp/dp/... columns and `step` to step_seconds and step_<part> columns; the
    varied key in df.attrs["vary"] and the claims in df.attrs["claims"]."""
    import pandas as pd

    df = pd.DataFrame([{**r, "value": value_label(r["value"])} for r in flat_rows(doc)])
    df.attrs["vary"] = doc["vary"]
    df.attrs["claims"] = doc.get("claims", [])
    return df
