"""Issue 11: every failure a hostile test found, one test per case, plus fuzzing of the parsers.

The contract under test (README "Exit codes", "What costbench refuses"): bad input is one line on
stderr naming it, exit 2; an I/O error writing results or output is one line, exit 4; an
interruption is one line, exit 130; never a traceback; a file is never half-written and nothing
the user had is lost. Streams and signals need a real process, so those cases run a subprocess.
"""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import results
from cost_models.catalog import Column, load_csv, number
from cost_models.errors import InputError
from cost_models.units import check_plausible, parse_number, parse_positive
from tests.conftest import run_cli as cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACHINE = {"device": "cpu", "gpu": None, "world_size": 1}
PRICE_HEADER = "provider,gpu,pricing,usd_per_gpu_hour,as_of,source\n"


def one_line_error(capsys, *argv, code=2):
    got, out, err = cli(capsys, *argv)
    assert got == code, (got, err)
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def subprocess_cli(*argv, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60, **kw)


def write(path, content):
    """content (str or bytes) into path; returns path."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def result_doc(records=(), summary=None, **machine):
    w = {"schema_version": 1, "run_id": "r", "created_at": "2026-01-01T00:00:00Z", "costbench_version": "0",
         "tag": None, "machine": {**MACHINE, **machine}, "config": {}, "records": list(records)}
    if summary is not None:
        w["summary"] = summary
    return w


def _coll(world=2, busbw=1.0):
    t = {"min": 1.0, "median": 1.0, "mean": 1.0, "p10": 1.0, "p90": 1.0, "stdev": 0.0, "n": 3}
    return {"op": "allreduce", "dtype": "fp32", "bytes": 4096, "world_size": world, "backend": "gloo", "time_ms": t,
            "algbw_gbps": busbw, "busbw_gbps": busbw, "wrong": 0}


def matmul(tflops=1.0, dtype="fp32"):
    t = {"min": 1.0, "median": 1.0, "mean": 1.0, "p10": 1.0, "p90": 1.0, "stdev": 0.0, "n": 3}
    return {"op": "matmul", "dtype": dtype, "m": 64, "n": 64, "k": 64, "time_ms": t, "tflops": tflops,
            "correct": True, "max_rel_err": 1e-7}


# ---- 1. temporary files: exclusive, unpredictable, never through a planted symlink -------------

def test_planted_symlink_at_old_temp_name_is_not_followed(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    w = results.ResultWriter(str(out), MACHINE, {})
    base = os.path.basename(w.path)
    # every name the old code would have used, and a guess at the new pattern
    os.symlink(victim, out / f".{base}.{os.getpid()}.tmp")
    w.add(matmul())
    w.finish({"complete": True})
    assert victim.read_text() == "precious"
    assert results.load(w.path)["records"][0]["tflops"] == 1.0


def test_temp_open_refuses_existing_name_and_symlink(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    monkeypatch.setattr(results.secrets, "token_hex", lambda n: "ab" * n)  # make the name predictable
    tmp = tmp_path / f".x.json.{results._host()}.{os.getpid()}.{'ab' * 8}.tmp"
    os.symlink(victim, tmp)
    with pytest.raises(FileExistsError):
        results.atomic_write_json(str(tmp_path / "x.json"), {"a": 1})
    assert victim.read_text() == "precious" and not (tmp_path / "x.json").exists()


def test_temp_and_result_file_modes(tmp_path):
    w = results.ResultWriter(str(tmp_path), MACHINE, {})
    assert os.stat(w.path).st_mode & 0o777 == 0o644
    assert os.listdir(tmp_path) == [os.path.basename(w.path)]


# ---- 2. a full disk --------------------------------------------------------------------------

def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_disk_full_at_start_leaves_no_empty_file(tmp_path, monkeypatch):
    monkeypatch.setattr(results.os, "write", _enospc)
    with pytest.raises(results.OutputError, match="No space left on device"):
        results.ResultWriter(str(tmp_path), MACHINE, {})
    assert os.listdir(tmp_path) == []


def test_disk_full_mid_run_keeps_last_complete_version(tmp_path, monkeypatch):
    w = results.ResultWriter(str(tmp_path), MACHINE, {})
    w.add(matmul(2.0))
    monkeypatch.setattr(results.os, "replace", _enospc)
    with pytest.raises(results.OutputError, match=r"keeps its last complete version \(1 records"):
        w.add(matmul(3.0))
    monkeypatch.undo()
    assert os.listdir(tmp_path) == [os.path.basename(w.path)]  # no temp file left either
    doc = results.load(w.path)
    assert [r["tflops"] for r in doc["records"]] == [2.0]
    assert doc["summary"]["summary_from_records"] is True and doc["summary"]["mamf_tflops"] == {"fp32": 2.0}


def test_disk_full_during_run_exits_4_with_one_line(tmp_path, monkeypatch, capsys):
    real_replace, calls = os.replace, []

    def replace(a, b):
        calls.append(b)
        if len(calls) > 1:
            _enospc()
        real_replace(a, b)

    monkeypatch.setattr(results.os, "replace", replace)
    code, _, err = cli(capsys, "run", "--device", "cpu", "--ops", "allreduce", "--quick", "--out", str(tmp_path))
    last = err.splitlines()[-1]  # progress lines come first
    assert code == 4 and "Traceback" not in err
    assert last.startswith("costbench run: error: ") and "No space left on device" in last
    assert "keeps its last complete version" in last
    (name,) = os.listdir(tmp_path)
    assert results.load(str(tmp_path / name))["summary"]["complete"] is False


# ---- 4. files without a summary are usable -----------------------------------------------------

@pytest.mark.parametrize("summary", [None, {}])
def test_result_without_summary_is_filled_from_records(tmp_path, summary):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(result_doc([matmul(5.0)], summary)))
    s = results.load(str(path))["summary"]
    assert s["mamf_tflops"] == {"fp32": 5.0} and s["complete"] is False and s["summary_from_records"]


# ---- 17. SIGKILL leaves a temp file: the next run in that folder removes it ----------------------

def test_stale_temp_of_dead_process_is_cleaned(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = results._host()
    stale = tmp_path / f".old.json.{host}.{dead.pid}.{'0' * 16}.tmp"
    alive = tmp_path / f".old.json.{host}.{os.getppid()}.{'1' * 16}.tmp"
    other_host = tmp_path / f".old.json.elsewhere.{dead.pid}.{'2' * 16}.tmp"
    for p in (stale, alive, other_host):
        p.write_text("{")
    results.ResultWriter(str(tmp_path), MACHINE, {})
    left = os.listdir(tmp_path)
    assert stale.name not in left and alive.name in left and other_host.name in left


# ---- 18. --device cuda without a GPU refuses before creating --out -------------------------------

def test_device_cuda_refused_before_out_is_created(tmp_path, capsys):
    pytest.importorskip("torch")
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    one_line_error(capsys, "run", "--device", "cuda", "--out", str(tmp_path / "new" / "x"))
    assert not (tmp_path / "new").exists()


# ---- 5-8, and the class: hostile result files and CSVs -------------------------------------------

def _big_int_doc():
    return '{"schema_version": 1, "x": ' + "9" * 5000 + "}"


@pytest.mark.parametrize("content,needle", [
    ("[" * 100000 + "]" * 100000, "nested too deeply"),                       # 6
    ("[" * 100 + "]" * 100, "nested deeper than"),
    (_big_int_doc(), "digits"),                                               # 7
    ('{"schema_version": 1, "n": 123456789012345678901234567890}', "out of range"),
    (json.dumps(result_doc([matmul()], {})).replace('"tflops": 1.0', '"tflops": NaN'), "tflops: nan is not a finite"),
    (json.dumps(result_doc([matmul()], {})).replace('"tflops": 1.0', '"tflops": -Infinity'), "not a finite"),
    (json.dumps(result_doc([matmul()], {})).replace('"tflops": 1.0', '"tflops": 1e400'), "not a finite"),
    (b"\xff\xfe{}", "not UTF-8"),
    (json.dumps(result_doc([matmul(1e9)], {})), "more than any hardware"),
    (json.dumps(result_doc([matmul(1.0)], {"mamf_tflops": {"fp32": 9.0}})), "contradicts the records"),
    # every matmul record failed its check, yet the summary kept a MAMF that cost then priced
    (json.dumps(result_doc([{**matmul(1.0), "correct": False}], {"mamf_tflops": {"fp32": 1.0}})),
     "summary.mamf_tflops.fp32: 1.0 has no fp32 matmul record that passed its check behind it"),
    (json.dumps(result_doc([matmul(1.0), {**matmul(2.0), "correct": False}], {"mamf_tflops": {"fp32": 2.0}})),
     "exceeds every fp32 matmul record (best 1)"),
    (json.dumps(result_doc([{**matmul(1.0), "correct": False}], {"failed_checks": 0})),
     "summary.failed_checks: 0 but 1 records failed their check"),
    (json.dumps(result_doc([matmul(1.0)], {})).replace('"created_at": "', '"created_at": "not a date'),
     "created_at: 'not a date"),
    (json.dumps(result_doc([matmul(1.0)], {"failed_checks": 5})),   # was warned as "5 of its measurements failed"
     "summary.failed_checks: 5 but 0 records failed their check"),
    (json.dumps(result_doc([matmul(-1.0)], {})), "is negative"),
    (json.dumps(result_doc([], {}, world_size=0)), "machine.world_size: 0 must be at least 1"),
    (json.dumps(result_doc([], {}, world_size=8, nodes=100)), "machine.nodes: 100 exceeds machine.world_size 8"),
    # hostile tester round 6: a world that disagrees with itself, a sustained MAMF above its records
    (json.dumps(result_doc([_coll(world=2)], {}, world_size=1)), "records[0].world_size: 2 differs from machine.world_size 1"),
    (json.dumps(result_doc([_coll(world=2)], {"collectives": {"allreduce": {"busbw_gbps_max": 1.0, "world_size": 2,
                                                                            "nodes": 3}}}, world_size=2)),
     "summary.collectives.allreduce.nodes: 3 exceeds machine.world_size 2"),
    (json.dumps(result_doc([matmul(1.0)], {"mamf_tflops_sustained": {"fp32": 500.0}})),
     "summary.mamf_tflops_sustained.fp32: 500.0 exceeds every fp32 matmul record"),
    (json.dumps(result_doc([], {}, mig="yes")), "machine.mig: expected true or false"),
    (json.dumps(result_doc([], {}, device="cuda", mig=True, gpu={"name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb",
                                                                 "normalized": "H100-SXM", "count": 1})),
     "machine.gpu.normalized: 'H100-SXM' names a whole GPU, but machine.mig is true"),
    # json keeps the last of two keys without a word: a second gemm_tflops silently replaced the first
    (json.dumps(result_doc([matmul()], {"mamf_tflops": {"fp32": 1.0}})).replace(
        '"mamf_tflops": {"fp32": 1.0}', '"mamf_tflops": {"fp32": 1.0, "fp32": 0.5}'),
     "not a result file: key 'fp32' appears twice in one object"),
])
def test_hostile_result_files(tmp_path, capsys, content, needle):
    path = write(tmp_path / "r.json", content)
    err = one_line_error(capsys, "cost", "--results", str(path))
    assert str(path) in err and needle in err, err


def test_result_file_with_bom_is_read(tmp_path):
    path = tmp_path / "r.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(result_doc([matmul()], {})).encode())
    assert results.load(str(path))["records"][0]["tflops"] == 1.0


@pytest.mark.parametrize("special", ["dir", "fifo", "/dev/zero"])
def test_results_from_non_regular_files(tmp_path, capsys, special):
    path = str(tmp_path) if special == "dir" else special
    if special == "fifo":
        path = str(tmp_path / "fifo")
        os.mkfifo(path)
    elif special == "/dev/zero" and not os.path.exists(special):
        pytest.skip("no /dev/zero")
    for flag in ("--results", "--prices"):
        err = one_line_error(capsys, "cost", flag, path)
        assert path in err


@pytest.mark.parametrize("content,needle", [
    (PRICE_HEADER + "aws,h100,on-demand,2," + "x" * 140_000 + ",src\n", ":2: a cell longer than"),  # 5
    (PRICE_HEADER + "aws,h100,on-demand,1\x00,2025,src\n", ":2: column usd_per_gpu_hour"),
    (PRICE_HEADER + "aws,h100,on-demand,1,5,2025,src\n", ":2: 7 cells under a header of 6 columns (a decimal comma"),
    (PRICE_HEADER + "aws,h100,on-demand,\u0661\u0662,2025,src\n", "is not a number"),
    (PRICE_HEADER + "aws,h100,on-demand,1e400,2025,src\n", "is not a finite number"),
    (PRICE_HEADER + "aws,h100,on-demand,5000,2025,src\n", "is above 1000"),
    (PRICE_HEADER.encode() + b"aws,h100,on-demand,\xff,2025,src\n", ":2: not UTF-8"),
])
def test_hostile_price_csvs(tmp_path, capsys, content, needle):
    path = write(tmp_path / "p.csv", content)
    err = one_line_error(capsys, "cost", "--gpu-hours", "10M", "--prices", str(path))
    assert str(path) in err and needle in err, err


def test_csv_with_bom_works(tmp_path, capsys):  # 11: Excel's "CSV UTF-8"
    path = tmp_path / "p.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (PRICE_HEADER + "mine,h100,on-demand,1.25,2025,me\n").encode())
    code, out, err = cli(capsys, "cost", "--gpu-hours", "10M", "--prices", str(path), "--providers", "mine",
                         "--format", "json")
    assert code == 0, err
    assert json.loads(out)["rows"][0]["usd_per_gpu_hour"] == 1.25


# ---- 9 and the class: numbers ------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [("70B", 70e9), ("1_0_0", 100), ("-0", 0.0), (" 15T ", 15e12),
                                        ("1e3k", 1e6), (".5", 0.5), ("3.", 3.0), ("+2", 2)])
def test_numbers_accepted(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text,needle", [
    ("1,5T", "commas are ambiguous"), ("1,000", "commas are ambiguous"), ("nan", "not a finite"),
    ("-inf", "not a finite"), ("Infinity", "not a finite"), ("1e400", "too large"), ("0x10", "not a number"),
    ("1__0", "not a number"), ("_1", "not a number"), ("\u0661\u0662", "ASCII digits"), ("\uff11", "ASCII digits"),
    ("", "empty"), ("   ", "empty"), ("9" * 65, "characters long"), ("B", "not a number"), ("1.5TB", "not a number"),
])
def test_numbers_refused(text, needle):
    with pytest.raises(InputError, match=needle):
        parse_number(text, "--tokens")


def test_minus_zero_is_not_positive():
    with pytest.raises(InputError, match="must be positive"):
        parse_positive("-0", "--gpus")


# ---- 5 (the class): values that parse but cannot be meant ----------------------------------------

@pytest.mark.parametrize("argv,needle", [
    (["cost", "--tokens", "1,5T"], "commas are ambiguous"),                                     # 9
    (["cost", "--params", "1e16", "--tokens", "1T"], "--params: '1e+16' is above 1e+15"),
    (["cost", "--params", "7B", "--tokens", "1e18"], "--tokens"),
    (["cost", "--gpus", "1e8"], "--gpus"),
    (["cost", "--global-batch", "1e10"], "--global-batch: '10000000000' is above 1e+09"),             # 10
    # the value in full, not reformatted into the bound; a reason only for the bound it explains
    (["cost", "--gpus", "10000001"], "--gpus: '10000001' is above 1e+07 (more GPUs than exist)"),
    # not a float's rounding in 31 digits ('1000000000000000019884624838656')
    (["cost", "--gpus", "1e30"], "--gpus: '1e+30' is above 1e+07 (more GPUs than exist)"),
    (["cost", "--tokens", "0.5"], "--tokens: '0.5' is below 1000\n"),
    (["tco", "--utilization", "1.5"], "--utilization: '1.5' is above 1\n"),
    (["cost", "--gpu-hours", "1e13"], "--gpu-hours"),
    (["cost", "--params", "1e-3", "--tokens", "1T"], "--params"),
    (["cost", "--layers", "1e6"], "--layers"),
    (["cost", "--params", "7B", "--active-params", "8B", "--tokens", "1T"], "exceeds --params"),
    (["run", "--ops", ","], "empty list"),
    (["whatif", "--vary", "gpu=H100,,A100"], "--vary gpu=H100,,A100: an empty item in the list"),
    (["prices", "--gpu", ""], "--gpu: empty"),
    (["cost", "--network", ""], "--network: empty; give a value (costbench networks lists them) or leave the option out"),
    (["cost", "--model", " "], "--model: empty"),
    (["whatif", "--providers", "foo", "--vary", "gpus=1024,2048"], "whatif: error: unknown provider 'foo'"),
    (["whatif", "--vary", "gpu=H1000,H100"], "whatif: error: --vary gpu=H1000: unknown GPU 'H1000'"),
    (["whatif", "--vary", "gpus=8,16", "--prices", "/nonexist8"], "whatif: error: /nonexist8: no such CSV file"),
    (["whatif", "--vary", "gpus=1,2", "--model", "foo1"], "whatif: error: unknown model 'foo1'"),
    (["report", "x", "--out", ""], "report: error: --out: empty; give a value\n"),
    (["cost", "--results", ""], "--results: empty"),
    (["whatif", "--network", "", "--vary", "gpus=1024,2048"], "--network: empty"),
    (["cost", "--providers", "nosuch"], "unknown provider 'nosuch'; known: aws, azure, coreweave"),
    (["cost", "--providers", "crusoe"], "(no rows for it in the catalog or --prices; give them with --prices FILE)"),
])
def test_implausible_inputs_refused(capsys, argv, needle):
    err = one_line_error(capsys, *argv)
    assert needle in err, err


def test_check_plausible_ignores_unknown_names_and_none():
    check_plausible("nothing-known", 1e300)
    check_plausible("tokens", None)
    with pytest.raises(InputError, match="--tokens"):
        check_plausible("tokens", 1e18, "--tokens")


# ---- 12, 13, 17: streams and signals (real processes) -------------------------------------------

def test_ascii_stdout_does_not_crash():  # 12
    p = subprocess_cli("prices", "--provider", "z\u00fcrich", env={"PYTHONIOENCODING": "ascii"})
    assert p.returncode == 2 and "Traceback" not in p.stderr and p.stderr.count("\n") == 1


def test_ascii_stdout_prints_escaped_text():
    code = ("import sys; from bench.cli import _prepare_streams; _prepare_streams(); "
            "print('caf\u00e9 \u2248')")
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=30)
    assert p.returncode == 0 and p.stdout.strip() == "caf\\xe9 \\u2248"


def test_stdout_closed():  # 13
    p = subprocess.run([sys.executable, "-m", "bench", "gpus"], cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=60,
                       preexec_fn=lambda: os.close(1))
    assert p.returncode == 4 and "standard output is closed" in p.stderr and p.stderr.count("\n") == 1


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
@pytest.mark.parametrize("argv", [["cost", "--help"], ["tco", "-h"]])
def test_a_subcommands_help_on_a_full_disk_is_exit_4(argv):
    """argparse swallowed the OSError of a long help text: exit 0, nothing printed, nothing said."""
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 4 and p.stderr == f"costbench {argv[0]}: error: writing output: No space left on device\n"


def test_stdout_full():  # 13
    with open("/dev/full", "w") as full:
        p = subprocess.run([sys.executable, "-m", "bench", "prices"], cwd=ROOT, stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert p.returncode == 4 and "Traceback" not in p.stderr, p.stderr
    assert p.stderr.splitlines()[-1] == "costbench prices: error: writing output: No space left on device"


def test_sigterm_during_start_up():  # 17
    p = subprocess.Popen([sys.executable, "-m", "bench", "run", "--device", "cpu", "--quick", "--out", os.devnull + "/x"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.4)  # importing torch: after main() began, before the run's own handler
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in err and "Traceback" not in err, (p.returncode, err)


def test_an_interrupt_wrapped_by_other_code_is_an_interrupt_not_a_bug(monkeypatch, capsys):
    """SIGTERM 0.55 s into `run` landed in torch's import inside a class's __set_name__, which
    Python wraps: 'RuntimeError: Error calling __set_name__' (cause: the KeyboardInterrupt)."""
    import bench.cmd_catalog as mod

    class Field:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt("signal 15")

    def job(args):
        type("LogRegistry", (), {"log_alias_to_log_qnames": Field()})

    monkeypatch.setattr(mod, "main", job)
    code, out, err = cli(capsys, "gpus")
    assert (code, out, err) == (130, "", "costbench: interrupted\n")


def test_internal_error_is_one_line(monkeypatch, capsys):
    import bench.cmd_catalog as mod
    monkeypatch.setattr(mod, "main", lambda args: 1 / 0)
    err = one_line_error(capsys, "gpus", code=70)
    assert "internal error" in err and "ZeroDivisionError" in err


# ---- fuzzing: nothing but InputError out of the parsers ------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_fuzz_parse_number(text):
    try:
        value = parse_number(text, "--x")
    except InputError:
        return
    assert isinstance(value, float) and value == value and abs(value) < float("inf")


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_fuzz_load_result(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "r.json"
    path.write_bytes(data)
    try:
        results.load(str(path))
    except InputError:
        pass


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(st.fixed_dictionaries({"records": st.lists(st.fixed_dictionaries(
    {"op": st.sampled_from(["matmul", "allreduce", "x"]), "dtype": st.sampled_from(["fp32", "bf16"]),
     "time_ms": st.dictionaries(st.sampled_from(["min", "median", "mean", "p10", "p90", "stdev", "n"]), _JSON)},
    optional={"tflops": _JSON, "m": _JSON, "n": _JSON, "k": _JSON, "correct": _JSON, "max_rel_err": _JSON,
              "bytes": _JSON, "busbw_gbps": _JSON}), max_size=3),
    "summary": _JSON, "machine": _JSON}))
def test_fuzz_result_structure(tmp_path_factory, parts):
    doc = result_doc()
    doc.update(parts)
    path = tmp_path_factory.mktemp("fuzz") / "r.json"
    path.write_text(json.dumps(doc))
    try:
        results.load(str(path))
    except InputError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab1.,"\n\r#\ufeff\x00 e-')), max_size=200))
def test_fuzz_csv(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "c.csv"
    path.write_text("a,b\n" + text, encoding="utf-8", errors="surrogatepass")
    try:
        load_csv(str(path), [Column("a"), Column("b", number, required=False)])
    except InputError:
        pass


def test_help_with_a_literal_percent_sign(capsys):
    from bench.cli import ArgumentParser

    parser = ArgumentParser(prog="costbench x")
    parser.add_argument("--u", help="utilization (default 80%)")
    assert "80%" in parser.format_help()


@pytest.mark.parametrize("argv,needle", [
    (["whatif", "--vary", "tokens=1e18,1T"], "--vary tokens"),
    (["tco", "--utilization", "1e-300"], "--utilization"),
])
def test_implausible_values_in_other_commands(capsys, argv, needle):
    assert needle in one_line_error(capsys, *argv)


# ---- the second hostile pass: the new commands (step model, tco, whatif, compare, report, SkyPilot) ----

H100 = {"device": "cuda", "gpu": {"name": "NVIDIA H100 80GB HBM3", "normalized": "H100-SXM", "count": 1}}


def gpu_result(tmp_path, summary=None, records=None, name="r.json"):
    path = tmp_path / name
    path.write_text(json.dumps(result_doc(records if records is not None else [matmul()],
                                          summary if summary is not None else {"mamf_tflops": {"fp32": 1.0}},
                                          **H100)))
    return str(path)


@pytest.mark.parametrize("argv,needle", [
    (["tco", "--residual-fraction", "1.5"], "--residual-fraction: 1.5 must be in [0, 1)"),
    (["tco", "--interest", "-1"], "--interest: -1.0 must be a yearly rate"),
    (["tco", "--usd-per-kwh", "-1"], "--usd-per-kwh"),
    (["tco", "--opex-usd-per-gpu-year", "-1"], "--opex-usd-per-gpu-year"),
])
def test_tco_refusals_name_the_flag(capsys, argv, needle):
    """cost_models.tco's validator names the flag as typed (it said `interest:`, not `--interest:`)."""
    assert needle in one_line_error(capsys, *argv)


@pytest.mark.parametrize("argv,needle", [
    (["tco", "--power-kw", "1e9"], "--power-kw"), (["tco", "--power-kw", "0"], "--power-kw"),
    (["tco", "--pue", "0"], "--pue"), (["tco", "--usd-per-kwh", "1e6"], "--usd-per-kwh"),
    (["tco", "--opex-usd-per-gpu-year", "1e15"], "--opex-usd-per-gpu-year"),
    (["tco", "--rental-price", "0"], "--rental-price"), (["tco", "--rental-price", "2,1e6"], "--rental-price"),
    (["prices", "--stale-months", "9" * 30], "--stale-months"), (["cost", "--stale-months", "1e9"], "--stale-months"),
    (["run", "--max-bytes", "9" * 30], "--max-bytes"), (["run", "--warmup-s", "1e6"], "--warmup-s"),
])
def test_implausible_values_of_the_new_flags(capsys, argv, needle):
    """units.PLAUSIBLE covers the new commands' flags (a comma list: each value) and bench.cli applies
    it to every command: a 1e9 kW GPU or a 1e99-byte message is refused, not computed with."""
    assert needle in one_line_error(capsys, *argv)


@pytest.mark.parametrize("command", ["cost", "whatif", "prices", "tco"])
@pytest.mark.parametrize("value,needle", [("nan", "'nan' is not a finite number"), ("inf", "'inf' is not a finite number"),
                                          ("0", "'0' must be positive"), ("-2", "'-2' must be positive")])
def test_stale_months_is_checked_as_it_is_read(capsys, command, value, needle):
    """cost priced its rows (their age included) before its warning checked --stale-months: NaN
    reached math.floor and crashed (exit 70) in cost and whatif, not in prices or tco."""
    extra = ["--vary", "gpus=8,16", "--model", "llama3-8b"] if command == "whatif" else []
    assert f"--stale-months: {needle}" in one_line_error(capsys, command, *extra, "--stale-months", value)


def test_stale_months_varied_is_checked_per_value(capsys):
    assert "--vary stale-months: 'nan'" in one_line_error(capsys, "whatif", "--vary", "stale-months=3,nan",
                                                          "--model", "llama3-8b")


def test_plausible_bounds_check_each_value_of_a_list():
    check_plausible("rental_price", [2.0, 6.16])
    with pytest.raises(InputError, match="above 1000"):
        check_plausible("rental_price", [2.0, 5000.0], "--rental-price")


@pytest.mark.parametrize("argv,needle", [
    (["--global-batch", "1001", "--micro-batch", "2"], "--global-batch 1001: not a whole number of --micro-batch 2"),
    (["--micro-batch", "4096", "--global-batch", "8"], "--micro-batch 4096: more sequences than"),
    (["--kv-heads", "128"], "--kv-heads 128 must divide --heads 64"),
    (["--hidden", "8190"], "--hidden 8190 is not a multiple of --heads 64"),
])
def test_contradictory_layout_and_shape_name_the_flags(capsys, argv, needle):
    """A batch the micro-batch cannot cut was reported as "no layout fits ... memory"; a shape that
    does not divide named the model, not the flags. parallelism.check_given and models.check_heads
    (shared with `run --ops layer`) now say which flags contradict each other."""
    assert needle in one_line_error(capsys, "cost", *argv)


def test_run_layer_shape_uses_the_same_check(capsys):
    from kernels.layer import LayerShape

    with pytest.raises(InputError, match="--kv-heads 128 must divide --heads 64"):
        LayerShape("m", hidden=8192, heads=64, kv_heads=128, ffn=28672, seq=128)


@pytest.mark.parametrize("cmd", ["compare", "report"])
@pytest.mark.parametrize("summary,needle", [
    ({"membw_gbps": -3.0}, "summary.membw_gbps: -3.0 is negative"),
    ({"mamf_tflops": {"fp32": 1e30}}, "summary.mamf_tflops.fp32"),
])
def test_nothing_readable_is_one_line_with_the_reason(tmp_path, capsys, cmd, summary, needle):
    """One unusable file: one line, naming the file and why (it was a warning, then a bare "no
    readable result files"); a summary's rates are as plausible as the records' (a negative
    membw_gbps priced a run); a refused report creates no --out folder."""
    path = gpu_result(tmp_path, summary)
    extra = ["--out", str(tmp_path / "rep")] if cmd == "report" else []
    err = one_line_error(capsys, cmd, path, *extra)
    assert "r.json" in err and needle in err
    assert not (tmp_path / "rep").exists()


def test_cost_refuses_a_negative_summary_rate(tmp_path, capsys):
    path = gpu_result(tmp_path, {"membw_gbps": -3.0, "mamf_tflops": {"fp32": 1.0}})
    assert "membw_gbps" in one_line_error(capsys, "cost", "--results", path)


@pytest.mark.parametrize("summary,needle", [
    # a 0 was read as "not measured" and the catalog's rate used instead (the run got faster)
    ({"membw_gbps": 0, "mamf_tflops": {"fp32": 1.0}}, "summary.membw_gbps: 0 is below 0.001: not a measured rate"),
    ({"layer": {"attention_tflops": 0.0}, "mamf_tflops": {"fp32": 1.0}}, "summary.layer.attention_tflops: 0"),
    ({"layer": {"elementwise_gbps": 0}, "mamf_tflops": {"fp32": 1.0}}, "summary.layer.elementwise_gbps: 0"),
    # 1e-300 priced the run at an MFU of 1e298% (and overflowed compare and report)
    ({"layer": {"gemm_tflops": 1e-300}, "mamf_tflops": {"fp32": 1.0}}, "summary.layer.gemm_tflops: 1e-300 is below 1e-06"),
    ({"mamf_tflops": {"fp32": 0.0}}, "summary.mamf_tflops.fp32: 0.0 is below 1e-06"),
])
@pytest.mark.parametrize("cmd", ["cost", "compare"])
def test_a_zero_or_vanishing_summary_rate_is_refused(tmp_path, capsys, summary, needle, cmd):
    path = gpu_result(tmp_path, summary)
    err = one_line_error(capsys, cmd, *(["--results", path] if cmd == "cost" else [path]))
    assert "r.json" in err and needle in err, err


@pytest.mark.parametrize("change,needle", [
    ({"correct": False}, "r.json: 1 of its measurements failed their correctness check (left out of its rates"),
    ({"complete": False}, "r.json: its run stopped before the end (complete: false"),
])
def test_cost_warns_of_a_file_whose_checks_failed_or_that_stopped_early(tmp_path, capsys, change, needle):
    """Such a file was used without a word (its rates come from what passed and what it measured)."""
    bad = dict(matmul(dtype="bf16"), correct=change.get("correct", True))
    summary = {"mamf_tflops": {"bf16": 1.0}, **({"complete": False} if "complete" in change else {})}
    code, _, err = cli(capsys, "cost", "--results", gpu_result(tmp_path, summary, [matmul(dtype="bf16"), bad]),
                       "--stale-months", "1200")
    assert code == 0 and err.count("\n") == 1 and err.startswith("costbench cost: warning: ") and needle in err, err


def test_a_cpu_files_host_memory_zero_is_refused_and_missing_is_said(tmp_path, capsys):
    """0 read as "unknown" and then as a million GiB: every layout fit on one CPU."""
    cpu = {"device": "cpu", "gpu": None}
    summary = {"mamf_tflops": {"fp32": 0.1, "bf16": 0.1}, "membw_gbps": 10.0}
    for memory, expect in ((0, 2), (None, 0)):
        path = tmp_path / f"cpu{memory}.json"
        path.write_text(json.dumps(result_doc([matmul(0.1)], summary, **cpu, host_memory_gb=memory)))
        code, _, err = cli(capsys, "cost", "--results", str(path), "--prices", str(_cpu_prices(tmp_path)),
                           "--stale-months", "1200")
        assert code == expect, err
        assert ("machine.host_memory_gb: must be a positive number" in err if memory == 0 else
                "no machine.host_memory_gb: the cpu device's memory is unknown" in err), err


def _cpu_prices(tmp_path):
    path = tmp_path / "cpu.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of\nme,cpu,on-demand,0.05,2026-11\n")
    return path


def test_a_world_of_one_keeps_its_zero_busbw(tmp_path):
    """busbw is 0 by definition for one process (no link): a 0 there is a measurement, not refused."""
    from bench import results

    path = gpu_result(tmp_path, {"mamf_tflops": {"fp32": 1.0}, "busbw_gbps_max": 0.0,
                                 "collectives": {"allreduce": {"busbw_gbps_max": 0.0}}})
    assert results.load(path)["summary"]["busbw_gbps_max"] == 0.0


@pytest.mark.parametrize("content,needle", [
    ("FIFO", "not a regular file"), ("[" * 100000, "nested too deeply"), ("", "empty file"), ("{", "truncated"),
])
def test_report_whatif_goes_through_the_shared_json_reader(tmp_path, capsys, content, needle):
    """--whatif was opened with open()+json.load: a FIFO hung it, deep nesting lost the file name."""
    w = tmp_path / "w.json"
    os.mkfifo(w) if content == "FIFO" else w.write_text(content)
    err = one_line_error(capsys, "report", gpu_result(tmp_path), "--out", str(tmp_path / "rep"), "--whatif", str(w))
    assert f"--whatif {w}" in err and needle in err
    assert not (tmp_path / "rep").exists()


def test_report_out_holding_a_fifo_index_is_refused_not_blocked_on(tmp_path, capsys):
    (tmp_path / "rep").mkdir()
    os.mkfifo(tmp_path / "rep" / "index.html")
    assert "not written by costbench report" in one_line_error(capsys, "report", gpu_result(tmp_path), "--out",
                                                                str(tmp_path / "rep"))


@pytest.mark.parametrize("content,needle", [("FIFO", "not a regular file"), ("", "empty file"),
                                            (b"InstanceType\ncaf\xe9\n", "not UTF-8")])
def test_from_skypilot_goes_through_the_shared_reader(tmp_path, capsys, content, needle):
    """--from-skypilot opened the file itself: a FIFO hung `prices`, an empty file was "missing columns"."""
    path = tmp_path / "vms.csv"
    if content == "FIFO":
        os.mkfifo(path)
    else:
        write(path, content)
    assert needle in one_line_error(capsys, "prices", "--from-skypilot", str(path), "--provider", "aws")


def test_a_price_dated_in_the_future_is_refused(tmp_path, capsys):
    """--as-of 9999-01 (or 2062 for 2026 in a --prices row) made a quote look fresh for decades."""
    vms = tmp_path / "vms.csv"
    vms.write_text("x")
    assert "in the future" in one_line_error(capsys, "prices", "--from-skypilot", str(vms), "--provider", "aws",
                                             "--as-of", "9999-01")
    prices = tmp_path / "p.csv"
    prices.write_text(PRICE_HEADER + "me,h100,on-demand,1,2099-01,x\n")
    err = one_line_error(capsys, "cost", "--gpu-hours", "10M", "--prices", str(prices))
    assert "p.csv:2" in err and "in the future" in err


def test_control_characters_in_a_price_file_or_a_path_never_reach_the_terminal(capsys, tmp_path):
    """A provider named with an ESC recoloured the terminal in a warning; a path with one split the error in two."""
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,usd_low,usd_high,region,as_of,source\n"
                      "ev\x1b[41mil,H100-SXM,on-demand,2.5,,,us,2026-11,my quote\n")
    err = one_line_error(capsys, "cost", "--prices", str(prices))
    assert f"{prices}:2: column provider: a control character ('\\x1b')" in err and "\x1b" not in err
    err = one_line_error(capsys, "cost", "--results", str(tmp_path / "x\x1b[2Jy\nz.json"))
    assert "x\\x1b[2Jy\\nz.json: no such result file" in err and "\x1b" not in err


@pytest.mark.parametrize("argv", [
    ["--model", "llama3.1-405b", "--gpus", "4096"],          # full recompute on 3 of 8 layers, interleaved
    ["--model", "llama3-70b"],
    ["--model", "mixtral-8x7b", "--gpus", "512"],            # EP
    ["--layers", "32", "--hidden", "4096", "--heads", "32", "--kv-heads", "8", "--ffn", "14336",
     "--vocab", "128256", "--seq", "131072", "--gpus", "64", "--tokens", "1T"],   # CP
])
def test_a_searched_layout_given_back_as_its_flags_is_the_same_step(capsys, argv):
    """parallelism.flags pins the searched layout: --recompute full alone recomputed every layer
    (29.2 s, not 24.5 s, for 405B on 4,096) and interleaving had no flag, so a searched layout could
    not be given back to vary something else around it."""
    code, out, _ = cli(capsys, "cost", *argv, "--format", "json")
    assert code == 0
    searched = json.loads(out)
    code, out, err = cli(capsys, "cost", *argv, *searched["parallelism"]["flags"].split(), "--format", "json")
    assert code == 0, err
    given = json.loads(out)
    assert given["step"] == searched["step"]
    assert given["parallelism"] | {"chosen": "search"} == searched["parallelism"]


@pytest.mark.parametrize("argv,needle", [
    (["--recompute-layers", "3"], "--recompute-layers 3: only with --recompute full"),
    (["--recompute", "selective", "--recompute-layers", "3"], "only with --recompute full (it says how many of "
                                                              "each stage's layers a full recompute re-runs), not selective"),
    (["--recompute", "full", "--pp", "16", "--recompute-layers", "9"], "a stage of --pp 16 holds only 8 layers"),
    (["--recompute", "full", "--recompute-layers", "127"], "llama3.1-405b has only 126 layers"),
    (["--recompute", "full", "--recompute-layers", "0"], "argument --recompute-layers: '0' must be positive"),
    (["--vpp", "3", "--pp", "16"], "--vpp 3: must divide the 8 layers of each stage of --pp 16"),
    (["--vpp", "2", "--pp", "1"], "--vpp 2: interleaving needs a pipeline (--pp above 1)"),
    (["--vpp", "1.5"], "argument --vpp: '1.5' must be a whole number"),
    (["--gpu-hours", "1M", "--vpp", "2"], "--gpu-hours and --vpp: --gpu-hours skips the step model"),
])
def test_recompute_layers_and_vpp_refusals(capsys, argv, needle):
    assert needle in one_line_error(capsys, "cost", "--model", "llama3.1-405b", *argv)


def test_recompute_layers_caps_each_searched_stage():
    """N layers of each stage, all of a stage holding fewer (the search tries shallower and deeper
    pipelines); memory and the recompute's GEMMs follow the count."""
    from cost_models.cost import plan_training

    few, many = (plan_training("llama3.1-405b", "H100-SXM", gpus=8192, tp=8, pp=16, recompute="full",
                               recompute_layers=n) for n in (4, 8))
    assert few.parallelism["recompute_layers"] == 4 and many.parallelism["recompute_layers"] == 8
    assert few.step["parts"]["gemm"] < many.step["parts"]["gemm"]
    assert few.assumptions["gpu_memory_gib"] > many.assumptions["gpu_memory_gib"]
    deep = plan_training("llama3.1-405b", "H100-SXM", gpus=8192, tp=8, recompute="full", recompute_layers=8)
    stage = -(-126 // deep.parallelism["pp"])
    assert deep.parallelism["recompute_layers"] == min(8, stage)
