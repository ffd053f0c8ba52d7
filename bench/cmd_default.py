"""Bare `costbench`: the README's main job.

A quick measurement of this machine (`costbench run --quick` with every collective the step model
prices: bench.runner.DEFAULT_OPS), then the training-cost table of a
model (Llama 3 70B by default) across providers. The measured MAMF and busbw price the run when
this machine's GPU is in the catalog; otherwise (a CPU, or a GPU the catalog lacks) the catalog's
figures for --gpu do, and the output says which.
"""

import sys

from bench.cmd_run import DEFAULT_OUT


def add_arguments(parser, command):
    parser.add_argument("--device", default="auto", help="auto (cuda if visible, else cpu), cpu or cuda")
    parser.add_argument("--model", default="llama3-70b", help="catalog model to price (default llama3-70b)")
    parser.add_argument("--gpu", default=None,
                        help="GPU to price (default: this machine's if in the catalog, else H100-SXM)")
    parser.add_argument("--tag", default=None, help="label for the result file, e.g. coreweave/us-east-04")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"folder for the result file (default {DEFAULT_OUT}/)")


def source_line(result: dict, gpu_priced: str) -> str:
    """One line saying whether the cost table rests on this run's measurements or the catalog's."""
    measured = (result.get("machine", {}).get("gpu") or {}).get("normalized")
    if measured and measured == gpu_priced:
        return f"Pricing with this machine's measured figures ({measured}: MAMF and busbw from the run above)."
    here = measured or (result.get("machine", {}).get("gpu") or {}).get("name") or "a CPU"
    why = "not in the GPU catalog" if not measured else "not the GPU priced"
    return (f"Pricing with catalog figures for {gpu_priced}: this machine ({here}) is {why}, "
            f"so its measurements do not apply. Run on the GPU you want to price, or see `costbench cost --help`.")


def main(args) -> int:
    from bench.cmd_cost import gpu_to_price, print_cost_table
    from bench.cmd_run import run_quick
    from cost_models.models import find_model

    find_model(args.model)                       # fail on bad names before minutes of measuring
    gpu_to_price(args.gpu, None)
    from bench.runner import DEFAULT_OPS

    # the ops as run: every collective the step model prices, not `run --quick`'s default three
    print(f"costbench: quick measurement of this machine (costbench run --quick --ops {','.join(DEFAULT_OPS)})",
          file=sys.stderr)
    path, result, code = run_quick(device=args.device, out=args.out, tag=args.tag)
    if path is None or code != 0:               # other torchrun ranks; failed checks; Ctrl-C
        return code
    gpu = gpu_to_price(args.gpu, (result["machine"].get("gpu") or {}).get("normalized"))
    print(f"\n{args.model} training cost by provider\n{source_line(result, gpu)}\n")
    print_cost_table(model=args.model, result=result, gpu=gpu, result_source=path)
    return 0
