"""`costbench compare RESULT_FILES_OR_DIRS...`: runs side by side, best first (bench.compare).

    costbench compare results/ [--model NAME] [--format table|json|csv] [--prices FILE] [--pricing KIND]

Directories contribute their *.json files (not recursive). A file that cannot be read is named on
stderr with the reason and the rest are compared; with nothing readable: one line, exit 2.
The table shows "-" where a run did not measure something (an op not run, a CPU run's price).
"""

from bench.cmd_catalog import FORMATS, check_choice, choices_help, emit, usd
from bench.cmd_cost import PRICING_NOTES, TERM_LINE, placeholder_line
from bench.compare import COLLECTIVES, DEFAULT_MODEL, DEFAULT_PRICING
from bench.table import days, footer_text, warn
from cost_models.models import find_model
from cost_models.prices import PRICING_KINDS

COLLECTIVE_HEADER = {"allreduce": "all-reduce", "reducescatter": "reduce-scat.",
                     "allgather": "all-gather", "alltoall": "all-to-all"}


def add_arguments(parser, command) -> None:
    parser.add_argument("paths", nargs="+", metavar="RESULT_FILES_OR_DIRS",
                        help="result files, or directories whose *.json files are read (not recursive)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"model to price training of (default {DEFAULT_MODEL})")
    parser.add_argument("--format", default="table", help=choices_help(FORMATS, "table"))
    parser.add_argument("--prices", metavar="FILE", help="CSV with prices.csv's columns: overrides or adds rows")
    parser.add_argument("--pricing", default=DEFAULT_PRICING,
                        help="one pricing kind: " + choices_help(PRICING_KINDS, DEFAULT_PRICING, PRICING_NOTES))


def _present(value) -> bool:
    return value is not None and value == value


def _num(v, digits=3) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) else f"{v:.{digits}g}"


def _spread(row, col) -> str:
    s = row.get(f"{col}_spread")
    return f" ±{s / 2:.0%}" if row.get("n_runs", 1) > 1 and _present(s) and s > 0 else ""


def _whole(count):
    """A GPU count as a whole number (pandas made the column float beside a run without one), None if absent."""
    return int(count) if _present(count) else None


def table_rows(df) -> tuple[list[dict], list]:
    """The DataFrame as display rows (strings) and format_table columns: only the dtypes and
    collectives some run measured; MAMF and membw cells carry the efficiency and, over several runs,
    MAMF, membw, bus bandwidth and cost cells ± half the spread."""
    records = df.to_dict("records")
    dtypes = [d for d in ("bf16", "fp16", "tf32", "fp32", "fp8") if f"mamf_{d}" in df and df[f"mamf_{d}"].notna().any()]
    ops = [op for op in COLLECTIVES if f"busbw_{op}_gbps" in df and df[f"busbw_{op}_gbps"].notna().any()]
    columns = [("tag", "tag", ""), ("gpu", "GPU", ""), ("nodes", "nodes", ""), ("world_size", "ranks", ""),
               ("n_runs", "runs", "")]
    out = []
    for r in records:
        row = {k: r[k] for k in ("tag", "gpu", "nodes", "world_size", "n_runs")}
        for d in dtypes:
            v, eff = r.get(f"mamf_{d}"), r.get(f"eff_{d}")
            row[d] = (_num(v) + (f" ({eff:.0%})" if _present(eff) else "") + _spread(r, f"mamf_{d}")
                      if _present(v) else None)
        if _present(r.get("membw_gbps")):
            eff = r.get("membw_efficiency")
            row["membw"] = _num(r["membw_gbps"]) + (f" ({eff:.0%})" if _present(eff) else "") + _spread(r, "membw_gbps")
        for op in ops:
            best, at = r.get(f"busbw_{op}_gbps"), r.get(f"busbw_{op}_256mib_gbps")
            row[op] = (f"{_num(best)} / {_num(at) if _present(at) else '-'}" + _spread(r, f"busbw_{op}_gbps")
                       if _present(best) else None)
        row["stragglers"] = r.get("stragglers") or 0
        for k in ("usd_per_gpu_hour", "usd_per_pflop_hour", "cluster_gpus", "days", "cost_usd", "pflop_dtype", "note"):
            row[k] = r.get(k) if _present(r.get(k)) else None
        row["cluster_gpus"] = _whole(row["cluster_gpus"])
        if row["cost_usd"] is not None:
            row["cost_usd"] = usd(row["cost_usd"]) + _spread(r, "cost_usd")
        row["commitment_usd"] = usd(r["commitment_usd"]) if _present(r.get("commitment_usd")) else None
        out.append(row)
    columns += [(d, f"{d} TFLOP/s", "") for d in dtypes]
    if "membw_gbps" in df and df["membw_gbps"].notna().any():
        columns.append(("membw", "membw GB/s", ""))
    columns += [(op, f"{COLLECTIVE_HEADER[op]} GB/s", "") for op in ops]
    columns += [("stragglers", "stragglers", ""), ("usd_per_gpu_hour", "$/GPU-h", ".2f"),
                ("usd_per_pflop_hour", "$/PFLOP-h", ".2f"), ("pflop_dtype", "PFLOP dtype", ""),
                ("cluster_gpus", "GPUs", ","), ("days", "days", days), ("cost_usd", "cost", "")]
    if _has_term(df):
        columns.append(("commitment_usd", "term commitment", ""))
    columns.append(("note", "note", ""))
    return out, columns


def _has_term(df) -> bool:
    return "commitment_usd" in df and df["commitment_usd"].notna().any()


def footer(df, model: str, pricing: str) -> str:
    lines = ["TFLOP/s: measured MAMF (efficiency against the datasheet peak, where the GPU has one); membw GB/s (efficiency, likewise); "
             "collectives: best busbw GB/s / busbw at 256 MiB",
             f"cost: to train {model} at {pricing} prices from each run's measured figures "
             "(as costbench cost --results FILE; the parts a run did not measure are the catalog's, named in its "
             "note); $/PFLOP-h = $/GPU-h / (measured MAMF of the dtype in 'PFLOP dtype' / 1000)"]
    if _has_term(df):
        lines.append(TERM_LINE.replace("term        ", "term: ", 1))
    sizes = sorted({(int(r["cluster_gpus"]), r.get("cluster_gpus_from")) for r in df.to_dict("records")
                    if _present(r.get("cluster_gpus"))})
    if sizes:
        lines.append("cluster: days and cost assume " + "; ".join(f"{n:,} GPUs ({why})" for n, why in sizes)
                     + ": the GPUs column, per run")
    spec = find_model(model)
    if spec.tokens_placeholder:
        lines.append(placeholder_line(spec.name, spec.tokens, "tokens: ",
                                      f"costbench cost --model {spec.name} --tokens N prices a real budget"))
    lines += [f"stragglers in {r['tag']}: {r['straggler_detail']}" for r in df.to_dict("records")
              if isinstance(r.get("straggler_detail"), str)]
    if (df["n_runs"] > 1).any():
        lines.append("runs > 1: medians over the runs, ± half the spread (max - min) / median")
    return "\n".join(lines)


def main(args) -> int:
    from bench.compare import compare

    check_choice("format", args.format, FORMATS)
    df = compare(args.paths, model=args.model, prices=args.prices, pricing=args.pricing,
                 warn=lambda line: warn("compare", line))
    if args.format == "table":
        rows, columns = table_rows(df)
        emit(rows, columns, "table")
        print(footer_text(footer(df, args.model, args.pricing).splitlines(), indent=4))
    else:
        records = df.to_dict("records")
        for r in records:
            r["cluster_gpus"] = _whole(r.get("cluster_gpus"))
        emit(records, [], args.format, json_doc={"model": args.model, "pricing": args.pricing, "runs": records,
                                                 "tokens_placeholder": find_model(args.model).tokens_placeholder})
    return 0
