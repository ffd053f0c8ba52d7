"""Catalog files: every row has a source and date; GPU name resolution; price-file validation;
reading a result dict into Throughput."""

import json
import pytest

from cost_models.catalog import DATA_DIR
from cost_models.errors import InputError
from cost_models.hardware import find_gpu, gpus, mig_profile, normalize_device_name
from cost_models.models import find_model, models
from cost_models.networks import find_network, networks
from cost_models.prices import PRICING_KINDS, catalog_prices, load_prices
from cost_models.throughput import Throughput


def test_catalogs_cover_the_issue_and_cite_sources():
    names = {g.name for g in gpus()}
    assert {"A100-SXM-40GB", "A100-SXM-80GB", "H100-SXM", "H100-PCIe", "H800-SXM", "H200-SXM", "B200", "GB200"} <= names
    assert {"llama3-8b", "llama3-70b", "llama3.1-405b", "gpt3-175b"} <= {m.name for m in models()}
    assert {"nvlink", "ib-ndr-400", "eth-100", "roce-400", "efa-3200"} <= {n.name for n in networks()}
    # CoreWeave publishes no rates this workplace could read: no rows rather than invented ones.
    assert {"aws", "azure", "gcp", "lambda", "nebius", "runpod", "oci"} <= {p.provider for p in catalog_prices()}
    for row in [*gpus(), *models(), *networks(), *catalog_prices()]:
        assert row.source and row.as_of


def test_gpu_figures_from_references():
    h100 = find_gpu("H100-SXM")
    assert h100.peak_tflops == {"bf16": 989, "fp16": 989, "tf32": 495, "fp32": 67, "fp8": 1979}
    assert h100.mamf_tflops("bf16") == pytest.approx(794.5, abs=0.1)   # mamf-finder table
    assert find_gpu("A100-SXM-80GB").mamf_tflops() == pytest.approx(271.2, abs=0.1)
    assert "borrowed" in find_gpu("H200-SXM").source
    assert find_gpu("H800").nvlink_gbps == 400
    assert find_network("efa-3200").gbps_per_gpu == 50  # 3200 Gb/s per 8 GPUs


@pytest.mark.parametrize("torch_name,memory,expected", [
    ("NVIDIA H100 80GB HBM3", None, "H100-SXM"),
    ("NVIDIA H100 PCIe", None, "H100-PCIe"),
    ("NVIDIA H200", None, "H200-SXM"),
    ("NVIDIA A100-SXM4-80GB", None, "A100-SXM-80GB"),
    ("NVIDIA A100-SXM4-40GB", None, "A100-SXM-40GB"),
    ("NVIDIA A100-SXM4", 39.4, "A100-SXM-40GB"),
    ("NVIDIA A100-SXM4", 79.2, "A100-SXM-80GB"),
    ("NVIDIA H800", None, "H800-SXM"),
    ("NVIDIA B200", None, "B200"),
    ("NVIDIA H100 NVL", None, None),
    ("NVIDIA GeForce RTX 4090", None, None),
    ("NVIDIA A100-PCIE-40GB", None, None),
    ("H1000", None, None),          # a model number is a whole token: not an H100
    ("NVIDIA H2000", None, None),
    ("NVIDIA GH200 480GB", 94.5, "GH200"),
    ("NVIDIA GH200 480GB", None, "GH200"),
    ("NVIDIA GH200 480GB", 139.8, None),  # the 144 GB HBM3e variant: other bandwidth, not catalogued
    ("NVIDIA H100 80GB HBM3 MIG 1g.10gb", 9.8, None),  # a slice is never the whole GPU
    ("NVIDIA H100 80GB HBM3 MIG 7g.80gb", 79.2, None),
    ("NVIDIA A100-SXM4-40GB MIG 3g.20gb", None, None),
])
def test_normalize_device_name(torch_name, memory, expected):
    assert normalize_device_name(torch_name, memory) == expected


@pytest.mark.parametrize("typed", ["h100", "H100-SXM", "NVIDIA H100 80GB HBM3", "h100 sxm"])
def test_find_gpu_resolves_what_users_type(typed):
    assert find_gpu(typed).name == "H100-SXM"


def test_lookalike_names_are_unknown_not_silently_resolved():
    with pytest.raises(InputError, match="unknown GPU 'H1000'; did you mean H100-SXM"):
        find_gpu("H1000")


def test_unknown_names_suggest_close_matches():
    with pytest.raises(InputError, match="unknown GPU 'h10'; did you mean H100-SXM"):
        find_gpu("h10")
    with pytest.raises(InputError, match="did you mean llama3-70b"):
        find_model("llama3-70")
    with pytest.raises(InputError, match="did you mean ib-ndr-400"):
        find_network("ib-ndr")


HEADER = "provider,gpu,pricing,usd_per_gpu_hour,usd_low,usd_high,region,as_of,source\n"


def _write(tmp_path, text):
    path = tmp_path / "prices.csv"
    path.write_text(text)
    return str(path)


def test_user_prices_override_and_add(tmp_path):
    path = _write(tmp_path, HEADER + "lambda,h100,on-demand,3.10,,,all,2026-01,our contract\n"
                                     "acme,H200-SXM,reserved-1y,2.00,,,,2026-01-15,quote\n")
    prices = {p.key: p for p in load_prices(path)}
    assert prices[("lambda", "H100-SXM", "on-demand", "all")].usd_per_gpu_hour == 3.10   # replaced
    assert prices[("acme", "H200-SXM", "reserved-1y", "")].source == "quote"             # added
    assert len(prices) == len(catalog_prices()) + 1


@pytest.mark.parametrize("body,message", [
    ("provider,gpu,pricing,as_of\nx,h100,on-demand,2025\n", r"prices.csv:1: missing column\(s\) usd_per_gpu_hour"),
    # the last of two cells was read: a $0.5 quote priced at $500 (hostile tester)
    ("provider,gpu,pricing,usd_per_gpu_hour,usd_per_gpu_hour\nx,h100,on-demand,0.5,500\n",
     r"prices.csv:1: column usd_per_gpu_hour appears 2 times in the header"),
    ("x,h100,on-demand,-1,,,,2025,s\n", r"prices.csv:2: column usd_per_gpu_hour: '-1' must not be negative"),
    ("x,h100,on-demand,cheap,,,,2025,s\n", r"prices.csv:2: column usd_per_gpu_hour: 'cheap' is not a number"),
    ("x,h100,hourly,1,,,,2025,s\n", r"prices.csv:2: column pricing: 'hourly' must be one of on-demand"),
    ("x,h100,on-demand,1,,,,2025-13-01,s\n", r"prices.csv:2: column as_of: '2025-13-01' is not a date"),
    ("x,h100,on-demand,1,,,,yesterday,s\n", r"prices.csv:2: column as_of: 'yesterday' is not a date"),
    ("x,h100,on-demand,1,,\n", r"prices.csv:2: 6 of 9 columns \(truncated row\?\)"),
    # a source with an unquoted comma shifted nothing here, but a row of more cells cannot be read as meant
    ("x,h100,on-demand,1,,,,2025,my, quote\n", r"prices.csv:2: 10 cells under a header of 9 columns \(a decimal comma, or a comma in an unquoted cell"),
    # the README's `1,5` with a trailing comma: the shifted value is refused, and the line says why
    ("x,h100,on-demand,5,1,,,eu,2025,\n", r"prices.csv:2: column as_of: 'eu' is not a date.*\(10 cells under a "
                                        r"header of 9 columns: a decimal comma"),
    ("x,tpu-v5,on-demand,1,,,,2025,s\n", r"prices.csv:2: column gpu: unknown GPU 'tpu-v5'"),
    ("x,h100,on-demand,nan,,,,2025,s\n", r"prices.csv:2: column usd_per_gpu_hour: 'nan' is not a finite number"),
])
def test_bad_price_files_name_file_line_and_column(tmp_path, body, message):
    text = body if body.startswith("provider") else HEADER + body
    with pytest.raises(InputError, match=message):
        load_prices(_write(tmp_path, text))


def test_missing_price_file(tmp_path):
    with pytest.raises(InputError, match="no such CSV file"):
        load_prices(str(tmp_path / "nope.csv"))


def test_pricing_kinds():
    assert PRICING_KINDS == ("on-demand", "spot", "reserved-1y", "reserved-3y", "capacity-block")


def test_data_dir_has_only_cited_csvs():
    import os
    assert sorted(f for f in os.listdir(DATA_DIR) if f.endswith(".csv")) == \
        ["gpus.csv", "models.csv", "networks.csv", "prices.csv"]


def test_throughput_from_result():
    tp = Throughput.from_result({"schema_version": 1,
                                 "machine": {"gpu": {"normalized": "H200-SXM"}, "world_size": 8, "nodes": 1},
                                 "summary": {"mamf_tflops": {"bf16": 780.5, "fp8": 0}, "busbw_gbps_max": 480.0}},
                                source="run.json")
    assert (tp.gpu, tp.mamf_tflops, tp.busbw_gbps, tp.world_size) == ("H200-SXM", {"bf16": 780.5}, 480.0, 8)


def test_throughput_from_a_cpu_result():
    tp = Throughput.from_result({"schema_version": 1, "machine": {"gpu": None, "world_size": 1},
                                 "summary": {"mamf_tflops": {"fp32": 1.2}}})
    assert tp.gpu is None and tp.busbw_gbps is None


@pytest.mark.parametrize("doc,message", [
    ([], "expected a JSON object"),
    ({"schema_version": 2, "summary": {"mamf_tflops": {}}}, "schema_version: 2 is not supported"),
    ({"schema_version": 1, "summary": {"mamf_tflops": []}}, "summary.mamf_tflops: expected dict"),
    ({"schema_version": 1, "summary": {"mamf_tflops": {"bf16": "fast"}}}, "summary.mamf_tflops.bf16: expected a number"),
    ({"schema_version": 1, "summary": {"mamf_tflops": {}, "busbw_gbps_max": "x"}}, "summary.busbw_gbps_max: expected"),
    ({"schema_version": 1, "summary": {"mamf_tflops": {"bf16": -3.0}}}, None),
])
def test_throughput_rejects_bad_fields(doc, message):
    if message is None:  # negative MAMF: dropped like a 0 ("not measured"), never used
        assert Throughput.from_result(doc, "r.json").mamf_tflops == {}
        return
    with pytest.raises(InputError, match=f"r.json: .*{message}|r.json: {message}"):
        Throughput.from_result(doc, "r.json")


def test_gh200_is_catalogued_with_its_measured_mamf():
    gh200 = find_gpu("NVIDIA GH200 480GB")
    assert gh200.name == "GH200" and gh200.memory_gb == 96 and gh200.hbm_tbps == 4.0
    assert gh200.peak("bf16") == 989 and gh200.mamf_tflops("bf16") == pytest.approx(828.6, abs=0.1)
    assert "datasheet" in gh200.source and gh200.as_of


@pytest.mark.parametrize("name, profile", [("NVIDIA H100 80GB HBM3 MIG 1g.10gb", "1g.10gb"),
                                           ("H100 MIG 3g.40gb", "3g.40gb"), ("h100-mig", "MIG"),
                                           # the profile alone (no word MIG) was priced as a whole H100
                                           ("H100 1g.10gb", "1g.10gb"), ("H100-SXM-3g.40gb", "3g.40gb")])
def test_find_gpu_refuses_a_mig_slice_with_the_reason(name, profile):
    assert mig_profile(name) == profile
    with pytest.raises(InputError) as e:
        find_gpu(name)
    msg = str(e.value)
    assert "\n" not in msg and "MIG slice" in msg and profile in msg and "not a whole GPU" in msg


def test_whole_gpu_names_are_not_mig():
    assert mig_profile("NVIDIA H100 80GB HBM3") is None and mig_profile("migrate-gpu") is None
    assert mig_profile("NVIDIA A100-SXM4-80GB") is None and mig_profile("H200 141gb") is None


def test_l40s_is_recognised_from_its_torch_name_and_the_l40_is_not():
    from cost_models.hardware import normalize_device_name

    assert normalize_device_name("NVIDIA L40S") == "L40S"
    assert normalize_device_name("NVIDIA L40") is None  # another GPU (no fp8 and other clocks)


def test_gh200_has_a_sourced_lambda_price():
    from cost_models.prices import catalog_prices

    (row,) = [p for p in catalog_prices() if p.gpu == "GH200" and p.provider == "lambda"]
    assert row.usd_per_gpu_hour == 2.29 and "gpu_1x_gh200" in row.source and row.as_of == "2026-07"


def test_models_listing_marks_which_gpu_counts_are_assumed(capsys):
    """The listing showed Llama 3 70B's assumed 16,384 GPUs as it showed 3.1 405B's published count."""
    from tests.conftest import run_cli
    code, out, _ = run_cli(capsys, "models", "--format", "json")
    rows = {r["name"]: r for r in json.loads(out)["rows"]}
    assert code == 0 and rows["llama3.1-405b"]["published_gpus_from"] == "published"
    assert rows["llama3-70b"]["published_gpus_from"].startswith("assumed")
    assert rows["llama2-70b"]["published_gpus_from"].startswith("assumed") and rows["llama3-8b"]["published_gpus_from"] is None
    code, out, _ = run_cli(capsys, "models")
    (line,) = [x for x in out.splitlines() if x.startswith("llama3-70b ")]
    assert "16,384  assumed" in line


def test_catalog_tables_read_cleanly(capsys):
    """Mixtral's 1T tokens is a unit (cost says so; models did not); the CSV wrote 8030000000.0
    parameters; networks printed 1.5625 GB/s; gpus mixed 2250 and 1,745 in one table."""
    from bench import cli

    assert cli.main(["models"]) == 0
    out = capsys.readouterr().out
    assert next(line for line in out.splitlines() if line.startswith("mixtral-8x7b")).split()[2:4] == ["1T", "(unit)"]
    assert cli.main(["models", "--format", "csv"]) == 0
    out = capsys.readouterr().out
    row = dict(zip(out.splitlines()[0].split(","), out.splitlines()[1].split(",")))
    assert row["params"] == "8030000000" and row["tokens"] == "15000000000000" and "_tokens_shown" not in row
    assert cli.main(["networks"]) == 0
    out = capsys.readouterr().out
    assert " 1.56 " in out and "1.5625" not in out
    assert cli.main(["gpus"]) == 0
    out = capsys.readouterr().out
    assert "1,745" not in out and " 1745 " in out
