"""`costbench whatif` through bench.cli.main: rows equal separate `cost` calls, ratios, claims,
measured rows, the virtualization overhead, frame() for charts, and bad input."""

import json

import pytest

from bench import cli
from cost_models import claims, whatif
from tests.test_cost_cli import _result_file, run

FIXED = ["--model", "llama3-8b", "--gpus", "256"]


def whatif_json(capsys, *argv):
    code, out, err = run(capsys, "whatif", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


def cost_json(capsys, *argv):
    code, out, err = run(capsys, "cost", *argv, "--format", "json")
    assert code == 0, err
    return json.loads(out)


@pytest.mark.parametrize("key, values, flag_values", [
    ("gpu", "A100-SXM-80GB,H100-SXM,H200-SXM", ["A100-SXM-80GB", "H100-SXM", "H200-SXM"]),
    ("network", "ib-ndr-400,eth-100", ["ib-ndr-400", "eth-100"]),
    ("tokens", "1T,2T", ["1T", "2T"]),
    ("dtype", "bf16,fp8", ["bf16", "fp8"]),
    ("pricing", "on-demand,all", ["on-demand", "all"]),
    ("virtualization-overhead", "0,0.1", ["0", "0.1"]),
])
def test_rows_equal_separate_cost_calls(capsys, key, values, flag_values):
    doc = whatif_json(capsys, "--vary", f"{key}={values}", *FIXED)
    assert doc["vary"] == key and len(doc["rows"]) == len(flag_values)
    for row, text in zip(doc["rows"], flag_values):
        cost = cost_json(capsys, *FIXED, f"--{key}", text)
        # over the offers that sell the cluster (all rows where none does), each what the run is billed
        capable = [r for r in cost["rows"] if not r["offer"]] or cost["rows"]
        bills = [r["billed_usd"] for r in capable]
        assert row["gpu_hours"] == cost["gpu_hours"] and row["wall_clock_days"] == cost["wall_clock_days"]
        assert row["gpu"] == cost["gpu"] and row["gpus"] == cost["gpus"]
        assert row["cost_usd_min"] == min(bills) and row["cost_usd_max"] == max(bills)
        assert row["cost_usd_min"] == capable[0]["billed_usd"]   # cost's first row is whatif's cheapest
        assert row["ratio_gpu_hours"] == pytest.approx(row["gpu_hours"] / doc["rows"][0]["gpu_hours"])


def test_gpus_vary_and_numbers_parse_like_cost(capsys):
    doc = whatif_json(capsys, "--vary", "gpus=64,1K", "--model", "llama3-8b")
    assert [r["value"] for r in doc["rows"]] == [64, 1000] and [r["gpus"] for r in doc["rows"]] == [64, 1000]
    assert doc["rows"][1]["wall_clock_days"] < doc["rows"][0]["wall_clock_days"]


def test_network_scenario_and_claim(capsys):
    # Llama 3 70B on 2,048 H100s: 400 Gb/s InfiniBand per GPU vs 100 Gb/s Ethernet per node
    doc = whatif_json(capsys, "--vary", "network=ib-ndr-400,eth-100", "--gpus", "2048")
    ib, eth = doc["rows"]
    assert eth["gpu_hours"] > ib["gpu_hours"] and eth["exposed_comm_share"] > ib["exposed_comm_share"]
    assert ib["overlap"] is not None and "eth-100" in eth["network"]
    (found,) = doc["claims"]
    assert found["claim"] == "InfiniBand / Ethernet" and found["claimed"] == [3, 4]
    assert found["found"] == pytest.approx(eth["gpu_hours"] / ib["gpu_hours"]) and found["basis"] == "model"


def test_generation_claims(capsys):
    doc = whatif_json(capsys, "--vary", "gpu=A100-SXM-80GB,H100-SXM,H200-SXM,GB200", "--gpus", "2048")
    found = {f["claim"]: f for f in doc["claims"]}
    assert set(found) == {"H100 / A100", "H200 / H100", "GB200 / H200"}
    hours = {r["gpu"]: r["gpu_hours"] for r in doc["rows"]}
    assert found["H100 / A100"]["found"] == pytest.approx(hours["A100-SXM-80GB"] / hours["H100-SXM"])


def test_virtualization_overhead_divides_time(capsys):
    doc = whatif_json(capsys, "--vary", "virtualization-overhead=0,0.1", *FIXED)
    bare, vm = doc["rows"]
    assert vm["gpu_hours"] == pytest.approx(bare["gpu_hours"] / 0.9)
    assert vm["wall_clock_days"] == pytest.approx(bare["wall_clock_days"] / 0.9)
    assert vm["cost_usd_min"] == pytest.approx(bare["cost_usd_min"] / 0.9)
    (found,) = doc["claims"]
    assert found["claim"] == "bare metal / VM" and found["found"] == pytest.approx(1 / 0.9)


def test_pricing_claims_specialised_vs_hyperscaler(capsys):
    doc = whatif_json(capsys, "--vary", "pricing=on-demand", *FIXED)
    (found,) = [f for f in doc["claims"] if f["claim"].startswith("specialised")]
    rows = cost_json(capsys, *FIXED)["rows"]
    # offers that do not sell a cluster of this size (single GPUs, a marketplace) are no such price
    assert any(r["offer"] for r in rows)
    prices = {r["provider"]: r["usd_per_gpu_hour"] for r in rows if not r["offer"]}
    hyper = [p for name, p in prices.items() if name in claims.HYPERSCALERS]
    special = [p for name, p in prices.items() if name not in claims.HYPERSCALERS]
    assert found["found"] == pytest.approx([1 - max(special) / min(hyper), 1 - min(special) / max(hyper)])
    # pricing=all: each provider's cheapest of any kind (spot against on-demand) is no like-for-like
    # pair, so that row sets no claim (it printed "-408%-88% cheaper": hostile tester)
    doc = whatif_json(capsys, "--vary", "pricing=on-demand,all", *FIXED)
    (found,) = [f for f in doc["claims"] if f["claim"].startswith("specialised")]
    assert found["compared"].startswith("on-demand:")


def test_measured_row_says_so(capsys, tmp_path):
    path = _result_file(tmp_path, gpu="H200-SXM")
    doc = whatif_json(capsys, "--vary", "gpu=H100-SXM,H200-SXM", "--results", path, *FIXED)
    h100, h200 = doc["rows"]
    assert h200["measured"] is True and h200["measured_from"] == path and h100["measured"] is False
    assert doc["claims"][0]["basis"] == "measured-model"
    code, out, _ = run(capsys, "whatif", "--vary", "gpu=H100-SXM,H200-SXM", "--results", path, *FIXED)
    assert code == 0 and "measured" in out and "catalog" in out and "measured-model vs 1.5x claimed" in out


def test_the_default_cluster_is_held_for_every_row(capsys):
    """Without --gpus, cost sizes the cluster per scenario: the H200 got 8,192 GPUs to the H100's
    16,384 and came out slower in days. 'Everything else fixed' holds the first row's size."""
    code, out, _ = run(capsys, "whatif", "--vary", "gpu=H100-SXM,H200-SXM", "--format", "json")
    doc = json.loads(out)
    h100, h200 = doc["rows"]
    assert code == 0 and h100["gpus"] == h200["gpus"] == doc["fixed"]["gpus"] == 16384
    assert h200["wall_clock_days"] <= h100["wall_clock_days"]
    assert doc["fixed"]["gpus_from"] == "the first row's default cluster, held for every row"
    code, out, _ = run(capsys, "whatif", "--vary", "model=llama3-8b,llama3.1-405b", "--format", "json")
    doc = json.loads(out)   # a model keeps its own default (published) size
    assert code == 0 and "gpus" not in doc["fixed"] and doc["fixed"]["gpus_from"].startswith("each model's own")


def test_table_output(capsys):
    code, out, err = run(capsys, "whatif", "--vary", "network=ib-ndr-400,eth-100", "--gpus", "2048")
    assert code == 0 and "error" not in err and len(set(err.splitlines())) == len(err.splitlines())  # warnings once
    assert err and all(line.startswith("costbench whatif: warning: ") for line in err.splitlines()), err  # not "cost:"
    assert out.startswith("what if network = ib-ndr-400, eth-100")
    assert "claim       InfiniBand / Ethernet" in out and "3-4x claimed" in out and "fixed       gpus=2048" in out


def test_frame_for_charts(capsys):
    doc = whatif_json(capsys, "--vary", "gpu=A100-SXM-80GB,H100-SXM", *FIXED)
    df = whatif.frame(doc)
    assert list(df["value"]) == ["A100-SXM-80GB", "H100-SXM"]
    assert {"gpu_hours", "cost_usd_min", "ratio_gpu_hours"} <= set(df.columns)
    assert df.attrs["vary"] == "gpu" and df.attrs["claims"]


def test_frame_flattens_layout_and_step():
    cost = {"model": {"name": "m"}, "gpu": "H100-SXM", "gpus": 8, "gpu_hours": 10.0, "wall_clock_days": 1.0,
            "rows": [], "assumptions": {},
            "parallelism": {"tp": 8, "pp": 1, "dp": 1}, "step": {"seconds": 2.0, "parts": {"gemm": 1.5, "dp_comm": 0.5}}}
    doc = whatif.document("gpus", [whatif.row(8, cost)])
    assert doc["rows"][0]["exposed_comm_share"] == pytest.approx(0.25)
    df = whatif.frame(doc)
    assert df.loc[0, "tp"] == 8 and df.loc[0, "step_seconds"] == 2.0 and df.loc[0, "step_dp_comm"] == 0.5
    cost["step"] = {"seconds": 2.0, "parts": {"gemm": 1.0, "pp_bubble": 0.5, "tp_comm": 0.25, "dp_overlap": 0.25}}
    assert whatif.row(8, cost)["exposed_comm_share"] == pytest.approx(0.25)   # the bubble is not comm


@pytest.mark.parametrize("argv, needle", [
    (["--vary", "colour=red,blue"], "unknown --vary key 'colour'"),
    (["--vary", "gpu="], "no values"),
    (["--vary", "gpu=,,"], "no values"),
    (["--vary", "gpu"], "KEY=V1,V2"),
    (["--vary", "gpu=H100-SXM,h10"], "--vary gpu=h10: unknown GPU"),
    (["--vary", "gpus=8,abc"], "--vary gpus: 'abc'"),
    (["--vary", "gpu=H100-SXM", "--gpu", "A100-SXM-80GB"], "both given"),
    (["--vary", "virtualization-overhead=0,1"], "virtualization-overhead"),
    (["--vary", "format=json,csv"], "unknown --vary key"),
    (["--vary", "gpus=8,16", "--model", "llama3-70b"], "--vary gpus: no value fits; the first does not run: --gpus 8: no layout"),
    ([], "--vary"),
    # a second --vary replaced the first without a word
    (["--vary", "gpus=1024", "--vary", "network=eth-100"], "--vary given 2 times (gpus=1024, network=eth-100)"),
    # a value that describes no valid model is bad input, as its flag is for cost (README), not a row
    (["--vary", "heads=64,63"], "--vary heads=63: model llama3-70b: --hidden 8192 is not a multiple of --heads 63"),
    (["--vary", "ep=1,2"], "--vary ep=2: --ep 2: llama3-70b is a dense model"),
    (["--vary", "gpu=H100-SXM,h100-sxm"], "--vary gpu=H100-SXM,h100-sxm: h100-sxm is a value given before"),
    (["--vary", "tokens=1T,1000B"], "--vary tokens=1T,1000B: 1000B is a value given before"),
])
def test_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, "whatif", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_a_value_no_layout_fits_is_its_own_row_and_the_rest_still_run(capsys):
    # Llama 3 70B needs 32 H100s at least: 8 and 16 cannot run, 64 and 2,048 can
    doc = whatif_json(capsys, "--vary", "gpus=8,64,16,2048", "--model", "llama3-70b")
    rows = {r["value"]: r for r in doc["rows"]}
    assert [r["value"] for r in doc["rows"]] == [8, 64, 16, 2048]
    for small in (8, 16):
        r = rows[small]
        assert r["fits"] is False and r["gpu_hours"] is None and r["cost_usd_min"] is None
        assert r["note"].startswith(f"does not run: --gpus {small}: no layout of llama3-70b fits")
        assert "the fewest it fits is 20" in r["note"] and r["gpus"] == small
        assert r["ratio_gpu_hours"] is None
    # ratios are to the first row that fits (64), and each fitting row is what `cost` prints for it
    assert rows[64]["fits"] and rows[64]["ratio_gpu_hours"] == 1.0
    big = cost_json(capsys, "--model", "llama3-70b", "--gpus", "2048")
    assert rows[2048]["gpu_hours"] == big["gpu_hours"]
    assert rows[2048]["ratio_gpu_hours"] == pytest.approx(big["gpu_hours"] / rows[64]["gpu_hours"])
    # the table says which values cannot run, and why, once each
    code, out, err = run(capsys, "whatif", "--vary", "gpus=8,64", "--model", "llama3-70b")
    assert code == 0 and "ratios to the first row that fits" in out
    assert "no layout fits" in out and out.count("--gpus 8: no layout of llama3-70b fits") == 1


def test_a_value_the_scenario_makes_impossible_is_its_own_row(capsys):
    """fp8 on an A100 stopped the whole table, bf16's row with it (hostile tester round 5)."""
    code, out, err = run(capsys, "whatif", "--vary", "dtype=bf16,fp8", "--gpu", "A100", "--format", "json")
    rows = {r["value"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and rows["bf16"]["fits"] and rows["bf16"]["gpu_hours"] > 0
    assert not rows["fp8"]["fits"] and rows["fp8"]["gpu_hours"] is None and rows["fp8"]["gpu"] == rows["bf16"]["gpu"]
    assert rows["fp8"]["note"].startswith("does not run: --vary dtype=fp8: GPU A100-SXM-80GB has no fp8 peak")
    code, out, _ = run(capsys, "whatif", "--vary", "dtype=bf16,fp8", "--gpu", "A100")
    assert code == 0 and "does not run" in out
    code, _, err = run(capsys, "whatif", "--vary", "dtype=fp8", "--gpu", "A100")
    assert code == 2 and "no value fits" in err and len(err.splitlines()) == 1
    code, out, _ = run(capsys, "whatif", "--vary", "gpu-hours=1M,2M", "--format", "json")   # 1M: above the peak
    assert code == 0 and [r["fits"] for r in json.loads(out)["rows"]] == [False, True]
    for typo in ("providers=aws,nope", "region=us-east-1,nowhere"):   # bad input still stops it
        assert run(capsys, "whatif", "--vary", typo)[0] == 2


def test_cost_virtualization_overhead_flag(capsys):
    bare = cost_json(capsys, *FIXED)
    vm = cost_json(capsys, *FIXED, "--virtualization-overhead", "0.05")
    assert vm["gpu_hours"] == pytest.approx(bare["gpu_hours"] / 0.95)
    assert vm["mfu"] == pytest.approx(bare["mfu"] * 0.95)
    assert "virtualization_overhead" in vm["assumptions"]
    code, _, err = run(capsys, "cost", "--virtualization-overhead", "-0.1")
    assert code == 2 and "virtualization-overhead" in err
    for absurd in ("0.9", "5"):   # x10 totals, or a typo for 0.05
        code, _, err = run(capsys, "cost", "--virtualization-overhead", absurd)
        assert code == 2 and "must be in [0, 0.5]" in err and err.count("\n") == 1


def test_registered_in_cli():
    assert "whatif" in cli.COMMANDS and "tco" in cli.COMMANDS


def test_reserved_claim_same_provider_by_hand():
    rows = [{"value": "on-demand", "gpu_hours": 1.0, "cost_usd_by_provider": {"aws": 100.0, "lambda": 50.0}},
            {"value": "reserved-1y", "gpu_hours": 1.0, "cost_usd_by_provider": {"aws": 60.0, "lambda": 40.0,
                                                                                 "nebius": 1.0}}]
    (found,) = [f for f in claims.evaluate("pricing", rows) if f["claim"] == "reserved vs on-demand"]
    assert found["found"] == pytest.approx([0.2, 0.4])   # lambda 1 - 40/50, aws 1 - 60/100; nebius unmatched
    assert claims.evaluate("network", rows[:1]) == []    # no Ethernet and InfiniBand rows: no claim


def test_a_gpu_too_small_at_a_given_layout_is_its_own_row(capsys):
    # TP1 PP1 fixed: Llama 3 8B's states do not fit a 40 GB A100 at any cluster size; H100 runs
    doc = whatif_json(capsys, "--vary", "gpu=H100-SXM,A100-SXM-40GB", "--model", "llama3-8b", "--tp", "1", "--pp", "1")
    h100, a100 = doc["rows"]
    assert h100["fits"] and h100["gpu_hours"] > 0
    assert a100["fits"] is False and a100["gpu"] == "A100-SXM-40GB"
    assert "no layout fits A100-SXM-40GB memory" in a100["note"] and "with --tp 1, --pp 1" in a100["note"]


def test_a_large_number_is_shown_as_typed():
    """--vary tokens=5T,15T once printed 5000000000000.0; the label is what the flags accept back."""
    assert [whatif.value_label(v) for v in (5e12, 15e12, 6.4e6, 1024, 0.5, "H100-SXM")] == [
        "5T", "15T", "6.4M", "1024", "0.5", "H100-SXM"]


def test_whatif_table_shows_tokens_as_typed(capsys):
    code, out, _ = run(capsys, "whatif", "--vary", "tokens=5T,15T", "--model", "llama3-8b")
    assert code == 0 and "what if tokens = 5T, 15T;" in out and "5000000000000" not in out


def test_varying_mfu_prints_no_fabric_line(capsys):
    """--mfu sets the pace without a step model, so there is no fabric to name (it printed 'None')."""
    code, out, err = run(capsys, "whatif", "--vary", "mfu=0.3,0.4", *FIXED)
    assert code == 0, err
    assert "None" not in out and "network " not in out
    assert "0.75x" in out   # 0.3 -> 0.4 MFU: three quarters of the hours


def test_the_layout_column_multiplies_out_to_the_cluster(capsys):
    """CP was left out of the table's layout (TP2 PP1 DP256 on 1,024 GPUs); EP, within DP, is shown so."""
    code, out, err = run(capsys, "whatif", "--vary", "cp=1,2", "--model", "llama3-8b", "--gpus", "1024")
    assert code == 0, err
    doc = whatif_json(capsys, "--vary", "cp=1,2", "--model", "llama3-8b", "--gpus", "1024")
    for r in doc["rows"]:
        p = r["parallelism"]
        assert p["tp"] * p["cp"] * p["pp"] * p["dp"] == 1024
        shown = f"TP{p['tp']} " + (f"CP{p['cp']} " if p["cp"] > 1 else "") + f"PP{p['pp']} DP{p['dp']} mb"
        assert shown in out
    from bench.cmd_whatif import _layout

    assert _layout({"parallelism": {"tp": 1, "cp": 4, "pp": 2, "dp": 128, "ep": 8, "micro_batch": 1}}) == \
        "TP1 CP4 PP2 DP128 (EP8) mb1"


def test_varied_prices_get_each_rows_own_footer_and_values_read_as_typed(capsys):
    """--vary providers: the footer named only the first row's price rows, and the values printed
    as Python lists (['aws']); a fixed --tokens 1T as 1000000000000.0."""
    code, out, err = run(capsys, "whatif", "--vary", "providers=aws,gcp", "--model", "llama3-8b", "--tokens", "1T",
                         "--gpus", "64")
    assert code == 0, err
    assert "['aws']" not in out and "\naws " in out and "\ngcp " in out
    assert "prices      aws: 1 price row (cheapest: aws on-demand)" in out and "prices      gcp: 1 price row (cheapest: gcp" in out
    assert "tokens=1T" in out and "1000000000000" not in out


def test_idle_gpus_are_noted_on_their_row(capsys):
    """eth-100 at 16,384 GPUs bills 2,560 idle GPUs; whatif said nothing (cost did) (UX review)."""
    doc = whatif_json(capsys, "--vary", "network=ib-ndr-400,eth-100", "--gpus", "16384")
    ib, eth = doc["rows"]
    assert ib["note"] is None and "2,560 of the 16,384 GPUs idle (billed)" in eth["note"]
    code, out, _ = run(capsys, "whatif", "--vary", "network=ib-ndr-400,eth-100", "--gpus", "16384")
    assert "note        eth-100: 2,560 of the 16,384 GPUs idle" in out
    assert "network     eth-100: " in out and "of the data-parallel traffic hidden under compute" in out


def test_one_age_warning_for_every_values_prices(capsys, monkeypatch):
    """--vary gpu printed four near-identical stale-price lines, one per GPU (UX review)."""
    monkeypatch.setenv("COSTBENCH_TODAY", "2026-12-07")
    code, _, err = run(capsys, "whatif", "--vary", "gpu=A100-SXM-80GB,H100-SXM", "--format", "json")
    lines = [line for line in err.splitlines() if "older than" in line]
    assert code == 0 and len(lines) == 1 and "of the values' " in lines[0] and "at 2026-12-07" in lines[0]


def test_claims_compare_what_the_table_shows(capsys):
    """The reserved claim read "72% cheaper: above the claim" beside a billed x cost of 1.15x: the
    claim priced run-hours, the table the bill (code review). Both are the bill now."""
    doc = whatif_json(capsys, "--vary", "pricing=on-demand,reserved-3y", "--model", "llama3-8b", "--gpus", "64",
                      "--providers", "aws")
    on_demand, reserved = doc["rows"]
    assert reserved["ratio_cost_usd_min"] > 1 and reserved["cost_usd_by_provider"]["aws"] == reserved["cost_usd_min"]
    (claim,) = [c for c in doc["claims"] if c["claim"].startswith("reserved")]
    assert max(claim["found"]) < 0   # dearer, as the ratio says


def test_csv_carries_the_layout_and_step(capsys):
    """whatif's CSV had no layout or step columns, where the table shows the layout (hostile tester)."""
    import csv
    import io

    code, out, _ = run(capsys, "whatif", "--vary", "gpus=1024,2048", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and all(int(r["tp"]) >= 1 and float(r["step_seconds"]) > 0 for r in rows)
    assert all(int(r["tp"]) * int(r["pp"]) * int(r["dp"]) * int(r["cp"]) <= int(r["gpus"]) for r in rows)


def test_whatif_names_the_price_rows_sold_on_another_fabric(capsys):
    """cost min/max time every provider on one fabric; GCP's a3-highgpu-8g is sold on a slower one."""
    from tests.conftest import run_cli

    code, out, _ = run_cli(capsys, "whatif", "--vary", "gpus=1024,2048", "--providers", "gcp,lambda")
    assert code == 0 and "sold on another: gcp a3-highgpu-8g on gcp-a3-high" in out
    _, doc, _ = run_cli(capsys, "whatif", "--vary", "gpus=1024,2048", "--providers", "lambda", "--format", "json")
    assert json.loads(doc)["other_fabrics"] == []


def test_a_cpu_file_with_no_prices_says_why_not_over_0_rows(capsys):
    """A CPU run has no catalog prices: the footer read 'cost min/max over 0 price rows (cheapest: none)'."""
    import os

    path = os.path.join(os.path.dirname(__file__), "..", "results", "reference",
                        "20261207T125035Z-cpu-ci-cpu-17b6.json")   # CI's quick CPU run, committed
    code, out, _ = run(capsys, "whatif", "--vary", "tokens=1T,2T", "--model", "llama3-8b", "--results", path)
    assert code == 0
    assert ("model       llama3-8b; no price rows for cpu (a CPU has no catalog prices: a --prices row with gpu "
            "cpu prices it)") in out and "over 0 price rows" not in out
