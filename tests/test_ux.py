"""User-facing consistency of cost, whatif and compare: help lists exactly what a flag accepts,
warnings and notes say when a figure is not what it looks like, errors name the flag at fault."""

import json
import os

import pytest

from tests.conftest import run_cli as run

REFERENCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results", "reference")
SMALL = ["--model", "llama3-8b", "--gpus", "64"]   # a fast layout search


def one_error_line(code, err, *needles):
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


# ---- 1: --dtype --------------------------------------------------------------------------------

def test_cost_help_lists_exactly_the_training_dtypes(capsys):
    from cost_models.hardware import TRAINING_DTYPES

    code, out, _ = run(capsys, "cost", "--help")
    text = " ".join(out.split())
    assert code == 0 and TRAINING_DTYPES == ("bf16", "fp16", "fp8")
    assert "--dtype DTYPE bf16 (default), fp16 (" in text and ") or fp8 (" in text


def test_fp16_is_priced_at_the_fp16_peak(capsys):
    _, out, _ = run(capsys, "cost", *SMALL, "--gpu", "A100-SXM-80GB", "--dtype", "fp16",
                    "--format", "json")
    doc = json.loads(out)
    assert doc["assumptions"]["dtype"] == "fp16" and doc["assumptions"]["peak_tflops"] == 312


@pytest.mark.parametrize("dtype,needle", [("tf32", "--dtype tf32: training in tf32 is not modelled"),
                                          ("fp32", "choose bf16, fp16 or fp8"),
                                          ("int4", "unknown dtype 'int4'")])
def test_other_dtypes_are_one_line_exit_2(capsys, dtype, needle):
    code, _, err = run(capsys, "cost", "--dtype", dtype)
    one_error_line(code, err, needle)


# ---- 2: help lists exactly what a flag accepts ---------------------------------------------------

def _help(command, flag):
    from bench.cli import build_parser

    parser, _ = build_parser(command)
    return next(a.help for a in parser._actions if flag in a.option_strings)


def _listed(text, vocabulary):
    import re

    words = set(re.findall(r"[a-z0-9-]+", text))
    return {w for w in vocabulary if w in words}


KINDS = ("on-demand", "spot", "reserved-1y", "reserved-3y", "capacity-block", "all")


@pytest.mark.parametrize("command,flag,accepted", [
    ("cost", "--pricing", KINDS), ("whatif", "--pricing", KINDS), ("tco", "--pricing", KINDS),
    ("prices", "--pricing", KINDS), ("compare", "--pricing", KINDS[:-1]),
    ("cost", "--format", ("table", "json", "csv")), ("whatif", "--format", ("table", "json", "csv")),
    ("compare", "--format", ("table", "json", "csv")), ("prices", "--format", ("table", "json", "csv")),
    ("tco", "--format", ("table", "json", "csv")),
    ("cost", "--dtype", ("bf16", "fp16", "fp8")), ("cost", "--recompute", ("none", "selective", "full")),
])
def test_help_lists_exactly_the_accepted_choices(command, flag, accepted):
    vocabulary = set(KINDS) | {"table", "json", "csv", "yaml", "bf16", "fp16", "fp8", "tf32", "fp32", "none",
                               "selective", "full"}
    assert _listed(_help(command, flag), vocabulary) == set(accepted)


def test_compare_accepts_capacity_block_and_refuses_all(capsys):
    code, out, err = run(capsys, "compare", REFERENCE, "--pricing", "capacity-block")
    assert code == 0 and "at capacity-block prices" in out
    code, _, err = run(capsys, "compare", REFERENCE, "--pricing", "all")
    one_error_line(code, err, "unknown pricing 'all'")


# ---- 3: a result file from another device ---------------------------------------------------------

def _h100_file(tmp_path):
    from tests import synthetic

    return synthetic.write(tmp_path, "h100.json", synthetic.result())


def test_cost_warns_once_when_the_file_measured_another_gpu(capsys, tmp_path):
    path = _h100_file(tmp_path)
    code, _, err = run(capsys, "cost", *SMALL, "--results", path, "--gpu", "H200-SXM")
    lines = [line for line in err.splitlines() if path in line]
    assert code == 0 and lines == [f"costbench cost: warning: {path} measured H100-SXM, not the H200-SXM priced: its "
                                   f"rates are not used; H200-SXM is priced at the catalog's rates"]
    code, _, err = run(capsys, "cost", *SMALL, "--results", path)       # its own GPU: no warning
    assert code == 0 and path not in err


def test_whatif_warns_for_each_gpu_the_file_did_not_measure(capsys, tmp_path):
    path = _h100_file(tmp_path)
    code, _, err = run(capsys, "whatif", "--vary", "gpu=H100-SXM,H200-SXM", *SMALL, "--results", path)
    lines = [line for line in err.splitlines() if path in line]
    assert code == 0 and len(lines) == 1 and "not the H200-SXM priced" in lines[0]


# ---- 4: fp8 on a CPU ----------------------------------------------------------------------------

def _cpu_file(tmp_path):
    from tests import synthetic

    doc = {"schema_version": 1, "run_id": "c", "created_at": "2026-01-01T00:00:00Z", "costbench_version": "0.1.0",
           "tag": "ci/cpu", "machine": {"device": "cpu", "gpu": None, "world_size": 1, "nodes": 1,
                                        "host_memory_gb": 32.0},
           "config": {}, "records": [], "summary": {"mamf_tflops": {"fp32": 1.0, "bf16": 2.0}, "membw_gbps": 15.0}}
    return synthetic.write(tmp_path, "cpu.json", doc)


CPU_SHAPE = ["--layers", "2", "--hidden", "256", "--heads", "4", "--ffn", "1024", "--vocab", "1000", "--seq", "256",
             "--tokens", "1e9", "--gpus", "1"]


@pytest.mark.parametrize("gpu", [[], ["--gpu", "cpu"]])
def test_fp8_on_a_cpu_is_refused(capsys, tmp_path, gpu):
    path = _cpu_file(tmp_path)
    code, _, err = run(capsys, "cost", "--results", path, *gpu, *CPU_SHAPE, "--dtype", "fp8")
    one_error_line(code, err, f"--dtype fp8: {path} is a CPU run, and a CPU has no fp8 GEMM rate", "--dtype bf16")
    code, out, err = run(capsys, "cost", "--results", path, *gpu, *CPU_SHAPE, "--dtype", "bf16", "--format", "json")
    assert code == 0 and json.loads(out)["gpu"] == "cpu", err


def test_a_cpu_device_has_no_fp8_peak():
    from cost_models.cost import cpu_device
    from cost_models.throughput import Throughput

    hw = cpu_device(Throughput("cpu", {"bf16": 2.0}, None, membw_gbps=15.0))
    assert hw.peak_tflops["fp8"] is None and hw.peak("bf16") == 2.0


# ---- 5: compare states the cluster size --------------------------------------------------------

def test_compare_shows_the_cluster_size_its_days_assume(capsys, tmp_path):
    from tests import synthetic

    paths = synthetic.two_providers(tmp_path)
    code, out, _ = run(capsys, "compare", *paths, "--prices", synthetic.prices(tmp_path))
    header = out.splitlines()[0].split()
    assert code == 0 and header[header.index("days") - 1] == "GPUs"
    assert "cluster: days and cost assume 16,384 GPUs (assumed: models.csv, not published)" in out
    code, out, _ = run(capsys, "compare", *paths, "--prices", synthetic.prices(tmp_path), "--format", "json")
    runs = json.loads(out)["runs"]
    assert {(r["cluster_gpus"], r["cluster_gpus_from"]) for r in runs} == {(16384, "assumed: models.csv, not published")}
    assert all(isinstance(r["cluster_gpus"], int) for r in runs)


# ---- 6: layout errors name the flag at fault ----------------------------------------------------------

@pytest.mark.parametrize("argv,needles", [
    (["--tp", "3"], ["--tp 3: tensor parallelism must divide the 64 heads, 8 KV heads and FFN width 28672",
                     "(--tp 1, 2, 4, 8 do)"]),
    # `run --ops layer` refused this TP while cost priced it
    (["--ffn", "14337", "--tp", "8"], ["--tp 8: tensor parallelism must divide", "FFN width 14337", "(--tp 1 does)"]),
    (["--tp", "16"], ["--tp 16: tensor parallelism must stay within a node of 8 GPUs"]),
    (["--pp", "50"], ["--pp 50: 80 layers do not cut into 50 pipeline stages", "--pp 40 or 80 do"]),
    (["--gpus", "16", "--tp", "8", "--pp", "4"], ["--tp 8 x --pp 4 needs 32 GPUs, more than --gpus 16"]),
    (["--gpus", "4", "--tp", "8"], ["--tp 8 needs 8 GPUs, more than --gpus 4"]),
    (["--model", "mixtral-8x7b", "--ep", "3"], ["--ep 3: expert parallelism must divide the 8 experts"]),
    (["--model", "mixtral-8x7b", "--ep", "8", "--gpus", "4"], ["--ep 8 needs 8 GPUs, more than --gpus 4"]),
    (["--model", "mixtral-8x7b", "--ep", "8", "--global-batch", "4"],
     ["--ep 8: expert parallelism runs over data-parallel ranks", "--global-batch 4 is not a multiple of 8"]),
    (["--model", "mixtral-8x7b", "--ep", "8", "--micro-batch", "4", "--global-batch", "16"],
     ["--global-batch 16 / --micro-batch 4 = 4 micro-batches is not a multiple of 8"]),
])
def test_layout_errors_name_the_flags_at_fault(capsys, argv, needles):
    code, _, err = run(capsys, "cost", *argv)
    one_error_line(code, err, *needles)
    said = err.split("error: ", 1)[1]
    assert "memory" not in said and said.startswith(("--tp", "--pp", "--ep"))   # not blamed on memory or --gpus


def test_a_layout_that_uses_some_gpus_still_runs(capsys):
    code, out, _ = run(capsys, "cost", "--global-batch", "1000", "--gpus", "64", "--format", "json")
    assert code == 0 and json.loads(out)["parallelism"]["global_batch"] == 1000


def test_whatif_too_small_a_cluster_for_the_given_tp_is_its_own_row(capsys):
    code, out, _ = run(capsys, "whatif", "--vary", "gpus=4,64", "--model", "llama3-8b", "--tp", "8", "--format", "json")
    small, big = json.loads(out)["rows"]
    assert code == 0 and big["fits"] and not small["fits"] and "--tp 8 needs 8 GPUs" in small["note"]


# ---- 7: Mixtral's placeholder tokens ------------------------------------------------------------

def test_mixtral_tokens_are_marked_a_placeholder_unless_given(capsys):
    code, out, _ = run(capsys, "cost", "--model", "mixtral-8x7b", "--gpus", "64")
    assert code == 0 and "tokens      1T is a placeholder unit, not mixtral-8x7b's training tokens" in out
    _, out, _ = run(capsys, "cost", "--model", "mixtral-8x7b", "--gpus", "64", "--format", "json")
    doc = json.loads(out)
    assert "not published" in doc["assumptions"]["tokens"]
    _, out, _ = run(capsys, "cost", "--model", "mixtral-8x7b", "--gpus", "64", "--tokens", "1T", "--format", "json")
    doc = json.loads(out)
    assert "tokens" not in doc["assumptions"]
    _, out, _ = run(capsys, "cost", *SMALL)      # a published figure: no such line
    assert "placeholder" not in out


def test_whatif_and_compare_mark_the_placeholder_too(capsys, tmp_path):
    from tests import synthetic

    _, out, _ = run(capsys, "whatif", "--vary", "gpus=64,128", "--model", "mixtral-8x7b")
    assert "tokens      1T is a placeholder unit" in out
    _, out, _ = run(capsys, "whatif", "--vary", "tokens=1T,2T", "--model", "mixtral-8x7b")
    assert "placeholder" not in out
    paths = synthetic.two_providers(tmp_path)
    _, out, _ = run(capsys, "compare", *paths, "--model", "mixtral-8x7b")
    assert "tokens: 1T is a placeholder unit" in out and "--tokens N prices a real budget" in out


# ---- 9: the reserved term's commitment wherever reserved pricing appears -----------------------------

def test_whatif_shows_the_term_commitment_of_reserved_rows(capsys):
    code, out, _ = run(capsys, "whatif", "--vary", "pricing=on-demand,reserved-3y", *SMALL)
    header = out.splitlines()[2]
    assert code == 0 and "term commitment" in header and "shown for the cost min row" in out
    _, out, _ = run(capsys, "whatif", "--vary", "pricing=on-demand,reserved-3y", *SMALL, "--format", "json")
    on_demand, reserved = json.loads(out)["rows"]
    assert on_demand["commitment_usd"] is None
    # the bill of a 64-GPU run far shorter than the term is the term: 64 x 26,280 h x the rate
    assert reserved["commitment_usd"] == reserved["cost_usd_min"] > on_demand["cost_usd_min"]
    _, out, _ = run(capsys, "whatif", "--vary", "gpus=64,128", "--model", "llama3-8b")
    assert "term commitment" not in out          # no term row: no column


def test_compare_shows_the_term_commitment_at_reserved_prices(capsys, tmp_path):
    from tests import synthetic

    paths = synthetic.two_providers(tmp_path)
    prices = synthetic.write_text(tmp_path, "reserved.csv", synthetic.PRICES.splitlines()[0] +
                                  "\ncoreweave,H100-SXM,reserved-3y,3.0,,,,2025-01,test row\n")
    code, out, _ = run(capsys, "compare", *paths, "--prices", prices, "--pricing", "reserved-3y")
    assert code == 0 and "term commitment" in out.splitlines()[0] and "$1.29B" in out   # 16,384 x 26,280 h x $3
    assert "term: reserved/capacity-block rows" in out
    _, out, _ = run(capsys, "compare", *paths, "--prices", synthetic.prices(tmp_path))
    assert "term commitment" not in out


# ---- 8: offers that are not a cluster of the priced size ----------------------------------------------

MARKET = ("provider,gpu,pricing,usd_per_gpu_hour,usd_low,usd_high,region,as_of,source,instance_gpus,marketplace\n"
          "hostx,H100-SXM,on-demand,1.50,,,,2026-01,test row,1,yes\n"
          "smallco,H100-SXM,on-demand,2.00,,,,2026-01,test row,4,\n"
          "bigco,H100-SXM,on-demand,3.00,,,,2026-01,test row,8,\n")


def test_price_offer_marks_small_instances_and_marketplaces():
    from cost_models.prices import Price

    def offer(n, market, gpus):
        return Price("p", "H100-SXM", "on-demand", 2.0, "", "", instance_gpus=n, marketplace=market).offer(gpus, 8)

    assert offer(1, True, 1024) == "1-GPU instances, marketplace"
    assert offer(4, False, 1024) == "4-GPU instances" and offer(8, False, 1024) is None
    assert offer(8, True, 1024) == "marketplace" and offer(None, False, 1024) is None
    assert offer(1, True, 1) is None and offer(4, False, 4) is None     # the run fits in one instance


def test_cost_marks_offers_that_are_not_the_cluster_priced(capsys, tmp_path):
    from tests import synthetic

    prices = synthetic.write_text(tmp_path, "market.csv", MARKET)
    args = ["cost", "--gpu-hours", "10M", "--gpus", "1024", "--prices", prices, "--providers", "hostx,smallco,bigco"]
    code, out, _ = run(capsys, *args, "--format", "json")
    rows = {r["provider"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and rows["hostx"]["offer"] == "1-GPU instances, marketplace" and rows["hostx"]["marketplace"]
    assert rows["smallco"]["offer"] == "4-GPU instances" and rows["bigco"]["offer"] is None
    assert rows["bigco"]["instance_gpus"] == 8 and rows["hostx"]["cost_usd"] == pytest.approx(1.5e7)   # not deleted
    code, out, _ = run(capsys, *args)
    table = out.splitlines()
    # the cluster's offers first: bigco's 8-GPU nodes above hostx's cheaper marketplace listing
    assert table[0].split()[-1] == "offer" and table[2].startswith("bigco")
    hostx = [line for line in table if line.startswith("hostx")][0]
    assert table.index(hostx) > 2 and "1-GPU instances, marketplace" in hostx
    assert "offer       rows marked in 'offer' sell instances of fewer than 8 GPUs or a marketplace host's GPUs: " \
           "the time is for 1,024 GPUs" in out
    _, out, _ = run(capsys, "cost", "--gpu-hours", "10M", "--gpus", "1024", "--prices", prices, "--providers", "bigco")
    assert "offer" not in out      # nothing marked: no column, no line


def test_the_catalog_records_what_each_offer_sells(capsys):
    from cost_models.prices import catalog_prices

    prices = catalog_prices()
    assert all(p.instance_gpus for p in prices)
    vast = [p for p in prices if p.provider == "vast"]
    assert vast and all(p.marketplace for p in vast) and not any(p.marketplace for p in prices if p.provider != "vast")
    assert all(p.instance_gpus == 1 for p in prices if p.provider == "verda" and p.gpu == "H100-SXM")


def test_compare_and_whatif_mark_such_offers(capsys, tmp_path):
    from tests import synthetic

    paths = synthetic.two_providers(tmp_path)
    # the listing replaces the catalog's coreweave row (same key: region 'all'), so it is coreweave's only offer
    prices = synthetic.write_text(tmp_path, "p.csv", MARKET.replace("hostx", "coreweave").replace("1.50,,,,", "1.50,,,all,"))
    _, out, _ = run(capsys, "compare", *paths, "--prices", prices)
    assert "offer: 1-GPU instances, marketplace, not a 16,384-GPU cluster" in out
    # whatif's cheapest is an offer that sells the cluster where one does, else the listing, marked
    _, out, _ = run(capsys, "whatif", "--vary", "gpus=64,128", *SMALL[:2], "--prices", prices,
                    "--providers", "coreweave,bigco")
    assert "(cheapest: bigco on-demand)" in out
    _, out, _ = run(capsys, "whatif", "--vary", "gpus=64,128", *SMALL[:2], "--prices", prices,
                    "--providers", "coreweave")
    assert "(cheapest: coreweave on-demand (1-GPU instances, marketplace: not a cluster of this size))" in out


def test_cheapest_region_prefers_an_offer_that_sells_the_cluster():
    """A provider's cheapest region for a cluster: whole 8-GPU nodes before a marketplace's 8-GPU
    listing before a cheaper 1-GPU one; for a run that fits one GPU, simply the cheapest."""
    from cost_models.prices import Price, cheapest_regions

    def row(region, usd, n, market=False):
        return Price("p", "H100-SXM", "on-demand", usd, "2026-07", "s", region=region, instance_gpus=n,
                     marketplace=market)

    single, market8, node = row("a", 1.0, 1, True), row("b", 1.5, 8, True), row("c", 2.0, 8)
    assert cheapest_regions([single, market8, node], gpus=1024) == [node]
    assert cheapest_regions([single, market8], gpus=1024) == [market8]
    assert cheapest_regions([single, market8, node], gpus=1) == [single]
    assert cheapest_regions([single, market8, node]) == [single]   # no cluster given: the list price


def test_prices_table_says_what_each_offer_sells(capsys):
    code, out, _ = run(capsys, "prices", "--gpu", "H100", "--provider", "vast,aws", "--pricing", "on-demand")
    lines = out.splitlines()
    assert code == 0 and "instance" in lines[0]
    assert any(line.startswith("vast") and "1-GPU marketplace" in line for line in lines)
    assert any(line.startswith("aws") and "8-GPU" in line and "marketplace" not in line for line in lines)


def test_unknown_name_quotes_a_choice_that_holds_a_comma():
    """vast's regions ("Florida, US, NA") made the list of known regions unreadable."""
    from cost_models.errors import unknown_name
    msg = str(unknown_name("region", "nowhere", ["Florida, US, NA", "us-east-1"]))
    assert msg == "unknown region 'nowhere'; known: 'Florida, US, NA', us-east-1"


def test_claim_lines_read_as_words_and_give_a_verdict():
    """'-7% to 3% cheaper' read as a minus sign, and no line said whether the model bore the claim out."""
    from cost_models.claims import _range, describe, verdict
    assert _range(-0.07, 0.03) == "7% dearer to 3% cheaper" and _range(0.3, 0.8) == "30% to 80% cheaper"
    assert _range(-0.2, -0.05) == "5% to 20% dearer"
    assert verdict((2.02, 2.02), (3, 4)) == "below the claim" and verdict((3.5, 3.5), (3, 4)) == "within the claim"
    assert verdict((0.1, 0.5), (0.3, 0.8)) == "overlapping the claim" and verdict((0.9, 0.95), (0.3, 0.8)) == "above the claim"
    line = describe({"claim": "H100 / A100", "compared": "x", "kind": "speedup", "found": 2.4, "claimed": (3, 3),
                     "basis": "model", "text": "H100 = 3x A100", "source": "s"})
    assert line == "H100 / A100 (x): 2.40x model vs 3x claimed: below the claim (H100 = 3x A100; s)"
