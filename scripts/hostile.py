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
    ("--gpus", []), ("--gpu-hours", []), ("--batch-tokens", []), ("--mfu", []), ("--efficiency", []),
    ("--goodput", []), ("--overlap", []), ("--layers", []), ("--hidden", []), ("--seq", []),
]
IMPLAUSIBLE = [
    (["--params", "1e16", "--tokens", "1T"], "--params"), (["--params", "7B", "--tokens", "1e18"], "--tokens"),
    (["--gpus", "1e8"], "--gpus"), (["--gpu-hours", "1e13"], "--gpu-hours"),
    (["--batch-tokens", "1e-300"], "--batch-tokens"), (["--mfu", "1e-300"], "--mfu"),
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
            if flag == "--overlap" and bad in ("-5",):
                needle = "--overlap"
            else:
                needle = flag
            out.append(Case(f"9 number {flag} {bad[:12]!r}", ["cost", *needs, flag, bad], needle=needle))
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
    return out


# ---- running one case ----------------------------------------------------------------------------

def _materialise(case: Case, workdir: str) -> None:
    for name, content in case.files.items():
        path = os.path.join(workdir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if content == "DIR":
            os.makedirs(path, exist_ok=True)
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
        if proc.returncode in (2, 4, 130) and lines and case.stdout != "closed-stderr":
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
