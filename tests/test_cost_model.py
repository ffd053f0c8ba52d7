"""The cost model: hand-computed FLOPs, memory and goodput; measured rates from result dicts;
cost arithmetic; the grid. The step model's parts and properties: tests/test_step_model.py."""

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cost_models import flops, memory, parallelism, rates as rates_mod, step_time, training_time
from cost_models.cost import estimate, estimate_grid, plan_training, price_rows
from cost_models.errors import InputError
from cost_models.hardware import find_gpu
from cost_models.models import custom_model, find_model
from cost_models.networks import find_network
from cost_models.prices import Price, load_prices, select
from cost_models.throughput import Throughput


# ---- FLOPs and shapes --------------------------------------------------------------------------

def test_flops_per_token_hand_computed():
    # attention forward 4*L*s*h = 4*2*100*10 = 8000, causal half 4000; training = 3 passes.
    assert flops.flops_per_token(1e9, layers=2, hidden=10, seq_len=100) == 6e9 + 3 * 4000
    assert flops.flops_per_token(1e9, 2, 10, 100, causal=False) == 6e9 + 3 * 8000
    # the input embedding (vocab x h weights) is a lookup: out of N
    assert flops.flops_per_token(1e9, 2, 10, 100, embedding=1e8) == 6 * 0.9e9 + 3 * 4000


def test_model_flops_leave_out_the_embedding_so_mfu_stays_below_the_peak():
    """A 1-layer model with Llama 3's 128K vocabulary: its embedding is half its parameters and does
    no multiply-adds; counted, the run reported 334 TFLOP/s on a 312 TFLOP/s A100 (MFU 107%)."""
    spec = custom_model(None, 100e9, layers=1, hidden=1280, heads=40, kv_heads=10, ffn=2560, vocab=128256)
    plan = plan_training(spec, "A100-SXM-80GB", gpus=8, tp=2)
    gemm_weights = spec.params - 128256 * 1280
    assert plan.training_flops == pytest.approx(
        float(flops.training_flops(gemm_weights, spec.tokens, 1, 1280, spec.seq_len)))
    assert plan.mfu < 1 and plan.achieved_tflops_per_gpu < 312
    assert "less the input embedding" in plan.assumptions["flops"]
    # catalog: Llama 3 70B's 1.05B embedding out of its 70.6B
    seventy = find_model("llama3-70b")
    assert plan_training(seventy, "H100-SXM", gpus=16384).training_flops == pytest.approx(
        float(flops.training_flops(seventy.active_params - 128256 * 8192, seventy.tokens, 80, 8192, 8192)))
    # GPT-3's embedding is tied: the LM head's weight, which does run, so N keeps it (175e9 in full)
    gpt3 = find_model("gpt3-175b")
    assert gpt3.tied_embeddings and not seventy.tied_embeddings
    gpt3_plan = plan_training(gpt3, "H100-SXM", gpus=1024)
    assert gpt3_plan.training_flops == pytest.approx(float(flops.training_flops(175e9, 300e9, 96, 12288, 2048)))
    assert "tied embedding counted once" in gpt3_plan.assumptions["flops"]
    # a shape estimated from --params alone (N = 12*L*h^2) has no embedding in N to leave out
    estimated = custom_model(7e9, 1e12)
    assert estimated.shape_estimated and plan_training(estimated, "H100-SXM", gpus=64).training_flops == pytest.approx(
        float(flops.training_flops(7e9, 1e12, estimated.layers, estimated.hidden, estimated.seq_len)))


@settings(max_examples=40, deadline=None)
@given(layers=st.sampled_from([1, 2, 4]), heads=st.sampled_from([8, 16, 40]), d=st.sampled_from([64, 128]),
       ffn_mult=st.sampled_from([0.25, 1, 4]), vocab=st.sampled_from([32000, 128256, 256000]),
       gpu=st.sampled_from(["A100-SXM-80GB", "H100-SXM", "H200-SXM", "B200"]), moe=st.booleans())
def test_bf16_mfu_never_passes_the_peak(layers, heads, d, ffn_mult, vocab, gpu, moe):
    h = heads * d
    shape = dict(layers=layers, hidden=h, heads=heads, kv_heads=heads // 4 or 1, ffn=int(ffn_mult * h), vocab=vocab)
    spec = custom_model(None, 1e11, **shape, **(dict(experts=8, top_k=2) if moe else {}))
    plan = plan_training(spec, gpu, gpus=8)
    assert 0 < plan.mfu < 1


def test_405b_dense_flops_match_the_paper():
    # "The Llama 3 Herd of Models": 3.8e25 FLOPs for 405B on 15.6T tokens (6ND, no attention term).
    spec = find_model("llama3.1-405b")
    assert 6 * spec.active_params * spec.tokens == pytest.approx(3.8e25, rel=0.01)


def test_params_from_shape_match_the_catalog():
    # Llama 3 70B: 80 x (8192*(8192+2*8*128) + 8192^2 + 3*8192*28672 + 2*8192) + 2*128256*8192 + 8192
    for spec in (find_model("llama3-70b"), find_model("llama3.1-405b"), find_model("llama2-70b")):
        derived = flops.params_from_shape(spec.layers, spec.hidden, spec.heads, spec.kv_heads, spec.ffn, spec.vocab)
        assert derived == pytest.approx(spec.params, rel=0.002)
    by_shape = custom_model(None, 1e12, layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, vocab=128256)
    assert by_shape.params == pytest.approx(70.5537e9, rel=1e-4) and not by_shape.shape_estimated


def test_a_rounded_params_beside_a_shape_is_kept_a_contradicting_one_refused():
    shape = dict(layers=80, hidden=8192, heads=64, kv_heads=8, ffn=28672, vocab=128256)   # 70.55B
    assert custom_model(70e9, 1e12, **shape).params == 70e9          # "70B": 0.8% off, the user's count
    assert custom_model(64e9, 1e12, **shape).params == 64e9          # 9.3%: within the 10%
    for params in (63e9, 78e9):
        with pytest.raises(InputError, match=f"--params {params / 1e9:g}B: the shape given .* has 70.6B parameters"):
            custom_model(params, 1e12, **shape)
    assert custom_model(70e9, 1e12, layers=80).params == 70e9        # a partial shape is estimated, not checked


def test_estimated_shape_keeps_12_L_h2():
    spec = custom_model(7e9, 1e12)
    assert spec.shape_estimated and spec.mlp == "gelu" and spec.ffn == 4 * spec.hidden
    assert 12 * spec.layers * spec.hidden**2 == pytest.approx(7e9, rel=0.15)


# ---- memory per layout -------------------------------------------------------------------------

def _one(spec, **kw):
    lay = parallelism.candidates(spec, kw.pop("gpus"), 1024, **kw)
    assert len(lay) == 1
    return lay


def test_activation_bytes_hand_computed():
    # Llama 3 70B per token and layer: 4h + 6h + 4*8*128 + 2h + 6*28672 = 12*8192 + 4096 + 172032
    assert memory.activation_bytes_per_token(find_model("llama3-70b")) == 12 * 8192 + 4096 + 172032
    # GPT with a 4h MLP: 4h + 10h + 2h + 16h = 32h (Korthikanti's 34h without the two dropout masks)
    gpt = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, mlp="gelu", ffn=4096, vocab=1000)
    assert memory.activation_bytes_per_token(gpt) == 32 * 1024
    assert memory.activation_bytes_per_token(gpt, 4) == 32 * 1024 / 4


def test_moe_activation_bytes_keep_the_dispatched_copies_whole_under_tp():
    # h 1024, 8 heads = 8 KV heads of 128, top 2 of 8 SwiGLU experts of 512: per token 4h + (6h + 4h)
    # + 2h + 2 * 6 * 512 divided over TP, plus the 2 dispatched copies of 2h that every TP rank holds
    moe = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, kv_heads=8, ffn=4096, vocab=1000,
                       experts=8, top_k=2, moe_ffn=512)
    sharded = 16 * 1024 + 2 * 6 * 512
    assert memory.activation_bytes_per_token(moe) == sharded + 2 * 2 * 1024
    assert memory.activation_bytes_per_token(moe, 4) == sharded / 4 + 2 * 2 * 1024


def test_gpu_bytes_hand_computed():
    # 2 layers, TP 1, PP 1, DP 1, micro-batch 1, seq 16, selective: every byte by hand.
    spec = custom_model(None, 1e9, layers=2, hidden=64, heads=4, kv_heads=4, ffn=256, vocab=100, seq_len=16)
    lay = _one(spec, gpus=1, tp=1, pp=1, micro_batch=1, global_batch=1, recompute="none", vpp=1)
    states = spec.params * (6 + 12)
    acts = 2 * 16 * memory.activation_bytes_per_token(spec)
    logits = 16 * 100 * 8
    assert memory.gpu_bytes(spec, lay)[0] == pytest.approx(states + acts + logits)


def test_interleaved_pipeline_keeps_more_micro_batches_in_flight_by_hand():
    """1F1B's first stage holds PP micro-batches' activations; interleaved over v chunks, the
    warm-up grows by (PP-1)/(PP*v) of that (Megatron-LM's interleaved schedule): 4 x (1 + 3/8) at
    PP 4, v 2. 8 layers: 2 per stage, TP 1, micro-batch 1, seq 16, 8 micro-batches."""
    spec = custom_model(None, 1e9, layers=8, hidden=64, heads=4, kv_heads=4, ffn=256, vocab=100, seq_len=16)
    kw = dict(gpus=4, tp=1, pp=4, micro_batch=1, global_batch=8, recompute="none")
    plain, inter = _one(spec, vpp=1, **kw), _one(spec, vpp=2, **kw)
    layer = 16 * memory.activation_bytes_per_token(spec)
    extra = memory.gpu_bytes(spec, inter)[0] - memory.gpu_bytes(spec, plain)[0]
    assert extra == pytest.approx(2 * layer * 4 * 3 / 8)


def test_interleaved_last_stage_holds_its_warm_up_chunks_by_hand():
    """Megatron's interleaved warm-up runs (v-1)*PP model chunks forward on the last rank before its
    first backward: (v-1)*PP + 1 chunks of 1/v of the stage's layers, ((2-1)*4 + 1)/2 = 2.5
    micro-batches' activations at PP 4, v 2, where 1F1B holds 1. A 100K vocabulary makes the last
    stage (LM head, logits) the fuller one, so gpu_bytes is its bytes."""
    spec = custom_model(None, 1e9, layers=8, hidden=64, heads=4, kv_heads=4, ffn=256, vocab=100_000, seq_len=16)
    kw = dict(gpus=4, tp=1, pp=4, micro_batch=1, global_batch=8, recompute="none")
    plain, inter = _one(spec, vpp=1, **kw), _one(spec, vpp=2, **kw)
    layer = 16 * memory.activation_bytes_per_token(spec)
    (_, _), (d_last, _) = memory.stage_param_split(spec, plain)
    logits = 16 * 100_000 * 8
    assert memory.gpu_bytes(spec, plain)[0] == pytest.approx(d_last[0] * 18 + 2 * layer * 1 + logits)
    assert memory.gpu_bytes(spec, inter)[0] - memory.gpu_bytes(spec, plain)[0] == pytest.approx(2 * layer * 1.5)


def test_cluster_too_small_says_how_many_gpus():
    with pytest.raises(InputError, match="the fewest it fits is 20 H100-SXM GPUs"):
        plan_training("llama3-70b", "H100-SXM", gpus=16)
    assert plan_training("llama3-70b", "H100-SXM", gpus=20).gpus == 20      # and 20 does fit


@pytest.mark.parametrize("name,gpu", [("llama3-70b", "H100-SXM"), ("llama3-8b", "A100-SXM-40GB"),
                                      ("llama3.1-405b", "A100-SXM-80GB")])
def test_the_fewest_gpus_bisection_agrees_with_a_scan_of_every_count(name, gpu):
    from cost_models.cost import _first_that_fits, fewest_gpus_that_fit, min_gpus_that_fit
    from cost_models.hardware import find_gpu
    spec, hw = find_model(name), find_gpu(gpu)
    upto = min_gpus_that_fit(spec, hw)
    scan = _first_that_fits(spec, hw, range(1, upto), None, {}) or upto
    assert fewest_gpus_that_fit(spec, hw, upto) == scan
    # fits there, and not one GPU fewer
    assert plan_training(spec, hw.name, gpus=scan).gpus == scan
    with pytest.raises(InputError):
        plan_training(spec, hw.name, gpus=scan - 1)


# ---- goodput and hours -------------------------------------------------------------------------

def test_goodput_calibration_point():
    assert training_time.goodput(16384) == pytest.approx(0.90)
    assert training_time.goodput(8) > 0.999
    assert np.all(np.diff(training_time.goodput([8, 1024, 16384, 65536])) < 0)
    assert training_time.FAILURES_PER_GPU_HOUR * 54 * 24 * 16384 == pytest.approx(466)


def test_gpu_hours_hand_computed():
    # 1e6 tokens / 1e3 per step = 1000 steps x 3.6 s x 10 GPUs = 10 GPU-hours; goodput 0.5 doubles it.
    hours, days, good = training_time.gpu_hours(1e6, 1e3, 3.6, 10, 0.5)
    assert hours == pytest.approx(20.0) and days == pytest.approx(20 / 10 / 24) and good == 0.5


# ---- measured rates ----------------------------------------------------------------------------

def _result(gpu="H100-SXM", bf16=700.0, busbw=None, device="cuda", **summary):
    summary = {"mamf_tflops": {"bf16": bf16}, **summary}
    if busbw is not None:
        summary["busbw_gbps_max"] = busbw
    return {"schema_version": 1, "machine": {"device": device, "gpu": {"normalized": gpu}, "world_size": 8,
                                            "nodes": 1}, "summary": summary}


@pytest.mark.parametrize("summary, needle", [
    ({"bf16": 1100.0}, "summary.mamf_tflops.bf16: 1100 TFLOP/s is above the H100-SXM's bf16 datasheet peak 989"),
    ({"layer": {"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": 5000.0}},
     "summary.layer.gemm_tflops: 5000 TFLOP/s is above"),                  # was an MFU of 99% at 5x the peak
    ({"layer": {"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": 600.0, "attention_tflops": 4e4}},
     "summary.layer.attention_tflops: 4e+04 TFLOP/s is above"),
    ({"membw_gbps": 99000.0}, "summary.membw_gbps: 99000 GB/s is above the H100-SXM's HBM bandwidth 3350"),
    # a summary-only file (no records to contradict it): an all-to-all at 100x NVLink made ep_comm vanish
    ({"collectives": {"alltoall": {"busbw_gbps_max": 90000.0}}},
     "summary.collectives.alltoall.busbw_gbps_max: 90000 GB/s is above the H100-SXM's NVLink 900 GB/s"),
    ({"busbw_gbps_max": 5000.0}, "summary.busbw_gbps_max: 5000 GB/s is above the H100-SXM's NVLink 900"),
])
def test_a_gpu_files_rate_above_its_datasheet_is_refused(summary, needle):
    doc = _result(**({"bf16": summary.pop("bf16")} if "bf16" in summary else {}), **summary)
    with pytest.raises(InputError, match=re.escape(needle)):
        plan_training("llama3-70b", "H100-SXM", gpus=2048, throughput=Throughput.from_result(doc, "r.json"))
    # a rate within the datasheet is used (the MAMF of 794 here)
    assert plan_training("llama3-70b", "H100-SXM", gpus=2048,
                         throughput=Throughput.from_result(_result(bf16=794.0), "r.json")).step is not None


def test_a_layer_gemm_record_faster_than_the_datasheet_is_refused():
    records = _gemm_records(find_model("llama3-70b"), 1e-4)     # 8192 x 16032 x 8192 in 0.1 ms: 21,500 TFLOP/s
    doc = _layer_doc(600.0, records)
    with pytest.raises(InputError, match=r"r.json: a layer GEMM record \(\d+ x \d+ x \d+\): [\d.e+]+ TFLOP/s is above"):
        plan_training("llama3-70b", "H100-SXM", gpus=2048, throughput=Throughput.from_result(doc, "r.json"))


def test_from_result_reads_every_spec_field_all_optional():
    doc = _result(membw_gbps=3000.0, collectives={"allgather": {"busbw_gbps_max": 350.0},
                                                  "reducescatter": {"busbw_gbps_max": 360.0, "bytes": 1}},
                  layer={"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": 650.0,
                         "attention_tflops": 420.0, "elementwise_gbps": 2800.0, "layer_ms": {"gemm": 1.0}})
    tp = Throughput.from_result(doc, "r.json")
    assert (tp.membw_gbps, tp.collectives) == (3000.0, {"allgather": 350.0, "reducescatter": 360.0})
    assert tp.layer == {"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": 650.0,
                        "attention_tflops": 420.0, "elementwise_gbps": 2800.0}
    bare = Throughput.from_result({"schema_version": 1}, "r.json")
    assert bare.mamf_tflops == {} and bare.layer == {} and bare.gpu is None
    cpu = Throughput.from_result({"schema_version": 1, "machine": {"device": "cpu", "host_memory_gb": 64}}, "c.json")
    assert cpu.gpu == "cpu" and cpu.host_memory_gb == 64
    with pytest.raises(InputError, match="r.json: field summary.layer.gemm_tflops: expected a number"):
        Throughput.from_result(_result(layer={"gemm_tflops": "fast"}), "r.json")


def test_measured_collective_records_fit_the_tp_link():
    def rec(op, size, ms, wrong=0, world=8):
        return {"op": op, "bytes": size, "world_size": world, "time_ms": {"median": ms}, "wrong": wrong}
    # 100 GB/s + 5 us a hop over 8 ranks: 7/8 x bytes / 100 GB/s + 35 us
    sizes = (1 << 16, 1 << 22, 1 << 28)
    ms = {b: (7 / 8 * b / 100e9 + 35e-6) * 1e3 for b in sizes}
    records = [rec(op, b, ms[b]) for op in ("allgather", "reducescatter") for b in sizes]
    records += [rec("allgather", 1 << 20, 99.0, wrong=3), rec("reducescatter", 1 << 20, 99.0, world=1),
                rec("allreduce", 1 << 20, 99.0)]    # a failed check, one rank, another op: not read
    doc = {**_result(collectives={"allgather": {"busbw_gbps_max": 90.0}, "reducescatter": {"busbw_gbps_max": 90.0}}),
           "records": records}
    t = Throughput.from_result(doc, "r.json")
    assert {op: len(p) for op, p in t.tp_collective_times.items()} == {"allgather": 3, "reducescatter": 3}
    plan = plan_training("llama3-70b", "H100-SXM", throughput=t)
    assert "fitted to busbw 100 GB/s + 5 us a hop (the slower op's best size alone: 90 GB/s) (r.json)" \
        in plan.assumptions["rates"]["tp_comm"]
    bad = {**doc, "records": [rec("allgather", "big", 1.0)]}
    with pytest.raises(InputError, match=r"r.json: records\[0\] \(allgather\): bytes and world_size must be"):
        Throughput.from_result(bad, "r.json")
    bad = {**doc, "records": [rec("reducescatter", 1024, float("nan"))]}
    with pytest.raises(InputError, match=r"r.json: records\[0\].time_ms.median: must be a positive number"):
        Throughput.from_result(bad, "r.json")


def test_measured_layer_rates_replace_the_catalog():
    doc = _result(membw_gbps=3000.0, collectives={"allgather": {"busbw_gbps_max": 300.0},
                                                  "reducescatter": {"busbw_gbps_max": 320.0}},
                  layer={"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": 500.0,
                         "attention_tflops": 300.0, "elementwise_gbps": 2500.0})
    plan = plan_training("llama3-70b", "H100-SXM", throughput=Throughput.from_result(doc, "r.json"))
    rates = plan.assumptions["rates"]
    assert set(plan.assumptions["measured_parts"]) == {"gemm", "attention", "memory_bound", "tp_comm", "optimizer"}
    # the pipeline (PP 2 over 16,384 GPUs) sends over the fabric, which a one-node file did not measure
    assert plan.assumptions["catalog_parts"] == ["dp_comm", "pp_comm"]
    assert plan.assumptions["derived_parts"] == ["pp_bubble", "dp_overlap"]
    assert rates["optimizer"].startswith("measured: Adam's bytes at the copy's 3000 GB/s (r.json)")
    assert rates["pp_comm"] == "catalog: activation sends between stages at the dp_comm rate (" + rates["dp_comm"] + ")"
    assert "500 TFLOP/s (r.json)" in rates["gemm"] and "300 GB/s" in rates["tp_comm"] and "2500 GB/s" in rates["memory_bound"]
    catalog = plan_training("llama3-70b", "H100-SXM")
    # each measured rate stands next to the catalog default it replaced
    for part in plan.assumptions["measured_parts"]:
        assert rates[part].endswith("; replaces the " + catalog.assumptions["rates"][part]), rates[part]
    assert "replaces the catalog: 0.76 x bf16 MAMF 794" in rates["gemm"]
    assert plan.step["parts"]["gemm"] > catalog.step["parts"]["gemm"] * 1.1   # 500 < 0.76 x 794
    # The layer figures are this model's: another model priced from the same file uses the MAMF.
    other = plan_training("llama3-8b", "H100-SXM", gpus=1024, throughput=Throughput.from_result(doc, "r.json"))
    assert other.assumptions["rates"]["gemm"].startswith("measured: 0.76 x bf16 MAMF 700")


def _layer_doc(gemm_tflops=600.0, records=None, **summary):
    layer = {"model": "llama3-70b", "tp": 8, "dtype": "bf16", "gemm_tflops": gemm_tflops,
             "shape": {"hidden": 8192, "heads": 64, "kv_heads": 8, "ffn": 28672, "seq": 8192, "vocab": 128256,
                       "micro_batch": 1, "mlp": "swiglu", "experts": 0, "top_k": 0, "moe_ffn": None}}
    doc = _result(layer=layer, **summary)
    if records is not None:
        doc["records"] = records
    return doc


def _gemm_records(spec, seconds_each):
    from cost_models import step_time
    return [{"op": "gemm", "dtype": "bf16", "m": int(m), "n": int(n), "k": int(k), "count": c, "correct": True,
             "time_ms": {"median": seconds_each * 1e3}}
            for m, n, k, c in step_time.passes(step_time.layer_linears(spec, 8, 1))]


def test_a_layers_gemm_records_and_its_summary_rate_give_the_same_scale():
    """The records say which shapes ran and how long each took; a file without them (summary only)
    is read as the priced model's layer at the measured TP: for the same GEMMs, the same answer."""
    spec = find_model("llama3-70b")
    records = _gemm_records(spec, 5e-3)
    flops_ = sum(2 * r["m"] * r["n"] * r["k"] for r in records)
    rate = flops_ / (len(records) * 5e-3) / 1e12
    with_records = plan_training("llama3-70b", "H100-SXM", gpus=2048,
                                 throughput=Throughput.from_result(_layer_doc(1.0, records), "r.json"))
    summary_only = plan_training("llama3-70b", "H100-SXM", gpus=2048,
                                 throughput=Throughput.from_result(_layer_doc(rate), "s.json"))
    assert with_records.step["parts"]["gemm"] == pytest.approx(summary_only.step["parts"]["gemm"], rel=1e-9)
    # records of another dtype, or failed, are not the layer's
    other = [dict(r, dtype="fp32") for r in records] + [dict(r, correct=False, time_ms={"median": 1e9}) for r in records]
    tp = Throughput.from_result(_layer_doc(rate, other), "o.json")
    assert "gemms" not in tp.layer


def test_fp8_keeps_the_measured_layers_distance_from_the_roofline():
    """A measured bf16 layer that ran at half its roofline says these shapes run slow on this device;
    the fp8 GEMMs at the same shapes keep that factor, so a slow layer never makes fp8 look fast."""
    spec = find_model("llama3-70b")
    kw = dict(gpus=2048, tp=8, pp=2, micro_batch=1, recompute="none")
    catalog = {d: plan_training("llama3-70b", "H100-SXM", dtype=d, **kw) for d in ("bf16", "fp8")}
    roofline = rates_mod.catalog_rates(find_gpu("H100-SXM"), find_network("ib-ndr-400"))
    gemms = step_time.passes(step_time.layer_linears(spec, 8, 1))
    predicted = sum(c * float(step_time.gemm_seconds(m, n, k, roofline)) for m, n, k, c in gemms)
    flops_ = sum(2.0 * m * n * k * c for m, n, k, c in gemms)
    burst = 2 * predicted * rates_mod.GEMM_SUSTAINED_FRACTION    # a burst at half the roofline's speed
    # the file's MAMF is the catalog's, so both dtypes' rooflines are the catalog's (fp8 was not measured)
    doc = _layer_doc(flops_ / burst / 1e12, membw_gbps=0.9 * 3350,
                     mamf_tflops={"bf16": find_gpu("H100-SXM").mamf_tflops("bf16")})
    measured = {d: plan_training("llama3-70b", "H100-SXM", dtype=d, throughput=Throughput.from_result(doc, "r.json"),
                                 **kw) for d in ("bf16", "fp8")}
    assert measured["bf16"].step["parts"]["gemm"] == pytest.approx(2 * catalog["bf16"].step["parts"]["gemm"], rel=0.02)
    assert measured["fp8"].step["parts"]["gemm"] == pytest.approx(2 * catalog["fp8"].step["parts"]["gemm"], rel=0.02)
    assert "every GEMM, fp8 or bf16, x 2" in measured["fp8"].assumptions["rates"]["gemm"]


@pytest.mark.parametrize("change, needle", [
    ({"m": 0}, "records[0] (a layer GEMM): m, n, k and count must be positive whole numbers"),
    ({"count": 1.5}, "records[0] (a layer GEMM): m, n, k and count must be positive whole numbers"),
    ({"time_ms": {"median": -1}}, "records[0].time_ms.median: must be a positive number"),
    ({"time_ms": None}, "records[0].time_ms.median: must be a positive number"),
])
def test_a_malformed_layer_gemm_record_is_named(change, needle):
    records = _gemm_records(find_model("llama3-70b"), 1e-3)
    records[0] = {**records[0], **change}
    with pytest.raises(InputError, match=re.escape(f"r.json: {needle}")):
        Throughput.from_result(_layer_doc(600.0, records), "r.json")


def test_fp8_uses_the_files_measured_fp8_mamf():
    doc = _result(bf16=700.0)
    doc["summary"]["mamf_tflops"]["fp8"] = 1100.0
    fp8 = plan_training("llama3-70b", "H100-SXM", gpus=2048, dtype="fp8", tp=8, pp=4, micro_batch=1,
                        recompute="selective", throughput=Throughput.from_result(doc, "r.json"))
    catalog = plan_training("llama3-70b", "H100-SXM", gpus=2048, dtype="fp8", tp=8, pp=4, micro_batch=1,
                            recompute="selective")
    assert fp8.assumptions["rates"]["gemm"].startswith("measured: 0.76 x fp8 MAMF 1100 (r.json), roofline (fp8 linear")
    assert "gemm" in fp8.assumptions["measured_parts"]
    assert fp8.step["parts"]["gemm"] > catalog.step["parts"]["gemm"]    # 1100 below the catalog's fp8 MAMF
    without = plan_training("llama3-70b", "H100-SXM", gpus=2048, dtype="fp8", throughput=Throughput.from_result(
        _result(bf16=700.0), "b.json"))
    assert without.assumptions["rates"]["gemm"].startswith("catalog: 0.76 x fp8 MAMF")


def test_a_result_from_another_gpu_is_not_used():
    tp = Throughput.from_result(_result(gpu="H200-SXM"), "r.json")
    plan = plan_training("llama3-70b", "H100-SXM", throughput=tp)
    assert plan.assumptions["measured_parts"] == []
    assert "r.json is from H200-SXM, not H100-SXM" in plan.assumptions["rates"]["gemm"]
    assert plan.gpu_hours == pytest.approx(plan_training("llama3-70b", "H100-SXM").gpu_hours)


def test_cpu_device_from_a_cpu_result():
    doc = {"schema_version": 1, "machine": {"device": "cpu", "host_memory_gb": 64.0},
           "summary": {"mamf_tflops": {"fp32": 1.5}, "membw_gbps": 20.0,
                       "layer": {"model": "llama3-8b", "tp": 1, "dtype": "fp32", "gemm_tflops": 1.2,
                                 "attention_tflops": 0.5, "elementwise_gbps": 10.0}}}
    tp = Throughput.from_result(doc, "cpu.json")
    spec = custom_model(None, 1e9, layers=4, hidden=256, heads=4, ffn=1024, vocab=1000, seq_len=512)
    plan = plan_training(spec, "cpu", gpus=2, throughput=tp, dtype="fp32")
    assert plan.gpu.name == "cpu" and plan.gpu.memory_gb == 64.0
    assert "measured" in plan.assumptions["rates"]["memory_bound"]
    with pytest.raises(InputError, match="give --results FILE from a CPU run"):
        plan_training(spec, "cpu", gpus=2)


def test_mfu_override_is_peak_times_mfu():
    spec = custom_model(1e9, 1e12, layers=16, hidden=2048, seq_len=2048, vocab=32000)   # 0.95B by shape
    plan = plan_training(spec, "H100-SXM", gpus=8, mfu=0.5, goodput=1.0)
    per_token = 6 * (1e9 - 32000 * 2048) + 6 * 16 * 2048 * 2048   # the embedding's lookup is not FLOPs
    assert plan.achieved_tflops_per_gpu == pytest.approx(494.5) and plan.step is None and plan.parallelism is None
    assert plan.gpu_hours == pytest.approx(per_token * 1e12 / (494.5e12 * 3600))


def test_efficiency_scales_the_gemm_rate():
    slow = plan_training("llama3-70b", "H100-SXM", efficiency=0.4, tp=8, pp=4, micro_batch=1, recompute="none")
    fast = plan_training("llama3-70b", "H100-SXM", efficiency=0.8, tp=8, pp=4, micro_batch=1, recompute="none")
    assert slow.step["parts"]["gemm"] == pytest.approx(2 * fast.step["parts"]["gemm"], rel=0.02)
    # slower GEMMs hide more of the backward's overlapped TP collectives: never more TP time
    assert slow.step["parts"]["tp_comm"] <= fast.step["parts"]["tp_comm"]


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
    order = [(isinstance(offer, str), cost) for offer, cost in zip(df["offer"], df["cost_usd"])]   # NaN: none
    assert order == sorted(order)   # offers that sell the cluster first, then the cheapest


def test_cost_range_only_where_the_price_has_one():
    prices = [Price("a", "H100-SXM", "on-demand", 12.29, "2026", "t", usd_low=10.0, usd_high=15.0),
              Price("b", "H100-SXM", "reserved-3y", 2.0, "2026", "t", usd_high=5.0),   # only a high
              Price("c", "H100-SXM", "on-demand", 3.0, "2026", "t")]
    df = estimate("llama3-70b", "H100-SXM", gpu_hours=1e7, prices=prices, pricing="all")
    row = {r.provider: r for r in df.itertuples()}
    assert (row["a"].cost_usd_low, row["a"].cost_usd, row["a"].cost_usd_high) == pytest.approx((10e7, 12.29e7, 15e7))
    # only a high known: the low end is the list price itself, as `costbench prices` shows it
    assert (row["b"].cost_usd_low, row["b"].cost_usd_high) == pytest.approx((2e7, 5e7))
    assert math.isnan(row["c"].cost_usd_low)  # None in the rows, NaN in pandas


def _price(usd):
    return Price(provider="p", gpu="H100-SXM", pricing="on-demand", usd_per_gpu_hour=usd, as_of="2025", source="test")


@settings(max_examples=15, deadline=None)
@given(st.floats(1e9, 3e10), st.floats(1e10, 2e13), st.floats(0.5, 20), st.floats(1.1, 3))
def test_cost_grows_with_tokens_and_price_and_halves_with_price(params, tokens, usd, factor):
    spec = custom_model(params, tokens)
    plan = plan_training(spec, "H100-SXM", gpus=1024)
    base = price_rows(plan, [_price(usd)])[0]["cost_usd"]
    more = plan_training(spec.with_tokens(tokens * factor), "H100-SXM", gpus=1024)
    assert more.gpu_hours == pytest.approx(plan.gpu_hours * factor)
    assert price_rows(plan, [_price(usd * factor)])[0]["cost_usd"] > base
    assert price_rows(plan, [_price(usd / 2)])[0]["cost_usd"] == pytest.approx(base / 2)


def test_more_parameters_cost_more():
    hours = [plan_training(custom_model(p, 1e12), "H100-SXM", gpus=1024).gpu_hours for p in (2e9, 8e9, 30e9)]
    assert hours == sorted(hours)


# ---- the grid and default sizes ----------------------------------------------------------------

def test_grid_matches_the_single_scenario_path():
    df = estimate_grid(["llama3-70b", "llama3.1-405b"], ["H100-SXM"], [64, 1024])
    n_rows = sum(1 for p in select(load_prices(), None, "on-demand") if p.gpu == "H100-SXM")
    assert len(df) == 2 * n_rows * 2
    one = plan_training("llama3-70b", "H100-SXM", gpus=1024)
    rows = df[(df.model == "llama3-70b") & (df.gpus == 1024)]
    assert np.allclose(rows.gpu_hours, one.gpu_hours, rtol=1e-9)
    # 405B needs 128 H100s: the 64-GPU scenarios are infeasible (NaN), not silently cheap.
    assert df[(df.model == "llama3.1-405b") & (df.gpus == 64)].gpu_hours.isna().all()
    assert math.isfinite(df[(df.model == "llama3-70b") & (df.gpus == 64)].cost_usd.iloc[0])


def test_cluster_size_says_where_it_came_from():
    # Llama 3 70B's 16,384 is the catalog's assumption (models.csv source), the 405B's is published
    assert plan_training("llama3-70b", "H100-SXM").assumptions["gpus_from"] == "assumed: models.csv, not published"
    assert plan_training("llama3.1-405b", "H100-SXM").assumptions["gpus_from"] == "published"
    small = plan_training(custom_model(7e9, 2e12), "H200-SXM")
    assert small.wall_clock_days <= training_time.DEFAULT_TARGET_DAYS
    assert "within 30 days" in small.assumptions["gpus_from"]
    assert plan_training("llama3-70b", "H100-SXM", gpus=1024).assumptions["gpus_from"] == "--gpus"
