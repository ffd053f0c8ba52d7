"""The cost model: hand-computed FLOPs, memory, communication, time and cost; calibration checks;
property tests (hypothesis); the vectorised grid."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cost_models import flops, memory, training_time
from cost_models.cost import estimate, estimate_grid, plan_training, price_rows
from cost_models.errors import InputError
from cost_models.models import custom_model, find_model
from cost_models.prices import Price, load_prices, select
from cost_models.throughput import Throughput


# ---- FLOPs -------------------------------------------------------------------------------------

def test_flops_per_token_hand_computed():
    # attention forward 4*L*s*h = 4*2*100*10 = 8000, causal half 4000; training = 3 passes.
    assert flops.flops_per_token(1e9, layers=2, hidden=10, seq_len=100) == 6e9 + 3 * 4000
    assert flops.flops_per_token(1e9, 2, 10, 100, causal=False) == 6e9 + 3 * 8000
    assert flops.flops_per_token(1e9, 2, 10, 100, recompute=True) == 8e9 + 4 * 4000


def test_405b_dense_flops_match_the_paper():
    # "The Llama 3 Herd of Models": 3.8e25 FLOPs for 405B on 15.6T tokens (6ND, no attention term).
    spec = find_model("llama3.1-405b")
    assert 6 * spec.active_params * spec.tokens == pytest.approx(3.8e25, rel=0.01)
    with_attention = flops.training_flops(spec.active_params, spec.tokens, spec.layers, spec.hidden, spec.seq_len)
    # + 6*L*s*h per token = 6*126*8192*16384 = 1.015e11 on top of 6N = 2.435e12 (+4.2%).
    assert with_attention / (6 * spec.active_params * spec.tokens) == pytest.approx(1 + 1.0147e11 / 2.4354e12, rel=1e-3)


# ---- memory ------------------------------------------------------------------------------------

def test_memory_hand_computed():
    assert memory.state_bytes(1e9) == 16e9
    assert memory.activation_bytes(layers=2, hidden=10, seq_len=100) == 34 * 100 * 10 * 2
    assert memory.activation_bytes(2, 10, 100, recompute=True) == 2 * 100 * 10 * 2 + 34 * 100 * 10


def test_min_gpus_llama3_70b():
    # 16 * 70.6e9 = 1.1296e12 B of states + 34*8192*8192*80 = 1.8254e11 B of activations,
    # over 0.9 * 80e9 usable bytes per GPU = 18.22 -> 19 GPUs.
    assert int(memory.min_gpus(70.6e9, 80, 8192, 8192, 80)) == 19
    assert int(memory.min_gpus(405.9e9, 126, 16384, 8192, 80)) == 99


def test_cluster_too_small_says_how_many_gpus():
    with pytest.raises(InputError, match="needs at least 19 H100-SXM"):
        plan_training("llama3-70b", "H100-SXM", gpus=16)


# ---- communication and time --------------------------------------------------------------------

def test_comm_seconds_hand_computed():
    # 1e9 params in one shard, 4 data-parallel ranks at 100 GB/s busbw: a reduce-scatter and an
    # all-gather of 2e9 bytes, each 2e9 * 3/4 / 1e11 = 0.015 s.
    assert training_time.comm_seconds_per_step(1e9, 1, 4, 100, 0) == pytest.approx(0.03)
    # + 3 latency hops of 10 us per collective.
    assert training_time.comm_seconds_per_step(1e9, 1, 4, 100, 10) == pytest.approx(0.03 + 2 * 3 * 10e-6)
    assert training_time.comm_seconds_per_step(1e9, 4, 4, 100, 10) == 0  # one replica: nothing to sync


def test_training_time_hand_computed():
    # 3.6e18 FLOPs on 1 GPU at 1000 TFLOP/s = 3600 s = 1 GPU-hour; goodput 0.5 doubles it.
    t = training_time.training_time(3.6e18, 1e6, 1e9, 1, 1, 1000, 50, 5, goodput_fraction=0.5)
    assert t["compute_hours"] == pytest.approx(1.0)
    assert t["exposed_comm_hours"] == 0
    assert t["gpu_hours"] == pytest.approx(2.0)
    assert t["wall_clock_days"] == pytest.approx(2 / 24)


def test_exposed_comm_uses_measured_busbw():
    # 2 GPUs, model on 1 GPU each (dp=2); 1e6 tokens / 1e3 batch = 1000 steps; each step moves
    # 2 * (2 * 1e9 bytes) * 1/2 / busbw; overlap 0.
    for busbw, expected_s in ((100, 1000 * 0.02), (400, 1000 * 0.005)):
        t = training_time.training_time(1e18, 1e6, 1e9, 2, 1, 1000, busbw, 0, overlap=0, batch_tokens=1e3,
                                        goodput_fraction=1.0)
        assert t["exposed_comm_hours"] == pytest.approx(2 * expected_s / 3600)


def test_goodput_calibration_point():
    assert training_time.goodput(16384) == pytest.approx(0.90)
    assert training_time.goodput(8) > 0.999
    g = training_time.goodput([8, 1024, 16384, 65536])
    assert np.all(np.diff(g) < 0)
    # 466 interruptions in 54 days on 16,384 GPUs.
    assert training_time.FAILURES_PER_GPU_HOUR * 54 * 24 * 16384 == pytest.approx(466)


def _result(gpu="H100-SXM", bf16=700.0, busbw=None):
    summary = {"mamf_tflops": {"bf16": bf16}}
    if busbw is not None:
        summary["busbw_gbps_max"] = busbw
    return {"schema_version": 1, "machine": {"gpu": {"normalized": gpu}, "world_size": 8, "nodes": 1},
            "summary": summary}


def test_measured_mamf_is_used_when_the_gpu_matches():
    tp = Throughput.from_result(_result(bf16=700.0), source="r.json")
    plan = plan_training("llama3-70b", "H100-SXM", throughput=tp, efficiency=0.5)
    assert plan.achieved_tflops_per_gpu == pytest.approx(350.0)
    assert "measured bf16 MAMF (r.json)" in plan.assumptions["achieved_tflops_from"]


def test_catalog_mamf_when_the_result_is_from_another_gpu():
    tp = Throughput.from_result(_result(gpu="H200-SXM", bf16=700.0), source="r.json")
    plan = plan_training("llama3-70b", "H100-SXM", throughput=tp, efficiency=0.5)
    assert plan.achieved_tflops_per_gpu == pytest.approx(989 * 0.8033 * 0.5)
    assert "r.json is from H200-SXM, not H100-SXM" in plan.assumptions["achieved_tflops_from"]


def test_measured_busbw_single_node_and_capped_across_nodes():
    small = custom_model(1e9, 1e12, layers=16, hidden=2048)
    fast = Throughput.from_result(_result(busbw=480.0), source="r.json")
    slow = Throughput.from_result(_result(busbw=20.0), source="r.json")
    one_node = {name: plan_training(small, "H100-SXM", gpus=8, throughput=tp, overlap=0)
                for name, tp in (("fast", fast), ("slow", slow))}
    assert one_node["slow"].gpu_hours > one_node["fast"].gpu_hours
    assert "measured busbw 480" in one_node["fast"].assumptions["network"]
    # Across nodes the fabric (50 GB/s) caps a faster measurement; a slower one caps the fabric.
    multi = plan_training(small, "H100-SXM", gpus=64, throughput=fast)
    default = plan_training(small, "H100-SXM", gpus=64, throughput=Throughput.from_result(_result(), "r.json"))
    assert multi.gpu_hours == pytest.approx(default.gpu_hours)
    assert plan_training(small, "H100-SXM", gpus=64, throughput=slow).gpu_hours > default.gpu_hours


def test_mfu_override_is_peak_times_mfu():
    spec = custom_model(1e9, 1e12, layers=16, hidden=2048, seq_len=2048)
    plan = plan_training(spec, "H100-SXM", gpus=8, mfu=0.5, goodput=1.0)
    per_token = 6e9 + 6 * 16 * 2048 * 2048
    assert plan.achieved_tflops_per_gpu == pytest.approx(494.5)
    assert plan.gpu_hours == pytest.approx(per_token * 1e12 / (494.5e12 * 3600))


# ---- cost --------------------------------------------------------------------------------------

def test_cost_table_at_6_4m_gpu_hours():
    """cost = GPU-hours x $/GPU-hour at each provider's cheapest region (catalog rows from SkyPilot's
    v9 catalog: aws p5.48xlarge $55.04/h / 8 in us-east-1, gcp a3-highgpu-8g us-central1, lambda)."""
    from cost_models.prices import cheapest_regions

    df = estimate("llama3-70b", "H100-SXM", gpu_hours=6.4e6, prices=cheapest_regions(load_prices()))
    cost = dict(zip(df["provider"], df["cost_usd"]))
    price = dict(zip(df["provider"], df["usd_per_gpu_hour"]))
    assert (price["aws"], price["gcp"], price["lambda"]) == (6.88, 5.3833, 3.99)
    assert cost["aws"] == pytest.approx(44.032e6)
    assert cost["gcp"] == pytest.approx(6.4e6 * 5.3833)
    assert cost["lambda"] == pytest.approx(25.536e6)
    assert list(df["cost_usd"]) == sorted(df["cost_usd"])


def test_cost_range_only_where_the_price_has_one():
    prices = [Price("a", "H100-SXM", "on-demand", 12.29, "2026", "t", usd_low=10.0, usd_high=15.0),
              Price("b", "H100-SXM", "reserved-3y", 2.0, "2026", "t", usd_high=5.0),   # only a high
              Price("c", "H100-SXM", "on-demand", 3.0, "2026", "t")]
    df = estimate("llama3-70b", "H100-SXM", gpu_hours=1e6, prices=prices, pricing="all")
    row = {r.provider: r for r in df.itertuples()}
    assert (row["a"].cost_usd_low, row["a"].cost_usd, row["a"].cost_usd_high) == pytest.approx((10e6, 12.29e6, 15e6))
    # only a high known: the low end is the list price itself, as `costbench prices` shows it
    assert (row["b"].cost_usd_low, row["b"].cost_usd_high) == pytest.approx((2e6, 5e6))
    assert math.isnan(row["c"].cost_usd_low)  # None in the rows, NaN in pandas


@pytest.mark.parametrize("name,published", [("llama3-70b", 6.4e6), ("llama3.1-405b", 30.84e6)])
def test_calibration_within_15_percent(name, published):
    plan = plan_training(name, "H100-SXM")  # defaults only: the published scale, catalog MAMF
    assert plan.gpus == 16384
    assert plan.gpu_hours / published == pytest.approx(1.0, abs=0.15)


def _price(usd):
    return Price(provider="p", gpu="H100-SXM", pricing="on-demand", usd_per_gpu_hour=usd, as_of="2025", source="test")


def _cost(params, tokens, usd, gpus=1024):
    plan = plan_training(custom_model(params, tokens), "H100-SXM", gpus=gpus)
    return plan, price_rows(plan, [_price(usd)])[0]["cost_usd"]


params_st = st.floats(1e8, 5e10)
tokens_st = st.floats(1e9, 2e13)
usd_st = st.floats(0.5, 20)


@settings(max_examples=40, deadline=None)
@given(params_st, tokens_st, usd_st, st.floats(1.01, 3))
def test_cost_grows_with_tokens_params_and_price(params, tokens, usd, factor):
    _, base = _cost(params, tokens, usd)
    assert _cost(params, tokens * factor, usd)[1] > base
    assert _cost(params * factor, tokens, usd)[1] > base
    assert _cost(params, tokens, usd * factor)[1] > base


@settings(max_examples=40, deadline=None)
@given(params_st, tokens_st, usd_st)
def test_halving_the_price_halves_the_cost_and_hours_ignore_price(params, tokens, usd):
    plan_a, full = _cost(params, tokens, usd)
    plan_b, half = _cost(params, tokens, usd / 2)
    assert half == pytest.approx(full / 2)
    assert plan_a.gpu_hours == plan_b.gpu_hours


# ---- the vectorised grid -----------------------------------------------------------------------

def test_grid_matches_the_single_scenario_path():
    df = estimate_grid(["llama3-70b", "llama3.1-405b"], ["H100-SXM", "H200-SXM"], [64, 1024, 16384])
    prices = select(load_prices(), None, "on-demand")
    n_rows = sum(1 for p in prices if p.gpu in ("H100-SXM", "H200-SXM"))
    assert len(df) == 2 * n_rows * 3
    for model, gpu, gpus in (("llama3-70b", "H100-SXM", 1024), ("llama3.1-405b", "H200-SXM", 16384)):
        one = plan_training(model, gpu, gpus=gpus)
        rows = df[(df.model == model) & (df.gpu == gpu) & (df.gpus == gpus)]
        assert np.allclose(rows.gpu_hours, one.gpu_hours, rtol=1e-9)
        assert np.allclose(rows.cost_usd, one.gpu_hours * rows.usd_per_gpu_hour, rtol=1e-9)
    # 405B needs 99 H100s: the 64-GPU scenarios are infeasible (NaN), not silently cheap.
    assert df[(df.model == "llama3.1-405b") & (df.gpu == "H100-SXM") & (df.gpus == 64)].gpu_hours.isna().all()
    assert math.isfinite(df[(df.model == "llama3-70b") & (df.gpus == 64)].cost_usd.iloc[0])


def test_cluster_size_says_where_it_came_from():
    # Meta's published count is for H100s: on another GPU the size is a default, labelled as such.
    assert plan_training("llama3-70b", "H100-SXM").assumptions["gpus_from"] == "published"
    capped = plan_training("llama3.1-405b", "H200-SXM")
    assert capped.gpus == training_time.MAX_DEFAULT_GPUS
    assert "cap" in capped.assumptions["gpus_from"]
    small = plan_training(custom_model(7e9, 2e12), "H200-SXM")
    assert small.wall_clock_days <= training_time.DEFAULT_TARGET_DAYS
    assert "within 30 days" in small.assumptions["gpus_from"]
    assert plan_training("llama3-70b", "H100-SXM", gpus=1024).assumptions["gpus_from"] == "--gpus"
