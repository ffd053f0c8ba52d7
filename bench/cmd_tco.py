"""`costbench tco`: own versus rent. What an owned GPU-hour costs, when owning beats each rental
price in the catalog, and the provider's side: the price that pays back the GPU within its life,
and the payback years at a given price.

Formulas, their derivation and the worked example: cost_models/tco.py. Every default names its
source (cost_models.tco.DEFAULTS); the JSON's `assumptions` says for each input whether it was given
or defaulted, and from where.
"""

import argparse
import sys

from bench.cli import csv_items, csv_list, number, positive, positive_int
from bench.cmd_catalog import add_age_argument, age_text, check_choice, choices_help, emit, usd, warn_stale
from bench.cmd_cost import PRICING_CHOICES
from bench.table import footer_text, format_table, si
from cost_models.errors import InputError

TCO_FORMATS = ("table", "json", "csv")


def prices_list(text):
    """'2,6.16' -> [2.0, 6.16]: rental prices in USD per GPU-hour."""
    values = [number(t) for t in csv_items(text)]   # two vendors may quote one price
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: prices must be non-negative")
    return values


def _pct(value) -> str:
    """Whole percent, but never rounded to 100% or 0%: a 99.5% break-even printed as "100%" read
    as "never" (which prints as "-")."""
    text = f"{value:.0%}"
    if text in ("100%", "0%") and 0 < value < 1:
        text = f"{value:.1%}"
        text = {"100.0%": ">99.9%", "0.0%": "<0.1%"}.get(text, text)
    return text


def _share(u: float) -> str:
    """A utilisation as typed: 70%, 85.5%, 0.1% (0.001 printed as 0%)."""
    return f"{u * 100:.3g}%"


def _years(value) -> str:
    return "never" if value is None else f"{value:.2f}"


COLUMNS = [("provider", "provider", ""), ("pricing", "pricing", ""), ("region", "region", ""),
           ("usd_per_gpu_hour", "$/GPU-h", ".2f"), ("_wins", "owning wins", ""),
           ("saving_usd_over_life", "saving per GPU over life", usd),
           ("payback_years", "payback if rented out (years)", _years),
           ("_age", "age", "")]


def add_arguments(parser, command) -> None:
    from cost_models.tco import CAPEX_USD, DEFAULTS, SERVER_KW_PER_GPU

    def d(key):
        return f"(default {DEFAULTS[key].value:g}: {DEFAULTS[key].source})"

    gpu = parser.add_argument_group("the GPU")
    gpu.add_argument("--gpu", default="H100-SXM", help="GPU type (costbench gpus); default H100-SXM")
    gpu.add_argument("--capex", type=number, help="USD per GPU; include its share of server and network if you know it "
                     f"(default for H100-SXM: {CAPEX_USD['H100-SXM'].value:,}, the GPU alone: "
                     f"{CAPEX_USD['H100-SXM'].source})")
    gpu.add_argument("--life-years", type=number, help=f"useful life {d('life_years')}")
    gpu.add_argument("--residual-fraction", type=number, help=f"resale value at the end, share of capex {d('residual_fraction')}")
    gpu.add_argument("--interest", type=number, help=f"yearly cost of the debt that bought it {d('interest')}")
    run = parser.add_argument_group("running it")
    run.add_argument("--power-kw", type=number, help="kW while working (default: the GPU's TDP from the catalog "
                     f"+ {SERVER_KW_PER_GPU.value} kW server share, {SERVER_KW_PER_GPU.source})")
    run.add_argument("--pue", type=number, help=f"facility power / IT power {d('pue')}")
    run.add_argument("--usd-per-kwh", type=number, help=f"electricity price {d('usd_per_kwh')}")
    run.add_argument("--utilization", type=number, help=f"share of the year's hours it works, 0.001 to 1 {d('utilization')}")
    run.add_argument("--opex-usd-per-gpu-year", type=number, help=f"anything besides power {d('opex_usd_per_year')}")
    rent = parser.add_argument_group("renting")
    rent.add_argument("--rental-price", type=prices_list, metavar="USD[,USD...]",
                      help="the provider's side: payback years when renting the GPU out at these $/GPU-hour")
    rent.add_argument("--pricing", default="on-demand",
                      help="catalog rows to compare with: " + choices_help(PRICING_CHOICES, "on-demand"))
    rent.add_argument("--providers", type=csv_list, help="only these providers, comma-separated")
    rent.add_argument("--region", help="compare with this region only (default: each provider's cheapest region)")
    rent.add_argument("--prices", metavar="FILE", help="CSV with prices.csv's columns: overrides or adds rows")
    add_age_argument(parser)
    run = parser.add_argument_group("a training run (e.g. the GPU-hours `costbench cost` gives)")
    run.add_argument("--gpu-hours", type=positive, help="its GPU-hours: what they cost owned, and at each rental price")
    run.add_argument("--gpus", type=positive_int, help="its cluster: the capex of buying that many GPUs")
    parser.add_argument("--format", default="table", help=choices_help(TCO_FORMATS, "table"))


def owned_gpu(args):
    """(OwnedGpu, GpuSpec, assumptions {input: {"value", "from"}}) from the flags and defaults."""
    from cost_models.hardware import find_gpu
    from cost_models.tco import CAPEX_USD, DEFAULTS, SERVER_KW_PER_GPU, OwnedGpu, default_power_kw

    hw = find_gpu(args.gpu)
    given = {"capex_usd": args.capex, "life_years": args.life_years, "residual_fraction": args.residual_fraction,
             "interest": args.interest, "power_kw": args.power_kw, "pue": args.pue, "usd_per_kwh": args.usd_per_kwh,
             "utilization": args.utilization, "opex_usd_per_year": args.opex_usd_per_gpu_year}
    assumptions = {}
    for key, value in given.items():
        if value is not None:
            assumptions[key] = {"value": value, "from": "given"}
        elif key == "capex_usd":
            if hw.name not in CAPEX_USD:
                raise InputError(f"--capex: no default price for {hw.name} (only for {', '.join(CAPEX_USD)}); "
                                 "give USD per GPU including its share of server and network")
            assumptions[key] = {"value": CAPEX_USD[hw.name].value, "from": CAPEX_USD[hw.name].source}
        elif key == "power_kw":
            assumptions[key] = {"value": default_power_kw(hw.tdp_w),
                                "from": f"{hw.name} TDP {hw.tdp_w:g} W (gpus.csv) + "
                                        f"{SERVER_KW_PER_GPU.value} kW ({SERVER_KW_PER_GPU.source})"}
        else:
            assumptions[key] = {"value": DEFAULTS[key].value, "from": DEFAULTS[key].source}
    gpu = OwnedGpu(**{k: v["value"] for k, v in assumptions.items()})
    return gpu, hw, assumptions


def _run(gpu, args) -> dict | None:
    """The run's side (--gpu-hours, --gpus): its hours at the owned rate (the fleet's cost share at
    the assumed utilisation) and the capex of buying its cluster, set beside the rental rows."""
    if args.gpu_hours is None:
        if args.gpus is not None:
            raise InputError("--gpus: give the run's --gpu-hours too (the cluster alone prices nothing)")
        return None
    return {"gpu_hours": args.gpu_hours, "owned_usd": args.gpu_hours * gpu.owned_usd_per_gpu_hour(),
            "gpus": args.gpus, "capex_usd": args.gpus * gpu.capex_usd if args.gpus else None}


def _rows(gpu, prices, ref, stale_months) -> list[dict]:
    """One row per rental price; its age as `cost` shows it (owning set against a 2-year-old quote
    read as current: hostile tester)."""
    from cost_models.prices import age_days, is_stale

    from cost_models.prices import TERM_HOURS

    def row(p):
        # a reservation is paid for every hour of its term: owning is then set against price /
        # utilisation per used hour, wins below a utilisation (its power follows use), and a GPU
        # rented out on such a term is paid every hour (a 58% "owning wins above" at $1.93 was the
        # on-demand reading of a reserved-3y row)
        term = p.pricing in TERM_HOURS
        price = p.usd_per_gpu_hour
        return {"provider": p.provider, "pricing": p.pricing, "region": p.region, "usd_per_gpu_hour": price,
                "committed": term, "owning_wins": "below" if term else "above",
                "break_even_utilization": gpu.break_even_committed(price) if term else gpu.break_even_utilization(price),
                "saving_usd_over_life": gpu.saving_usd_over_life(price, committed=term),
                "payback_years": gpu.payback_years(price, 1.0 if term else None), "as_of": p.as_of,
                "age_days": age_days(p, ref), "stale": is_stale(p, ref, stale_months), "source": p.source}

    return [row(p) for p in sorted(prices, key=lambda p: (p.usd_per_gpu_hour, p.provider))]


def _wins(row) -> str:
    """'above 58%' (owning is cheaper above that utilisation), 'below 80%' (against a term price),
    'always', or '-' (never)."""
    u = row["break_even_utilization"]
    if u is None:
        return "-"
    if row.get("owning_wins") == "below":
        return "always" if u >= 1 else f"below {_pct(u)}"
    return f"above {_pct(u)}"


def _provider_side(gpu, rental_prices) -> dict:
    from cost_models.claims import claim
    from cost_models.tco import SENSITIVITY_LIFE_YEARS

    lo, hi = claim("utilisation 70% -> 85%").claimed
    def underwater(years, life):
        return years is None or years > life

    payback = []
    for p in rental_prices:
        n = gpu.payback_years(p)
        payback.append({"usd_per_gpu_hour": p, "payback_years": n, "underwater": underwater(n, gpu.life_years),
                        "underwater_by_life_years": {str(life): underwater(n, life) for life in SENSITIVITY_LIFE_YEARS}})
    return {"utilization": gpu.utilization, "life_years": gpu.life_years,
            "payback_price_usd_per_gpu_hour": gpu.payback_price(),
            "payback_price_by_utilization": {str(u): gpu.payback_price(u) for u in (lo, hi)},
            "payback": payback}


def _utilization_claim(gpu) -> dict:
    from cost_models.claims import claim

    c = claim("utilisation 70% -> 85%")
    lo, hi = c.claimed
    at_lo, at_hi = gpu.owned_usd_per_gpu_hour(lo), gpu.owned_usd_per_gpu_hour(hi)
    return {"claim": c.label, "text": c.text, "source": c.source,
            "owned_usd_per_gpu_hour": {str(lo): at_lo, str(hi): at_hi}, "owned_change": at_hi / at_lo - 1,
            "payback_price_usd_per_gpu_hour": {str(lo): gpu.payback_price(lo), str(hi): gpu.payback_price(hi)}}


def tco_document(args) -> dict:
    from cost_models.prices import cheapest_regions, load_prices, select, today

    check_choice("pricing", args.pricing, PRICING_CHOICES)
    gpu, hw, assumptions = owned_gpu(args)
    run = _run(gpu, args)   # before any warning: --gpus alone is refused first
    prices = select(load_prices(args.prices), hw.name, args.pricing, args.providers, args.region)
    if args.region is None:  # one row per provider and kind, as `costbench cost` shows
        prices = cheapest_regions(prices)
    ref = today()
    warn_stale(prices, ref, args.stale_months, "tco")
    return {
        "gpu": hw.name, "utilization": gpu.utilization,
        "owned_usd_per_gpu_hour": gpu.owned_usd_per_gpu_hour(),
        "breakdown": {"capital_usd_per_year": gpu.capital_usd_per_year,
                      "depreciation_usd_per_year": gpu.depreciation_usd_per_year,
                      "interest_usd_per_year": gpu.interest_usd_per_year,
                      "opex_usd_per_year": gpu.opex_usd_per_year,
                      "fixed_usd_per_used_hour": gpu.owned_usd_per_gpu_hour() - gpu.power_usd_per_used_hour,
                      "power_usd_per_used_hour": gpu.power_usd_per_used_hour},
        "assumptions": assumptions,
        "rows": _rows(gpu, prices, ref, args.stale_months),
        "run": run,
        "provider_side": _provider_side(gpu, args.rental_price or []),
        "sensitivity": gpu.sensitivity(),
        "claims": [_utilization_claim(gpu)],
        "formula": "owned = (capital + opex per year) / (8760 x utilisation) + kW x PUE x $/kWh; capital = "
                   "(capex - residual / (1+r)^life) x r / (1 - (1+r)^-life), straight-line (capex - residual) "
                   "/ life at r = 0 (cost_models/tco.py)",
    }


def _print(doc, out) -> None:
    b, a, side = doc["breakdown"], doc["assumptions"], doc["provider_side"]

    def say(text: str) -> None:   # one line of prose, wrapped to a terminal's width (bench.table.footer_text)
        out.write(footer_text(text.split("\n"), out, indent=None) + "\n")

    u = doc["utilization"]
    say(f"owned {doc['gpu']}: ${doc['owned_usd_per_gpu_hour']:.4f} per used GPU-hour at {_share(u)} utilisation "
        f"= capital+opex ${b['fixed_usd_per_used_hour']:.4f} + power ${b['power_usd_per_used_hour']:.4f}")
    say(f"  capital ${b['capital_usd_per_year']:,.0f}/year = depreciation ${b['depreciation_usd_per_year']:,.0f} "
        f"+ interest ${b['interest_usd_per_year']:,.0f}; opex ${b['opex_usd_per_year']:,.0f}/year")
    for key, v in a.items():
        say(f"  {key:<18} {v['value']:g}  ({v['from']})")
    if a["capex_usd"]["from"] != "given":   # set against rental prices that include the host and fabric
        say("  the default capex is the GPU alone (no server, fabric, storage or facility share) while a rental "
            "price includes them: the owned cost is a floor; pass --capex with your all-in cost per GPU")
    say("")
    run = doc.get("run")
    if doc["rows"]:
        rows = [{**r, "_age": age_text(r["age_days"], r["stale"]), "_wins": _wins(r),
                 "_run": run["gpu_hours"] * r["usd_per_gpu_hour"] if run else None} for r in doc["rows"]]
        columns = COLUMNS[:4] + ([("_run", "the run rented", usd)] if run else []) + COLUMNS[4:]
        out.write(format_table(rows, columns) + "\n")
        say(f"  saving per GPU over life: renting the same used hours minus owning, at {_share(u)} utilisation over "
            f"{side['life_years']:g} years (negative: owning costs more); payback: renting the GPU out at "
            "that price" + ("; a reserved row is paid for every hour of its term: each used hour costs its rate / "
                            "utilisation, owning wins below a utilisation (its power follows use), and a GPU "
                            "rented out on such a term is paid every hour" if any(r["committed"] for r in rows)
                            else "") + "\n")
    else:
        say(f"no catalog prices for {doc['gpu']} with these filters\n")
    if run:
        capex = (f"; buying its {run['gpus']:,} GPUs is {usd(run['capex_usd'])} up front" if run["gpus"] else "")
        say(f"this run: {si(run['gpu_hours'])} GPU-hours owned cost {usd(run['owned_usd'])} at "
            f"${doc['owned_usd_per_gpu_hour']:.2f} per used GPU-hour (its share of the fleet's cost at "
            f"{_share(u)} utilisation){capex}; rented: the table's 'the run rented' column\n")
    say(f"provider's side: the rental price that pays back capex and interest within {side['life_years']:g} "
        f"years is ${side['payback_price_usd_per_gpu_hour']:.2f}/GPU-hour at {_share(u)} utilisation ("
        + ", ".join(f"${p:.2f} at {float(k):.0%}" for k, p in side["payback_price_by_utilization"].items()) + ")")
    for p in side["payback"]:
        lives = p["underwater_by_life_years"]
        under = [k for k, v in lives.items() if v]
        state = (f"underwater on a {', '.join(under)}-year life" if under else
                 f"pays back within {', '.join(lives)} years")
        years = "never" if p["payback_years"] is None else f"in {_years(p['payback_years'])} years"
        rate = p["usd_per_gpu_hour"]   # as given where cents would merge two prices the user told apart
        shown = f"{rate:.2f}" if round(rate, 2) == rate else f"{rate:.6g}"
        say(f"  renting out at ${shown}/GPU-hour: payback {years} at {_share(u)} ({state})")
    s = doc["sensitivity"]
    rows = [{"life": f"{life:g} years", **{str(u): v for u, v in zip(s["utilization"], vals)}}
            for life, vals in zip(s["life_years"], s["owned_usd_per_gpu_hour"])]
    say("\nowned $/used GPU-hour, life x utilisation")
    out.write(format_table(rows, [("life", "life", "")] + [(str(u), f"{u:.0%}", ".3f") for u in s["utilization"]]) + "\n")
    for c in doc["claims"]:
        (lo, at_lo), (hi, at_hi) = c["owned_usd_per_gpu_hour"].items()
        say(f"\nclaim: {c['text']} ({c['source']}): owned ${at_lo:.3f} -> ${at_hi:.3f} per used GPU-hour "
            f"({c['owned_change']:+.1%}) from {float(lo):.0%} to {float(hi):.0%}")


def main(args) -> int:
    check_choice("format", args.format, TCO_FORMATS)
    doc = tco_document(args)
    if args.format == "json":
        emit([], [], "json", sys.stdout, doc)
    elif args.format == "csv":   # the comparison table, one line per rental row, the owned figures on each
        owned = {k: doc[k] for k in ("gpu", "utilization", "owned_usd_per_gpu_hour")}
        emit([{**owned, **r} for r in doc["rows"]] or [owned], [], "csv", sys.stdout)
    else:
        _print(doc, sys.stdout)
    return 0
