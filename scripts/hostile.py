"""A battery of hostile inputs and faults against the costbench CLI (issue 11), run as subprocesses.

    .venv/bin/python scripts/hostile.py [-k SUBSTRING] [-j 2] [-v]

Every case is a real process (`python -m bench ...`) with a timeout, checked against the contract
in README "Exit codes": the expected exit status (2 for bad input, 4 for an I/O error writing
results or output, 130 for an interruption), no "Traceback" or "Exception ignored" on stderr, an
error as one line on stderr that names what was wrong, and no file lost or half-written (a
planted victim file intact, no 0-byte or invalid result file, no temporary file left). Faults
that need the process itself (a full disk mid-run) run the CLI under a small driver that patches
os.replace/os.write to fail with ENOSPC. Each case is tagged with the issue-11 item it comes
from; cases outside this branch's scope are tagged with the owner, so a failure says whose it is.

Not part of the pytest suite: it takes a minute or two on 2 cores (two cases at a time) and
prints "N passed, M failed" and each failure.
"""

import argparse
import concurrent.futures
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
TIMEOUT_S = 90
PRICE_HEADER = "provider,gpu,pricing,usd_per_gpu_hour,as_of,source\n"


@dataclasses.dataclass
class Case:
    name: str
    argv: list                      # after `python -m bench`
    codes: tuple = (2,)             # acceptable exit statuses
    needle: str | None = None       # must appear in stderr's last line
    env: dict = dataclasses.field(default_factory=dict)
    files: dict = dataclasses.field(default_factory=dict)  # name -> str | bytes | "FIFO", in the work dir
    stdout: str = "pipe"            # pipe | closed | full | ascii-pipe | early-close
    signal_after: tuple | None = None  # (signum, seconds)
    driver: str | None = None       # python code run instead of -m bench (fault injection)
    check: object = None            # fn(workdir, proc) -> error text or None
    one_line: bool = True           # an error is exactly one stderr line
    owner: str = ""                 # who owns the fix, when not this branch


# ---- building blocks ---------------------------------------------------------------------------

def result_doc(records=(), summary=None, **machine):
    t = {"min": 1.0, "median": 1.0, "mean": 1.0, "p10": 1.0, "p90": 1.0, "stdev": 0.0, "n": 3}
    doc = {"schema_version": 1, "run_id": "r", "created_at": "2026-01-01T00:00:00Z", "costbench_version": "0",
           "tag": None, "machine": {"device": "cpu", "gpu": None, "world_size": 1, **machine}, "config": {},
           "records": [dict(r, time_ms=t) for r in records]}
    if summary is not None:
        doc["summary"] = summary
    return doc


def mm(tflops=1.0):
    return {"op": "matmul", "dtype": "fp32", "m": 64, "n": 64, "k": 64, "tflops": tflops, "correct": True,
            "max_rel_err": 1e-7}


H100 = {"device": "cuda", "gpu": {"name": "NVIDIA H100 80GB HBM3", "normalized": "H100-SXM", "count": 1}}
GOOD = json.dumps(result_doc([mm()], {"mamf_tflops": {"fp32": 1.0}, "complete": True}, **H100))


def no_new_json(workdir, proc):
    out = os.path.join(workdir, "out")
    bad = [n for n in os.listdir(out)] if os.path.isdir(out) else []
    return f"left files in out/: {bad}" if bad else None


def results_sound(workdir, proc, want_files=1):
    """out/ holds want_files result files, each loadable (summary filled if missing), no temp file."""
    sys.path.insert(0, ROOT)
    from bench.results import load
    out = os.path.join(workdir, "out")
    names = sorted(os.listdir(out)) if os.path.isdir(out) else []
    temps = [n for n in names if n.endswith(".tmp") or n.startswith(".")]
    if temps:
        return f"temporary files left: {temps}"
    jsons = [n for n in names if n.endswith(".json")]
    if len(jsons) != want_files:
        return f"expected {want_files} result file(s) in out/, found {names}"
    for n in jsons:
        try:
            load(os.path.join(out, n))
        except Exception as e:  # noqa: BLE001 - any failure to load is the finding
            return f"{n} does not load: {e}"
    return None


def victim_intact(workdir, proc):
    with open(os.path.join(workdir, "victim.txt")) as f:
        return None if f.read() == "precious" else "victim.txt was overwritten through a planted symlink"


def dir_absent(rel):
    def check(workdir, proc):
        return f"{rel} was created before refusing" if os.path.exists(os.path.join(workdir, rel)) else None
    return check


# ---- the cases ---------------------------------------------------------------------------------

BAD_NUMBERS = ["1,5T", "1,000", "nan", "-inf", "Infinity", "1e400", "0x10", "abc", "", "\u0661\u0662",
               "\uff11", "1__0", "_1", "9" * 100, "-5", "1.5TB", " "]
COST_NUMBER_FLAGS = [  # flag, the other flags it needs to be read at all
    ("--params", ["--tokens", "1T"]), ("--tokens", []), ("--active-params", ["--params", "70B", "--tokens", "1T"]),
    ("--gpus", []), ("--gpu-hours", []), ("--mfu", []), ("--efficiency", []),
    ("--goodput", []), ("--layers", []), ("--hidden", []), ("--seq", []),
]
IMPLAUSIBLE = [
    (["--params", "1e16", "--tokens", "1T"], "--params"), (["--params", "7B", "--tokens", "1e18"], "--tokens"),
    (["--gpus", "1e8"], "--gpus"), (["--gpu-hours", "1e13"], "--gpu-hours"),
    (["--mfu", "1e-300"], "--mfu"),
    (["--efficiency", "1e-300"], "--efficiency"), (["--goodput", "1e-300"], "--goodput"),
    (["--params", "1e-3", "--tokens", "1T"], "--params"), (["--tokens", "0.5"], "--tokens"),
    (["--layers", "1e6"], "--layers"), (["--hidden", "1e8"], "--hidden"), (["--seq", "1e10"], "--seq"),
    (["--params", "7B", "--active-params", "8B", "--tokens", "1T"], "exceeds --params"),
    (["--gpu-hours", "1e-300"], "--gpu-hours"), (["--gpus", "1.5"], "whole number"),
]
BAD_RESULTS = {  # name -> (content, needle)
    "missing": (None, "no such"),
    "directory": ("DIR", "directory"),
    "fifo": ("FIFO", "not a regular file"),
    "empty": ("", "empty"),
    "whitespace": ("  \n", "empty"),
    "truncated": (GOOD[:len(GOOD) // 2], "truncated"),
    "not-json": ("hello", "not valid JSON"),
    "array-top": ("[1, 2]", "JSON object"),
    "schema-2": (GOOD.replace('"schema_version": 1', '"schema_version": 2'), "schema_version"),
    "nested-100k": ("[" * 100000 + "]" * 100000, "nested"),
    "nested-100": ("[" * 100 + "]" * 100, "nested"),
    "nested-dict": ('{"a":' * 5000 + "1" + "}" * 5000, "nested"),
    "int-5000-digits": ('{"schema_version": 1, "x": ' + "9" * 5000 + "}", "digits"),
    "int-30-digits": (GOOD.replace('"m": 64', '"m": ' + "9" * 30), "out of range"),
    "nan": (GOOD.replace('"tflops": 1.0', '"tflops": NaN'), "not a finite"),
    "infinity": (GOOD.replace('"tflops": 1.0', '"tflops": Infinity'), "not a finite"),
    "minus-infinity": (GOOD.replace('"median": 1.0', '"median": -Infinity'), "not a finite"),
    "1e400": (GOOD.replace('"tflops": 1.0', '"tflops": 1e400'), "not a finite"),
    "nan-in-machine": (GOOD.replace('"world_size": 1', '"world_size": 1, "x": NaN'), "machine.x"),
    "latin1": (b'{"tag": "caf\xe9"}', "not UTF-8"),
    "utf16": ('{"schema_version": 1}'.encode("utf-16"), "not UTF-8"),
    "tflops-1e9": (json.dumps(result_doc([mm(1e9)], {})), "more than any hardware"),
    "tflops-negative": (json.dumps(result_doc([mm(-1.0)], {})), "negative"),
    "summary-contradicts": (json.dumps(result_doc([mm(1.0)], {"mamf_tflops": {"fp32": 50.0}})), "contradicts"),
    "world-size-0": (json.dumps(result_doc([], {}, world_size=0)), "world_size"),
    "world-size-string": (json.dumps(result_doc([], {}, world_size="8")), "world_size"),
    "record-not-object": (json.dumps(result_doc([], {})).replace('"records": []', '"records": [3]'), "records[0]"),
    "median-string": (GOOD.replace('"median": 1.0', '"median": "abc"'), "median"),
    "huge-string-field": (GOOD.replace('"run_id": "r"', '"run_id": "' + "x" * 2_000_000 + '"'), None),
}
BAD_PRICES = {
    "huge-cell": (PRICE_HEADER + "aws,h100,on-demand,2,2025," + "x" * 140_000 + "\n", "cell longer"),
    "nul": (PRICE_HEADER + "aws,h100,on-demand,1\x00,2025,src\n", "usd_per_gpu_hour"),
    "comma-number": (PRICE_HEADER + 'aws,h100,on-demand,"1,5",2025,src\n', "usd_per_gpu_hour"),
    "arabic-digits": (PRICE_HEADER + "aws,h100,on-demand,\u0661,2025,src\n", "usd_per_gpu_hour"),
    "nan-price": (PRICE_HEADER + "aws,h100,on-demand,nan,2025,src\n", "finite"),
    "inf-price": (PRICE_HEADER + "aws,h100,on-demand,1e400,2025,src\n", "finite"),
    "price-5000": (PRICE_HEADER + "aws,h100,on-demand,5000,2025,src\n", "above 1000"),
    "negative-price": (PRICE_HEADER + "aws,h100,on-demand,-1,2025,src\n", "negative"),
    "latin1": (PRICE_HEADER.encode() + b"caf\xe9,h100,on-demand,1,2025,src\n", "not UTF-8"),
    "missing-column": ("provider,gpu\naws,h100\n", "missing column"),
    "truncated-row": (PRICE_HEADER + "aws,h100,on-dem", "truncated"),
    "unknown-gpu": (PRICE_HEADER + "aws,h999,on-demand,1,2025,src\n", "h999"),
    "bad-date": (PRICE_HEADER + "aws,h100,on-demand,1,yesterday,src\n", "as_of"),
    "bad-pricing": (PRICE_HEADER + "aws,h100,lease,1,2025,src\n", "pricing"),
    "only-header-comment": ("# nothing\n", "empty"),
    "empty": ("", "empty"),
    "unterminated-quote": (PRICE_HEADER + 'aws,h100,on-demand,1,2025,"src\n', None),
    "directory": ("DIR", "directory"),
    "fifo": ("FIFO", "not a regular file"),
    "missing": (None, "no such"),
    "binary": (bytes(range(256)) * 4, None),
}
UNKNOWN_NAMES = [
    (["cost", "--model", "nosuch"], "unknown model"), (["cost", "--gpu", "H999"], "unknown GPU"),
    (["cost", "--network", "carrier-pigeon"], "network"), (["cost", "--pricing", "free"], "pricing"),
    (["cost", "--providers", "nosuch"], "unknown provider"), (["cost", "--format", "xml"], "format"),
    (["cost", "--providers", ","], "empty list"), (["prices", "--gpu", "H999"], "unknown GPU"),
    (["prices", "--provider", "z\u00fcrich"], "unknown provider"), (["prices", "--pricing", "x"], "pricing"),
    (["prices", "--format", "xml"], "format"), (["run", "--ops", "matmul,foo"], "unknown op"),
    (["run", "--ops", ","], "empty list"), (["run", "--dtypes", "int4"], "unknown dtype"),
    (["run", "--device", "tpu"], "unknown device"), (["frobnicate"], "unknown command"),
    (["cost", "--frobnicate"], "unrecognized"), (["cost", "--model", "x" * 10000], "unknown model"),
    (["cost", "--gpu", "\x1b[31mred"], "unknown GPU"), (["cost", "--model", "\udcff"], "unknown model"),
    (["models", "extra-arg"], "unrecognized"),
]


def _run_driver(patch: str) -> str:
    """Python that patches os first, then runs the CLI on the rest of argv (fault injection)."""
    return (f"import errno, os, sys\nsys.path.insert(0, {ROOT!r})\n{patch}\n"
            "from bench.cli import main\nsys.exit(main(sys.argv[1:]))\n")


ENOSPC_AFTER = """
_real, _n = os.replace, [0]
def _replace(a, b):
    _n[0] += 1
    if _n[0] > {after}:
        raise OSError(errno.ENOSPC, 'No space left on device')
    return _real(a, b)
os.replace = _replace
"""
ENOSPC_WRITE = """
def _write(fd, data):
    raise OSError(errno.ENOSPC, 'No space left on device')
os.write = _write
"""


def cases() -> list:
    out = []
    for flag, needs in COST_NUMBER_FLAGS:
        for bad in BAD_NUMBERS:
            out.append(Case(f"9 number {flag} {bad[:12]!r}", ["cost", *needs, flag, bad], needle=flag))
    for argv, needle in IMPLAUSIBLE:
        out.append(Case(f"5 implausible {' '.join(argv)[:40]}", ["cost", *argv], needle=needle))
    for name, (content, needle) in BAD_RESULTS.items():
        files = {} if content is None else {"r.json": content}
        out.append(Case(f"6/7 --results {name}", ["cost", "--results", "r.json"], needle=needle, files=files))
    out.append(Case("6 --results /dev/zero", ["cost", "--results", "/dev/zero"], needle="not a regular file"))
    out.append(Case("11 --results with BOM", ["cost", "--results", "r.json"], codes=(0,),
                    files={"r.json": b"\xef\xbb\xbf" + GOOD.encode()}))
    out.append(Case("4 --results without summary", ["cost", "--results", "r.json"], codes=(0,),
                    files={"r.json": json.dumps(result_doc([mm()], **H100))}))
    out.append(Case("4 --results with empty summary", ["cost", "--results", "r.json"], codes=(0,),
                    files={"r.json": json.dumps(result_doc([mm()], {}, **H100))}))
    out.append(Case("8 --results from an unknown GPU names the file", ["cost", "--results", "r.json"],
                    codes=(0, 2), needle="r.json", owner="stepmodel",
                    files={"r.json": json.dumps(result_doc([mm()], {}, device="cuda",
                                                           gpu={"name": "H999", "normalized": "H999", "count": 1}))}))
    for name, (content, needle) in BAD_PRICES.items():
        files = {} if content is None else {"p.csv": content}
        out.append(Case(f"5/11 --prices {name}", ["cost", "--gpu-hours", "1M", "--prices", "p.csv"],
                        needle=needle, files=files))
    out.append(Case("5 --prices /dev/zero", ["cost", "--prices", "/dev/zero"], needle="not a regular file"))
    out.append(Case("11 --prices with BOM", ["cost", "--gpu-hours", "1M", "--prices", "p.csv"], codes=(0,),
                    files={"p.csv": b"\xef\xbb\xbf" + (PRICE_HEADER + "mine,h100,on-demand,1.5,2025,me\n").encode()}))
    out.append(Case("11 --prices with CRLF", ["cost", "--gpu-hours", "1M", "--prices", "p.csv"], codes=(0,),
                    files={"p.csv": (PRICE_HEADER + "mine,h100,on-demand,1.5,2025,me\n").replace("\n", "\r\n")}))

    def formula_escaped(workdir, proc):
        bad = [ln for ln in proc.stdout.splitlines() if ln.startswith(("=", "+", "-", "@"))]
        return f"formula passed into CSV output unescaped: {bad[0][:40]!r}" if bad else None

    out.append(Case("16 formula in a provider cell, CSV output", ["cost", "--gpu-hours", "1M", "--prices", "p.csv",
                    "--providers", "=HYPERLINK(\"http://x\")", "--format", "csv"], codes=(0, 2), owner="prices",
                    files={"p.csv": PRICE_HEADER + '"=HYPERLINK(""http://x"")",h100,on-demand,1,2025,me\n'},
                    check=formula_escaped))
    for argv, needle in UNKNOWN_NAMES:
        out.append(Case(f"names {' '.join(argv)[:40]!r}", argv, needle=needle))
    # the commands that landed with compare, report, whatif and tco
    for cmd in ("run", "cost", "prices", "whatif", "tco", "compare", "report", "models", "gpus", "networks"):
        out.append(Case(f"help {cmd} --help", [cmd, "--help"], codes=(0,)))
    for argv, needle in (
            (["whatif", "--vary", "gpus=1,5"], None), (["whatif", "--vary", "tokens=nan,1T"], "tokens"),
            (["whatif", "--vary", "nosuch=1,2"], "nosuch"), (["whatif", "--vary", "gpus"], "vary"),
            (["whatif", "--vary", "gpus=1e400,2"], None), (["whatif", "--vary", "tokens=1e18,1T"], "tokens"),
            (["tco", "--capex", "1,5"], "--capex"), (["tco", "--capex", "nan"], "--capex"),
            (["tco", "--life-years", "-1"], "life"), (["tco", "--utilization", "0"], "utilization"),
            (["tco", "--utilization", "1e-300"], "utilization"), (["tco", "--pue", "inf"], "--pue"),
            (["tco", "--capex", "1e400"], "--capex"), (["tco", "--gpu", "H999"], "unknown GPU"),
            (["tco", "--rental-price", "1,5x"], None), (["compare", "nope.json"], "nope.json"),  # compare and report warn per skipped file first
            (["compare"], None), (["report", "nope.json", "--out", "rep"], "nope.json"),
            (["report", "r.json", "--out", "/dev/null/x"], None), (["compare", "r.json", "--model", "nosuch"], "model")):
        out.append(Case(f"new {' '.join(argv)[:40]!r}", argv, needle=needle, files={"r.json": GOOD},
                        one_line=argv[0] not in ("compare", "report")))
    for name in ("nested-100k", "nan", "int-5000-digits", "fifo", "latin1"):
        content, _ = BAD_RESULTS[name]
        out.append(Case(f"6/7 compare {name}", ["compare", "r.json"], codes=(2,), files={"r.json": content},
                        one_line=False))
    # streams
    for cmd in (["prices"], ["gpus"], ["models"], ["networks"], ["cost"], ["cost", "--format", "json"],
                ["cost", "--format", "csv"], ["prices", "--format", "csv"], ["--help"], ["--version"]):
        label = " ".join(cmd)
        out.append(Case(f"13 {label} >&-", cmd, codes=(4,), needle="standard output is closed", stdout="closed"))
        out.append(Case(f"13 {label} > /dev/full", cmd, codes=(4,), needle="No space left", stdout="full",
                        one_line=False))  # a warning (stale prices) may come first
        out.append(Case(f"12 {label} ascii stdout | cat", cmd, codes=(0,), stdout="ascii-pipe",
                        env={"PYTHONIOENCODING": "ascii"}))
        out.append(Case(f"13 {label} | head -c1", cmd, codes=(0,), stdout="early-close"))
    out.append(Case("12 non-ASCII error with ascii stderr", ["prices", "--provider", "z\u00fcrich\u2248"],
                    env={"PYTHONIOENCODING": "ascii"}, needle="unknown provider"))
    out.append(Case("12 LANG=C non-ASCII argument", ["cost", "--gpu", "\u00e9\u00e9"], env={"LANG": "C", "LC_ALL": "C"},
                    needle="unknown GPU"))
    out.append(Case("13 stderr closed, bad input", ["cost", "--tokens", "x"], stdout="pipe",
                    env={"HOSTILE_CLOSE_STDERR": "1"}, one_line=False))
    # run: files and devices (these import torch)
    out.append(Case("18 run --device cuda --out new/x", ["run", "--device", "cuda", "--out", "new/x"],
                    check=dir_absent("new")))
    out.append(Case("run --out is a file", ["run", "--out", "afile/x"], files={"afile": "x"}, needle="--out"))
    out.append(Case("run --out /dev/null", ["run", "--ops", "allreduce", "--quick", "--out", "/dev/null"], needle="--out"))
    out.append(Case("2 disk full at start", ["run", "--device", "cpu", "--ops", "allreduce", "--quick", "--out", "out"],
                    codes=(4,), needle="No space left", driver=_run_driver(ENOSPC_WRITE), check=no_new_json,
                    one_line=False))
    for after in (1, 2, 4):
        out.append(Case(f"2 disk full after {after} saves", ["run", "--device", "cpu", "--ops", "allreduce", "--quick",
                        "--out", "out"], codes=(4,), needle="keeps its last complete version",
                        driver=_run_driver(ENOSPC_AFTER.format(after=after)), check=results_sound, one_line=False))
    out.append(Case("1 planted symlinks at temp names", ["run", "--device", "cpu", "--ops", "allreduce", "--quick",
                    "--out", "out"], codes=(0,), files={"victim.txt": "precious"}, check=victim_intact,
                    one_line=False, signal_after=("PLANT", 0.0)))
    out.append(Case("17 stale temp of a dead process cleaned", ["run", "--device", "cpu", "--ops", "allreduce",
                    "--quick", "--out", "out"], codes=(0,), files={"out/STALE": "{"}, check=results_sound,
                    one_line=False))
    for sig, after in ((signal.SIGTERM, 0.3), (signal.SIGTERM, 1.5), (signal.SIGINT, 0.3), (signal.SIGINT, 1.5)):
        out.append(Case(f"17 {sig.name} at {after}s into run", ["run", "--device", "cpu", "--quick", "--out", "out"],
                        codes=(130,), needle="interrupted", signal_after=(sig, after), one_line=False))
    out.append(Case("17 SIGTERM at 0.2s into cost", ["cost"], codes=(130, 0), signal_after=(signal.SIGTERM, 0.2),
                    one_line=False))
    out.append(Case("17 SIGKILL mid-run, file usable", ["run", "--device", "cpu", "--quick", "--out", "out"],
                    codes=(-9,), signal_after=(signal.SIGKILL, 1.0), one_line=False, check=results_sound))
    # environment variables (engineer "collectives": items 14, 15)
    for env, needle in (({"WORLD_SIZE": "abc"}, "WORLD_SIZE"), ({"WORLD_SIZE": "-1"}, "WORLD_SIZE"),
                        ({"WORLD_SIZE": "2", "RANK": "0"}, "torchrun"), ({"RANK": "x", "WORLD_SIZE": "2"}, "RANK"),
                        ({"COSTBENCH_TIMEOUT_S": "abc"}, "COSTBENCH_TIMEOUT_S"),
                        ({"COSTBENCH_TIMEOUT_S": "-5"}, "COSTBENCH_TIMEOUT_S"),
                        ({"COSTBENCH_TIMEOUT_S": "nan"}, "COSTBENCH_TIMEOUT_S")):
        label = " ".join(f"{k}={v}" for k, v in env.items())
        out.append(Case(f"14/15 {label} run", ["run", "--device", "cpu", "--ops", "allreduce", "--quick", "--out", "out"],
                        env=env, needle=needle, owner="collectives", one_line=False))
    out.extend(new_surface_cases())
    return out


# ---- the new surfaces (step model, layouts, tco, whatif, compare, report, SkyPilot import) ----------

NEW_BAD = ["0", "-1", "nan", "1e400", "9" * 100, "1.5", "1,5", "abc"]
# flag -> (command, kind, other argv): kind "int" takes whole numbers > 0, "pos" numbers > 0,
# "zero" numbers >= 0; a fraction is fine for "pos"/"zero" and 0 for "zero", the rest is refused
NEW_NUMBER_FLAGS = [
    ("cost", "--heads", "int", []), ("cost", "--kv-heads", "int", []), ("cost", "--ffn", "int", []),
    ("cost", "--vocab", "int", []), ("cost", "--tp", "int", []), ("cost", "--pp", "int", []),
    ("cost", "--micro-batch", "int", []), ("cost", "--global-batch", "int", []),
    ("cost", "--virtualization-overhead", "zero", []), ("cost", "--stale-months", "pos", []),
    ("prices", "--stale-months", "pos", []),
    ("tco", "--capex", "zero", []), ("tco", "--life-years", "pos", []), ("tco", "--residual-fraction", "zero", []),
    ("tco", "--interest", "zero", []), ("tco", "--power-kw", "pos", []), ("tco", "--pue", "pos", []),
    ("tco", "--usd-per-kwh", "zero", []), ("tco", "--utilization", "pos", []),
    ("tco", "--opex-usd-per-gpu-year", "zero", []), ("tco", "--rental-price", "pos", []),
    ("run", "--warmup-s", "zero", ["--device", "cuda"]), ("run", "--max-bytes", "int", ["--device", "cuda"]),
    ("run", "--tp", "int", ["--device", "cuda"]), ("run", "--hidden", "int", ["--device", "cuda"]),
    ("run", "--heads", "int", ["--device", "cuda"]), ("run", "--kv-heads", "int", ["--device", "cuda"]),
    ("run", "--ffn", "int", ["--device", "cuda"]), ("run", "--vocab", "int", ["--device", "cuda"]),
    ("run", "--seq", "int", ["--device", "cuda"]),
]


def _expected(kind, bad):
    """Exit codes a value may give for a flag of this kind (run --device cuda on a machine without
    one refuses with 2 after its flags parse, so a good value there is 2 as well)."""
    if bad in ("0",) and kind == "zero":
        return (0, 2)
    if bad == "1.5" and kind in ("pos", "zero"):
        return (0, 2)
    return (2,)


GPU_RESULT = json.loads(GOOD)


def _doc(**changes):
    d = json.loads(GOOD)
    for k, v in changes.items():
        d[k] = v
    return json.dumps(d)


def coll(busbw=10.0, world_size=2):
    return {"op": "allreduce", "dtype": "fp32", "bytes": 1 << 20, "world_size": world_size, "backend": "nccl",
            "inplace": False, "algbw_gbps": busbw, "busbw_gbps": busbw, "wrong": 0}


ABSURD_RESULTS = {  # name -> (content, needle) for compare / report / cost --results
    "tflops-1e30": (json.dumps(result_doc([mm(1e30)], {}, **H100)), "tflops"),
    "negative-busbw": (json.dumps(result_doc([coll(-5.0)], {}, **H100)), "busbw"),
    "world-size-0": (json.dumps(result_doc([coll()], {}, **{**H100, "world_size": 0})), "world_size"),
    "records-huge": (json.dumps(result_doc([mm()] * 30_000, {}, **H100)), None),
    "records-not-list": (_doc(records={"a": 1}), "records"),
    "summary-list": (_doc(summary=[1]), "summary"),
    "machine-string": (_doc(machine="gpu"), "machine"),
    "membw-negative": (_doc(summary={"membw_gbps": -3.0, "mamf_tflops": {"fp32": 1.0}}), "membw"),
    "mamf-1e30": (_doc(summary={"mamf_tflops": {"fp32": 1e30}}), "tflops"),
}
SKYPILOT_HEADER = ("InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,SpotPrice,Region,"
                   "AvailabilityZone\n")
SKYPILOT_ROW = "p5.48xlarge,H100,8,192,2048,98.32,40.0,us-east-1,us-east-1a\n"
BAD_SKYPILOT = {  # name -> (content, needle)
    "empty": ("", "empty"),
    "header-only": (SKYPILOT_HEADER, None),
    "bom": (b"\xef\xbb\xbf" + (SKYPILOT_HEADER + SKYPILOT_ROW).encode(), None),
    "unknown-columns": ("a,b,c\n1,2,3\n", "column"),
    "huge-cell": (SKYPILOT_HEADER + "p5," + "x" * 140_000 + ",8,1,1,1,1,r,z\n", None),
    "formula": (SKYPILOT_HEADER + '"=HYPERLINK(""x"")",H100,8,1,1,98,40,"=cmd|x",z\n', None),
    "malformed-quote": (SKYPILOT_HEADER + 'p5,"H100,8,1,1,98,40,r,z\n', None),
    "latin1": (SKYPILOT_HEADER.encode() + b"p5,H100,8,1,1,98,40,caf\xe9,z\n", "UTF-8"),
    "nan-price": (SKYPILOT_HEADER + "p5,H100,8,1,1,nan,40,r,z\n", None),
    "negative-price": (SKYPILOT_HEADER + "p5,H100,8,1,1,-98,40,r,z\n", None),
    "gpu-count-0": (SKYPILOT_HEADER + "p5,H100,0,1,1,98,40,r,z\n", None),
    "gpu-count-1.5": (SKYPILOT_HEADER + "p5,H100,1.5,1,1,98,40,r,z\n", None),
    "binary": (bytes(range(256)) * 4, None),
    "directory": ("DIR", "directory"),
    "missing": (None, "no such"),
    "fifo": ("FIFO", "not a regular file"),
}


def not_silent(workdir, proc):
    """A command that exits 0 says something on stdout (no silent empty output)."""
    if proc.returncode == 0 and not proc.stdout.strip():
        return "exit 0 with empty output"
    return None


def no_formula(workdir, proc):
    bad = [c for ln in proc.stdout.splitlines() for c in ln.split(",") if c.lstrip('"').startswith(("=", "+", "@"))]
    return f"formula passed into CSV output unescaped: {bad[0][:40]!r}" if bad else None


def file_intact(rel, content):
    def check(workdir, proc):
        path = os.path.join(workdir, rel)
        try:
            with open(path) as f:
                return None if f.read() == content else f"{rel} was overwritten"
        except OSError as e:
            return f"{rel} was lost: {e}"
    return check


def no_partial(rel):
    def check(workdir, proc):
        path = os.path.join(workdir, rel)
        if proc.returncode != 0 and os.path.isdir(path):
            left = [n for n in os.listdir(path)]
            if left:
                return f"{rel} holds {left} after a refusal"
        return None
    return check


def new_surface_cases() -> list:
    out = []
    for cmd, flag, kind, needs in NEW_NUMBER_FLAGS:
        for bad in NEW_BAD:
            codes = (0, 2) if flag == "--rental-price" and bad == "1,5" else _expected(kind, bad)  # a list of two
            out.append(Case(f"N number {cmd} {flag} {bad[:12]!r}", [cmd, *needs, flag, bad],
                            needle=flag if codes == (2,) else None, codes=codes if cmd != "run" else (2,),
                            check=not_silent,
                            one_line=cmd != "run" or bad == "abc"))
    contradictions = [
        (["--heads", "64", "--tp", "3"], "--tp"), (["--pp", "1000"], "--pp"),
        (["--global-batch", "1001", "--micro-batch", "2"], "--global-batch"),
        (["--micro-batch", "4096", "--global-batch", "8"], "--micro-batch"),
        (["--gpus", "8", "--tp", "8", "--pp", "4"], "--gpus"), (["--kv-heads", "128"], "--kv-heads"),
        (["--params", "7B", "--active-params", "70B", "--tokens", "1T"], "--active-params"),
        (["--heads", "64", "--kv-heads", "3"], "--kv-heads"), (["--hidden", "8190"], "--hidden"),
        (["--tp", "16"], "--tp"), (["--gpus", "1000", "--tp", "8", "--pp", "8", "--global-batch", "3", "--micro-batch", "2"], "batch"),
        (["--gpu", "cpu"], None), (["--dtype", "fp8", "--gpu", "A100-SXM"], "fp8"), (["--dtype", "int4"], "dtype"),
        (["--recompute", "some"], "recompute"), (["--layers", "1", "--pp", "2"], "--pp"),
        (["--model", "llama3-405b", "--gpu", "T4", "--gpus", "8"], None),  # nothing fits: a clear word
        (["--model", "llama3-405b", "--gpus", "8", "--tp", "1", "--pp", "1"], None),
        (["--virtualization-overhead", "1"], "--virtualization-overhead"),
        (["--region", "mars-1"], "region"), (["--region", ""], "region"),
        (["--gpu-hours", "1M", "--tp", "8"], None), (["--mfu", "0.4", "--tp", "3", "--heads", "64"], "--tp"),
    ]
    for argv, needle in contradictions:
        out.append(Case(f"N contradiction cost {' '.join(argv)[:50]}", ["cost", *argv], needle=needle,
                        codes=(0, 2) if needle is None else (2,), check=not_silent))
    for argv, needle in (
            (["--vary", "gpu=H999,H100-SXM"], "H999"), (["--vary", "gpus=0,8"], "gpus"),
            (["--vary", "gpus=" + ",".join(str(8 * i) for i in range(1, 1001))], None),
            (["--vary", "tokens=" + ",".join(f"{i}T" for i in range(1, 1001))], None),
            (["--vary", "gpus=8,8"], None), (["--vary", "gpus="], "gpus"), (["--vary", "=1,2"], "vary"),
            (["--vary", "tp=1,3", "--heads", "64"], "tp"), (["--vary", "pp=1,1000"], "pp"),
            (["--vary", "vary=1,2"], "vary"), (["--vary", "results=a.json"], None),
            (["--vary", "format=json,csv"], "format"), (["--vary", "gpus=8", "--vary", "tp=2"], None),
            (["--vary", "network=carrier-pigeon"], "network"), (["--vary", "dtype=fp8,int4"], "dtype"),
            (["--vary", "utilization=0.5"], "utilization"), (["--vary", "GPUS=8,16"], None),
            (["--vary", "gpus=8", "--gpus", "16"], None), (["--vary", "prices=x.csv"], None),
            (["--vary", "virtualization-overhead=0,1,nan"], "virtualization"),
            (["--vary", "mfu=0.4,1.5"], "mfu"), (["--vary", "recompute=none,full,bogus"], "recompute")):
        out.append(Case(f"N whatif {' '.join(argv)[:50]}", ["whatif", *argv], needle=needle,
                        codes=(0, 2) if needle is None else (2,), check=not_silent))
    for argv, needle in (
            (["--utilization", "0"], "utilization"), (["--utilization", "1.5"], "utilization"),
            (["--life-years", "0"], "life"), (["--capex", "-1"], "capex"), (["--capex", "0"], None),
            (["--residual-fraction", "1.5"], "residual"), (["--residual-fraction", "-0.1"], "residual"),
            (["--interest", "-0.5"], "interest"), (["--interest", "100"], "interest"),
            (["--pue", "0.5"], "pue"), (["--life-years", "1e6"], "life"), (["--power-kw", "1e9"], "power"),
            (["--usd-per-kwh", "1e6"], "kwh"), (["--rental-price", ","], "rental"),
            (["--rental-price", "1,nan"], "rental"), (["--rental-price", "0"], "rental"),
            (["--rental-price", "1e6"], "rental"), (["--providers", "nosuch"], "provider"),
            (["--region", "mars-1"], "region"), (["--pricing", "free"], "pricing"), (["--format", "csv"], None),
            (["--gpu", "cpu"], None), (["--residual-fraction", "1"], None),
            (["--opex-usd-per-gpu-year", "1e15"], "opex")):
        out.append(Case(f"N tco {' '.join(argv)[:50]}", ["tco", *argv], needle=needle,
                        codes=(0, 2) if needle is None else (2,), check=not_silent))
    # compare and report: directories and files that hold nothing usable
    dirs = {"empty-dir": {"d/": "DIR"}, "non-json-dir": {"d/a.txt": "hello", "d/b.csv": "x,y"},
            "zero-byte-json": {"d/a.json": ""}, "json-dir-in-dir": {"d/sub.json/": "DIR"}}
    for name, files in dirs.items():
        files = {k.rstrip("/"): v for k, v in files.items()}
        out.append(Case(f"N compare {name}", ["compare", "d"], files=files, codes=(2,), one_line=False,
                        check=not_silent))
        out.append(Case(f"N report {name}", ["report", "d", "--out", "rep"], files=files, codes=(2,), one_line=False,
                        check=no_partial("rep")))
    for name, (content, needle) in ABSURD_RESULTS.items():
        for cmd in (["compare", "r.json"], ["report", "r.json", "--out", "rep"], ["cost", "--results", "r.json"]):
            out.append(Case(f"N {cmd[0]} absurd {name}", cmd, files={"r.json": content}, needle=needle,
                            codes=(0, 2) if needle is None else (2,), one_line=cmd[0] == "cost",
                            check=not_silent if cmd[0] != "report" else no_partial("rep")))
    out.append(Case("N report --out is a file", ["report", "r.json", "--out", "afile"],
                    files={"r.json": GOOD, "afile": "mine"}, needle="--out", check=file_intact("afile", "mine"),
                    one_line=False))
    out.append(Case("N report --out unwritable dir", ["report", "r.json", "--out", "/proc/rep"],
                    files={"r.json": GOOD}, codes=(2, 4), needle="/proc/rep", one_line=False))
    out.append(Case("N report --out holds a user's index.html", ["report", "r.json", "--out", "rep"],
                    files={"r.json": GOOD, "rep/index.html": "my page"}, codes=(0, 2),
                    check=file_intact("rep/index.html", "my page"), one_line=False))
    out.append(Case("N report --whatif missing", ["report", "r.json", "--out", "rep", "--whatif", "w.json"],
                    files={"r.json": GOOD}, needle="w.json", one_line=False, check=no_partial("rep")))
    for name, content in (("not-json", "hello"), ("empty", ""), ("wrong-shape", "[1,2]"),
                          ("nested", "[" * 100000 + "]" * 100000), ("other-json", GOOD)):
        out.append(Case(f"N report --whatif {name}", ["report", "r.json", "--out", "rep", "--whatif", "w.json"],
                        files={"r.json": GOOD, "w.json": content}, needle="w.json", one_line=False,
                        check=no_partial("rep")))
    out.append(Case("N compare --prices cpu row", ["compare", "r.json", "--prices", "p.csv"],
                    files={"r.json": GOOD, "p.csv": PRICE_HEADER + "mine,cpu,on-demand,1e6,2025,me\n"},
                    needle="p.csv", one_line=False))
    for name, row, needle in (("price 5000", "mine,cpu,on-demand,5000,2025,me\n", "usd_per_gpu_hour"),
                              ("pricing spot ok", "mine,cpu,spot,0.1,2025,me\n", None),
                              ("cpu for a GPU result", "mine,cpu,on-demand,0.1,2025,me\n", None)):
        out.append(Case(f"N cost --prices cpu row {name}", ["cost", "--results", "r.json", "--prices", "p.csv"],
                        files={"r.json": GOOD, "p.csv": PRICE_HEADER + row}, needle=needle,
                        codes=(0, 2) if needle is None else (2,), check=not_silent))
    for name, (content, needle) in BAD_SKYPILOT.items():
        files = {} if content is None else {"vms.csv": content}
        for fmt in ("csv", "table"):
            out.append(Case(f"N --from-skypilot {name} {fmt}", ["prices", "--from-skypilot", "vms.csv",
                            "--provider", "aws", "--format", fmt], files=files, needle=needle,
                            codes=(0, 2) if needle is None else (2,), check=lambda w, p: no_formula(w, p) or not_silent(w, p)))
    for argv, needle in ((["--from-skypilot", "vms.csv"], "--provider"),
                         (["--from-skypilot", "vms.csv", "--provider", "aws,gcp"], "--provider"),
                         (["--from-skypilot", "vms.csv", "--provider", "nosuch"], None),
                         (["--from-skypilot", "vms.csv", "--provider", "aws", "--as-of", "yesterday"], "--as-of"),
                         (["--from-skypilot", "vms.csv", "--provider", "aws", "--as-of", "2025-13"], "--as-of"),
                         (["--from-skypilot", "vms.csv", "--provider", "aws", "--as-of", "9999-01"], "--as-of"),
                         (["--from-skypilot", "vms.csv", "--provider", "aws", "--gpu", "H999"], "--gpu"),
                         (["--region", "mars-1"], "region")):
        out.append(Case(f"N prices {' '.join(argv)[:50]}", ["prices", *argv], needle=needle,
                        codes=(0, 2) if needle is None else (2,),
                        files={"vms.csv": SKYPILOT_HEADER + SKYPILOT_ROW}, check=not_silent))
    for today in ("yesterday", "2025-13-01", "0000-01-01", "", "2025-02-30", "99999-01-01", "2025"):
        for cmd in (["prices"], ["cost"], ["whatif", "--vary", "gpus=1024,2048"]):  # tco reads no date
            out.append(Case(f"N COSTBENCH_TODAY={today!r} {cmd[0]}", cmd, env={"COSTBENCH_TODAY": today},
                            needle="COSTBENCH_TODAY", codes=(0, 2) if today == "" else (2,), check=not_silent))
    for env, needle in (({"WORLD_SIZE": "0"}, "WORLD_SIZE"), ({"WORLD_SIZE": "1e3"}, "WORLD_SIZE"),
                        ({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}, "RANK"),
                        ({"WORLD_SIZE": "2", "RANK": "-1"}, "RANK"),
                        ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "abc"}, "LOCAL_RANK"),
                        ({"WORLD_SIZE": "99999999999999999999"}, "WORLD_SIZE"),
                        ({"COSTBENCH_TIMEOUT_S": "0"}, "COSTBENCH_TIMEOUT_S"),
                        ({"COSTBENCH_TIMEOUT_S": "1e400"}, "COSTBENCH_TIMEOUT_S"),
                        ({"COSTBENCH_TIMEOUT_S": "1,5"}, "COSTBENCH_TIMEOUT_S")):
        label = " ".join(f"{k}={v[:12]}" for k, v in env.items())
        out.append(Case(f"N env {label} run", ["run", "--device", "cpu", "--ops", "allreduce", "--quick", "--out",
                        "out"], env=env, needle=needle, one_line=False, check=no_new_json))
    for argv, needle in ((["--ops", "layer", "--model", "nosuch"], "model"),
                         (["--ops", "layer", "--tp", "3", "--model", "llama3-70b"], "--tp"),
                         (["--ops", "layer", "--model", "llama3-70b", "--kv-heads", "128"], "--kv-heads"),
                         (["--layout", "TT"], "layout"), (["--max-bytes", "3"], "--max-bytes"),
                         (["--max-bytes", "1P"], "--max-bytes"), (["--warmup-s", "1e6"], "--warmup-s"),
                         (["--ops", "matmul", "--inplace", "--layout", ""], "layout")):
        out.append(Case(f"N run {' '.join(argv)[:50]}", ["run", "--device", "cpu", "--quick", "--out", "out", *argv],
                        needle=needle, check=no_new_json))
    # streams and signals on the new commands
    for cmd in (["tco"], ["whatif", "--vary", "gpus=1024,2048"], ["compare", "r.json"],
                ["prices", "--from-skypilot", "vms.csv", "--provider", "aws"],
                ["cost", "--tp", "8", "--pp", "4", "--format", "csv"]):
        label = " ".join(cmd)[:40]
        files = {"r.json": GOOD, "vms.csv": SKYPILOT_HEADER + SKYPILOT_ROW}
        out.append(Case(f"N13 {label} >&-", cmd, codes=(4,), needle="standard output is closed", stdout="closed",
                        files=files, one_line=False))
        out.append(Case(f"N13 {label} > /dev/full", cmd, codes=(4,), needle="No space left", stdout="full",
                        files=files, one_line=False))
        out.append(Case(f"N12 {label} ascii | cat", cmd, codes=(0,), stdout="ascii-pipe", files=files,
                        env={"PYTHONIOENCODING": "ascii"}))
        out.append(Case(f"N13 {label} | head -c1", cmd, codes=(0,), stdout="early-close", files=files))
        out.append(Case(f"N17 SIGTERM at 0.05s {label}", cmd, codes=(130, 0), files=files, one_line=False,
                        signal_after=(signal.SIGTERM, 0.05)))
    out.append(Case("N17 SIGTERM at 0.3s report", ["report", "r.json", "--out", "rep"], codes=(130, 0),
                    files={"r.json": GOOD}, one_line=False, signal_after=(signal.SIGTERM, 0.3),
                    check=lambda w, p: None if p.returncode == 0 else no_partial("rep")(w, p)))
    return out


# ---- running one case ----------------------------------------------------------------------------

def _materialise(case: Case, workdir: str) -> None:
    for name, content in case.files.items():
        path = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content == "DIR":
            os.makedirs(path, exist_ok=True)
        elif content == "RODIR":
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o500)
        elif content == "FIFO":
            os.mkfifo(path)
        elif name == "out/STALE":  # a temp file of a process that is certainly dead
            dead = subprocess.Popen([PY, "-c", "pass"])
            dead.wait()
            sys.path.insert(0, ROOT)
            from bench.results import _host
            with open(os.path.join(workdir, "out", f".old.json.{_host()}.{dead.pid}.{'0' * 16}.tmp"), "w") as f:
                f.write(content)
            os.unlink(path) if os.path.exists(path) else None
        else:
            with open(path, "wb") as f:
                f.write(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))


def _wait_for_result(workdir: str, proc: subprocess.Popen, deadline: float) -> None:
    out = os.path.join(workdir, "out")
    while time.monotonic() < deadline and proc.poll() is None:
        if os.path.isdir(out) and any(n.endswith(".json") for n in os.listdir(out)):
            return
        time.sleep(0.01)


def _plant_symlinks(workdir: str, proc: subprocess.Popen, deadline: float) -> None:
    """Watch out/ and, as soon as the result file exists, plant symlinks to victim.txt under every
    temporary name the old writer used (.NAME.PID.tmp) and a guess at the new one."""
    out, victim = os.path.join(workdir, "out"), os.path.join(workdir, "victim.txt")
    while time.monotonic() < deadline and proc.poll() is None:
        names = [n for n in os.listdir(out) if n.endswith(".json")] if os.path.isdir(out) else []
        if names:
            for n in names:
                for tmp in (f".{n}.{proc.pid}.tmp", f".{n}.{os.uname().nodename}.{proc.pid}.{'0' * 16}.tmp"):
                    try:
                        os.symlink(victim, os.path.join(out, tmp))
                    except FileExistsError:
                        pass
            return
        time.sleep(0.01)


def run_case(case: Case) -> str | None:
    """None if the case keeps the contract, else what broke."""
    workdir = tempfile.mkdtemp(prefix="hostile-")
    try:
        _materialise(case, workdir)
        env = {**os.environ, "PYTHONPATH": ROOT, **case.env}
        env.pop("COSTBENCH_DEBUG", None)
        argv = [os.fsencode(a) for a in case.argv]  # "\udcff" becomes the byte 0xff: argv that is not UTF-8
        cmd = [PY, "-c", case.driver, *argv] if case.driver else [PY, "-m", "bench", *argv]
        stdout = subprocess.PIPE
        full = None
        pre = None
        if case.stdout == "closed":
            pre = lambda: os.close(1)  # noqa: E731
            stdout = subprocess.DEVNULL
        elif case.stdout == "full":
            full = open("/dev/full", "w")
            stdout = full
        if env.pop("HOSTILE_CLOSE_STDERR", None):
            pre = lambda: os.close(2)  # noqa: E731
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=stdout, stderr=subprocess.PIPE, env=env,
                                preexec_fn=pre, start_new_session=True)
        deadline = time.monotonic() + TIMEOUT_S
        if case.stdout == "early-close":
            proc.stdout.read(1)
            proc.stdout.close()
        if case.signal_after:
            sig, after = case.signal_after
            if sig == "PLANT":
                _plant_symlinks(workdir, proc, deadline)
            elif sig == signal.SIGKILL:  # once the result file exists, `after` seconds later
                _wait_for_result(workdir, proc, deadline)
                time.sleep(after)
                if proc.poll() is None:
                    proc.send_signal(sig)
            else:
                time.sleep(after)
                if proc.poll() is None:
                    proc.send_signal(sig)
        try:
            out_b, err_b = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return f"hung: no exit within {TIMEOUT_S} s"
        finally:
            if full:
                full.close()
        out_s = (out_b or b"").decode("utf-8", "replace")
        err = (err_b or b"").decode("utf-8", "replace")
        proc.stdout = out_s  # for checks
        problems = []
        if "Traceback" in err or "Exception ignored" in err:
            problems.append("traceback on stderr")
        if "Warning:" in err:
            problems.append("a Python warning reached the user")
        if proc.returncode not in case.codes:
            problems.append(f"exit {proc.returncode}, expected {' or '.join(map(str, case.codes))}")
        lines = err.strip().splitlines()
        if proc.returncode in (2, 4, 130) and lines:
            if case.one_line and len(lines) != 1:
                problems.append(f"{len(lines)} stderr lines, expected one")
            if case.needle and case.needle.lower() not in lines[-1].lower():
                problems.append(f"last stderr line lacks {case.needle!r}")
        if proc.returncode in (2, 4) and not lines and "HOSTILE_CLOSE_STDERR" not in case.env:
            problems.append("no error message")
        if case.check:
            found = case.check(workdir, proc)
            if found:
                problems.append(found)
        if problems:
            tail = lines[-1][:160] if lines else ""
            return "; ".join(problems) + (f" | stderr: {tail}" if tail else "")
        return None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_case_safely(case: Case) -> str | None:
    try:
        return run_case(case)
    except Exception as e:  # noqa: BLE001 - a harness failure is reported as the case's failure
        return f"harness error: {type(e).__name__}: {e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-k", default="", help="only cases whose name contains this")
    ap.add_argument("-j", type=int, default=2, help="cases at a time (default 2)")
    ap.add_argument("-v", action="store_true", help="print every case")
    opts = ap.parse_args()
    todo = [c for c in cases() if opts.k in c.name]
    t0 = time.monotonic()
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=opts.j) as pool:
        for case, problem in zip(todo, pool.map(run_case_safely, todo)):
            if problem:
                failed.append((case, problem))
            if opts.v:
                print(f"{'FAIL' if problem else 'ok  '} {case.name}", flush=True)
    for case, problem in failed:
        owner = f" [owner: {case.owner}]" if case.owner else ""
        print(f"FAIL {case.name}{owner}: {problem}")
    print(f"{len(todo) - len(failed)} passed, {len(failed)} failed ({len(todo)} cases, "
          f"{time.monotonic() - t0:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
