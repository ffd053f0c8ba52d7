"""bench.compare and `costbench compare` on synthetic result files (tests/synthetic.py)."""

import json
import math

import pytest

from bench.compare import compare, provider_region
from cost_models.errors import InputError
from cost_models.prices import load_prices
from tests import synthetic


from tests.conftest import run_cli as run


def test_same_setup_is_summarised_with_median_and_spread(tmp_path):
    synthetic.two_providers(tmp_path)
    df = compare([tmp_path])
    assert list(df["tag"]) .count("coreweave/us-east") == 1 and len(df) == 2
    cw = df[df["tag"] == "coreweave/us-east"].iloc[0]
    assert cw["n_runs"] == 3 and cw["mamf_bf16"] == 740.0            # median of 740, 760, 700
    assert cw["mamf_bf16_spread"] == pytest.approx((760 - 700) / 740)
    assert cw["run_ids"] == "cw1, cw2, cw3"
    aws = df[df["tag"] == "aws/us-east-1"].iloc[0]
    assert aws["n_runs"] == 1 and aws["stragglers"] == 1 and "ip-10-0-0-7" in aws["straggler_detail"]
    assert aws["busbw_allreduce_gbps"] == 300.0 and aws["busbw_allreduce_256mib_gbps"] == 225.0
    assert aws["busbw_alltoall_gbps"] == pytest.approx(270.0) and aws["membw_gbps"] == 2700.0


def test_sorted_by_cost_to_train_and_cost_is_plan_times_price(tmp_path):
    from bench.results import load
    from cost_models.cost import plan_training
    from cost_models.throughput import Throughput

    paths = synthetic.two_providers(tmp_path)
    df = compare(paths, model="llama3-8b", prices=synthetic.prices(tmp_path))
    assert list(df["tag"]) == ["coreweave/us-east", "aws/us-east-1"]   # $6.16 < $6.88 per GPU-hour
    assert df["cost_usd"].is_monotonic_increasing
    aws = df.iloc[1]
    plan = plan_training("llama3-8b", gpu="H100-SXM", throughput=Throughput.from_result(load(paths[3])))
    assert aws["cost_usd"] == pytest.approx(plan.gpu_hours * 6.88)
    assert aws["cost_usd_high"] == pytest.approx(plan.gpu_hours * 12.29)  # the price's published range
    assert aws["days"] == pytest.approx(plan.wall_clock_days) and aws["model"] == "llama3-8b"


def test_usd_per_pflop_hour_by_hand(tmp_path):
    path = synthetic.write(tmp_path, "a.json", synthetic.result("aws/us-east-1", bf16=800.0))
    row = compare([path], prices=synthetic.prices(tmp_path)).iloc[0]
    # 800 TFLOP/s for an hour = 0.8 PFLOP-hours, at $6.88 per GPU-hour
    assert row["usd_per_pflop_hour"] == pytest.approx(6.88 / 0.8) and row["pflop_dtype"] == "bf16"
    assert row["usd_per_gpu_hour"] == 6.88 and row["provider"] == "aws" and row["region"] == "us-east-1"
    other = synthetic.write(tmp_path, "b.json", synthetic.result("aws", bf16=800.0))  # no region: the cheapest
    assert compare([other], prices=synthetic.prices(tmp_path)).iloc[0]["usd_per_gpu_hour"] == 6.88


def test_prices_file_and_region_match(tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source\n"
                      "acme,h100,on-demand,2.00,eu-1,2026-01,test\nacme,h100,on-demand,3.00,us-1,2026-01,test\n")
    path = synthetic.write(tmp_path, "a.json", synthetic.result("acme/us-1"))
    assert compare([path], prices=str(prices)).iloc[0]["usd_per_gpu_hour"] == 3.00
    other = synthetic.write(tmp_path, "b.json", synthetic.result("acme/mars-1"))
    row = compare([other], prices=load_prices(str(prices))).iloc[0]
    assert row["usd_per_gpu_hour"] == 2.00 and "region mars-1 not priced" in row["note"]


def test_missing_fields_are_none_not_guesses(tmp_path):
    doc = synthetic.result("lambda/x")
    for key in ("collectives", "membw_gbps", "membw_efficiency", "stragglers"):
        doc["summary"].pop(key, None)
    doc["records"] = [r for r in doc["records"] if r["op"] == "matmul"]
    doc["summary"].pop("busbw_gbps_max")
    row = compare([synthetic.write(tmp_path, "old.json", doc)], prices=synthetic.prices(tmp_path)).iloc[0]
    assert row["busbw_reducescatter_gbps"] is None or math.isnan(row["busbw_reducescatter_gbps"])
    assert row["membw_gbps"] is None or math.isnan(row["membw_gbps"])
    assert row["stragglers"] == 0 and row["cost_usd"] > 0   # catalog link where no busbw was measured


def test_provider_region():
    assert provider_region("CoreWeave/us-east") == ("coreweave", "us-east")
    assert provider_region("aws") == ("aws", None) and provider_region(None) == (None, None)


def test_cli_warns_about_bad_files_and_compares_the_rest(tmp_path, capsys):
    synthetic.two_providers(tmp_path)
    good = json.dumps(synthetic.result("gcp/x"))
    (tmp_path / "truncated.json").write_text(good[: len(good) // 2])
    (tmp_path / "foreign.json").write_text(json.dumps({"schema_version": 7, "tag": "x"}))
    (tmp_path / "bench.json").write_text(json.dumps({"machine_info": {}, "benchmarks": []}))  # pytest-benchmark's
    edited = synthetic.result("gcp/y")
    edited["summary"]["mamf_tflops"] = [1, 2]      # a hand edit: once a crash (exit 70) in compare's reader
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    prices = synthetic.prices(tmp_path)  # a .csv: the directory scan reads only *.json
    code, out, err = run(capsys, "compare", str(tmp_path), "--model", "llama3-8b", "--prices", prices)
    assert code == 0
    warnings = err.splitlines()
    assert len(warnings) == 4 and all(w.startswith("costbench compare: warning: skipped ") for w in warnings)
    assert any("edited.json" in w and "summary.mamf_tflops: expected an object" in w for w in warnings)
    assert any("truncated.json" in w and "not valid JSON" in w for w in warnings)
    assert any("foreign.json" in w and "schema_version" in w for w in warnings)
    assert "coreweave/us-east" in out and "aws/us-east-1" in out and "gcp/x" not in out
    assert out.index("coreweave/us-east") < out.index("aws/us-east-1")
    assert "740 (75%) ±4%" in out and "ip-10-0-0-7" in out


def test_cli_nothing_readable_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "a.json").write_text("{")
    code, out, err = run(capsys, "compare", str(tmp_path / "a.json"))
    assert code == 2 and out == ""
    assert err.splitlines() == [f"costbench compare: error: {tmp_path / 'a.json'}: "
                                "not valid JSON (truncated?): Expecting property name enclosed in double quotes: "
                                "line 1 column 2 (char 1)"]
    code, _, err = run(capsys, "compare", str(tmp_path / "missing-dir"))
    assert code == 2 and len(err.splitlines()) == 1 and "missing-dir: no such" in err  # one line: file and why
    (tmp_path / "b.json").write_text("")
    code, _, err = run(capsys, "compare", str(tmp_path))   # found in a folder: warnings, then the last as the error
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2 and "a.json" in lines[0] and "b.json: empty file" in lines[1]
    assert lines[1].startswith("costbench compare: error: no readable result files: ")
    assert lines[1].endswith("(1 more above)")


def test_cli_a_broken_file_named_on_the_command_line_is_an_error(tmp_path, capsys):
    """A folder's bad file is skipped (one should not hide the others); a file the user named is
    one they meant, so a broken one ends the command, as `cost --results` does, whatever else is good."""
    (tmp_path / "runs").mkdir()
    good = synthetic.two_providers(tmp_path / "runs")[0]
    (tmp_path / "trunc.json").write_text(json.dumps(synthetic.result("gcp/x"))[:100])
    for args in ([good, str(tmp_path / "trunc.json")], [str(tmp_path / "runs"), str(tmp_path / "trunc.json")]):
        code, out, err = run(capsys, "compare", *args, "--model", "llama3-8b")
        assert code == 2 and out == ""
        assert len(err.splitlines()) == 1
        assert err.startswith(f"costbench compare: error: {tmp_path / 'trunc.json'}: not valid JSON (truncated?): ")


def test_cli_json_and_csv(tmp_path, capsys):
    paths = synthetic.two_providers(tmp_path)
    prices = synthetic.prices(tmp_path)  # a .csv: the directory scan reads only *.json
    code, out, _ = run(capsys, "compare", *paths, "--format", "json", "--pricing", "on-demand", "--prices", prices)
    doc = json.loads(out)
    assert code == 0 and [r["tag"] for r in doc["runs"]] == ["coreweave/us-east", "aws/us-east-1"]
    assert doc["runs"][0]["n_runs"] == 3 and doc["model"] == "llama3-70b"
    code, out, _ = run(capsys, "compare", *paths, "--format", "csv", "--prices", prices)
    assert code == 0 and out.splitlines()[0].startswith("tag,") and len(out.splitlines()) == 3


def test_unknown_model_or_pricing_is_bad_input(tmp_path):
    paths = synthetic.two_providers(tmp_path)
    with pytest.raises(InputError, match="model"):
        compare(paths, model="llama9")
    with pytest.raises(InputError, match="pricing"):
        compare(paths, pricing="cheap")


def test_a_cpu_run_is_planned_and_priced_from_a_cpu_price_row(tmp_path):
    # The bundled CPU reference run, priced as `costbench cost --results` would price it.
    import glob
    import os
    import shutil

    ref = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "results", "reference", "*-ci-cpu-*.json")))[0]
    shutil.copy(ref, tmp_path / "cpu.json")
    unpriced = compare([str(tmp_path / "cpu.json")], model="llama3-8b")
    assert unpriced.loc[0, "days"] > 0 and "gpu cpu and provider ci" in unpriced.loc[0, "note"]
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source\nci,cpu,on-demand,0.05,home,2026-11,bill\n")
    df = compare([str(tmp_path / "cpu.json")], model="llama3-8b", prices=load_prices(str(prices)))
    assert df.loc[0, "usd_per_gpu_hour"] == 0.05
    assert df.loc[0, "cost_usd"] == pytest.approx(df.loc[0, "gpu_hours"] * 0.05)
    # a row was given, of another pricing kind: the note names the kind it lacks, not "add a cpu row"
    df = compare([str(tmp_path / "cpu.json")], model="llama3-8b", prices=load_prices(str(prices)), pricing="reserved-3y")
    assert "no reserved-3y price (a --prices row with gpu cpu, provider ci and pricing reserved-3y prices it; " \
           "the file has on-demand)" in df.loc[0, "note"]


def test_collective_figures_use_in_place_records_where_the_op_has_no_other():
    # torch.distributed's all-reduce is in place only: its records must still be charted and compared
    from bench.compare import busbw_per_size
    from bench.results import quoted_collective_records

    rec = {"op": "allreduce", "wrong": 0, "bytes": 1 << 20, "busbw_gbps": 1.5, "inplace": True}
    outp = {"op": "allgather", "wrong": 0, "bytes": 1 << 20, "busbw_gbps": 2.0, "inplace": False}
    inp = dict(outp, busbw_gbps=9.0, inplace=True)
    doc = {"records": [rec, outp, inp], "machine": {"world_size": 2}}
    assert busbw_per_size(doc, "allreduce") == {1 << 20: 1.5}
    assert busbw_per_size(doc, "allgather") == {1 << 20: 2.0}  # out of place preferred where present
    assert quoted_collective_records([dict(rec, wrong=3)], "allreduce") == []


def test_gpu_counts_stay_whole_beside_a_run_without_one(tmp_path, capsys):
    """A run the catalog cannot place (no GPU name) made pandas' column float: 'GPUs 16,384.0'."""
    known = synthetic.write(tmp_path, "a.json", synthetic.result("lambda/x"))
    odd = synthetic.result("acme/y", run_id="r2")
    odd["machine"]["gpu"] = {"name": "Mystery GPU", "normalized": None, "count": 8, "memory_gb": 80}
    unknown = synthetic.write(tmp_path, "b.json", odd)
    code, out, _ = run(capsys, "compare", known, unknown, "--format", "json")
    counts = [r["cluster_gpus"] for r in json.loads(out)["runs"] if r["cluster_gpus"] is not None]
    assert code == 0 and counts and all(type(c) is int for c in counts), counts
    code, out, _ = run(capsys, "compare", known, unknown)
    assert code == 0 and "16,384.0" not in out and "16,384" in out


def test_a_run_with_failed_checks_is_flagged_where_providers_are_ranked(tmp_path, capsys):
    """compare said nothing of a run whose summary counted 3 failed checks (cost --results warned):
    the table that ranks providers now carries a note and stderr a warning naming the file."""
    doc = synthetic.result("aws/us-east-1")
    bad = dict(doc["records"][-1], correct=False)   # a memory copy whose check failed; a passing one stays
    doc["records"].append(bad)
    doc["summary"]["failed_checks"] = 1
    path = synthetic.write(tmp_path, "failed.json", doc)
    clean = synthetic.write(tmp_path, "clean.json", synthetic.result("coreweave/us-east", run_id="r2"))
    df = compare([path, clean], model="llama3-8b", prices=synthetic.prices(tmp_path))
    by_file = {r["file"]: r for r in df.attrs["runs"]}
    assert by_file[path]["failed_checks"] == 1 and "1 measurement(s) failed their correctness check" in by_file[path]["note"]
    assert by_file[clean]["failed_checks"] == 0 and "failed" not in (by_file[clean]["note"] or "")
    code, out, err = run(capsys, "compare", path, clean, "--model", "llama3-8b", "--prices", synthetic.prices(tmp_path))
    assert code == 0 and "failed their correctness check" in out
    (line,) = [w for w in err.splitlines() if "failed" in w]
    assert line.startswith(f"costbench compare: warning: {path}: 1 of its measurements failed")


def test_runs_of_one_setup_are_planned_on_one_cluster(tmp_path):
    """Two runs of one setup sized to 1,024 and 2,048 GPUs became one "1,536-GPU" row whose days and
    cost were medians at two cluster sizes (hostile tester round 5): both are planned on the larger."""
    from cost_models.cost import plan_training
    from cost_models.throughput import Throughput

    fast, slow = synthetic.result("lambda/us-east-1", bf16=750, run_id="a"), synthetic.result("lambda/us-east-1", bf16=300, run_id="b")
    sizes = [plan_training(model="llama3-8b", gpu="H100-SXM", throughput=Throughput.from_result(d)).gpus for d in (fast, slow)]
    assert sizes == [1024, 2048]   # the premise: sized apart
    paths = [synthetic.write(tmp_path, "a.json", fast), synthetic.write(tmp_path, "b.json", slow)]
    df = compare(paths, model="llama3-8b")
    (row,) = df.to_dict("records")
    runs = df.attrs["runs"]
    assert row["cluster_gpus"] == 2048 and {r["cluster_gpus"] for r in runs} == {2048}
    alone = plan_training(model="llama3-8b", gpu="H100-SXM", throughput=Throughput.from_result(fast), gpus=2048)
    assert {r["run_id"]: r["gpu_hours"] for r in runs}["a"] == pytest.approx(alone.gpu_hours)
    assert "largest cluster any of this setup's 2 runs was sized to (1,024, 2,048)" in row["cluster_gpus_from"]


def test_a_rows_catalog_parts_are_named(tmp_path):
    """A run without its MAMF ranked cheaper on the catalog's faster GEMM rate, with no word."""
    doc = synthetic.result("lambda/us-east-1")
    del doc["summary"]["mamf_tflops"]["bf16"], doc["summary"]["layer"]   # no measured GEMM rate at all
    del doc["summary"]["efficiency"]["bf16"]
    doc["records"] = [r for r in doc["records"] if not (r["op"] == "matmul" and r["dtype"] == "bf16")]
    path = synthetic.write(tmp_path, "a.json", doc)
    (row,) = compare([path], model="llama3-70b").attrs["runs"]
    assert "gemm" in row["catalog_parts"].split(", ") and "catalog parts: " in row["note"]
    assert "gemm" not in (row["measured_parts"] or "").split(", ")


def test_compare_ranks_offers_that_sell_the_cluster_first_and_warns_of_incomplete_runs(tmp_path, capsys):
    """vast (marketplace) and verda (1-GPU) ranked above providers that sell the cluster, unlike
    cost; a complete: false run was noted but not warned (hostile tester round 7)."""
    paths = [synthetic.write(tmp_path, "v.json", synthetic.result("vast/x", run_id="v")),
             synthetic.write(tmp_path, "l.json", synthetic.result("lambda/y", run_id="l"))]
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source,instance_gpus,marketplace\n"
                      "vast,H100-SXM,on-demand,1.0,x,2026-11,t,8,yes\nlambda,H100-SXM,on-demand,3.0,y,2026-11,t,8,no\n")
    df = compare(paths, model="llama3-8b", prices=str(prices))
    assert list(df["provider"]) == ["lambda", "vast"] and df.loc[0, "cost_usd"] > df.loc[1, "cost_usd"]
    stopped = synthetic.result("lambda/y", run_id="s")
    stopped["summary"]["complete"] = False
    path = synthetic.write(tmp_path, "s.json", stopped)
    code, _, err = run(capsys, "compare", path, "--model", "llama3-8b", "--prices", str(prices))
    assert code == 0 and f"warning: {path}: its run stopped before the end (complete: false)" in err


def test_a_merged_rows_parts_and_price_per_pflop_are_its_own(tmp_path):
    """A merged row showed the first run's catalog parts and a median of per-run $/PFLOP-h that the
    row's own median MAMF and price did not give (hostile tester round 7)."""
    with_layer = synthetic.result("lambda/y", bf16=750, run_id="a")
    without = synthetic.result("lambda/y", bf16=300, run_id="b")
    del without["summary"]["layer"]
    paths = [synthetic.write(tmp_path, "a.json", with_layer), synthetic.write(tmp_path, "b.json", without)]
    (row,) = compare(paths, model="llama3-70b").to_dict("records")
    assert "attention" in row["catalog_parts"].split(", ") and "attention" not in (row["measured_parts"] or "")
    assert row["note"].count("catalog parts: ") == 1 and f"catalog parts: {row['catalog_parts']}" in row["note"]
    assert row["usd_per_pflop_hour"] == pytest.approx(row["usd_per_gpu_hour"] / (row["mamf_bf16"] / 1000))


def test_a_copy_of_a_run_is_counted_once(tmp_path, capsys):
    """A result file copied beside itself (same run_id) was a second run: n_runs 2 and a zero spread."""
    path = synthetic.write(tmp_path, "run.json", synthetic.result("gcp/x", run_id="g1"))
    copy = synthetic.write(tmp_path, "run-copy.json", synthetic.result("gcp/x", run_id="g1"))
    code, out, err = run(capsys, "compare", path, copy, "--model", "llama3-8b", "--format", "json")
    assert code == 0
    rows = json.loads(out)["runs"]
    assert len(rows) == 1 and rows[0]["n_runs"] == 1
    assert err.splitlines() == [f"costbench compare: warning: skipped {copy}: the same run_id as {path} (a copy?); "
                                "each run is counted once"]


def test_one_unusable_file_is_one_error_line(tmp_path, capsys):
    doc = synthetic.result("gcp/x")
    doc["summary"]["failed_checks"] = "three"   # read, but refused where the row is built
    path = synthetic.write(tmp_path, "neg.json", doc)
    code, out, err = run(capsys, "compare", path, "--model", "llama3-8b")
    assert code == 2 and out == ""
    lines = err.splitlines()   # the reason once, in the error line (not a warning, then a bare error)
    assert len(lines) == 1 and lines[0].startswith("costbench compare: error: no usable result files: ")
    assert "neg.json" in lines[0] and "more above" not in lines[0]


def test_the_table_shows_each_medians_spread_and_counts_stay_whole(tmp_path, capsys):
    """A bf16 MAMF showed ±40% beside a bare membw median whose runs spread as much; a merged
    failed_checks was a median (0.0, a float, in JSON and CSV) rather than the worst run's count."""
    paths = []
    for i, (bf16, gbps) in enumerate(((300.0, 2000.0), (500.0, 3000.0), (700.0, 4000.0))):
        doc = synthetic.result("lambda/us-east-1", bf16=bf16, run_id=f"m{i}")
        doc["summary"]["membw_gbps"] = gbps
        doc["summary"]["membw_efficiency"] = gbps / 3350
        for r in doc["records"]:
            if r["op"] == "membw":
                r["gbps"] = gbps
        paths.append(synthetic.write(tmp_path, f"m{i}.json", doc))
    code, out, _ = run(capsys, "compare", *paths, "--model", "llama3-8b")
    assert code == 0 and "500 (51%) ±40%" in out and "3,000 (90%) ±33%" in out
    code, out, _ = run(capsys, "compare", *paths, "--model", "llama3-8b", "--format", "json")
    (row,) = json.loads(out)["runs"]
    assert row["failed_checks"] == 0 and isinstance(row["failed_checks"], int)
