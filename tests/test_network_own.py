"""`--network own`: each price row timed on the fabric its instance is sold with (GCP's A3 High on
gcp-a3-high, AWS's p5.48xlarge on efa-3200), the rest on the default, so the table ranks providers
on what the run costs on what they sell, not on one fabric for all."""

import csv
import io
import json

from tests.conftest import run_cli as run


def _json(capsys, *args):
    code, out, err = run(capsys, "cost", "--format", "json", *args)
    assert code == 0, err
    return json.loads(out)


def test_each_row_is_billed_the_hours_of_its_own_fabric(capsys):
    doc = _json(capsys, "--providers", "gcp,aws,lambda", "--network", "own")
    rows = {r["provider"]: r for r in doc["rows"]}
    assert {p: r["network"] for p, r in rows.items()} == {"gcp": "gcp-a3-mega", "aws": "efa-3200",
                                                          "lambda": "ib-ndr-400"}
    for provider, r in rows.items():   # the same hours as timing the cluster on that fabric alone
        alone = _json(capsys, "--providers", provider, "--network", r["network"], "--gpus", str(doc["gpus"]),
                      "--region", r["region"])
        assert r["gpu_hours"] == alone["gpu_hours"] and r["cost_usd"] == alone["rows"][0]["cost_usd"]
        assert r["cost_usd"] == r["gpu_hours"] * r["usd_per_gpu_hour"]
        assert r["fabric"] is None   # timed on its own fabric: nothing to mark
    # a slower fabric bills more hours; the summary is the default fabric's (lambda's)
    assert rows["gcp"]["gpu_hours"] > rows["aws"]["gpu_hours"] > rows["lambda"]["gpu_hours"] == doc["gpu_hours"]
    assert doc["assumptions"]["network"] == "ib-ndr-400" and "own" in doc["assumptions"]["network_mode"]
    assert set(doc["fabric_plans"]) == {"gcp-a3-mega", "efa-3200"}
    assert doc["fabric_plans"]["gcp-a3-mega"]["gpu_hours"] == rows["gcp"]["gpu_hours"]
    bills = [r["billed_usd"] for r in doc["rows"]]
    assert bills == sorted(bills)   # ranked on the bill of each row's own hours
    # the default table times every row on ib-ndr-400: GCP's is then cheaper than it is on A3 High
    one = {r["provider"]: r for r in _json(capsys, "--providers", "gcp,aws,lambda")["rows"]}
    assert one["gcp"]["cost_usd"] < rows["gcp"]["cost_usd"] and one["gcp"]["network"] == "ib-ndr-400"
    assert "fabric_plans" not in _json(capsys, "--providers", "gcp")


def test_the_region_is_chosen_by_the_bill_on_its_own_fabric(capsys):
    """GCP sells A3 High (1,000 Gbps per 8 GPUs) in us-central1 at a lower rate than A3 Mega (1,800)
    in europe-north1; on its own fabric the Mega region bills less, and is the one chosen."""
    chosen = _json(capsys, "--providers", "gcp", "--network", "own")["rows"][0]
    high = _json(capsys, "--providers", "gcp", "--network", "own", "--region", "us-central1")["rows"][0]
    assert (chosen["region"], chosen["network"], high["network"]) == ("europe-north1", "gcp-a3-mega", "gcp-a3-high")
    assert high["usd_per_gpu_hour"] < chosen["usd_per_gpu_hour"] and high["billed_usd"] > chosen["billed_usd"]
    # one fixed fabric: the rate chooses, as before
    assert _json(capsys, "--providers", "gcp")["rows"][0]["region"] == "us-central1"


def test_the_table_shows_each_rows_fabric_and_hours(capsys):
    code, out, _ = run(capsys, "cost", "--providers", "gcp,lambda", "--network", "Own")
    assert code == 0
    head = out.splitlines()[0].split()
    assert head[head.index("region") + 1] == "network" and "GPU-h" in head
    gcp = next(x for x in out.splitlines() if x.startswith("gcp"))
    assert "gcp-a3-mega" in gcp and "7.53M" in gcp
    line = next(x for x in out.splitlines() if x.startswith("network"))
    assert "gcp on gcp-a3-mega: 7.53M GPU-hours" in line and "the other rows on ib-ndr-400" in line
    assert "whose bill on its own fabric is the lowest" in out
    # one fabric for every row: no columns for it, and the summary is that fabric's plan
    code, out, _ = run(capsys, "cost", "--providers", "gcp", "--network", "own")
    assert "GPU-h" not in out.splitlines()[0].split() and "network" not in out.splitlines()[0]
    assert "every row on gcp-a3-mega (their instances' fabric)" in out and "7.53M GPU-hours" in out
    alone = _json(capsys, "--providers", "gcp", "--network", "gcp-a3-mega", "--region", "europe-north1")
    assert _json(capsys, "--providers", "gcp", "--network", "own")["gpu_hours"] == alone["gpu_hours"]
    # no row at all: the line says so, not "every row"
    code, out, _ = run(capsys, "cost", "--network", "own", "--pricing", "reserved-1y")
    assert "no price row to time on its own fabric" in out


def test_the_layout_of_another_fabric_multiplies_out_to_the_cluster(capsys):
    code, out, _ = run(capsys, "cost", "--network", "own", "--cp", "2", "--providers", "gcp,lambda")
    assert code == 0 and "x CP 2 x" in next(x for x in out.splitlines() if x.startswith("network"))
    code, out, _ = run(capsys, "cost", "--gpu", "A100-SXM-80GB", "--gpus", "16384", "--network", "own")
    line = next(x for x in out.splitlines() if x.startswith("network"))
    assert "gcp on gcp-a2" in line and "idle)" in line   # its billed idle GPUs named
    doc = _json(capsys, "--gpu", "A100-SXM-80GB", "--gpus", "16384", "--network", "own")
    assert "idle_gpus" in doc["fabric_plans"]["gcp-a2"]["assumptions"]


def test_a_default_size_says_which_fabric_chose_it(capsys):
    code, out, _ = run(capsys, "cost", "--model", "llama3-8b", "--gpu", "A100-SXM-80GB", "--network", "own",
                       "--providers", "gcp")
    cluster = next(x for x in out.splitlines() if x.startswith("cluster"))
    assert "within 30 days on ib-ndr-400, held for every row's fabric" in cluster


def test_a_prices_file_row_naming_an_instance_is_timed_on_its_fabric(capsys, tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source,region\n"
                      "acme,H100-SXM,on-demand,4.00,2026-11,acme resells p5.48xlarge,r1\n"
                      "acme,H100-SXM,reserved-1y,3.00,2026-11,acme 1-year term,r1\n")
    doc = _json(capsys, "--providers", "acme", "--prices", str(prices), "--network", "own", "--pricing", "all")
    # the reserved row names no instance: it takes its on-demand row's, also when the on-demand row
    # is filtered out of the table (--pricing reserved-1y)
    assert {r["pricing"]: r["network"] for r in doc["rows"]} == {"on-demand": "efa-3200", "reserved-1y": "efa-3200"}
    doc = _json(capsys, "--providers", "acme", "--prices", str(prices), "--network", "own", "--pricing", "reserved-1y")
    assert [r["network"] for r in doc["rows"]] == ["efa-3200"]
    doc = _json(capsys, "--providers", "acme", "--prices", str(prices), "--pricing", "reserved-1y")
    assert [r["fabric"] for r in doc["rows"]] == ["efa-3200"]   # the one-fabric table marks it too


def test_an_instance_is_matched_in_any_case_and_only_for_its_gpu():
    from cost_models.networks import INSTANCE_FABRICS, INSTANCE_GPUS, instance_fabric

    assert set(INSTANCE_GPUS) == set(INSTANCE_FABRICS)
    assert instance_fabric("resold P5.48XLarge nodes", "H100-SXM") == ("p5.48xlarge", "efa-3200")
    assert instance_fabric("p5.48xlarge", "B200") is None and instance_fabric("p5.48xlarge", "cpu") is None
    assert instance_fabric("a2-ultragpu-8g", "A100-SXM-80GB") == ("a2-ultragpu-8g", "gcp-a2")


def test_offer_rows_on_another_fabric_are_named_in_the_offer_line(capsys, tmp_path):
    prices = tmp_path / "p.csv"
    prices.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source,region,instance_gpus\n"
                      "resell,H100-SXM,on-demand,1.50,2026-11,slices of a3-highgpu-8g,r1,1\n")
    code, out, _ = run(capsys, "cost", "--network", "own", "--prices", str(prices), "--providers", "resell")
    offer = next(x for x in out.splitlines() if x.startswith("offer "))
    assert code == 0 and "NVLink nodes on gcp-a3-high" in offer


def test_csv_rows_carry_their_own_hours(capsys):
    code, out, _ = run(capsys, "cost", "--format", "csv", "--providers", "gcp,lambda", "--network", "own")
    rows = {r["provider"]: r for r in csv.DictReader(io.StringIO(out))}
    assert code == 0 and float(rows["gcp"]["gpu_hours"]) > float(rows["lambda"]["gpu_hours"])
    assert rows["gcp"]["network"] == "gcp-a3-mega"


def test_own_with_an_override_that_skips_the_step_model_is_refused(capsys):
    for flag, value in (("--mfu", "0.4"), ("--gpu-hours", "1M")):
        code, out, err = run(capsys, "cost", "--network", "own", flag, value)
        assert code == 2 and out == "" and err.count("\n") == 1
        assert f"{flag} and --network own" in err and "Traceback" not in err


def test_whatif_with_own_bills_each_row_its_own_fabric(capsys):
    code, out, _ = run(capsys, "whatif", "--vary", "network=ib-ndr-400,own", "--providers", "gcp,lambda",
                       "--format", "json")
    base, own = json.loads(out)["rows"]
    assert code == 0 and base["gpu_hours"] == own["gpu_hours"]   # lambda's fabric in both
    assert own["cost_usd_by_provider"]["gcp"] > base["cost_usd_by_provider"]["gcp"]
    assert own["fabric_rows"]["gcp-a3-mega"]["providers"] == ["gcp"] and base["fabric_rows"] is None
    code, out, _ = run(capsys, "whatif", "--vary", "gpus=8192,16384", "--network", "own", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [float(r["gpu_hours_gcp-a3-mega"]) > float(r["gpu_hours"]) for r in rows] == [True, True]
    code, out, _ = run(capsys, "whatif", "--vary", "gpus=8192,16384", "--network", "own")
    lines = [x for x in out.splitlines() if x.startswith("network")]
    assert len(lines) == 2 and all("gcp on gcp-a3-mega" in x for x in lines)
    # a varied value as typed, not its Python form
    code, out, _ = run(capsys, "whatif", "--vary", "tokens=1T,15T", "--network", "own")
    assert "network     1T: " in out and "1000000000000" not in out
