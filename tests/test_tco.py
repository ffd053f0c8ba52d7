"""cost_models.tco by hand, and `costbench tco` through bench.cli.main."""

import json
import math

import pytest

from cost_models.errors import InputError
from cost_models.tco import HOURS_PER_YEAR, OwnedGpu
from tests.conftest import run_cli as run

# The README's worked example: $30,000, 4 years, 0.7 kW, PUE 1.3, $0.08/kWh, nothing else.
HAND = dict(capex_usd=30_000, life_years=4, power_kw=0.7, pue=1.3, usd_per_kwh=0.08)
HAND_FLAGS = ["--capex", "30000", "--life-years", "4", "--power-kw", "0.7", "--pue", "1.3",
              "--usd-per-kwh", "0.08", "--interest", "0", "--residual-fraction", "0", "--opex-usd-per-gpu-year", "0"]




def test_hand_figures():
    # 30000 / 4 = 7500 a year; power 0.7 * 1.3 * 0.08 = 0.0728 per used hour.
    # 100%: 7500 / 8760 + 0.0728 = 0.856164 + 0.0728 = 0.928964 (the "$0.9292" is this figure
    # mis-rounded: no reading of its inputs gives 0.9292; it rounds to $0.929).
    # 50%: 7500 / 4380 + 0.0728 = 1.712329 + 0.0728 = 1.785129 -> $1.785.
    gpu = OwnedGpu(**HAND)
    assert gpu.owned_usd_per_gpu_hour(1.0) == pytest.approx(0.928964, abs=1e-6)
    assert round(gpu.owned_usd_per_gpu_hour(1.0), 3) == 0.929
    assert gpu.owned_usd_per_gpu_hour(0.5) == pytest.approx(1.785129, abs=1e-6)
    assert round(gpu.owned_usd_per_gpu_hour(0.5), 3) == 1.785


def test_hand_figures_through_the_cli(capsys):
    for u, want in (("1", 0.928964), ("0.5", 1.785129)):
        code, out, err = run(capsys, "tco", *HAND_FLAGS, "--utilization", u, "--format", "json")
        assert code == 0, err
        assert json.loads(out)["owned_usd_per_gpu_hour"] == pytest.approx(want, abs=1e-6)


def test_interest_is_an_annuity_that_is_straight_line_at_zero():
    # 8% over 4 years: CRF = 0.08 / (1 - 1.08^-4) = 0.301921; 30000 * CRF = 9057.62 a year
    # = 7500 depreciation + 1557.62 interest.
    gpu = OwnedGpu(**HAND, interest=0.08)
    assert gpu.capital_usd_per_year == pytest.approx(9057.62, abs=0.01)
    assert gpu.interest_usd_per_year == pytest.approx(1557.62, abs=0.01)
    # a residual of 20% at 0% interest: (30000 - 6000) / 4 = 6000 a year
    assert OwnedGpu(**HAND, residual_fraction=0.2).capital_usd_per_year == pytest.approx(6000)


def test_break_even_utilization_by_hand():
    # against $2.99: u = 7500 / (8760 * (2.99 - 0.0728)) = 7500 / 25554.672 = 0.293488
    gpu = OwnedGpu(**HAND)
    assert gpu.break_even_utilization(2.99) == pytest.approx(0.293488, abs=1e-6)
    # at the break-even utilisation owning costs exactly the rental price
    assert gpu.owned_usd_per_gpu_hour(gpu.break_even_utilization(2.99)) == pytest.approx(2.99)
    assert gpu.break_even_utilization(0.05) is None      # does not even pay for the power
    assert gpu.break_even_utilization(0.5) is None       # would need more than 100%


def test_saving_over_life_by_hand():
    # at 50%: (2.99 - 1.785129) * 8760 * 0.5 * 4 = 1.204871 * 17520 = 21109.3
    gpu = OwnedGpu(**HAND, utilization=0.5)
    assert gpu.saving_usd_over_life(2.99) == pytest.approx(21109.34, abs=0.05)
    assert gpu.saving_usd_over_life(1.0) < 0


def test_payback_by_hand():
    # $2/h at 100%, no interest: cash (2 - 0.0728) * 8760 = 16882.27 a year -> 30000 / 16882.27 = 1.77701 years
    gpu = OwnedGpu(**HAND)
    assert gpu.payback_years(2.0) == pytest.approx(1.777010, abs=1e-5)
    # with 8% interest: n = -ln(1 - 2400 / 16882.27) / ln(1.08) = 1.99237
    assert gpu.replace(interest=0.08).payback_years(2.0) == pytest.approx(1.99237, abs=1e-4)
    # at 70%: cash 11817.59; 8% -> -ln(1 - 2400/11817.59) / ln 1.08 = 2.9497
    assert gpu.replace(interest=0.08).payback_years(2.0, 0.7) == pytest.approx(2.9497, abs=1e-3)
    assert gpu.payback_years(0.07) is None
    assert gpu.replace(interest=0.5).payback_years(0.2) is None   # cash never covers the interest


def test_payback_price_pays_back_in_exactly_the_life():
    gpu = OwnedGpu(**HAND, interest=0.08, utilization=0.7, opex_usd_per_year=500)
    price = gpu.payback_price()
    assert gpu.payback_years(price) == pytest.approx(4.0)
    # without a residual the price that pays back in the life is the owned cost per used hour
    assert price == pytest.approx(gpu.owned_usd_per_gpu_hour())


@pytest.mark.parametrize("change, dearer", [
    ({"life_years": 5}, False), ({"life_years": 3}, True),
    ({"utilization": 0.9}, False), ({"utilization": 0.5}, True),
    ({"usd_per_kwh": 0.15}, True), ({"pue": 1.6}, True), ({"power_kw": 1.2}, True),
    ({"interest": 0.1}, True), ({"residual_fraction": 0.2}, False), ({"opex_usd_per_year": 1000}, True),
])
def test_monotone(change, dearer):
    base = OwnedGpu(**HAND, utilization=0.7, interest=0.05)
    changed = base.replace(**change)
    assert (changed.owned_usd_per_gpu_hour() > base.owned_usd_per_gpu_hour()) == dearer


def test_sensitivity_grid_is_monotone():
    grid = OwnedGpu(**HAND, interest=0.08).sensitivity()
    assert grid["life_years"] == [3, 4, 5] and grid["utilization"] == [0.5, 0.7, 0.85, 1.0]
    values = grid["owned_usd_per_gpu_hour"]
    assert all(row[i] > row[i + 1] for row in values for i in range(3))           # higher utilisation cheaper
    assert all(values[j][i] > values[j + 1][i] for j in range(2) for i in range(4))  # longer life cheaper
    assert values[1][3] == pytest.approx(OwnedGpu(**HAND, interest=0.08).owned_usd_per_gpu_hour(1.0))


@pytest.mark.parametrize("bad, needle", [
    ({"utilization": 0}, "utilization"), ({"utilization": 1.2}, "utilization"), ({"capex_usd": -1}, "capex"),
    ({"life_years": 0}, "life-years"), ({"pue": 0.9}, "pue"), ({"interest": -0.1}, "interest"),
    ({"residual_fraction": 1}, "residual"), ({"usd_per_kwh": math.nan}, "usd-per-kwh"),
])
def test_bad_values_raise(bad, needle):
    with pytest.raises(InputError, match=needle):
        OwnedGpu(**{**HAND, **bad})


def test_tco_json_has_rows_provider_side_and_sensitivity(capsys, monkeypatch):
    monkeypatch.setenv("COSTBENCH_TODAY", "2026-12-07")   # the catalog's oldest rows are stale at this date
    code, out, err = run(capsys, "tco", "--rental-price", "2,6.16", "--life-years", "3", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and err.startswith("costbench tco: warning: ") and err.count("\n") == 1
    assert doc["gpu"] == "H100-SXM" and doc["assumptions"]["capex_usd"]["value"] == 30_000
    assert doc["assumptions"]["power_kw"]["value"] == pytest.approx(0.7 + 0.575)
    assert doc["assumptions"]["life_years"]["from"] == "given"
    from cost_models.prices import load_prices, select
    assert {r["provider"] for r in doc["rows"]} == {p.provider for p in select(load_prices(), "H100-SXM", "on-demand")}
    for r in doc["rows"]:
        assert set(r) >= {"provider", "pricing", "region", "usd_per_gpu_hour", "break_even_utilization",
                          "saving_usd_over_life"}
        gpu = OwnedGpu(**{k: v["value"] for k, v in doc["assumptions"].items()})
        assert r["break_even_utilization"] == pytest.approx(gpu.break_even_utilization(r["usd_per_gpu_hour"]))
        assert r["owning_wins"] == "above" and not r["committed"]
    two, six = doc["provider_side"]["payback"]
    assert two["usd_per_gpu_hour"] == 2 and six["usd_per_gpu_hour"] == 6.16
    assert two["payback_years"] > six["payback_years"]
    assert doc["sensitivity"]["life_years"] == [3, 4, 5]
    assert doc["claims"][0]["owned_change"] < 0


def test_tco_table(capsys):
    code, out, _ = run(capsys, "tco", "--rental-price", "2")
    assert code == 0
    assert "owned H100-SXM" in out and "owning wins" in out and "life x utilisation" in out
    assert "70% to 85%" in out and "payback" in out


def test_break_even_null_in_json_when_never(capsys, tmp_path):
    # a $0.50/h rental: owning never beats it at the default costs ($1.17 even at 100% utilisation)
    path = tmp_path / "prices.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source\ncheap,H100-SXM,on-demand,0.5,2025-01,test\n")
    code, out, _ = run(capsys, "tco", "--prices", str(path), "--providers", "cheap", "--format", "json")
    row = json.loads(out)["rows"][0]
    assert code == 0 and row["break_even_utilization"] is None and row["saving_usd_over_life"] < 0


def test_rows_show_the_price_age_and_warn_when_stale(capsys, tmp_path, monkeypatch):
    """tco set owning against 2-year-old quotes with no word of their age, where cost warned."""
    monkeypatch.setenv("COSTBENCH_TODAY", "2026-12-07")
    path = tmp_path / "prices.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source\nold,H100-SXM,on-demand,3,2024-12,test\n"
                    "new,H100-SXM,on-demand,2.5,2026-11,test\n")
    code, out, err = run(capsys, "tco", "--prices", str(path), "--providers", "old,new")
    assert code == 0 and "tco: warning: 1 of 2 price rows are older than 6 months" in err
    (old,) = [line for line in out.splitlines() if line.startswith("old ")]
    assert old.endswith("24mo STALE") and [line for line in out.splitlines() if line.startswith("new ")][0].endswith("6d")
    code, out, err = run(capsys, "tco", "--prices", str(path), "--providers", "old,new", "--format", "json",
                         "--stale-months", "36")
    rows = {r["provider"]: r for r in json.loads(out)["rows"]}
    assert err == "" and rows["old"]["age_days"] == 736 and rows["old"]["stale"] is False and "_age" not in rows["old"]


def test_break_even_never_rounds_to_100_or_0_percent():
    from bench.cmd_tco import _pct
    assert _pct(0.99526) == "99.5%" and _pct(0.9999) == ">99.9%" and _pct(0.004) == "0.4%" and _pct(0.62) == "62%"
    assert _pct(1.0) == "100%" and _pct(0.0004) == "<0.1%"


@pytest.mark.parametrize("argv, needle", [
    (["--utilization", "0"], "utilization"), (["--utilization", "1.5"], "utilization"),
    (["--capex", "-5"], "capex"), (["--life-years", "0"], "life-years"),
    (["--gpu", "A100"], "--capex"), (["--gpu", "h10"], "unknown GPU"),
    (["--rental-price", "2,-1"], "non-negative"), (["--format", "xml"], "format"),
    (["--pricing", "cheap"], "pricing"),
])
def test_tco_bad_input_one_line_exit_2(capsys, argv, needle):
    code, out, err = run(capsys, "tco", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err


def test_rows_are_each_providers_cheapest_region_unless_one_is_named(capsys):
    code, out, _ = run(capsys, "tco", "--format", "json")
    rows = json.loads(out)["rows"]
    keys = [(r["provider"], r["pricing"]) for r in rows]
    assert code == 0 and len(keys) == len(set(keys))  # one region per provider and kind
    from cost_models.prices import load_prices, select
    gcp = select(load_prices(), "H100-SXM", "on-demand", ["gcp"])
    assert len(gcp) > 1
    assert next(r for r in rows if r["provider"] == "gcp")["usd_per_gpu_hour"] == min(p.usd_per_gpu_hour for p in gcp)
    dearest = max(gcp, key=lambda p: p.usd_per_gpu_hour).region
    code, out, _ = run(capsys, "tco", "--format", "json", "--providers", "gcp", "--region", dearest)
    assert code == 0 and {r["region"] for r in json.loads(out)["rows"]} == {dearest}


def test_a_loss_reads_minus_dollars():
    from bench.cmd_catalog import usd
    assert usd(-10_900) == "-$10.9K" and usd(950) == "$950.00" and usd(-1.5e9) == "-$1.50B"
    assert usd(4.9e16) == "$49,000T"   # not "$49,000,000B"


def test_a_training_runs_hours_owned_and_rented(capsys, monkeypatch):
    """tco did not connect to the run being decided: its GPU-hours owned and rented, and the capex
    of its cluster (UX review)."""
    monkeypatch.setenv("COSTBENCH_TODAY", "2026-12-07")
    code, out, _ = run(capsys, "tco", "--gpu-hours", "5.93M", "--gpus", "16384", "--format", "json")
    doc = json.loads(out)
    assert code == 0 and doc["run"]["owned_usd"] == pytest.approx(5.93e6 * doc["owned_usd_per_gpu_hour"])
    assert doc["run"]["capex_usd"] == 16384 * 30_000
    code, out, _ = run(capsys, "tco", "--gpu-hours", "5.93M", "--gpus", "16384", "--providers", "lambda")
    assert code == 0 and "the run rented" in out and "$23.7M" in out and "buying its 16,384 GPUs is $492M up front" in out
    code, _, err = run(capsys, "tco", "--gpus", "16")
    assert code == 2 and err.count("\n") == 1 and "--gpus: give the run's --gpu-hours too" in err
    assert json.loads(run(capsys, "tco", "--format", "json")[1])["run"] is None


def test_a_reserved_price_is_paid_every_hour_of_its_term(capsys, tmp_path):
    """A reserved-3y row at $1.93 read as a per-used-hour price said "owning wins above 58%" at 70%
    utilisation; paid for every hour, it costs $1.93 / 0.7 = $2.76 per used hour, and owning wins."""
    gpu = OwnedGpu(capex_usd=30000, life_years=4, power_kw=0.7, pue=1.3, usd_per_kwh=0.08, utilization=0.5)
    fixed_hour = 7500 / 8760                     # straight-line capital per hour of the year
    power = 0.7 * 1.3 * 0.08                     # $0.0728 per used hour
    # owning wins while fixed + power x 8760 u < price x 8760: below (price - fixed/h) / power
    assert gpu.break_even_committed(0.9) == pytest.approx((0.9 - fixed_hour) / power)
    assert gpu.break_even_committed(2.0) == 1.0  # at any utilisation
    assert gpu.break_even_committed(0.8) is None  # the term costs less than owning's fixed part
    used = 8760 * 0.5 * 4
    assert gpu.saving_usd_over_life(2.0, committed=True) == pytest.approx((2.0 / 0.5 - gpu.owned_usd_per_gpu_hour()) * used)
    path = tmp_path / "prices.csv"
    path.write_text("provider,gpu,pricing,usd_per_gpu_hour,as_of,source\n"
                    "r,H100-SXM,reserved-3y,0.9,2026-11,test\nr,H100-SXM,on-demand,0.9,2026-11,test\n")
    args = ["tco", "--prices", str(path), "--providers", "r", "--pricing", "all", "--capex", "30000",
            "--life-years", "4", "--power-kw", "0.7", "--pue", "1.3", "--usd-per-kwh", "0.08", "--interest", "0",
            "--utilization", "0.5"]
    code, out, _ = run(capsys, *args, "--format", "json")
    rows = {r["pricing"]: r for r in json.loads(out)["rows"]}
    term, hourly = rows["reserved-3y"], rows["on-demand"]
    assert code == 0 and term["committed"] and term["owning_wins"] == "below" and hourly["owning_wins"] == "above"
    assert term["break_even_utilization"] == pytest.approx((0.9 - fixed_hour) / power)
    assert term["saving_usd_over_life"] > hourly["saving_usd_over_life"]   # the term bills idle hours too
    assert term["payback_years"] == pytest.approx(gpu.payback_years(0.9, 1.0))
    code, out, _ = run(capsys, *args)
    line = next(x for x in out.splitlines() if x.startswith("r ") and "reserved-3y" in x)
    assert "below" in line and "paid for every hour of its term" in out


def test_tco_csv_is_the_json_rows_with_the_owned_figures(capsys):
    import csv
    import io

    doc = json.loads(run(capsys, "tco", "--format", "json")[1])
    code, out, _ = run(capsys, "tco", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == len(doc["rows"]) > 0
    for r, j in zip(rows, doc["rows"]):
        assert (r["provider"], r["region"]) == (j["provider"], j["region"])
        assert float(r["usd_per_gpu_hour"]) == j["usd_per_gpu_hour"] and r["gpu"] == doc["gpu"]
        assert float(r["owned_usd_per_gpu_hour"]) == pytest.approx(doc["owned_usd_per_gpu_hour"])
    code, out, _ = run(capsys, "tco", "--format", "csv", "--providers", "aws", "--region", "nowhere")
    assert code == 2   # an unknown region is refused as for the table
