"""`costbench models | gpus | networks | prices`: list the catalogs in cost_models/data/.

Also home of the output helpers the cost command shares: emit() prints rows as a table, one JSON
object or CSV (cells a spreadsheet would run as a formula neutralised, OWASP "CSV Injection"),
usd() writes money the way people read it ($39.4M), and the price-age helpers both commands use.

`costbench prices --from-skypilot VMS_CSV --provider NAME` turns a SkyPilot catalog file into rows
for --prices (cost_models.skypilot).
"""

import csv
import json
import math
import sys

from bench.cli import csv_list
from bench.table import format_table, si, warn
from cost_models.catalog import FORMULA_GUARDED
from cost_models.errors import InputError, unknown_name

FORMATS = ("table", "json", "csv")


def usd(value) -> str:
    """$950, $12.3K, $39.4M, $1.23B; a loss as -$10.9K, not $-10.9K."""
    if value is None or not math.isfinite(value):
        return "-"
    sign, value = ("-" if value < 0 else ""), abs(value)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            digits = 2 if value < 10 * scale else 1 if value < 100 * scale else 0
            return f"{sign}${value / scale:,.{digits}f}{suffix}"
    return f"{sign}${value:,.2f}"


def choices_help(choices, default=None, notes=None) -> str:
    """Help text listing exactly `choices` (the tuple check_choice validates against, so the two
    cannot drift apart): 'a (default), b or c', a choice's note in parentheses after it."""
    notes = notes or {}
    words = [c + (" (default" + (", " + notes[c] if c in notes else "") + ")" if c == default
                  else f" ({notes[c]})" if c in notes else "") for c in choices]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def check_choice(kind: str, value: str, choices) -> str:
    if value not in choices:
        raise unknown_name(kind, value, choices)
    return value


def clean(value):
    """JSON-safe: NaN/inf -> null, numpy scalars -> Python numbers."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# A cell starting with one of FORMULA_GUARDED is run as a formula by Excel/LibreOffice/Sheets; OWASP's
# CSV Injection advice: prefix such a cell with a single quote so it is shown as text (and
# cost_models.catalog drops that quote when the file is read back).


def csv_safe(value):
    """value, with a leading ' if it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_GUARDED):
        return "'" + value
    return value


def data_rows(rows: list[dict]) -> list[dict]:
    """The rows without their "_" keys: a table's display text (an age as "24mo STALE"), not data."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]


def _csv_cell(value):
    """A flag as the CSV readers take it (yes/no): `prices --format csv` wrote marketplace True/False,
    which --prices then refused, so the catalog could not be dumped, edited and passed back."""
    return ("yes" if value else "no") if isinstance(value, bool) else value


def emit(rows: list[dict], columns, fmt: str, out=None, json_doc=None) -> None:
    """rows as a table (columns: format_table's (key, header, fmt) triples), CSV of every key of the
    rows, or JSON (json_doc if given, else the list of rows), on `out` (default: sys.stdout now)."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump(clean(json_doc if json_doc is not None else data_rows(rows)), out, indent=2)
        out.write("\n")
    elif fmt == "csv":
        keys = list(dict.fromkeys(k for r in rows for k in r if not k.startswith("_"))) or [c[0] for c in columns]
        writer = csv.DictWriter(out, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows([{k: csv_safe(_csv_cell(clean(r.get(k)))) for k in keys} for r in rows])
    else:
        out.write(format_table(rows, columns) + "\n")


def add_arguments(parser, command) -> None:
    parser.add_argument("--format", default="table", help=choices_help(FORMATS, "table"))
    if command == "prices":
        from cost_models.prices import PRICING_KINDS

        parser.add_argument("--gpu", help="only this GPU (e.g. h100, H200-SXM)")
        parser.add_argument("--provider", type=csv_list,
                            help="only these providers, comma-separated (with --from-skypilot: the one cloud the file is for)")
        parser.add_argument("--pricing", default="all", help=choices_help((*PRICING_KINDS, "all"), "all"))
        parser.add_argument("--region", help="only this region (a provider's own name, e.g. us-east-1)")
        parser.add_argument("--prices", metavar="FILE", help="CSV with the same columns: overrides or adds rows")
        add_age_argument(parser)
        sky = parser.add_argument_group(
            "refresh from SkyPilot's catalog (github.com/skypilot-org/skypilot-catalog, catalogs/<v>/<cloud>/vms.csv)")
        sky.add_argument("--from-skypilot", metavar="VMS_CSV",
                         help="turn this vms.csv into per-GPU rows for --prices: instance price / GPUs, on-demand "
                              "and spot, cheapest zone per region; needs --provider. For GCP pass the whole "
                              "gcp/vms.csv: its a2/a3/a4 host VM rows are added to their GPU rows per zone")
        sky.add_argument("--as-of", type=_date_arg, default=None,
                         help="date for the imported rows (YYYY-MM or YYYY-MM-DD: the catalog commit's date); "
                              "undated rows are never called stale")


def _date_arg(value):
    import argparse

    from cost_models.catalog import as_of_date

    try:
        return as_of_date(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{value!r} {e}") from None


def add_age_argument(parser) -> None:
    """--stale-months, shared by `prices`, `cost`, `whatif` and `tco`: a positive finite number,
    checked as it is read (cost prices its rows, ages included, before it warns)."""
    from bench.cli import positive
    from cost_models.prices import DEFAULT_STALE_MONTHS, TODAY_ENV

    parser.add_argument("--stale-months", type=positive, default=DEFAULT_STALE_MONTHS,
                        help=f"warn about quoted prices older than this many months (default "
                             f"{DEFAULT_STALE_MONTHS}; today is the clock's, or ${TODAY_ENV})")


def age_text(days, stale: bool) -> str:
    """'4mo', '17mo STALE', '12d'; '-' for an undated row."""
    if days is None:
        return "-"
    text = f"{days}d" if days < 60 else f"{days / 30.44:.0f}mo"
    return f"{text} STALE" if stale else text


def warn_stale(prices, ref, stale_months, command: str) -> None:
    """The one-line staleness warning on stderr (nothing when every row is fresh or undated)."""
    from cost_models.prices import stale_warning

    if not (stale_months > 0 and math.isfinite(stale_months)):
        raise InputError(f"--stale-months: {stale_months:g} must be a positive number")
    line = stale_warning(prices, ref, stale_months)
    if line:
        warn(command, line)


def _gpu_rows():
    from cost_models.hardware import DTYPES, gpus

    rows = []
    for g in gpus():
        row = {"name": g.name, **{f"{d}_tflops": g.peak_tflops[d] for d in DTYPES},
               "memory_gb": g.memory_gb, "hbm_tbps": g.hbm_tbps, "nvlink_gbps": g.nvlink_gbps, "tdp_w": g.tdp_w,
               "mamf_fraction": g.mamf_fraction, "mamf_bf16_tflops": g.mamf_tflops("bf16"),
               "aliases": ";".join(g.aliases), "source": g.source, "as_of": g.as_of}
        rows.append(row)
    cols = [("name", "GPU", ""), ("bf16_tflops", "bf16 TFLOP/s", "g"), ("fp8_tflops", "fp8", "g"),
            ("tf32_tflops", "tf32", "g"), ("fp32_tflops", "fp32", "g"), ("memory_gb", "mem GB", "g"),
            ("hbm_tbps", "HBM TB/s", "g"), ("nvlink_gbps", "NVLink GB/s", "g"), ("tdp_w", "TDP W", "g"),
            ("mamf_fraction", "MAMF/peak", ".3f"), ("mamf_bf16_tflops", "MAMF bf16", ".0f"), ("as_of", "as of", "")]
    return rows, cols


def _model_rows():
    from cost_models.cost import catalog_gpus_label
    from cost_models.models import models

    # the GPU count's provenance beside it: Llama 3 70B's 16,384 is assumed, 3.1 405B's published
    # whole counts as integers (the CSV read 8030000000.0 parameters)
    whole = lambda v: int(v) if isinstance(v, float) and v.is_integer() else v   # noqa: E731
    rows = [{**{k: whole(v) for k, v in m.__dict__.items() if k != "shape_estimated"},
             "published_gpus_from": catalog_gpus_label(m) if m.published_gpus else None} for m in models()]
    for r in rows:   # Mixtral's 1T is a unit to price per, not its training tokens: the table marks it
        r["_tokens_shown"] = f"{si(r['tokens'])} (unit)" if r["tokens_placeholder"] else si(r["tokens"])
    cols = [("name", "model", ""), ("params", "params", lambda v: si(v, 4)),
            ("_tokens_shown", "tokens", ""),
            ("layers", "layers", "d"), ("hidden", "hidden", "d"), ("heads", "heads", "d"), ("kv_heads", "kv", "d"),
            ("ffn", "ffn", "d"), ("seq_len", "seq", "d"),
            ("published_gpu_hours", "published GPU-h", lambda v: si(v, 4)),
            ("published_gpus", "GPUs", ",d"), ("published_gpus_from", "GPUs from", _gpus_from),
            ("published_hardware", "on", ""), ("as_of", "as of", "")]
    return rows, cols


def _gpus_from(label: str) -> str:
    return "assumed" if label.startswith("assumed") else label


def _network_rows():
    from cost_models.networks import networks

    rows = [{**n.__dict__, "gbps_per_gpu": n.gbps_per_gpu} for n in networks()]
    cols = [("name", "network", ""), ("scope", "scope", ""), ("link_gbit_s", "link Gb/s", "g"),
            ("gpus_per_link", "GPUs/link", "g"), ("gbps_per_gpu", "GB/s per GPU", ".3g"),
            ("latency_us", "latency us", "g"), ("source", "source", "")]
    return rows, cols


def _price_rows(args):
    from cost_models.hardware import find_gpu
    from cost_models.prices import age_days, is_stale, load_prices, select, today

    from cost_models.throughput import CPU

    # cpu: the device a --prices file may price (costbench cost --results a CPU run), not a catalog GPU
    gpu = (CPU if args.gpu.strip().lower() == CPU else find_gpu(args.gpu).name) if args.gpu else None
    chosen = select(load_prices(args.prices), gpu, args.pricing, args.provider, args.region)
    ref = today()
    warn_stale(chosen, ref, args.stale_months, "prices")
    rows = []
    for p in chosen:
        low, high = p.range_or_none()   # the same rule as the cost table's low/high
        days, stale = age_days(p, ref), is_stale(p, ref, args.stale_months)
        sells = (f"{p.instance_gpus}-GPU" if p.instance_gpus else "") + (" marketplace" if p.marketplace else "")
        rows.append({**p.__dict__, "usd_low": low, "usd_high": high, "age_days": days, "stale": stale,
                     "_age": age_text(days, stale), "_sells": sells.strip() or "-"})
    rows.sort(key=lambda r: (r["gpu"], r["usd_per_gpu_hour"], r["provider"], r["region"]))
    cols = [("provider", "provider", ""), ("gpu", "GPU", ""), ("pricing", "pricing", ""),
            ("usd_per_gpu_hour", "$/GPU-h", ".2f"), ("usd_low", "low", ".2f"), ("usd_high", "high", ".2f"),
            ("_sells", "instance", ""), ("region", "region", ""), ("as_of", "as of", ""), ("_age", "age", ""),
            ("source", "source", "")]
    return rows, cols


def _skypilot_rows(args):
    from cost_models.skypilot import import_vms

    if not args.provider:
        raise InputError("--from-skypilot needs --provider NAME: the one cloud the file is for (e.g. aws, gcp)")
    if len(args.provider) != 1:
        raise InputError(f"--provider {','.join(args.provider)}: --from-skypilot reads one cloud's vms.csv; "
                         "give the one cloud the file is for")
    for flag, value in (("--gpu", args.gpu), ("--region", args.region), ("--prices", args.prices)):
        if value:
            raise InputError(f"--from-skypilot converts a whole file; {flag} does not apply (filter the output)")
    result = import_vms(args.from_skypilot, args.provider[0], args.as_of or "")
    from cost_models.prices import catalog_prices
    known = sorted({p.provider for p in catalog_prices()})
    if args.provider[0].strip().lower() not in known:   # a new cloud is allowed; a typo ('awz') is likely
        warn("prices", f"--provider {args.provider[0]} is not in the price catalog (it has "
                 f"{', '.join(known)}); the rows are written for it as named")
    skipped = []
    if result.unknown:
        listed = ", ".join(f"{name} ({n} row{'s' if n != 1 else ''})" for name, n in sorted(result.unknown.items()))
        skipped.append(f"skipped accelerators not in costbench's GPU catalog: {listed}")
    if result.fractional:
        listed = ", ".join(f"{name} ({n} row{'s' if n != 1 else ''})" for name, n in sorted(result.fractional.items()))
        skipped.append(f"skipped instances with a fraction of a GPU (AcceleratorCount below 1 or not whole): {listed}")
    if result.unmatched:
        skipped.append(f"skipped {result.unmatched} GCP host VM or GPU rows without their other half in the same "
                       "zone (pass the whole gcp/vms.csv)")
    rows = result.rows if args.pricing == "all" else [r for r in result.rows if r["pricing"] == args.pricing]
    if not rows:   # one line: why nothing came out, the skips included (a known GPU's empty Price cells too)
        skipped += [f"{gpu}: {n} offer(s) with empty or $0 Price and SpotPrice" for gpu, n in sorted(result.unpriced.items())]
        raise InputError(f"{args.from_skypilot}: no GPU in costbench's catalog priced there"
                         f"{'' if args.pricing == 'all' else ' (' + args.pricing + ')'}"
                         f"{' (' + '; '.join(skipped) + ')' if skipped else ''}")
    for line in skipped:
        print(f"costbench prices: {line}", file=sys.stderr)
    cols = [("provider", "provider", ""), ("gpu", "GPU", ""), ("pricing", "pricing", ""),
            ("usd_per_gpu_hour", "$/GPU-h", ".4f"), ("region", "region", ""), ("as_of", "as of", ""),
            ("source", "source", "")]
    return rows, cols


def main(args) -> int:
    check_choice("format", args.format, FORMATS)
    listing = {"gpus": _gpu_rows, "models": _model_rows, "networks": _network_rows}
    if args.command == "prices" and args.from_skypilot:
        from cost_models.prices import PRICING_KINDS

        check_choice("pricing", args.pricing, (*PRICING_KINDS, "all"))
        rows, cols = _skypilot_rows(args)
    elif args.command == "prices":
        if getattr(args, "as_of", None):   # the listing shows each row's own date; --as-of dates an import
            raise InputError("--as-of dates the rows --from-skypilot imports; it does not apply to the listing "
                             "(each row shows its own as-of date)")
        rows, cols = _price_rows(args)
        if not rows:
            raise InputError("no price rows match --gpu/--provider/--pricing/--region")
    elif args.command in listing:
        rows, cols = listing[args.command]()
    else:
        raise InputError(f"cmd_catalog cannot list {args.command!r}")
    if args.command == "prices" and args.from_skypilot and args.format == "json":
        # the rows are written for a CSV ('' and 'yes'/'no'); JSON as the listing's: null and booleans
        rows = [{**r, **{k: None for k in ("usd_low", "usd_high", "as_of") if r.get(k) == ""},
                 "marketplace": r.get("marketplace") == "yes"} for r in rows]
    emit(rows, cols, args.format, json_doc={"rows": data_rows(rows)})  # one JSON object, as every command's --format json
    return 0
