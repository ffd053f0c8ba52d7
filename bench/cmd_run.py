"""`costbench run`: measure this machine and write a result file (see bench.runner).

    costbench run [--device auto|cpu|cuda] [--ops matmul,membw,allreduce,reducescatter,allgather,alltoall]
                  [--dtypes bf16,fp16,tf32,fp32,fp8] [--layout TN|NN] [--warmup-s N]
                  [--inplace] [--max-bytes 4G]
                  [--ops ...,layer --model NAME --tp N] [--hidden N --heads N --kv-heads N --ffn N --vocab N --seq N]
                  [--experts N --top-k N --moe-ffn N]
                  [--quick] [--tag TEXT] [--out DIR]

Prints a summary table at the end: MAMF per dtype (burst and sustained) with its shape, the
datasheet peak and the efficiency; the memory-copy bandwidth; the best bus bandwidth of each
collective and its message size; stragglers; the result file's path.
run_quick() is the same measurement for the bare `costbench` job. The dispatcher imports this
module to build the parser, so torch is only imported by main() / run_quick() (via bench.runner).
"""

import math
import sys

from bench.cli import byte_size, csv_list, number, positive_int
from bench.table import format_table

DEFAULT_OUT = "results"


def add_arguments(parser, command):
    parser.add_argument("--device", default="auto", help="auto (cuda if visible, else cpu), cpu or cuda")
    parser.add_argument("--ops", type=csv_list, default=["matmul", "membw", "allreduce"],
                        help="comma-separated: matmul, membw, allreduce, reducescatter, allgather, alltoall, layer "
                             "(default matmul,membw,allreduce)")
    parser.add_argument("--dtypes", type=csv_list, default=None,
                        help="dtypes of matmul and layer, comma-separated from bf16,fp16,tf32,fp32,fp8 "
                             "(default: all on a GPU, fp32,bf16 on CPU; the layer: its training dtypes among them)")
    parser.add_argument("--layout", default=None,
                        help="matmul operand layout: TN (default: B column-major, as nn.Linear runs) or NN")
    parser.add_argument("--warmup-s", type=number, default=None,
                        help="seconds of matmul to warm the GPU before the first timed shape "
                             "(default 30 on a GPU, as mamf-finder; 0 on CPU)")
    parser.add_argument("--inplace", action="store_true",
                        help="also time reduce-scatter and all-gather in place (out of place always runs, "
                             "as nccl-tests' default; all-reduce is in place in torch.distributed)")
    parser.add_argument("--max-bytes", type=byte_size, default=None,
                        help="largest collective message size, e.g. 4G, 256M (default: 4G on GPUs, "
                             "256M with --quick; 64M on CPU, 4M with --quick)")
    parser.add_argument("--model", default=None,
                        help="layer op: a catalog model (costbench models), e.g. llama3-70b")
    parser.add_argument("--tp", type=positive_int, default=None,
                        help="layer op: tensor-parallel degree; shapes are one rank's (default 1)")
    for flag, what in (("hidden", "hidden size"), ("heads", "attention heads"), ("kv-heads", "KV heads"),
                       ("ffn", "FFN width"), ("vocab", "vocabulary"), ("seq", "sequence length"),
                       ("experts", "routed experts per layer (mixture of experts, with --top-k)"),
                       ("top-k", "experts per token"), ("moe-ffn", "one expert's MLP width (default --ffn)")):
        parser.add_argument(f"--{flag}", type=positive_int, default=None,
                            help=f"layer op: the model's {what} (overrides --model's)")
    parser.add_argument("--quick", action="store_true",
                        help="fewer matmul shapes and collective sizes, shorter layer timings (CPU: smaller "
                             "layer shapes; well under 30 s)")
    parser.add_argument("--tag", default=None, help="your label, e.g. coreweave/us-east-04 (goes in the file name)")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the result file (default {DEFAULT_OUT}/)")


def _tflops(v):   # and any rate: 3 digits below 10, so a small non-zero busbw does not print as 0.0
    return f"{v:,.1f}" if v >= 10 else f"{v:.3g}"


SUSTAINED_GAP = 0.10   # burst and sustained this far apart get a line saying what it means


def _sustained_notes(rows) -> list[str]:
    """What a gap between the burst MAMF and the sustained one (the same shape at the run's end)
    says: the two were printed side by side without a word, sustained even above burst."""
    notes = []
    for r in rows:
        burst, sust = r["mamf"], r["sustained"]
        if not (burst and sust and math.isfinite(burst) and math.isfinite(sust)) or abs(sust / burst - 1) <= SUSTAINED_GAP:
            continue
        if sust > burst:
            notes.append(f"note: {r['dtype']} sustained {_tflops(sust)} is {sust / burst - 1:.1%} above the burst "
                         f"MAMF {_tflops(burst)}: the burst timing was held down (other load, noise); rerun on an "
                         "idle machine before trusting either")
        else:
            notes.append(f"note: {r['dtype']} sustained {_tflops(sust)} is {1 - sust / burst:.1%} below the burst "
                         f"MAMF {_tflops(burst)}: under sustained load the device ran slower (a GPU's clocks, power "
                         "or heat; other load on a CPU); the file keeps both")
    return notes


def summary_text(result: dict, path: str | None) -> str:
    """The end-of-run report: the table, the skipped dtypes, the all-reduce line, the file."""
    s, config = result["summary"], result["config"]
    rows = [{"dtype": d, "mamf": v, "sustained": s.get("mamf_tflops_sustained", {}).get(d),
             "shape": "x".join(map(str, s["mamf_shape"][d])),
             "peak": s["peak_tflops"].get(d), "eff": s["efficiency"].get(d)}
            for d, v in s["mamf_tflops"].items()]
    lines = []
    from bench.env import busy_cpu_note

    busy = busy_cpu_note(result.get("machine") or {})
    if busy:
        lines.append(f"warning: {busy}")
    if rows:
        lines.append(format_table(rows, [("dtype", "dtype", ""), ("mamf", "MAMF TFLOP/s", _tflops),
                                         ("sustained", "sustained", _tflops),
                                         ("shape", "shape (m x n x k)", ""), ("peak", "peak TFLOP/s", _tflops),
                                         ("eff", "efficiency", ".1%")]))
    lines += _sustained_notes(rows)
    if "membw_gbps" in s:
        eff = (f" ({s['membw_efficiency']:.0%} of the datasheet's {s['hbm_gbps_peak']:,.0f} GB/s)"
               if "membw_efficiency" in s else "")
        lines.append(f"memory copy: {s['membw_gbps']:,.1f} GB/s read + written{eff}")
    for g in s.get("stragglers") or ():
        lines.append(f"STRAGGLER: rank {g['rank']} on {g['host']} ({g['uuid']}): {g['reason']}")
    for dtype, reason in config.get("skipped_dtypes", {}).items():
        lines.append(f"matmul {dtype}: skipped ({reason})")
    for op, c in s.get("collectives", {}).items():
        from bench.runner import human_bytes

        if c["world_size"] == 1:
            lines.append(f"{op}: world size 1 (one process): no link measured, busbw is 0 by definition")
        else:
            lines.append(f"{op}: best busbw {_tflops(c['busbw_gbps_max'])} GB/s at {human_bytes(c['bytes'])} "
                         f"(world size {c['world_size']}, {c['nodes']} node(s), {c['backend']})")
    if s.get("layer"):
        lines.append(layer_text(s["layer"]))
    from bench.results import INTERRUPTED, note_in_summary

    lines += [f"note: {note}" for note in config.get("notes", []) if note_in_summary(note)]
    if s.get("failures"):
        lines.append(f"FAILED: {len(s['failures'])} correctness check(s) failed:")
        lines += [f"  {f}" for f in s["failures"]]
    if s.get("error") and s["error"] != INTERRUPTED:
        lines.append(f"STOPPED ({s['error']}): the figures above cover only what finished")
    elif not s.get("complete", True):
        lines.append("INTERRUPTED: the figures above cover only what finished")
    if path:
        lines.append(f"result file: {path}")
    return "\n".join(lines)


def layer_text(layer: dict) -> str:
    """Two lines on summary.layer: each part's rate and one layer's time per part."""
    def rate(v, unit):
        return f"{v:,.3g} {unit}" if v is not None else "not measured"

    def ms(v):
        return f"{v:,.3g} ms" if v is not None else "-"

    parts = layer["layer_ms"]
    return (f"layer {layer['model']} TP{layer['tp']} {layer['dtype']} ({layer['tokens']} tokens): "
            f"GEMMs {rate(layer['gemm_tflops'], 'TFLOP/s')}, attention {rate(layer['attention_tflops'], 'TFLOP/s')}, "
            f"element-wise {rate(layer['elementwise_gbps'], 'GB/s')}\n"
            f"  one layer fwd+bwd: GEMMs {ms(parts['gemm'])}, attention {ms(parts['attention'])}, "
            f"element-wise {ms(parts['elementwise'])}; LM head {ms(layer['lm_head_ms'])} per model")


def run_quick(device: str = "auto", out: str = DEFAULT_OUT, tag: str | None = None,
              stream=None) -> tuple:
    """The quick measurement the bare `costbench` job starts with.

    Runs `costbench run --quick --device DEVICE --out OUT [--tag TAG]` with RunConfig's ops (matmul,
    membw and all four collectives, which the step model prices), prints its summary to
    stream (default stdout; None-able for callers that print their own), and returns
    (path, result_dict, exit_code): the result file (None on torchrun ranks other than 0), the
    document as written (bench.results schema; result["summary"] has mamf_tflops etc.), and 0,
    1 (a correctness check failed), 3 (a rank failed or hung) or 130 (interrupted). Raises cost_models.errors.InputError
    for a device that is not here or an unwritable out.
    """
    from bench.runner import RunConfig

    return _run_and_report(RunConfig(device=device, quick=True, tag=tag, out=out), stream)


def _run_and_report(cfg, stream=None) -> tuple:
    """Measure, print the summary on rank 0; (path, result, exit_code) as run_quick documents."""
    from bench.runner import run

    def report(outcome):   # called by run() with Ctrl-C and SIGTERM still held: the table always prints
        if outcome.path:  # rank 0
            print(summary_text(outcome.result, outcome.path), file=stream or sys.stdout)

    outcome = run(cfg, report)
    return outcome.path, outcome.result, outcome.exit_code


def main(args) -> int:
    from bench.runner import LAYER_SHAPE_FLAGS, RunConfig

    cfg = RunConfig(device=args.device, ops=tuple(args.ops), dtypes=args.dtypes and tuple(args.dtypes),
                    quick=args.quick, tag=args.tag, out=args.out, inplace=args.inplace, max_bytes=args.max_bytes,
                    layout=args.layout, warmup_s=args.warmup_s,
                    model=args.model, tp=args.tp or 1, shape={k: getattr(args, k) for k in LAYER_SHAPE_FLAGS},
                    tp_given=args.tp is not None)
    return _run_and_report(cfg)[2]
