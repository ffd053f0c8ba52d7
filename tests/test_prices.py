"""The price catalog and what is done with it: integrity of every row, the SkyPilot import on small
synthetic files in SkyPilot's vms.csv format, term commitments by hand, region selection, the
staleness warning, CSV formula neutralisation, and the two fixes (low end, empty-table message)."""

import datetime
import json
import re

import pytest

from bench.cmd_catalog import csv_safe
from cost_models.catalog import load_csv
from cost_models.cost import plan_training, price_rows
from cost_models.errors import InputError
from cost_models.hardware import gpus
from cost_models.prices import (_COLUMNS, CATALOG_PATH, Price, age_days, as_of_start, capacity_block_days, catalog_prices,
                                commitment_usd, is_stale, stale_warning)
from cost_models.skypilot import gcp_host_gpus, import_vms
from tests.conftest import run_cli as run

TODAY = "2026-11-23"




# ---- catalog integrity ---------------------------------------------------------------------------

def test_every_catalog_row_is_dated_sourced_known_and_unique():
    import os

    from cost_models import catalog

    raw = load_csv(os.path.join(catalog.DATA_DIR, "prices.csv"), _COLUMNS)
    assert len(raw) == len(catalog_prices())            # no row merged away: no duplicate keys
    keys = [(p.provider, p.gpu, p.pricing, p.region) for p in catalog_prices()]
    assert len(keys) == len(set(keys))
    known = {g.name for g in gpus()}
    today = datetime.date.today()
    for p in catalog_prices():
        assert p.gpu in known
        assert as_of_start(p.as_of) <= today, p            # never dated in the future
        assert p.source.strip(), p
        lowered = p.source.lower()
        assert "references.md" not in lowered and "/work" not in lowered and "shared/" not in lowered, p
        # a source a user can follow: a page, or SkyPilot's catalog file with its commit
        assert "http" in lowered or ("catalogs/v" in lowered and "commit" in lowered), p


def test_catalog_covers_the_kinds_and_gpus_asked_for():
    prices = catalog_prices()
    on_demand = {(p.provider, p.gpu) for p in prices if p.pricing == "on-demand"}
    for gpu in ("A100-SXM-40GB", "A100-SXM-80GB", "H100-SXM", "H100-PCIe", "H200-SXM", "B200", "L40S"):
        assert any(g == gpu for _, g in on_demand), gpu
    assert {p.pricing for p in prices} >= {"on-demand", "spot", "reserved-3y", "capacity-block"}
    gcp = {p.region: p.usd_per_gpu_hour for p in prices if (p.provider, p.gpu, p.pricing) == ("gcp", "A100-SXM-40GB", "on-demand")}
    assert len(gcp) >= 2 and max(gcp.values()) / min(gcp.values()) > 1.4   # regions differ


# ---- SkyPilot import -----------------------------------------------------------------------------

AWS_HEADER = "InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,AvailabilityZone\n"
AWS = AWS_HEADER + (
    "p5.48xlarge,H100,8.0,192.0,2048.0,,55.04,9.6,us-east-1,use1-az1\n"
    "p5.48xlarge,H100,8.0,192.0,2048.0,,55.04,8.8,us-east-1,use1-az2\n"      # cheaper spot zone
    "p5.48xlarge,H100,8.0,192.0,2048.0,,66.048,,ap-south-1,aps1-az1\n"       # no spot offered
    "p5.4xlarge,H100,1.0,16.0,256.0,,6.0,2.0,us-east-1,use1-az1\n"           # fewer GPUs: not chosen
    "g4dn.xlarge,T4,1.0,4.0,16.0,,0.526,0.2,us-east-1,use1-az1\n"
    "g4dn.2xlarge,T4,1.0,8.0,32.0,,0.752,0.3,us-east-1,use1-az1\n"
    "p4d.24xlarge,A100,8.0,96.0,1152.0,,21.96,,us-east-2,use2-az1\n"
    "c5.large,,,2.0,4.0,,0.085,0.03,us-east-1,use1-az1\n"
)


def _file(tmp_path, text, name="vms.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_skypilot_import_per_gpu_spot_cheapest_zone_and_unknowns(tmp_path):
    result = import_vms(_file(tmp_path, AWS), "aws", as_of="2026-07")
    got = {(r["gpu"], r["pricing"], r["region"]): r for r in result.rows}
    assert got[("H100-SXM", "on-demand", "us-east-1")]["usd_per_gpu_hour"] == pytest.approx(55.04 / 8)
    assert got[("H100-SXM", "spot", "us-east-1")]["usd_per_gpu_hour"] == pytest.approx(8.8 / 8)   # cheapest zone
    assert "use1-az2" in got[("H100-SXM", "spot", "us-east-1")]["source"]
    assert got[("H100-SXM", "on-demand", "ap-south-1")]["usd_per_gpu_hour"] == pytest.approx(8.256)
    assert ("H100-SXM", "spot", "ap-south-1") not in got
    assert got[("A100-SXM-40GB", "on-demand", "us-east-2")]["usd_per_gpu_hour"] == pytest.approx(2.745)  # SkyPilot's A100 = 40 GB
    assert result.unknown == {"T4": 2}
    assert len(result.rows) == 4 and all(r["as_of"] == "2026-07" for r in result.rows)


# the headers of skypilot-catalog's catalogs/v8/lambda/vms.csv and catalogs/v6/azure/vms.csv: no zone column
LAMBDA = ("InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,Price,Region,GpuInfo,SpotPrice\n"
          "gpu_8x_h100_sxm5,H100,8.0,208.0,1800.0,23.92,us-east-1,,\n"
          "gpu_1x_h100_pcie,H100,1.0,26.0,200.0,2.49,us-east-1,,\n")
AZURE = ("InstanceType,AcceleratorName,AcceleratorCount,vCPUs,MemoryGiB,GpuInfo,Price,SpotPrice,Region,Generation\n"
         "Standard_ND96isr_H100_v5,H100,8.0,96.0,1900.0,,98.32,,eastus,V2\n"
         "Standard_NV6ads_A10_v5,A10,0.167,6.0,55.0,,0.454,0.09,eastus,V2\n"        # a sixth of a GPU
         "Standard_NC_H100_share,H100,0.5,20.0,160.0,,4.0,,eastus,V2\n")            # a catalog GPU, halved


def test_skypilot_files_without_zones_and_with_gpu_shares(tmp_path):
    """Lambda's and Azure's vms.csv have no AvailabilityZone (refused: the import could not refresh
    them), and Azure's fractional A10 count stopped the whole file (hostile tester round 5)."""
    lam = import_vms(_file(tmp_path, LAMBDA), "lambda", as_of="2026-07")
    (row,) = [r for r in lam.rows if r["pricing"] == "on-demand" and r["gpu"] == "H100-SXM"]
    assert row["usd_per_gpu_hour"] == pytest.approx(23.92 / 8) and "zone" not in row["source"]
    assert "us-east-1" in row["source"]
    az = import_vms(_file(tmp_path, AZURE, "azure.csv"), "azure", as_of="2026-07")
    assert [(r["gpu"], r["usd_per_gpu_hour"]) for r in az.rows] == [("H100-SXM", pytest.approx(98.32 / 8))]
    assert az.unknown == {} and az.fractional == {"A10": 1, "H100": 1}
    bad = AZURE.replace("0.167", "0")
    with pytest.raises(InputError, match=r"azure.csv:3: column AcceleratorCount: '0' must be a positive number"):
        import_vms(_file(tmp_path, bad, "azure.csv"), "azure")


def test_skypilot_import_through_cli_feeds_prices(capsys, tmp_path):
    code, out, err = run(capsys, "prices", "--from-skypilot", _file(tmp_path, AWS), "--provider", "aws",
                         "--format", "csv", "--as-of", "2026-07")
    assert code == 0 and err.count("\n") == 1 and "T4 (2 rows)" in err
    mine = tmp_path / "mine.csv"
    mine.write_text(out)
    code, out, _ = run(capsys, "cost", "--gpu-hours", "10M", "--prices", str(mine), "--providers", "aws",
                       "--region", "ap-south-1", "--format", "json")
    row = json.loads(out)["rows"][0]
    assert code == 0 and row["usd_per_gpu_hour"] == pytest.approx(8.256) and row["cost_usd"] == pytest.approx(8.256e7)


GCP = ("InstanceType,vCPUs,MemoryGiB,AcceleratorName,AcceleratorCount,GpuInfo,Region,AvailabilityZone,Price,SpotPrice\n"
       "a3-highgpu-8g,208.0,1872.0,,,,us-central1,us-central1-a,9.46,2.17\n"      # host VM
       ",,,H100,8,H100,us-central1,us-central1-a,33.6,8.0\n"                       # its 8 GPUs
       "a3-highgpu-8g,208.0,1872.0,,,,us-central1,us-central1-b,9.46,2.10\n"
       ",,,H100,8,H100,us-central1,us-central1-b,33.6,7.0\n"                       # cheaper spot zone
       "a3-highgpu-8g,208.0,1872.0,,,,us-east4,us-east4-a,9.46,1.7\n"
       ",,,H100,8,H100,us-east4,us-east4-a,78.37,10.0\n"                           # the dear region
       "a2-ultragpu-8g,96.0,1360.0,,,,europe-west4,europe-west4-a,9.68,3.79\n"     # host with no GPU row
       ",,,T4,1,T4,us-central1,us-central1-a,0.35,0.1\n"                           # n1-attached GPU
       "n1-standard-8,8.0,30.0,,,,us-central1,us-central1-a,0.38,0.08\n")


def test_skypilot_import_gcp_adds_host_vm_to_gpus(tmp_path):
    result = import_vms(_file(tmp_path, GCP), "gcp")
    got = {(r["gpu"], r["pricing"], r["region"]): r["usd_per_gpu_hour"] for r in result.rows}
    assert got[("H100-SXM", "on-demand", "us-central1")] == pytest.approx((9.46 + 33.6) / 8)
    assert got[("H100-SXM", "spot", "us-central1")] == pytest.approx((2.10 + 7.0) / 8)
    assert got[("H100-SXM", "on-demand", "us-east4")] == pytest.approx((9.46 + 78.37) / 8)
    assert result.unmatched == 1            # the a2 host without GPUs (T4 is not a catalog GPU)
    assert result.unknown == {}             # T4 rows never became offers: n1 hosts are not priced
    assert all(r["as_of"] == "" for r in result.rows)   # undated unless --as-of


def test_gcp_machine_types_map_to_their_gpus():
    assert gcp_host_gpus("a2-highgpu-8g") == ("A100", 8)
    assert gcp_host_gpus("a2-ultragpu-4g") == ("A100-80GB", 4)
    assert gcp_host_gpus("a3-megagpu-8g") == ("H100-MEGA", 8)
    assert gcp_host_gpus("a3-edgegpu-8g-nolssd") == ("H100", 8)
    assert gcp_host_gpus("a4-highgpu-8g") == ("B200", 8)
    assert gcp_host_gpus("n1-standard-8") is None


@pytest.mark.parametrize("text,needle", [
    ("InstanceType,Price\nx,1\n", "not a SkyPilot vms.csv: missing column(s) AcceleratorName"),
    ("InstanceType,Price,Price\nx,1,2\n", ":1: column Price appears 2 times in the header"),
    (AWS_HEADER + "p5.48xlarge,H100,8.0,192.0,2048.0,,cheap,,us-east-1,use1-az1\n", ":2: column Price: 'cheap' is not a price"),
    (AWS_HEADER + "p5.48xlarge,H100,8.0,192.0\n", ":2: 10 columns expected"),
    # a row written here must load as --prices: the same bounds (it wrote $125M/GPU-h, which cost refused)
    (AWS_HEADER + "p5.48xlarge,H100,8.0,192.0,2048.0,,1e9,,us-east-1,use1-az1\n",
     "p5.48xlarge in us-east-1 (on-demand): $1.25e+08 per GPU-hour is above 1000 (no GPU rents for more than $1000 an hour)"),
    # a known GPU with empty prices is not "no GPU in the catalog": the offers without a price are named
    (AWS_HEADER + "p5.48xlarge,H100,8.0,192.0,2048.0,,,,us-east-1,use1-az1\n",
     "no GPU in costbench's catalog priced there (H100-SXM: 1 offer(s) with empty or $0 Price and SpotPrice)"),
    # only unknown accelerators: the skip is part of the one error line (it was a notice, then the error)
    (AWS_HEADER + "dl2q.24xlarge,Gaudi9,8.0,96.0,768.0,,5.0,,us-east-1,use1-az1\n",
     "no GPU in costbench's catalog priced there (skipped accelerators not in costbench's GPU catalog: Gaudi9 (1 row))"),
])
def test_skypilot_import_bad_files_are_one_line(capsys, tmp_path, text, needle):
    code, _, err = run(capsys, "prices", "--from-skypilot", _file(tmp_path, text), "--provider", "aws")
    assert code == 2 and needle in err and err.count("\n") == 1


def test_from_skypilot_needs_one_provider(capsys, tmp_path):
    code, _, err = run(capsys, "prices", "--from-skypilot", _file(tmp_path, AWS))
    assert code == 2 and "needs --provider" in err
    code, _, err = run(capsys, "prices", "--from-skypilot", _file(tmp_path, AWS), "--provider", "aws,gcp")
    assert code == 2 and "--provider aws,gcp: --from-skypilot reads one cloud's vms.csv" in err   # not "needs"


def test_as_of_without_an_import_is_refused_not_ignored(capsys):
    code, _, err = run(capsys, "prices", "--as-of", "1999-01", "--gpu", "h100", "--provider", "lambda")
    assert code == 2 and err.count("\n") == 1 and "--as-of dates the rows --from-skypilot imports" in err


# ---- term commitments ----------------------------------------------------------------------------

def _p(kind, usd=2.0, **kw):
    return Price("p", "H100-SXM", kind, usd, "2026-07", "test", **kw)


def test_reserved_commitment_by_hand():
    # 16 GPUs x 8760 h x $2.00 = $280,320 for a year, whatever the run uses
    assert commitment_usd(_p("reserved-1y"), 16, 15.0) == pytest.approx(280_320)
    assert commitment_usd(_p("reserved-3y"), 16, 15.0) == pytest.approx(840_960)
    assert commitment_usd(_p("on-demand"), 16, 15.0) is None and commitment_usd(_p("spot"), 16, 15.0) is None
    assert commitment_usd(_p("reserved-1y"), 0, 15.0) is None           # cluster size unknown


def test_capacity_block_terms():
    assert [capacity_block_days(d) for d in (0.2, 3.0, 13.5, 14.0, 14.5, 21.0, 100.0)] == [1, 3, 14, 14, 21, 21, 105]
    # 15.5 days -> 21 days of blocks: 8 GPUs x 504 h x $4.916
    assert commitment_usd(_p("capacity-block", 4.916), 8, 15.5) == pytest.approx(8 * 504 * 4.916)
    with pytest.raises(InputError):
        capacity_block_days(0)


def test_price_rows_carry_commitment_next_to_the_run_cost():
    plan = plan_training("llama3-8b", "H100-SXM", gpus=1024)   # ~24 days: shorter than the term
    rows = {r["pricing"]: r for r in price_rows(plan, [_p("reserved-1y"), _p("on-demand", 4.0), _p("spot", 1.0)],
                                                datetime.date(2026, 11, 23))}
    assert rows["reserved-1y"]["cost_usd"] == pytest.approx(plan.gpu_hours * 2.0)
    assert rows["reserved-1y"]["commitment_usd"] == pytest.approx(1024 * 8760 * 2.0)
    assert rows["reserved-1y"]["commitment_usd"] > rows["reserved-1y"]["cost_usd"]   # a short run still pays the year
    assert rows["on-demand"]["commitment_usd"] is None
    assert "goodput unchanged" in rows["spot"]["note"] and rows["on-demand"]["note"] is None


# ---- regions -------------------------------------------------------------------------------------

def _cost_rows(capsys, *extra):
    code, out, err = run(capsys, "cost", "--gpu-hours", "10M", "--providers", "gcp", "--gpu", "A100-SXM-40GB",
                         "--format", "json", *extra)
    assert code == 0, err
    return json.loads(out)["rows"]


def test_cost_uses_the_cheapest_region_and_names_it(capsys):
    (row,) = _cost_rows(capsys)
    assert row["region"] == "europe-west4" and row["usd_per_gpu_hour"] == pytest.approx(2.4277)


def test_region_flag_picks_one(capsys):
    (row,) = _cost_rows(capsys, "--region", "us-central1")
    assert row["region"] == "us-central1" and row["usd_per_gpu_hour"] == pytest.approx(3.6734)


def test_unknown_region_is_one_line_exit_2(capsys):
    code, _, err = run(capsys, "cost", "--providers", "gcp", "--region", "us-centrall")
    assert code == 2 and "unknown region 'us-centrall'" in err and "us-central1" in err and err.count("\n") == 1


# ---- staleness -----------------------------------------------------------------------------------

def test_staleness_rule():
    ref = datetime.date(2026, 11, 23)
    assert not is_stale(_p("on-demand"), ref)                                  # 2026-07: 4 whole months
    assert is_stale(Price("p", "H100-SXM", "on-demand", 1.0, "2025-01", "t"), ref)
    assert not is_stale(Price("p", "H100-SXM", "on-demand", 1.0, "", "t"), ref)   # undated: never
    assert is_stale(_p("on-demand"), ref, stale_months=3)
    # "older than 6 months" means that: 6 months and a day (whole months with > marked it from 7)
    june = Price("p", "H100-SXM", "on-demand", 1.0, "2026-06-06", "t")
    assert not is_stale(june, datetime.date(2026, 12, 6)) and is_stale(june, datetime.date(2026, 12, 7))
    assert is_stale(Price("p", "H100-SXM", "on-demand", 1.0, "2026-06", "t"), datetime.date(2026, 12, 7))
    end = Price("p", "H100-SXM", "on-demand", 1.0, "2026-08-31", "t")    # + 6 months: Feb's last day
    assert not is_stale(end, datetime.date(2027, 2, 28)) and is_stale(end, datetime.date(2027, 3, 1))
    assert is_stale(june, datetime.date(2026, 6, 22), stale_months=0.5) and not is_stale(
        june, datetime.date(2026, 6, 20), stale_months=0.5)
    line = stale_warning([Price("p", "H100-SXM", "on-demand", 1.0, "2024-12", "t"), _p("on-demand")], ref, 6)
    assert line.startswith("1 of 2 price rows are older than 6 months") and "2024-12" in line


def test_age_of_a_row_quoted_after_the_reference_date_is_zero_not_negative():
    row = Price("p", "H100-SXM", "on-demand", 1.0, "2026-07", "t")
    assert age_days(row, datetime.date(2026, 1, 1)) == 0 and not is_stale(row, datetime.date(2026, 1, 1))
    assert age_days(row, datetime.date(2026, 7, 31)) == 30


def test_old_catalog_row_warned_user_undated_row_not(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("COSTBENCH_TODAY", TODAY)
    mine = tmp_path / "mine.csv"
    mine.write_text("provider,gpu,pricing,usd_per_gpu_hour\nacme,h100,on-demand,1.50\n")   # undated, no source
    code, out, err = run(capsys, "cost", "--gpu-hours", "10M", "--prices", str(mine), "--providers", "acme")
    assert code == 0 and err == "" and "acme" in out
    # an old catalog row: azure is v6-dated 2024-12, 23 months before TODAY
    code, out, err = run(capsys, "cost", "--gpu-hours", "10M", "--providers", "azure")
    assert code == 0 and err.count("\n") == 1 and "older than 6 months" in err and "STALE" in out
    code, _, err = run(capsys, "cost", "--gpu-hours", "10M", "--providers", "azure", "--stale-months", "36")
    assert err == ""
    # a user's row dated long ago is warned about
    mine.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of\nacme,h100,on-demand,1.50,2023-01\n")
    _, _, err = run(capsys, "cost", "--gpu-hours", "10M", "--prices", str(mine), "--providers", "acme")
    assert "acme H100-SXM on-demand, as of 2023-01" in err


def test_prices_listing_shows_age(capsys, monkeypatch):
    monkeypatch.setenv("COSTBENCH_TODAY", TODAY)
    code, out, _ = run(capsys, "prices", "--provider", "lambda", "--format", "json")
    rows = json.loads(out)["rows"]
    assert code == 0 and {r["age_days"] for r in rows} == {(datetime.date(2026, 11, 23) - datetime.date(2026, 7, 1)).days}
    assert not any(r["stale"] for r in rows)


# ---- CSV formula neutralisation --------------------------------------------------------------------

def test_csv_safe():
    assert [csv_safe(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "ok", -1.5, None)] == \
        ["'=1+1", "'+1", "'-1", "'@SUM(A1)", "ok", -1.5, None]


def test_csv_output_neutralises_formulas(capsys, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text('provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source\n'
                    'acme,h100,on-demand,1.5,-east,2026-07,"=HYPERLINK(""http://x"")"\n')
    code, out, _ = run(capsys, "prices", "--prices", str(mine), "--provider", "acme", "--format", "csv")
    assert code == 0 and "'=HYPERLINK" in out and ",'-east," in out and "\n=" not in out
    code, out, _ = run(capsys, "cost", "--gpu-hours", "10M", "--prices", str(mine), "--providers", "acme", "--format", "csv")
    assert code == 0 and "'=HYPERLINK" in out and ",=" not in out


# ---- the two fixes ---------------------------------------------------------------------------------

def test_prices_and_cost_agree_on_the_low_end(capsys, tmp_path):
    mine = tmp_path / "mine.csv"
    mine.write_text("provider,gpu,pricing,usd_per_gpu_hour,usd_high,as_of,source\nacme,h100,on-demand,2.0,3.0,2026-07,q\n")
    _, out, _ = run(capsys, "prices", "--prices", str(mine), "--provider", "acme", "--format", "json")
    (listed,) = json.loads(out)["rows"]
    _, out, _ = run(capsys, "cost", "--gpu-hours", "10M", "--prices", str(mine), "--providers", "acme", "--format", "json")
    (row,) = json.loads(out)["rows"]
    assert (listed["usd_low"], listed["usd_high"]) == (2.0, 3.0)
    assert (row["cost_usd_low"], row["cost_usd_high"]) == pytest.approx((1e7 * listed["usd_low"], 1e7 * listed["usd_high"]))


def test_empty_table_says_what_exists(capsys):
    code, out, _ = run(capsys, "cost", "--providers", "runpod", "--gpu", "gb200", "--gpus", "4096")
    assert code == 0
    assert "no on-demand prices for GB200 from runpod" in out
    assert "those have on-demand prices for: A100-SXM-80GB" in out and "H100-SXM" in out
    assert "in the catalog" not in out
    code, out, _ = run(capsys, "cost", "--providers", "runpod", "--gpu", "A100-SXM-40GB", "--gpu-hours", "10M")
    assert "A100-SXM-40GB on-demand prices exist from: aws" in out


def test_a_marketplace_clouds_import_keeps_its_mark_and_a_new_provider_is_named(capsys, tmp_path):
    """A refreshed vast file lost its marketplace mark and ranked first as if it sold the cluster;
    `--provider awz` (a typo) was written silently (hostile tester round 7)."""
    vast = _file(tmp_path, "InstanceType,AcceleratorName,AcceleratorCount,Price,SpotPrice,Region\n"
                           "8x-H100-SXM,H100,8,14.94,,\"Vietnam, VN, AS\"\n", "vast.csv")
    code, out, err = run(capsys, "prices", "--from-skypilot", vast, "--provider", "vast", "--format", "csv",
                         "--as-of", "2026-11")
    assert code == 0 and "marketplace" in out.splitlines()[0] and out.splitlines()[1].endswith(",yes")
    mine = tmp_path / "mine.csv"
    mine.write_text(out)
    code, out, _ = run(capsys, "cost", "--prices", str(mine), "--providers", "vast", "--format", "json")
    assert code == 0 and json.loads(out)["rows"][0]["offer"] == "marketplace"
    code, _, err = run(capsys, "prices", "--from-skypilot", vast, "--provider", "awz", "--format", "csv")
    assert code == 0 and "warning: --provider awz is not in the price catalog" in err


def test_prices_csv_output_loads_back_with_its_guard_quotes_dropped(capsys, tmp_path):
    """A region '-r1' was written "'-r1" (OWASP's guard) and read back with the quote (hostile tester)."""
    src = tmp_path / "p.csv"
    src.write_text("provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source\nlambda,H100-SXM,on-demand,2,-r1,2026-11,@src\n")
    code, out, _ = run(capsys, "prices", "--prices", str(src), "--provider", "lambda", "--region=-r1", "--format", "csv")
    assert code == 0 and "'-r1" in out and "'@src" in out
    back = tmp_path / "back.csv"
    back.write_text(out)
    code, out, _ = run(capsys, "cost", "--prices", str(back), "--providers", "lambda", "--region=-r1", "--format", "json")
    row = json.loads(out)["rows"][0]
    assert code == 0 and row["region"] == "-r1" and row["source"] == "@src"


def test_instance_gpus_is_bounded_like_every_gpu_count(tmp_path):
    from cost_models.prices import load_prices
    path = tmp_path / "p.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source,instance_gpus\nx,H100-SXM,on-demand,2,2026-11,s,99999999\n")
    with pytest.raises(InputError, match=r"p.csv:2: column instance_gpus: '99999999' is above 1e\+07"):
        load_prices(str(path))


@pytest.mark.parametrize("row, problem", [
    ("p5.48xlarge,H100,8.0,192.0,2048.0,,55.04,9.6,,use1-az1\n", ":2: column Region: empty"),
    ("p5.48xlarge,H100,8.0,192.0,2048.0,,55.04,9.6,us-e\x01ast-1,use1-az1\n", ":2: column Region: a control character"),
    ("p5.48xlarge,H100,8.0,192.0,2048.0,,55.04,9.6,us-east-1,use1-az1,extra\n", ":2: 11 cells under a header of 10"),
])
def test_skypilot_rows_that_a_price_file_would_refuse_are_refused_where_read(tmp_path, row, problem):
    """An empty region, a control character (which --prices refuses when the output is read back), a
    row with a cell too many (once reported as a truncated row)."""
    with pytest.raises(InputError, match=re.escape(problem)):
        import_vms(_file(tmp_path, AWS_HEADER + row), "aws")


def test_skypilot_json_has_the_listings_types(capsys, tmp_path):
    code, out, _ = run(capsys, "prices", "--from-skypilot", _file(tmp_path, AWS), "--provider", "aws",
                       "--format", "json")
    rows = json.loads(out)["rows"]
    assert code == 0 and all(r["usd_low"] is None and r["marketplace"] is False for r in rows)


def test_a_price_file_with_a_column_costbench_does_not_have_is_refused(capsys, tmp_path):
    """A misspelt 'regoin' was read past: every row lost its region without a word."""
    path = tmp_path / "typo.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,regoin\nacme,H100-SXM,on-demand,1.5,us-x\n")
    code, out, err = run(capsys, "prices", "--prices", str(path))
    assert code == 2 and out == "" and err.count("\n") == 1
    assert "typo.csv:1: unknown column 'regoin' (did you mean region?)" in err
    # what `prices --format csv` writes (age_days, stale) loads back
    code, out, _ = run(capsys, "prices", "--format", "csv", "--provider", "aws")
    back = tmp_path / "back.csv"
    back.write_text(out)
    assert run(capsys, "prices", "--prices", str(back), "--provider", "aws")[0] == 0


def test_a_price_file_row_replaces_the_catalogs_in_any_case_of_its_region(capsys, tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source\n"
                    "AWS,H100-SXM,on-demand,2.0,US-EAST-1,2026-11,negotiated\n")
    code, out, _ = run(capsys, "cost", "--prices", str(path), "--providers", "aws", "--region", "us-east-1",
                       "--format", "json")
    assert code == 0 and [r["usd_per_gpu_hour"] for r in json.loads(out)["rows"]] == [2.0]
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,region,as_of,source\n"
                    "acme,H100-SXM,on-demand,2.0,us-x,2026-11,a\nacme,H100-SXM,on-demand,2.5,US-X,2026-11,b\n")
    code, _, err = run(capsys, "prices", "--prices", str(path))
    assert code == 2 and "mine.csv:3: repeats line 2's" in err


def test_prices_lists_a_files_cpu_rows(capsys, tmp_path):
    path = tmp_path / "cpu.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source\nmine,cpu,on-demand,0.05,2026-11,laptop\n")
    code, out, _ = run(capsys, "prices", "--prices", str(path), "--gpu", "CPU", "--format", "json")
    assert code == 0 and [r["provider"] for r in json.loads(out)["rows"]] == ["mine"]
    code, _, err = run(capsys, "prices", "--gpu", "cpu")   # the catalog has none
    assert code == 2 and err.strip() == "costbench prices: error: no price rows match --gpu/--provider/--pricing/--region"
