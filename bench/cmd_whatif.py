"""`costbench whatif --vary KEY=V1,V2,... [any cost flags]`: one input varied, everything else fixed.

Every row is one run of `costbench cost` (bench.cmd_cost.main with --format json) with the cost
flag --KEY set to one value: the same parser types, defaults and code path, so a row's numbers are
exactly what a separate `costbench cost ... --KEY V` prints, and any flag `cost` gains can be varied
or fixed here. cost_models.whatif condenses the cost documents into rows with ratios to the first
row; cost_models.claims sets them next to the published claims they test.

Examples:
  costbench whatif --vary network=ib-ndr-400,eth-100 --gpus 2048         (Llama 3 70B, H100s)
  costbench whatif --vary gpu=A100-SXM-80GB,H100-SXM,H200-SXM,B200 --gpus 2048
  costbench whatif --vary virtualization-overhead=0,0.05,0.1
"""

import argparse
import contextlib
import io
import json
import re
import sys

from bench.cli import first_repeat
from bench.cmd_catalog import FORMATS, check_choice, emit, usd
from bench.table import days, si, warn
from cost_models.errors import CannotRun, InputError, NoLayoutError, unknown_name
from cost_models.units import check_plausible

NOT_VARIED = ("help", "format", "vary")   # cost flags that make no sense as a varied input


def _ratio(value) -> str:
    return f"{value:.2f}x"


COLUMNS = [("value", "value", ""), ("gpu", "GPU", ""), ("gpus", "GPUs", ","), ("gpu_hours", "GPU-hours", si),
           ("wall_clock_days", "days", days), ("cost_usd_min", "cost min", usd),
           ("commitment_usd", "term commitment", usd), ("cost_usd_max", "cost max", usd),
           ("ratio_gpu_hours", "x hours", _ratio), ("ratio_wall_clock_days", "x days", _ratio),
           ("ratio_cost_usd_min", "x cost", _ratio), ("layout", "layout", ""),
           ("exposed_comm_share", "exposed comm", ".1%"), ("figures", "figures", "")]


def add_arguments(parser, command) -> None:
    from bench import cmd_cost

    parser.add_argument("--vary", required=True, action="append", metavar="KEY=V1,V2,...",
                        help="the one input varied: a cost flag without its dashes (gpu, network, gpus, pricing, "
                             "dtype, tokens, virtualization-overhead, ...) and its values; all else fixed")
    cmd_cost.add_arguments(parser, "cost")


def parse_vary(text: str) -> tuple[str, list[str]]:
    key, sep, values = text.partition("=")
    key = key.strip().removeprefix("--")
    if not sep or not key:
        raise InputError(f"--vary {text!r}: expected KEY=V1,V2,... (e.g. gpu=A100-SXM-80GB,H100-SXM)")
    items = [v.strip() for v in values.split(",")]
    if not any(items):
        raise InputError(f"--vary {key}: no values given (e.g. {key}=V1,V2)")
    if not all(items):   # as every comma list: `gpu=H100,,A100` is a typo, not two values
        raise InputError(f"--vary {key}={values}: an empty item in the list")
    return key, items


def _cost_actions() -> dict:
    """cost flag name (no dashes) -> its argparse action, for flags that take a value."""
    from bench.cli import build_parser

    parser, _ = build_parser("cost")
    return {opt[2:]: a for a in parser._actions for opt in a.option_strings
            if opt.startswith("--") and a.nargs != 0 and opt[2:] not in NOT_VARIED}


def _convert(action, key: str, text: str):
    if action.type is None:
        return text
    try:
        return action.type(text)
    except (argparse.ArgumentTypeError, ValueError) as e:
        raise InputError(f"--vary {key}: {text!r}: {e}") from None


def cost_document(args, warnings: list | None = None) -> dict:
    """What `costbench cost --format json` prints for these parsed cost flags. Its warnings
    (stderr lines) go to `warnings` when given, so that a what-if prints each once, not per row."""
    from bench import cmd_cost

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        cmd_cost.main(argparse.Namespace(**{**vars(args), "format": "json"}), command="whatif", warn_age=False)
    if warnings is not None:
        warnings += err.getvalue().splitlines()
    else:
        sys.stderr.write(err.getvalue())
    return json.loads(out.getvalue())


def _measured_gpu(path: str | None) -> str | None:
    """The catalog GPU a result file measured (None without a file): its rows are 'measured'."""
    if path is None:
        return None
    from bench.results import load
    from cost_models.throughput import Throughput

    return Throughput.from_result(load(path), source=path).gpu


def _gpu_name(gpu):
    """The catalog's name for a row that does not run, as the rows that do say it (A100-SXM-80GB, not A100)."""
    from cost_models.hardware import find_gpu

    try:
        return find_gpu(gpu).name if gpu else gpu
    except InputError:
        return gpu


def _stale_line(rows, stale_months: float) -> str | None:
    """cost's age warning (prices.stale_warning) over the price rows of every value, once: one line
    per value repeated itself four times for --vary gpu."""
    from cost_models.prices import Price, stale_warning, today

    prices = [Price(r["provider"], r["gpu"], r["pricing"], r["usd_per_gpu_hour"], r["as_of"] or "", r["source"],
                    region=r["region"] or "") for r in rows]
    return stale_warning(prices, today(), stale_months)


def run_whatif(args) -> dict:
    """The what-if JSON document for parsed whatif flags (args.vary plus cost flags)."""
    from cost_models import whatif

    if len(args.vary) > 1:   # argparse kept the last and dropped the rest without a word
        raise InputError(f"--vary given {len(args.vary)} times ({', '.join(args.vary)}): whatif varies one input; "
                         "fix the others with their cost flags, or run it once per input")
    key, texts = parse_vary(args.vary[0])
    actions = _cost_actions()
    if key not in actions:
        raise unknown_name("--vary key", key, sorted(actions))
    action = actions[key]
    if getattr(args, action.dest) != action.default:
        raise InputError(f"--vary {key} and --{key} both given: vary it or fix it, not both")
    values = [_convert(action, key, text) for text in texts]   # every value checked before any runs
    twice = first_repeat(texts, values)
    if twice is not None:   # two identical rows, ratio 1.00 (1T and 1000B alike): a typo, likely
        raise InputError(f"--vary {key}={','.join(texts)}: {twice} is a value given before")
    for value in values:  # the plausibility bounds every command's flags get (bench.cli.check_args)
        check_plausible(action.dest, value, f"--vary {key}")
    rows, warnings, measured_gpus = [], [], {}   # measured_gpus: result file -> its GPU, each file read once
    priced = {}   # every price row the values were priced at, once: one age warning for them all
    # "Everything else fixed" includes the cluster: without --gpus, cost sizes it per scenario (a slower
    # GPU got more of them and came out faster), so the first row's size holds for every row. A model
    # varied keeps its own default size (its published count), as the note in `fixed` says.
    pinned = None
    for text, value in zip(texts, values):
        one = argparse.Namespace(**{**vars(args), action.dest: value})
        if pinned is not None:
            one.gpus = pinned
        try:
            cost = cost_document(one, warnings)
            if pinned is None and args.gpus is None and action.dest not in ("gpus", "model"):
                pinned = cost["gpus"]
        except CannotRun as e:   # a value that cannot run (no layout fits; fp8 on an A100) is an answer too
            kind = "no layout fits" if isinstance(e, NoLayoutError) else "does not run"
            reason = str(e) if f"--{key} " in str(e) else f"--vary {key}={text}: {e}"   # the value named once
            rows.append(whatif.cannot_run_row(value, reason, _gpu_name(one.gpu), one.gpus, kind))
            continue
        except InputError as e:          # a typo, a missing file: bad input, nothing runs
            if f"'{text.lower()}'" in str(e).lower() or re.search(rf"--{re.escape(key)}(?![\w-])", str(e)):
                raise InputError(f"--vary {key}={text}: {e}") from None   # the value's fault: name it
            # else a fixed flag's (--providers foo): "--vary gpus=1024: unknown provider" blamed the value
            raise
        if one.results not in measured_gpus:
            measured_gpus[one.results] = _measured_gpu(one.results)
        measured = measured_gpus[one.results] == cost["gpu"]     # None (no file) never equals a GPU name
        rows.append(whatif.row(value, cost, measured, one.results if measured else None))
        priced.update({(p["provider"], p["gpu"], p["pricing"], p["region"]): p for p in cost.get("rows") or []})
    if not any(r["fits"] for r in rows):
        raise NoLayoutError(f"--vary {key}: no value fits; the first {rows[0]['note']}")
    for line in dict.fromkeys(warnings):   # each cost warning once, in order
        print(line, file=sys.stderr)
    stale = _stale_line(priced.values(), args.stale_months)
    if stale:
        warn("whatif", f"{stale} (counted once over all of the values' price rows)")
    fixed = {a.dest: getattr(args, a.dest) for a in actions.values()
             if a.dest != action.dest and getattr(args, a.dest) != a.default}
    if pinned is not None:
        fixed["gpus"] = pinned
        fixed["gpus_from"] = "the first row's default cluster, held for every row"
    elif action.dest == "model" and args.gpus is None:
        fixed["gpus_from"] = "each model's own default cluster (costbench cost's rule)"
    doc = whatif.document(key, rows, fixed)
    # the price rows whose instance is sold on another fabric than the one every row was timed on
    doc["other_fabrics"] = [] if key == "network" else sorted(   # varied, the fabric is each row's own
        {f"{p['provider']} {p['fabric_instance']} on {p['fabric']}" for p in priced.values() if p.get("fabric")})
    return doc


def _network_text(row) -> str:
    """The fabric a row was timed on; with --network own, also the price rows on other fabrics and
    their GPU-hours, which cost min/max bill but the row's GPU-hours and days are not."""
    own = row.get("fabric_rows")
    if own is None:
        return row["network"]
    others = "; ".join(f"{', '.join(x['providers'])} on {net} ({si(x['gpu_hours'])} GPU-hours"
                       + (f"; {x['idle_gpus']}" if x.get("idle_gpus") else "") + ")"
                       for net, x in own.items() if x["providers"])
    return (f"{row['network']}, each price row on its own fabric (--network own)"
            + (f": {others}; cost min/max bill each row its own; the row's GPU-hours, days, layout and exposed "
               f"comm are {row['network']}'s" if others else ": every price row on it"))


def _layout(row) -> str:
    p = row.get("parallelism")
    if p:
        # CP where used, so the degrees shown multiply out to the cluster (CP 2 was left out); EP
        # runs within DP (as cost's layout line shows it)
        degrees = " ".join(f"{k.upper()}{p[k]}" for k in ("tp", "cp", "pp", "dp")
                           if k in p and (k != "cp" or (p[k] or 1) > 1))
        ep = f"(EP{p['ep']})" if (p.get("ep") or 1) > 1 else ""
        return " ".join(x for x in (degrees, ep, f"mb{p['micro_batch']}" if "micro_batch" in p else "") if x)
    return "-"


def _rows_text(r: dict) -> str:
    """'6 price rows (3 offers that do not sell this cluster left out)'."""
    n, out = r["price_rows"], r.get("price_rows_left_out") or 0
    left = f" ({out} offer{'s that do' if out != 1 else ' that does'} not sell this cluster left out)" if out else ""
    return f"{n} price row{'s' if n != 1 else ''}{left}"


def _print_table(doc, out) -> None:
    from bench.table import footer_text, format_table
    from cost_models.claims import describe
    from cost_models.whatif import value_label

    rows = [{**r, "value": value_label(r["value"]), "layout": _layout(r),
             "figures": r.get("cannot", "no layout fits") if not r.get("fits", True)
             else "measured" if r["measured"] else "catalog"}
            for r in doc["rows"]]
    title = (f"what if {doc['vary']} = {', '.join(str(r['value']) for r in rows)}; ratios to the first row"
             f"{' that fits' if not rows[0].get('fits', True) else ''}")
    out.write(footer_text([title], out, indent=4) + "\n\n")
    term = any(r.get("commitment_usd") is not None for r in rows)
    columns = [c for c in COLUMNS if term or c[0] != "commitment_usd"]
    out.write(format_table(rows, columns) + "\n\n")
    lines = []   # the footer, wrapped to a terminal's width (bench.table.footer_text)
    first = next(r for r in doc["rows"] if r.get("fits", True))
    fitting = [r for r in doc["rows"] if r.get("fits", True)]
    if len({(r["price_rows"], r["cheapest"]) for r in fitting}) > 1:   # varied prices: each row's own
        lines.append(f"model       {first['model']}; cost min/max over each row's price rows")
        for r in fitting:
            lines.append(f"prices      {value_label(r['value'])}: {_rows_text(r)} (cheapest: {r['cheapest'] or 'none'})")
    elif not first["price_rows"]:   # "over 0 price rows (cheapest: none)" said it without saying why
        gpu = first.get("gpu") or "this GPU"
        hint = (" (a CPU has no catalog prices: a --prices row with gpu cpu prices it)" if gpu == "cpu"
                else " at this pricing (`costbench prices` lists the catalog's; --prices adds yours)")
        lines.append(f"model       {first['model']}; no price rows for {gpu}{hint}")
    else:
        lines.append(f"model       {first['model']}; cost min/max over {_rows_text(first)} "
                     f"(cheapest: {first['cheapest'] or 'none'})")
    if (len({r.get("network") for r in fitting}) > 1 or doc["vary"] == "network"
            or (len(fitting) > 1 and any(r.get("fabric_rows") for r in fitting))):   # own: each value's hours
        for r in fitting:   # the fabric each row ran on, where rows differ in it
            # overlap = 1 - exposed / total data-parallel traffic time (cost's assumptions.overlap)
            parts = ([_network_text(r)] if r["network"] != str(r["value"]) else []) + (
                [f"{r['overlap']:.0%} of the data-parallel traffic hidden under compute"]
                if r.get("overlap") is not None else [])
            lines.append(f"network     {value_label(r['value'])}: {'; '.join(parts) or r['network']}")
    elif first.get("network") is not None:   # None: --mfu/--gpu-hours set the pace, no fabric modelled
        lines.append(f"network     {_network_text(first)}")
    for r in fitting:
        if r.get("tokens_placeholder"):
            from bench.cmd_cost import placeholder_line

            lines.append(placeholder_line(r["model"], r["tokens"]))
            break
    if term:
        lines.append("term        reserved/capacity-block rows: cost min/max are what the run is billed, the larger "
                     "of its hours at the rate and the term commitment (GPUs x term hours x rate, paid even if the "
                     "run is shorter), shown for the cost min row")
    if doc.get("other_fabrics"):
        lines.append(f"fabric      cost min/max time every provider on the row's network; sold on another: "
                     f"{', '.join(doc['other_fabrics'])} (`costbench cost` marks those rows; --network own times each on its own)")
    fixed = ", ".join(f"{k}={value_label(v)}" for k, v in doc["fixed"].items())
    lines.append(f"fixed       {fixed or 'all cost defaults'}")
    notes = {}   # note -> the values it is about, once each, in row order
    for r in doc["rows"]:
        if r.get("note"):
            notes.setdefault(r["note"], []).append(value_label(r["value"]))
    for note, values in notes.items():
        lines.append(f"note        {', '.join(values)}: {note}")
    for found in doc["claims"]:
        lines.append(f"claim       {describe(found)}")
    out.write(footer_text(lines, out) + "\n")


def main(args) -> int:
    check_choice("format", args.format, FORMATS)
    doc = run_whatif(args)
    if args.format == "table":
        _print_table(doc, sys.stdout)
    else:
        from cost_models.whatif import flat_rows

        emit(flat_rows(doc), COLUMNS, args.format, sys.stdout, doc)
    return 0
