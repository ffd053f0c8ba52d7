"""`costbench cost` and the catalog commands through bench.cli.main, in process; one subprocess
check that a bad input prints no traceback; importing cost_models never imports torch."""

import csv
import io
import glob
import json
import os
import re
import subprocess
import sys

import pytest

from bench import cli
from bench.cmd_cost import print_cost_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from tests import synthetic
from tests.conftest import run_cli as run


def test_cost_table_default_is_llama3_70b_cheapest_first(capsys):
    code, out, err = run(capsys, "cost")
    # the catalog's v6/v8 SkyPilot rows are dated to the earliest they can be: one warning line
    assert code == 0 and err.count("\n") <= 1 and (err == "" or "older than 6 months" in err)
    _, doc, _ = run(capsys, "cost", "--format", "json")
    rows = json.loads(doc)["rows"]
    providers = [r["provider"] for r in rows]
    assert [line.split()[0] for line in out.splitlines()[2:2 + len(rows)]] == providers
    # offers that sell the 16,384-GPU cluster first, each block by its bill (here the run-hours' cost)
    order = [(r["offer"] is not None, r["billed_usd"]) for r in rows]
    assert order == sorted(order) and len(set(providers)) == len(providers)   # one row each
    assert all(r["billed_usd"] == r["cost_usd"] for r in rows) and any(r["offer"] for r in rows)
    assert "you pay" not in out and "term commitment" not in out   # no term: no columns for one
    assert "llama3-70b" in out and "16,384 x H100-SXM" in out and "goodput" in out


def test_cost_gpu_hours_seed_table(capsys):
    code, out, _ = run(capsys, "cost", "--gpu-hours", "6.4M", "--providers", "aws,gcp,lambda")
    assert code == 0   # 6.4M x $6.88 (aws us-east-1), x $5.3833 (gcp us-central1), x $3.99 (lambda)
    assert "$44.0M" in out and "$34.5M" in out and "$25.5M" in out


def test_cost_json_has_design_keys(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama3.1-405b", "--format", "json", "--pricing", "all")
    doc = json.loads(out)
    assert code == 0
    for key in ("model", "training_flops", "gpu", "gpus", "achieved_tflops_per_gpu", "mfu", "gpu_hours",
                "wall_clock_days", "assumptions", "rows"):
        assert key in doc
    assert set(doc["model"]) == {"name", "params", "active_params", "tokens"}
    assert doc["gpu"] == "H100-SXM" and doc["gpus"] == 16384
    row = doc["rows"][0]
    assert set(row) >= {"provider", "gpu", "pricing", "usd_per_gpu_hour", "cost_usd", "cost_usd_low",
                        "cost_usd_high", "as_of", "source"}
    assert row["cost_usd"] == pytest.approx(doc["gpu_hours"] * row["usd_per_gpu_hour"])


def test_cost_csv(capsys):
    code, out, _ = run(capsys, "cost", "--params", "7B", "--tokens", "1T", "--gpus", "64", "--format", "csv")
    lines = out.strip().splitlines()
    assert code == 0 and lines[0].startswith("provider,gpu,pricing")
    assert len(lines) > 2


def test_moe_by_flags_costs_less_than_dense(capsys):
    def hours(*extra):
        _, out, _ = run(capsys, "cost", "--params", "100B", "--tokens", "2T", "--gpus", "256", "--format", "json", *extra)
        return json.loads(out)["gpu_hours"]
    assert hours("--active-params", "20B") < hours()


def test_gpu_without_prices_says_which_have(capsys):
    code, out, _ = run(capsys, "cost", "--gpu", "gb200", "--gpus", "4096")
    assert code == 0
    assert "no on-demand prices for GB200" in out and "H100-SXM" in out


def test_user_prices_file(capsys, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source\ncoreweave,h100,on-demand,2.00,2026-01,contract\n")
    _, out, _ = run(capsys, "cost", "--gpu-hours", "10M", "--prices", str(path), "--providers", "coreweave", "--format", "json")
    assert json.loads(out)["rows"][0]["provider"] == "coreweave"
    assert json.loads(out)["rows"][0]["cost_usd"] == pytest.approx(2e7)


def _result_file(tmp_path, gpu="H200-SXM", bf16=780.0):
    doc = {"schema_version": 1, "run_id": "r", "created_at": "2026-01-01T00:00:00Z", "costbench_version": "0.1.0",
           "tag": None, "machine": {"device": "cuda", "gpu": {"name": "NVIDIA H200", "normalized": gpu, "count": 8,
                                                                "memory_gb": 141}, "world_size": 8, "nodes": 1},
           "config": {}, "records": [], "summary": {"mamf_tflops": {"bf16": bf16}, "busbw_gbps_max": 480.0}}
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_results_file_drives_the_gpu_and_its_measured_parts(capsys, tmp_path):
    path = _result_file(tmp_path)
    code, out, _ = run(capsys, "cost", "--results", path, "--efficiency", "0.5", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["gpu"] == "H200-SXM"
    assert doc["assumptions"]["rates"]["gemm"].startswith(f"measured: 0.5 x bf16 MAMF 780 ({path})")
    assert set(doc["assumptions"]["measured_parts"]) == {"gemm", "tp_comm"}
    assert sum(doc["step"]["parts"].values()) == pytest.approx(doc["step"]["seconds"])
    p = doc["parallelism"]
    assert p["tp"] * p["cp"] * p["pp"] * p["dp"] == doc["gpus"] and p["chosen"] == "search"


def test_json_has_parallelism_and_step_and_table_has_one_step_line(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama3-70b", "--tp", "8", "--pp", "4", "--micro-batch", "1",
                       "--global-batch", "2048", "--recompute", "selective", "--vpp", "1", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["parallelism"]["chosen"] == "given"
    assert (doc["parallelism"]["tp"], doc["parallelism"]["pp"], doc["parallelism"]["dp"]) == (8, 4, 512)
    assert set(doc["step"]["parts"]) >= {"gemm", "attention", "memory_bound", "tp_comm", "pp_bubble", "dp_comm",
                                         "optimizer"}
    code, out, _ = run(capsys, "cost", "--model", "llama3-70b")
    step = [line for line in out.splitlines() if line.startswith("step ")]
    assert len(step) == 1 and "gemm" in step[0] and "layout      TP 8" in out


def test_an_fp8_mfu_says_it_is_on_the_bf16_scale(capsys):
    """fp8 GEMMs run up to twice the bf16 peak its MFU is quoted against: an MFU of 107.6% was printed bare."""
    args = ["cost", "--dtype", "fp8", "--layers", "4", "--hidden", "16384", "--heads", "128", "--ffn", "65536",
            "--tokens", "1T", "--gpus", "8", "--seq", "2048", "--vocab", "1000"]
    code, out, _ = run(capsys, *args, "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["assumptions"]["mfu_basis"].startswith("the bf16 peak (989 TFLOP/s), not the fp8 peak")
    assert doc["mfu"] == pytest.approx(doc["achieved_tflops_per_gpu"] / 989)
    assert doc["achieved_tflops_per_gpu"] < 1979          # never above the fp8 peak itself
    _, table, _ = run(capsys, *args)
    share = doc["achieved_tflops_per_gpu"] / 1979
    assert f"MFU {doc['mfu']:.1%} of the bf16 peak ({share:.1%} of the fp8 peak)" in table
    _, table, _ = run(capsys, "cost", "--dtype", "fp8", "--gpu-hours", "4M")
    assert "implied end-to-end MFU 47.3% of the bf16 peak" in table


def test_csv_without_a_price_row_still_carries_the_time(capsys):
    """A header of another schema (with an internal `_age`) and no figures was all it wrote."""
    code, out, err = run(capsys, "cost", "--gpu", "H800-SXM", "--format", "csv")
    priced = list(csv.DictReader(io.StringIO(run(capsys, "cost", "--format", "csv")[1])))
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(row) == list(priced[0]) and "_age" not in row
    assert row["provider"] == "" and row["model"] == "llama3-70b" and float(row["gpu_hours"]) > 0
    assert row["note"].startswith("no on-demand prices for H800-SXM") and "no on-demand prices" in err


def test_a_small_steps_parts_still_show_and_add_up(capsys):
    """A fixed 0.5 ms threshold hid every part of a sub-millisecond step ("0.000199 s = ")."""
    code, out, _ = run(capsys, "cost", "--layers", "2", "--hidden", "256", "--heads", "4", "--ffn", "512", "--vocab",
                       "1000", "--seq", "256", "--tokens", "1B", "--gpus", "8", "--global-batch", "8")
    (step,) = [line for line in out.splitlines() if line.startswith("step ")]
    total, parts = step.split()[1], step.split("=")[1].split("+")
    assert code == 0 and "gemm" in step and len(parts) >= 3, step
    assert sum(float(p.split()[1]) for p in parts) == pytest.approx(float(total), rel=0.01), step


def test_model_by_shape(capsys):
    code, out, _ = run(capsys, "cost", "--layers", "32", "--hidden", "4096", "--heads", "32", "--kv-heads", "8",
                       "--ffn", "14336", "--vocab", "128256", "--seq", "8192", "--tokens", "1T", "--gpus", "64",
                       "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["model"]["params"] == pytest.approx(8.03e9, rel=0.001)


@pytest.mark.parametrize("params,shape", [("70B", (69, 9216, 72)), ("405B", (126, 16384, 128)), ("8B", (40, 4096, 32))])
def test_a_shape_estimated_from_params_can_use_tensor_parallelism(capsys, params, shape):
    """--params alone: 128-wide heads, a multiple of 8 of them, so TP up to 8 divides them (an
    estimate of 71 heads, prime, once left TP 1 and a 6% MFU); the table shows the shape."""
    code, out, _ = run(capsys, "cost", "--params", params, "--tokens", "1T", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["assumptions"]["shape"].startswith(
        f"estimated from params: {shape[0]} layers, hidden {shape[1]}, {shape[2]} heads")
    assert doc["parallelism"]["tp"] > 1 and doc["mfu"] > 0.3
    code, out, _ = run(capsys, "cost", "--params", params, "--tokens", "1T")
    assert code == 0 and "\nshape       estimated from params" in out


def test_catalog_model_with_a_shape_flag_is_a_new_model(capsys):
    """--layers on top of a catalog model: the parameters follow the new shape (half the layers,
    about half the parameters; the same as describing that shape in full), and the published
    budget, which was for the catalog model, is no longer shown."""
    code, out, _ = run(capsys, "cost", "--model", "llama3-70b", "--layers", "40", "--gpus", "2048", "--format", "json")
    doc = json.loads(out)
    code2, out2, _ = run(capsys, "cost", "--layers", "40", "--hidden", "8192", "--heads", "64", "--kv-heads", "8",
                         "--ffn", "28672", "--vocab", "128256", "--tokens", "15T", "--gpus", "2048", "--format", "json")
    full = json.loads(out2)
    assert code == code2 == 0
    assert doc["model"]["name"] == "llama3-70b (--layers 40)"
    assert doc["model"]["params"] == pytest.approx(full["model"]["params"], rel=2e-3)  # the catalog rounds to 70.6B
    assert doc["model"]["params"] == pytest.approx(36.37e9, rel=1e-3)
    assert doc["gpu_hours"] == pytest.approx(full["gpu_hours"], rel=2e-3)
    code, out, _ = run(capsys, "cost", "--model", "llama3-70b", "--layers", "40", "--gpus", "2048")
    assert code == 0 and "published" not in out.split("time ", 1)[1].splitlines()[0]
    # a catalog MoE shrunk to experts of one weight column: the catalog's rounded total and active
    # counts moved by slightly different offsets, and active once passed total (refused, exit 2)
    code, out, err = run(capsys, "cost", "--model", "mixtral-8x7b", "--ffn", "1", "--gpus", "64", "--format", "json")
    assert code == 0, err
    model = json.loads(out)["model"]
    assert 0 < model["active_params"] <= model["params"]


def test_catalog_model_with_other_tokens_drops_the_published_budget(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama3-70b", "--tokens", "1T")
    assert code == 0 and "(published:" not in out
    code, out, _ = run(capsys, "cost", "--model", "llama3-70b")
    assert code == 0 and "(published: 6.4M" in out


def _cpu_result(tmp_path):
    doc = {"schema_version": 1, "run_id": "c", "created_at": "2026-01-01T00:00:00Z", "costbench_version": "0.1.0",
           "tag": None, "machine": {"device": "cpu", "gpu": None, "world_size": 1, "nodes": 1, "host_memory_gb": 32.0},
           "config": {}, "records": [],
           "summary": {"mamf_tflops": {"fp32": 1.0, "bf16": 0.9}, "membw_gbps": 15.0,
                       "layer": {"model": "custom", "tp": 1, "dtype": "fp32", "gemm_tflops": 0.8,
                                 "attention_tflops": 0.3, "elementwise_gbps": 8.0}}}
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_cpu_results_priced_by_a_user_cpu_row(capsys, tmp_path):
    path = _cpu_result(tmp_path)
    prices = tmp_path / "cpu.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source\nmylab,cpu,on-demand,0.10,2026-01,own\n")
    shape = ["--layers", "2", "--hidden", "256", "--heads", "4", "--ffn", "1024", "--vocab", "1000", "--seq", "256",
             "--tokens", "1e9", "--gpus", "1"]
    code, out, err = run(capsys, "cost", "--results", path, "--prices", str(prices), *shape, "--format", "json")
    doc = json.loads(out)
    assert code == 0, err
    assert doc["gpu"] == "cpu" and doc["rows"][0]["provider"] == "mylab"
    assert doc["rows"][0]["cost_usd"] == pytest.approx(doc["gpu_hours"] * 0.10)
    assert "measured" in doc["assumptions"]["rates"]["memory_bound"]
    code, out, _ = run(capsys, "cost", "--results", path, *shape)
    assert code == 0 and "no on-demand prices for cpu" in out
    # fp16 was not measured on this CPU (no MAMF, no layer in it): refused, not made up from bf16's rate
    code, _, err = run(capsys, "cost", "--results", path, *shape, "--dtype", "fp16")
    assert code == 2 and err.count("\n") == 1 and "measured no fp16 matmul and no fp16 layer" in err


def test_a_cpu_file_without_a_copy_bandwidth_is_refused(capsys, tmp_path):
    """A CPU's roofline and optimizer run at its copy bandwidth; the layer's element-wise rate (eager,
    unfused: far below a copy) once stood in, made the thin measured GEMMs look memory-bound and
    priced GPT-3 at an MFU of 130% of the CPU's own GEMM rate (hostile tester)."""
    doc = json.loads(open(_cpu_result(tmp_path)).read())
    del doc["summary"]["membw_gbps"]
    path = synthetic.write_text(tmp_path, "nocopy.json", json.dumps(doc))
    code, _, err = run(capsys, "cost", "--results", path, "--layers", "2", "--hidden", "256", "--heads", "4",
                       "--ffn", "1024", "--vocab", "1000", "--seq", "256", "--tokens", "1e9", "--gpus", "1")
    assert code == 2 and err.count("\n") == 1
    assert "nocopy.json: a CPU has no catalog figures and this file has no copy bandwidth (summary.membw_gbps)" in err


def test_a_measured_layer_that_beat_its_roofline_never_prices_past_the_peak(capsys, tmp_path):
    """A CPU layer timed at TP 8 whose GEMMs ran far faster than the roofline's bytes allow (a copy
    bandwidth of 0.01 GB/s): priced at TP 1, wider GEMMs with fewer bytes per FLOP, the scale once
    ran them at several times the CPU's own MAMF (its peak). It stops at the peak: the MFU stays
    within the sustained share of it."""
    doc = json.loads(open(_cpu_result(tmp_path)).read())
    doc["summary"]["membw_gbps"] = 0.01   # a roofline that takes every GEMM for memory-bound
    doc["summary"]["layer"].update(model="llama3-8b", tp=8, dtype="bf16", gemm_tflops=0.85, tokens=8192,
                                   shape=synthetic.layer_shape("llama3-8b"))
    flops = 2 * 8192 * 768 * 4096
    doc["records"] = [{"op": "gemm", "dtype": "bf16", "model": "llama3-8b", "tp": 8, "tokens": 8192, "name": "qkv",
                       "pass": "fprop", "m": 8192, "n": 768, "k": 4096, "layout": "TN", "flops": flops, "per": "layer",
                       "tflops": 0.85, "correct": True, "max_rel_err": 1e-3, "shape": synthetic.layer_shape("llama3-8b"),
                       "time_ms": synthetic.time_stats(1e3 * flops / 0.85e12)}]
    path = synthetic.write_text(tmp_path, "fast.json", json.dumps(doc))
    plan = _plan(capsys, "--results", path, "--model", "llama3-8b", "--tp", "1", "--tokens", "1B", "--gpus", "64")
    assert plan["assumptions"]["rates"]["gemm"].startswith("measured: llama3-8b layer GEMMs at TP 8")
    assert 0 < plan["mfu"] < 0.76


def test_a_cpu_file_whose_layer_is_another_models_and_no_matmul_is_refused(capsys, tmp_path):
    # the stand-in "peak" would be llama3-70b's layer GEMM rate, and the attention 0.5 x it, labelled catalog
    doc = json.loads(open(_cpu_result(tmp_path)).read())
    doc["summary"]["mamf_tflops"] = {}
    doc["summary"]["layer"] = {"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": 0.8,
                               "attention_tflops": 0.07, "elementwise_gbps": 8.0}
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    code, _, err = run(capsys, "cost", "--results", str(path), "--model", "llama3-8b")
    assert code == 2 and err.count("\n") == 1 and "it measured llama3-70b, not llama3-8b" in err
    code, _, err = run(capsys, "cost", "--results", str(path), "--model", "llama3-70b", "--gpus", "16384")
    assert code == 0, err


def test_result_from_a_gpu_the_catalog_lacks_names_the_file(capsys, tmp_path):
    path = _result_file(tmp_path, gpu=None)
    code, _, err = run(capsys, "cost", "--results", path)
    assert code == 2 and path in err and "not in the GPU catalog" in err and err.count("\n") == 1
    assert "NVIDIA H200" in err      # the file's own device name, not "a GPU"


def test_print_cost_table_for_the_default_job(capsys, tmp_path):
    doc = json.loads(open(_result_file(tmp_path)).read())
    plan = print_cost_table(result=doc)
    out = capsys.readouterr().out
    assert plan.gpu.name == "H200-SXM" and "nebius" in out and "measured parts: gemm" in out
    assert print_cost_table(result=None).gpu.name == "H100-SXM"


@pytest.mark.parametrize("argv,needle", [
    (["cost", "--model", "llama3-7b"], "unknown model 'llama3-7b'; did you mean"),
    (["cost", "--gpu", "h10"], "unknown GPU 'h10'; did you mean H100-SXM"),
    (["cost", "--providers", "lamda"], "unknown provider 'lamda'; did you mean lambda"),
    (["cost", "--network", "infiniband"], "unknown network 'infiniband'"),
    (["cost", "--format", "jsno"], "unknown format 'jsno'; did you mean json"),
    (["cost", "--pricing", "ondemand"], "unknown pricing 'ondemand'; did you mean on-demand"),
    (["cost", "--gpus", "0"], "must be positive"),
    (["cost", "--gpus", "-8"], "must be positive"),
    # argparse took -1T (not a plain number) for an option: "expected one argument" hid the sign
    (["cost", "--tokens", "-1T"], "argument --tokens: '-1T' must be positive"),
    (["cost", "--providers", "aws,gcp,AWS"], "argument --providers: 'aws,gcp,AWS' names AWS twice"),
    (["run", "--ops", "matmul,membw,matmul"], "argument --ops: 'matmul,membw,matmul' names matmul twice"),
    (["cost", "--params", "-.5B"], "argument --params: '-.5B' must be positive"),
    (["cost", "--tokens", "inf"], "not a finite number"),
    (["cost", "--params", "nan", "--tokens", "1T"], "not a finite number"),
    (["cost", "--gpu-hours", "0"], "must be positive"),
    (["cost", "--mfu", "1.5"], "must be in (0, 1]"),
    (["cost", "--mfu", "0"], "must be in (0, 1]"),
    (["cost", "--efficiency", "-0.1"], "must be in (0, 1]"),
    (["cost", "--recompute", "partial"], "unknown recompute 'partial'"),
    (["cost", "--tp", "16"], "--tp 16: tensor parallelism must stay within a node of 8"),
    (["cost", "--pp", "81"], "--pp 81: more pipeline stages than the model's 80 layers"),
    (["cost", "--gpus", "16", "--tp", "8", "--pp", "4", "--global-batch", "3"], "--tp 8 x --pp 4 needs 32 GPUs, more than --gpus 16"),
    (["cost", "--gpu", "cpu"], "give --results FILE from a CPU run"),
    (["cost", "--model", "llama3-70b", "--params", "70B", "--tokens", "1T"], "--model and --params are exclusive"),
    (["cost", "--model", "llama3-70b", "--heads", "7"], "model llama3-70b: --hidden 8192 is not a multiple of --heads 7"),
    (["cost", "--params", "70B"], "--params needs --tokens"),
    (["cost", "--params", "7B", "--active-params", "8B", "--tokens", "1T"], "exceeds --params"),
    # a count that contradicts the whole shape beside it would price work the step never runs
    (["cost", "--params", "70B", "--tokens", "1B", "--layers", "2", "--hidden", "1024", "--heads", "8", "--ffn", "4096",
      "--vocab", "1000"], "--params 70B: the shape given (--layers 2 --hidden 1024 --heads 8 --kv-heads 8 --ffn 4096 "
                          "--vocab 1000) has 35.6M parameters"),
    (["cost", "--experts", "8", "--top-k", "2", "--params", "46.7B", "--active-params", "40B", "--tokens", "1T",
      "--layers", "32", "--hidden", "4096", "--heads", "32", "--kv-heads", "8", "--ffn", "14336", "--vocab", "32000"],
     "--active-params 40B: the shape given (--layers 32 --hidden 4096 --heads 32 --kv-heads 8 --ffn 14336 --vocab "
     "32000) has 12.9B parameters"),
    (["cost", "--experts", "8", "--top-k", "2", "--params", "46.7B", "--tokens", "1T"],
     "--params 46.7B with --experts 8 --top-k 2 but no --layers/--hidden: give --active-params"),
    # GPU-hours faster than the peak (an "implied MFU" of 192% was printed and priced)
    (["cost", "--gpu-hours", "1M"], "--gpu-hours 1,000,000: llama3-70b's 6.74e+24 FLOPs in that many H100-SXM "
                                    "GPU-hours is 189% of the bf16 peak (989 TFLOP/s); at the peak it takes 1,89"),
    (["cost", "--gpu-hours", "0.5M", "--dtype", "fp8"], "GPU-hours is 189% of the fp8 peak (1979 TFLOP/s)"),
    # overrides another replaces were dropped without a word
    (["cost", "--gpu-hours", "10M", "--mfu", "0.4", "--goodput", "0.5"],
     "--gpu-hours and --mfu, --goodput: --gpu-hours prices that figure as it is"),
    (["cost", "--mfu", "0.4", "--efficiency", "0.3"], "--mfu and --efficiency: --mfu replaces the step model"),
    (["cost", "--gpus", "8"], "the fewest it fits is 20 H100-SXM GPUs"),
    # --mfu and --gpu-hours skip the step model, not the memory check
    (["cost", "--gpus", "1", "--mfu", "0.5"], "--gpus 1: llama3-70b does not fit in the memory of 1 H100-SXM GPUs"),
    (["cost", "--gpus", "16", "--gpu-hours", "1000"], "(72 GiB usable each); the fewest it fits is 20"),
    (["cost", "--gpu", ""], "--gpu: empty; give a value (costbench gpus lists them) or leave the option out"),
    (["cost", "--prices", "/nonexistent/prices.csv"], "/nonexistent/prices.csv: no such CSV file"),
    # the --gpus asked, beyond the power-of-two sizes searched, is tried and named
    (["cost", "--params", "1e15", "--tokens", "1e17", "--gpus", "1e7"],
     "no layout fits H100-SXM memory (80 GiB) on any cluster up to 10,000,000 GPUs"),
    (["cost", "--micro-batch", "3"], "--micro-batch 3: the default global batch of 2,048 sequences (~16M tokens) is "
                                     "not a whole number of micro-batches of 3; give --global-batch"),
    # less than one step of training was priced as 0.087 s on 16,384 GPUs
    (["cost", "--tokens", "1M"], "--tokens 1,000,000: fewer than one global batch (2,048 sequences of 8,192 = "
                                 "16,777,216 tokens"),
    (["cost", "--prices", "/dev/zero"], "/dev/zero: not a regular file (a pipe or device?); expected a CSV file"),
    # a catalog MoE was asked for the --experts it has
    (["cost", "--model", "mixtral-8x7b", "--top-k", "8"], "--top-k: --experts/--top-k/--moe-ffn describe a model by "
                                                          "shape (--layers/--hidden or --params), not a catalog model "
                                                          "(mixtral-8x7b has 8 experts, top-2)"),
    (["cost", "--results", "/nonexistent/run.json"], "/nonexistent/run.json: no such result file"),
    (["cost", "--dtype", "int4"], "unknown dtype 'int4'"),
    (["prices", "--provider", "aws", "--gpu", "gb200"], "no price rows match"),
    (["gpus", "--format", "yaml"], "unknown format 'yaml'"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, *argv)
    assert code == 2, (out, err)
    assert needle in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("flag,content,needle", [
    ("--prices", "provider,gpu,pricing\n", "missing column(s) usd_per_gpu_hour"),
    ("--prices", "provider,gpu,pricing,usd_per_gpu_hour,as_of,source\naws,h100,on-demand,-2,2025,x\n",
     ":2: column usd_per_gpu_hour: '-2' must not be negative"),
    ("--prices", "provider,gpu,pricing,usd_per_gpu_hour,as_of,source\naws,h100,on-dem", ":2: 3 of 6 columns (truncated row?)"),
    # a free GPU would win every comparison; a repeated offer would let the last row win silently
    ("--prices", "provider,gpu,pricing,usd_per_gpu_hour,region\nmyco,h100,on-demand,0,us-x\n",
     ":2: column usd_per_gpu_hour: '0' is below $0.001 an hour"),
    ("--prices", "provider,gpu,pricing,usd_per_gpu_hour,region\nmyco,h100,on-demand,1.5,us-x\n"
                 "myco,H100-SXM,on-demand,2.5,us-x\n",
     ":3: repeats line 2's provider, gpu, pricing and region (myco, H100-SXM, on-demand, us-x)"),
    ("--results", '{"schema_version": 1, "run_id": ', "not valid JSON (truncated?)"),
    ("--results", '{"schema_version": 7}', "schema_version"),
    ("--results", "", "empty file"),
])
def test_malformed_prices_or_result_file(capsys, tmp_path, flag, content, needle):
    path = tmp_path / "input"
    path.write_text(content)
    code, _, err = run(capsys, "cost", flag, str(path))
    assert code == 2 and str(path) in err and needle in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["models", "gpus", "networks", "prices"])
@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_catalog_commands(capsys, command, fmt):
    code, out, err = run(capsys, command, "--format", fmt)
    assert code == 0 and out.strip()
    assert err == "" or (command == "prices" and err.count("\n") == 1 and "warning: " in err)
    if fmt == "json":
        assert isinstance(json.loads(out)["rows"], list)  # one object, as DESIGN's CLI contract says


def test_prices_filters(capsys):
    code, out, _ = run(capsys, "prices", "--gpu", "h100", "--provider", "lambda,gcp", "--format", "json")
    rows = json.loads(out)["rows"]
    assert code == 0 and {r["provider"] for r in rows} == {"lambda", "gcp"} and {r["gpu"] for r in rows} == {"H100-SXM"}


def test_subprocess_bad_input_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "bench", "cost", "--gpu", "h10"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_cost_models_never_imports_torch_or_bench():
    modules = [f"cost_models.{f[:-3]}" for f in sorted(os.listdir(os.path.join(ROOT, "cost_models")))
               if f.endswith(".py") and f != "__init__.py"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'bench'))\n"
            "print(','.join(bad))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""
    assert "cost_models.cost" in modules and "cost_models.hardware" in modules


def test_kernels_never_import_bench():
    """Layers point one way (DESIGN.md): kernels may use cost_models, never bench."""
    modules = [f"kernels.{f[:-3]}" for f in sorted(os.listdir(os.path.join(ROOT, "kernels")))
               if f.endswith(".py") and f != "__init__.py"]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in modules) +
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] == 'bench')))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "" and "kernels.layer" in modules


def test_the_cost_command_never_imports_torch():
    """`costbench cost` for the 405B through the CLI (bench.cli, cmd_cost) as a user runs it: no torch,
    whose import alone takes seconds. The speed is the benchmark's (scripts/bench_cost.py), not a test's."""
    code = ("import sys\nfrom bench.cli import main\n"
            "code = main(['cost', '--model', 'llama3.1-405b', '--format', 'json'])\n"
            "print('TORCH' if any(m.split('.')[0] == 'torch' for m in sys.modules) else 'none', code, file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stderr.strip().splitlines()[-1] == "none 0", proc.stderr
    assert json.loads(proc.stdout)["parallelism"]["tp"] == 8


def _tokens(shape):
    """summary.layer.tokens as a run writes it for `shape` (None where the shape is None or malformed)."""
    mb, seq = (shape or {}).get("micro_batch"), (shape or {}).get("seq")
    return mb * seq if isinstance(mb, int) and isinstance(seq, int) else None


def _layer_file(tmp_path, name, tp=8, model="llama3-70b", gemm=500.0, shape="catalog"):
    """A result file with a layer of `model` measured at `tp`; shape: the catalog model's
    (summary.layer.shape as a run writes it), a dict, or None (a file from before shapes were recorded)."""
    doc = synthetic.result("lambda/x", bf16=750.0)
    shape = synthetic.layer_shape(model) if shape == "catalog" else shape
    doc["summary"]["layer"].update(tp=tp, model=model, gemm_tflops=gemm, shape=shape,
                                   tokens=_tokens(shape))
    return synthetic.write(tmp_path, name, doc)


def _plan(capsys, *argv):
    code, out, err = run(capsys, "cost", "--gpus", "2048", "--format", "json", *argv)
    assert code == 0, err
    return json.loads(out)


def test_a_measured_layer_rate_scales_every_layouts_gemms(capsys, tmp_path):
    """The layer GEMMs' rate says how far this device falls from the roofline at the shapes it
    timed; every layout's GEMMs, at any TP, take the roofline times that factor. A file at 560,
    600 or 640 TFLOP/s (TP 8) once changed nothing at TP 4 and the search escaped to where the
    measurement did not reach: now the GEMM time is inversely proportional to it at every layout."""
    files = {r: _layer_file(tmp_path, f"tp8-{r}.json", gemm=float(r)) for r in (560, 600, 640)}
    for tp, pp in (("8", "4"), ("4", "8")):
        layout = ("--tp", tp, "--pp", pp, "--micro-batch", "1", "--recompute", "selective")
        gemm = {r: _plan(capsys, "--results", f, *layout)["step"]["parts"]["gemm"] for r, f in files.items()}
        assert gemm[560] / gemm[640] == pytest.approx(640 / 560, rel=1e-9)
        assert gemm[560] > gemm[600] > gemm[640]
    searched = {r: _plan(capsys, "--results", f)["step"]["seconds"] for r, f in files.items()}
    assert searched[560] > searched[600] > searched[640]
    layout = ("--tp", "8", "--pp", "4", "--micro-batch", "1", "--recompute", "selective")
    doc8 = _plan(capsys, "--results", files[600], *layout)
    gemm_text = doc8["assumptions"]["rates"]["gemm"]
    assert gemm_text.startswith(f"measured: llama3-70b layer GEMMs at TP 8, micro-batch 1, 600 TFLOP/s ({files[600]}), ")
    assert "x the time of the roofline on 0.76 x bf16 MAMF 750" in gemm_text and "every layout's GEMMs x " in gemm_text
    assert doc8["assumptions"]["layer_gemm_rate"].startswith("used: every layout's roofline GEMM time x ")
    # the same rate measured at TP 1 (wider GEMMs, nearer the roofline's peak) is a worse showing: slower
    at1 = _plan(capsys, "--results", _layer_file(tmp_path, "tp1.json", tp=1, gemm=600.0), *layout)
    assert at1["step"]["parts"]["gemm"] > doc8["step"]["parts"]["gemm"] * 1.002
    code, table, _ = run(capsys, "cost", "--results", files[600], "--gpus", "2048", *layout)
    assert code == 0 and "measured parts: gemm, attention, memory_bound, tp_comm, optimizer; catalog: dp_comm, " \
        "pp_comm; layer GEMM rate used" in table
    roofline = _plan(capsys, "--results", _layer_file(tmp_path, "none.json", model="llama3-8b"), *layout)
    assert "layer_gemm_rate" not in roofline["assumptions"]
    assert ("it measured llama3-8b (hidden 4096 vs 8192, heads 32 vs 64, ffn 14336 vs 28672)"
            in roofline["assumptions"]["rates"]["gemm"])
    # a file from before the shape was recorded is matched by its catalog name alone
    old = _plan(capsys, "--results", _layer_file(tmp_path, "old.json", model="llama3-8b", shape=None), *layout)
    assert "it measured llama3-8b, not llama3-70b" in old["assumptions"]["rates"]["gemm"]


def test_a_layer_timed_at_a_smaller_problem_without_its_records_is_not_used(capsys, tmp_path):
    path = _layer_file(tmp_path, "quick.json")
    doc = json.load(open(path))
    doc["summary"]["layer"].update(width_divisor=8, tokens=256)
    synthetic.write(tmp_path, "quick.json", doc)
    plan = _plan(capsys, "--results", path)
    assert ("the file's layer GEMM rate not used: it timed a smaller problem (256 tokens, widths / 8) and holds no "
            "GEMM records") in plan["assumptions"]["rates"]["gemm"]


def test_efficiency_overrides_a_measured_layer_rate(capsys, tmp_path):
    path = _layer_file(tmp_path, "tp8.json")
    layout = ("--tp", "8", "--pp", "4", "--micro-batch", "1", "--recompute", "selective")
    hours = {e: _plan(capsys, "--results", path, *layout, *(("--efficiency", e) if e else ()))["gpu_hours"]
             for e in (None, "0.5", "0.9")}
    assert hours["0.5"] > hours["0.9"] and len(set(hours.values())) == 3
    doc = _plan(capsys, "--results", path, *layout, "--efficiency", "0.5")
    assert "--efficiency 0.5 replaces the file's measured layer GEMM rate" in doc["assumptions"]["rates"]["gemm"]


def test_a_layer_of_an_unnamed_shape_without_its_shape_is_not_matched_to_another(capsys, tmp_path):
    path = _layer_file(tmp_path, "custom.json", model="custom", shape=None)
    doc = _plan(capsys, "--results", path, "--gpu", "H100-SXM", "--layers", "40", "--hidden", "8192", "--heads", "64",
                "--kv-heads", "8", "--ffn", "28672", "--vocab", "128256", "--tokens", "1T")
    assert "an unnamed shape, which cannot be matched to custom" in doc["assumptions"]["rates"]["gemm"]


LLAMA3_70B_FLAGS = ("--layers", "40", "--hidden", "8192", "--heads", "64", "--kv-heads", "8", "--ffn", "28672",
                    "--vocab", "128256", "--seq", "8192", "--tokens", "1T")


def test_a_layer_is_matched_by_its_shape_whatever_either_is_called(capsys, tmp_path):
    """A model given by shape flags uses a layer measured at its very shape (named "custom" or a
    catalog name); a catalog model uses a layer of its shape run under another name."""
    layout = ("--tp", "8", "--pp", "4", "--micro-batch", "1", "--recompute", "selective")
    unnamed = _layer_file(tmp_path, "custom.json", model="custom", shape=synthetic.layer_shape("llama3-70b"))
    doc = _plan(capsys, "--results", unnamed, *LLAMA3_70B_FLAGS, *layout)
    assert doc["assumptions"]["rates"]["gemm"].startswith(
        f"measured: custom layer GEMMs at TP 8, micro-batch 1, 500 TFLOP/s ({unnamed})")
    named = _plan(capsys, "--results", _layer_file(tmp_path, "named.json"), *LLAMA3_70B_FLAGS, *layout)
    assert named["step"]["parts"]["gemm"] == pytest.approx(doc["step"]["parts"]["gemm"], rel=1e-12)
    # Llama 3.1 70B has Llama 3 70B's shape: the same GEMMs
    v31 = _plan(capsys, "--results", _layer_file(tmp_path, "v3.json"), "--model", "llama3.1-70b", *layout)
    assert "measured: llama3-70b (this model's shape) layer GEMMs" in v31["assumptions"]["rates"]["gemm"]
    # one width off: not used, and the difference is named
    other = dict(synthetic.layer_shape("llama3-70b"), ffn=28160)
    off = _plan(capsys, "--results", _layer_file(tmp_path, "off.json", model="custom", shape=other),
                *LLAMA3_70B_FLAGS, *layout)
    assert "the file's layer GEMM rate not used: it measured custom (ffn 28160 vs 28672)" in \
        off["assumptions"]["rates"]["gemm"]


def test_cpu_pipeline_end_to_end_a_real_run_file_priced_by_a_cpu_row(capsys, tmp_path):
    """The CI smoke test of the whole path: measure this CPU (membw and a quick llama3-8b layer),
    then price a run on it from that very file with a user's gpu "cpu" price row."""
    out = tmp_path / "runs"
    code, _, err = run(capsys, "run", "--device", "cpu", "--quick", "--ops", "membw,layer", "--model", "llama3-8b",
                       "--dtypes", "bf16", "--out", str(out))
    assert code == 0, err
    (path,) = [str(out / f) for f in os.listdir(out)]
    prices = synthetic.write_text(tmp_path, "mine.csv", "provider,gpu,pricing,region,usd_per_gpu_hour,as_of,source\n"
                                  "me,cpu,on-demand,home,0.05,2026-11,my bill\n")
    code, stdout, err = run(capsys, "cost", "--results", path, "--prices", prices, "--model", "llama3-8b",
                            "--tokens", "1B", "--tp", "1", "--format", "json")
    doc = json.loads(stdout)
    assert code == 0 and doc["gpu"] == "cpu", err
    assert {"gemm", "attention", "memory_bound"} <= set(doc["assumptions"]["measured_parts"])
    assert doc["assumptions"]["rates"]["gemm"].startswith("measured: llama3-8b layer GEMMs at TP 1")
    # --quick timed attention on 256 tokens: the rate is used, and the text says on what
    assert "(a smaller problem: 256 tokens, widths / 8, against 8,192 tokens here; used as measured)" in \
        doc["assumptions"]["rates"]["attention"]
    (row,) = doc["rows"]
    assert row["provider"] == "me" and row["cost_usd"] == pytest.approx(doc["gpu_hours"] * 0.05)
    # no matmul in this file: the MFU is relative to the layer's GEMM rate, and the table says so
    code, table, _ = run(capsys, "cost", "--results", path, "--prices", prices, "--model", "llama3-8b",
                         "--tokens", "1B", "--tp", "1")
    assert code == 0 and "of its measured layer GEMM rate (no matmul was measured)" in table


def test_a_measured_moe_layer_rate_reaches_every_expert_parallel_degree(capsys, tmp_path):
    """`run --ops layer` times every expert on one GPU (EP 1: t*k/E tokens each); at EP > 1 each
    GPU's experts get EP times the tokens, thicker GEMMs: the roofline carries the measured
    factor there, so a slow layer is slow at every EP and micro-batch, by the same factor."""
    slow = _layer_file(tmp_path, "mixtral.json", tp=1, model="mixtral-8x7b", gemm=5.0)
    fast = _layer_file(tmp_path, "fast.json", tp=1, model="mixtral-8x7b", gemm=500.0)
    layout = ("--model", "mixtral-8x7b", "--tp", "1", "--cp", "1", "--pp", "8", "--recompute", "full", "--gpus", "128")
    gemm = {(f, ep, mb): _plan(capsys, "--results", f, *layout, "--ep", ep, "--micro-batch", mb)["step"]["parts"]["gemm"]
            for f in (slow, fast) for ep in ("1", "8") for mb in ("1", "2")}
    for ep in ("1", "8"):
        for mb in ("1", "2"):
            assert gemm[slow, ep, mb] / gemm[fast, ep, mb] == pytest.approx(100, rel=1e-9)
    assert gemm[fast, "8", "1"] < gemm[fast, "1", "1"]      # EP 8's thicker expert GEMMs run nearer the peak
    doc = _plan(capsys, "--results", slow, *layout, "--ep", "8", "--micro-batch", "1")
    assert doc["assumptions"]["rates"]["gemm"].startswith("measured: mixtral-8x7b layer GEMMs at TP 1, micro-batch 1")


def test_an_old_file_without_a_shape_is_never_used_for_a_mixture_of_experts(capsys, tmp_path):
    """Before shapes were recorded, the layer op timed every model as a dense SwiGLU layer: a
    Mixtral file of then holds no expert GEMMs, so its rate must not time them."""
    old = _layer_file(tmp_path, "old.json", tp=1, model="mixtral-8x7b", gemm=5.0, shape=None)
    doc = _plan(capsys, "--results", old, "--model", "mixtral-8x7b", "--tp", "1", "--pp", "8", "--ep", "1",
                "--micro-batch", "1", "--gpus", "64")
    assert ("the file's layer GEMM rate not used: it does not record its shape (an older file, whose layer op "
            "timed no experts)") in doc["assumptions"]["rates"]["gemm"]


def test_a_mixture_of_experts_is_matched_on_its_expert_width_not_the_unused_dense_one(capsys, tmp_path):
    shape = {"hidden": 256, "heads": 4, "kv_heads": 4, "ffn": 512, "seq": 128, "vocab": None, "micro_batch": 1,
             "mlp": "swiglu", "experts": 4, "top_k": 2, "moe_ffn": None}
    path = _layer_file(tmp_path, "moe.json", tp=1, model="custom", shape=shape)
    flags = ("--layers", "2", "--hidden", "256", "--heads", "4", "--experts", "4", "--top-k", "2", "--seq", "128",
             "--tokens", "1B", "--gpus", "8", "--tp", "1")
    same = _plan(capsys, "--results", path, *flags, "--ffn", "1024", "--moe-ffn", "512")   # experts 512 wide
    assert same["assumptions"]["rates"]["gemm"].startswith("measured: custom layer GEMMs at TP 1")
    wider = _plan(capsys, "--results", path, *flags, "--ffn", "512", "--moe-ffn", "1024")
    assert "it measured custom (expert ffn 512 vs 1024)" in wider["assumptions"]["rates"]["gemm"]


def test_a_shape_with_fields_this_version_does_not_know_is_not_matched(capsys, tmp_path):
    shape = dict(synthetic.layer_shape("llama3-70b"), head_dim=128, window=4096)
    doc = _plan(capsys, "--results", _layer_file(tmp_path, "new.json", shape=shape))
    assert ("not used: its shape has fields this version cannot compare (head_dim, window): a newer costbench "
            "wrote it") in doc["assumptions"]["rates"]["gemm"]


@pytest.mark.parametrize("field, value, needle", [
    ("hidden", "8192", "summary.layer.shape.hidden: expected a positive whole number, got '8192'"),
    ("hidden", 0, "summary.layer.shape.hidden: expected a positive whole number, got 0"),
    ("heads", True, "summary.layer.shape.heads: expected a positive whole number, got True"),
    ("seq", None, "summary.layer.shape.seq: expected a positive whole number, got None"),
    ("vocab", -5, "summary.layer.shape.vocab: expected a positive whole number, got -5"),
    ("experts", 4, "summary.layer.shape.top_k: expected 1 to experts (4) for a mixture of experts"),
    ("top_k", 2.0, "summary.layer.shape.top_k: expected a whole number (0: dense), got 2.0"),
    ("mlp", 3, "summary.layer.shape.mlp: expected a name, got 3"),
])
def test_malformed_layer_shape_fields_are_one_line_exit_2(capsys, tmp_path, field, value, needle):
    path = _layer_file(tmp_path, "bad.json", shape=dict(synthetic.layer_shape("llama3-70b"), **{field: value}))
    code, _, err = run(capsys, "cost", "--results", path)
    assert code == 2 and needle in err and err.count("\n") == 1


def test_a_cpu_files_collectives_price_its_tensor_parallel_traffic(capsys):
    """A CPU has no NVLink: its one-node gloo all-gather / reduce-scatter busbw is the link its TP
    traffic takes, measured, in place of the catalog's guess (the fabric's line rate)."""
    (path,) = glob.glob(os.path.join(os.path.dirname(os.path.dirname(__file__)), "results", "reference",
                                     "*-cpu-gloo2-cpu-*.json"))
    with open(path) as f:
        coll = json.load(f)["summary"]["collectives"]
    code, stdout, err = run(capsys, "cost", "--results", path, "--model", "llama3-8b", "--gpus", "64",
                            "--tp", "2", "--tokens", "1B", "--format", "json")
    doc = json.loads(stdout)
    assert code == 0 and doc["gpu"] == "cpu", err
    assert "tp_comm" in doc["assumptions"]["measured_parts"]
    slowest = min(coll["allgather"]["busbw_gbps_max"], coll["reducescatter"]["busbw_gbps_max"])
    line = doc["assumptions"]["rates"]["tp_comm"]
    # the file's 8 sizes of each op fitted to a busbw and a per-hop latency; gloo's latency is
    # hundreds of microseconds (its records: ~0.35 ms for 32 KiB over 2 ranks)
    match = re.match(r"measured: all-gather/reduce-scatter over 8 sizes in one node fitted to busbw ([\d.]+) GB/s "
                     r"\+ ([\d.]+) us a hop \(the slower op's best size alone: ([\d.]+) GB/s\)", line)
    assert match, line
    busbw, latency, best = map(float, match.groups())
    assert best == pytest.approx(slowest, rel=1e-5) and 0 < busbw < 5 and 100 < latency < 1000


@pytest.mark.parametrize("argv, needle", [
    (["--gpu-hours", "1M", "--tp", "2", "--pp", "4", "--recompute", "full"], "--gpu-hours and --tp, --pp, --recompute:"),
    (["--mfu", "0.4", "--tp", "2", "--micro-batch", "4"], "--mfu and --tp, --micro-batch:"),
    (["--gpu-hours", "1M", "--cp", "2"], "--gpu-hours and --cp:"),
    (["--mfu", "0.5", "--network", "eth-100"], "--mfu and --network:"),
])
def test_flags_the_overrides_would_ignore_are_refused(capsys, argv, needle):
    """--mfu and --gpu-hours skip the step model; its layout and network flags were silently ignored."""
    code, _, err = run(capsys, "cost", "--model", "llama3-8b", *argv)
    assert code == 2 and err.count("\n") == 1 and needle in err and "would change nothing" in err


def test_a_gpu_file_with_gpu_hours_is_refused(capsys, tmp_path):
    code, _, err = run(capsys, "cost", "--results", _result_file(tmp_path), "--gpu-hours", "1M")
    assert code == 2 and err.count("\n") == 1 and "--gpu-hours and --results" in err


def test_mfu_with_fp8_names_the_bf16_peak_it_is_quoted_on(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama3-8b", "--mfu", "0.4", "--dtype", "fp8", "--format", "json")
    line = json.loads(out)["assumptions"]["achieved_tflops_from"]
    assert code == 0 and line.startswith("--mfu 0.4 x bf16 peak 989") and "fp8 peak" not in line


def test_an_intra_node_link_is_refused_as_the_fabric(capsys):
    # nvlink as the fabric across 2,048 GPUs priced them faster than InfiniBand (hostile tester)
    code, _, err = run(capsys, "cost", "--model", "llama3-70b", "--gpus", "2048", "--network", "nvlink")
    assert code == 2 and err.count("\n") == 1 and "--network nvlink: an intra-node link" in err and "ib-ndr-400" in err


@pytest.mark.parametrize("params", ["1000", "1M"])
def test_params_too_small_to_estimate_a_shape_from_are_refused(capsys, params):
    # --params 1000 became 1 layer of hidden 128 (~200K parameters) at 63 GiB a GPU (hostile tester)
    code, _, err = run(capsys, "cost", "--params", params, "--tokens", "1e9")
    assert code == 2 and err.count("\n") == 1 and "no estimated shape comes within 10%" in err and "--layers" in err
    code, _, err = run(capsys, "cost", "--params", "3M", "--tokens", "1e9")   # the smallest that estimates well
    assert code == 0, err


def test_a_gpu_file_measured_in_another_dtype_is_warned_about(capsys, tmp_path):
    # --dtype fp16 on a bf16 H100 file took the catalog's faster rates without a word (hostile tester)
    path = _result_file(tmp_path)
    code, _, err = run(capsys, "cost", "--results", path, "--gpus", "2048", "--dtype", "fp16")
    assert code == 0 and "measured bf16, not fp16" in err and "those parts are the catalog's" in err
    code, _, err = run(capsys, "cost", "--results", path, "--gpus", "2048")
    assert "not fp16" not in err and "measured bf16, not" not in err


def test_a_gpu_file_at_cpu_speed_is_warned_about(capsys, tmp_path):
    """CPU-speed rates under an H100's name were priced at 0.1% MFU without a word (hostile tester)."""
    doc = synthetic.result("aws/us-east-1", bf16=0.9)
    doc["summary"]["layer"].update(gemm_tflops=0.5, attention_tflops=0.1)
    code, _, err = run(capsys, "cost", "--results", synthetic.write(tmp_path, "slow.json", doc), "--model", "llama3-8b")
    assert code == 0 and "slow.json: its bf16 MAMF 0.9 TFLOP/s is 0.1% of the H100-SXM datasheet's 989: priced " \
                         "as measured, but a GPU that slow is throttled, shared or not the GPU named" in err
    code, _, err = run(capsys, "cost", "--results", synthetic.write(tmp_path, "ok.json", synthetic.result()),
                       "--model", "llama3-8b")
    assert code == 0 and "MAMF" not in err


def test_a_near_miss_on_memory_shows_enough_digits_to_differ(capsys):
    """'needs 72 GiB per GPU, 72 GiB usable' read as a contradiction: the refusal was right (72.03
    against 72.00), the rounding hid it (hostile tester)."""
    code, _, err = run(capsys, "cost", "--model", "gpt3-175b", "--gpus", "1024", "--pp", "2", "--recompute", "selective")
    assert code == 2 and err.count("\n") == 1
    needs, usable = re.search(r"needs ([\d.]+) GiB per GPU, ([\d.]+) GiB usable", err).groups()
    assert needs != usable and float(needs) > float(usable)


def test_a_b200s_throughput_reads_as_a_number(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama3-8b", "--gpu", "B200", "--gpus", "512", "--tokens", "2T")
    assert code == 0 and "e+03 TFLOP/s" not in out
    assert re.search(r"throughput  \d,\d{3} TFLOP/s per GPU", out)


def test_the_published_budget_says_at_what_cluster_it_compares(capsys):
    """Llama 3 8B's 1.3M H100-hours beside an estimate for a 1,024-GPU default cluster read as a 2.9x
    miss: GPU-hours grow with the cluster, and its size is not published; the line says so."""
    out = run(capsys, "cost", "--model", "llama3-8b")[1]
    assert "(published: 1.3M on H100-SXM; its cluster size not published: compare at the size you assume, --gpus)" in out
    out = run(capsys, "cost", "--model", "llama3-70b", "--gpus", "2048")[1]
    assert "(published: 6.4M on H100-SXM at 16,384 GPUs, an assumed count)" in out
    out = run(capsys, "cost", "--model", "llama3.1-405b")[1]
    # at its own published cluster, on its GPU: like for like, so the ratio (nowhere else)
    assert re.search(r"time        (\S+)M GPU-hours.*\(published: 30.84M on H100-SXM, this estimate (\S+)x of it\)", out)
    hours, ratio = re.search(r"time        (\S+)M GPU-hours.*this estimate (\S+)x", out).groups()
    assert float(ratio) == pytest.approx(float(hours) / 30.84, abs=0.01)
    out = run(capsys, "cost", "--model", "llama3.1-405b", "--gpu", "H200")[1]
    assert "(published: 30.84M on H100-SXM at 16,384 GPUs)" not in out and "this estimate" not in out


def test_a_row_whose_instance_is_sold_on_another_fabric_says_so(capsys):
    """Every row is timed on one fabric; GCP's a3-highgpu-8g has up to 1,000 Gbps per 8 GPUs, not
    ib-ndr-400's 3,200: its row names its own fabric and the footer how to time it."""
    from cost_models.networks import INSTANCE_FABRICS, find_network, instance_fabric

    assert {find_network(n).name for n in INSTANCE_FABRICS.values()} == set(INSTANCE_FABRICS.values())
    assert instance_fabric("catalog: a3-highgpu-8g Price $43/h") == ("a3-highgpu-8g", "gcp-a3-high")
    assert instance_fabric("xa3-highgpu-8g-spot") is None and instance_fabric("p5.48xlarge-foo") is None
    _, doc, _ = run(capsys, "cost", "--format", "json", "--providers", "gcp,aws,lambda")
    fabric = {r["provider"]: (r["fabric"], r["fabric_instance"]) for r in json.loads(doc)["rows"]}
    assert fabric == {"gcp": ("gcp-a3-high", "a3-highgpu-8g"), "aws": ("efa-3200", "p5.48xlarge"),
                      "lambda": (None, None)}
    _, out, _ = run(capsys, "cost", "--providers", "gcp,lambda")
    line = next(x for x in out.splitlines() if x.startswith("network"))
    assert "gcp a3-highgpu-8g on gcp-a3-high" in line and "--network own times each row on its own" in line
    # timed on its own fabric, the row has nothing to add; a slower fabric never makes it faster
    _, doc, _ = run(capsys, "cost", "--format", "json", "--providers", "gcp", "--network", "gcp-a3-high")
    own = json.loads(doc)
    assert own["rows"][0]["fabric"] is None
    _, doc, _ = run(capsys, "cost", "--format", "json", "--providers", "gcp")
    assert own["gpu_hours"] > json.loads(doc)["gpu_hours"]


def test_a_default_cluster_says_it_is_sized_per_gpu(capsys):
    """Llama 3 70B's catalog count (16,384, assumed on the H100 it was published on) does not carry to
    an H200, which the default rule sizes at 8,192: the H100 table said nothing of it."""
    for gpu in ("H100-SXM", "H200-SXM"):
        _, out, _ = run(capsys, "cost", "--gpu", gpu)
        assert "compare     the default cluster is sized per GPU" in out, gpu
    _, out, _ = run(capsys, "cost", "--gpus", "1024")
    assert "sized per GPU" not in out   # the user chose the size


def test_a_reserved_row_runs_on_its_on_demand_rows_instance(capsys):
    """A reserved row's source is a discount off its on-demand row and names no instance: it lost its fabric."""
    _, doc, _ = run(capsys, "cost", "--format", "json", "--pricing", "reserved-3y", "--providers", "aws,gcp")
    assert {r["provider"]: r["fabric"] for r in json.loads(doc)["rows"]} == {"aws": "efa-3200", "gcp": "gcp-a3-high"}


def test_a_reserved_row_of_a_prices_file_takes_that_files_on_demand_instance(capsys, tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,usd_low,usd_high,region,as_of,source,instance_gpus\n"
                      "acme,H100-SXM,on-demand,3.0,,,r1,2026-11,quote for p5.48xlarge,8\n"
                      "acme,H100-SXM,reserved-1y,2.0,,,r1,2026-11,my reserved quote,8\n")
    _, doc, _ = run(capsys, "cost", "--format", "json", "--prices", str(prices), "--providers", "acme", "--pricing", "all")
    assert {r["pricing"]: r["fabric"] for r in json.loads(doc)["rows"]} == {"on-demand": "efa-3200",
                                                                             "reserved-1y": "efa-3200"}
