"""The step model: each part hand-computed on small cases, the parts adding up, the chosen layout
fitting and multiplying out, and the monotonic properties a cost model must have."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cost_models import memory, parallelism, step_time, training_time
from cost_models.cost import plan_training
from cost_models.hardware import find_gpu
from cost_models.models import custom_model, find_model
from cost_models.rates import GEMM_OVERHEAD_S, Rates


def _rates(**kw):
    base = dict(gemm_tflops=100.0, gemm_shaped=True, attention_tflops=50.0, membw_gbps=1000.0, tp_gbps=100.0,
                fabric_gbps=10.0, tp_latency_us=0.0, fabric_latency_us=0.0, origin={})
    return Rates(**{**base, **kw})


def _layout(spec, gpus, **kw):
    """The one layout with the given degrees that runs on all `gpus` (smaller DPs leave GPUs idle)."""
    lay = parallelism.candidates(spec, gpus, 1024, **kw)
    full = np.flatnonzero(lay.gpus_used == gpus)
    assert len(full) == 1, lay
    return parallelism.Layouts(**{f.name: (None if getattr(lay, f.name) is None else getattr(lay, f.name)[full])
                                  for f in dataclasses.fields(lay)})


# ---- each part by hand -------------------------------------------------------------------------

def test_gemm_time_roofline_by_hand():
    r = _rates()
    # 1024^3: 2.147e9 FLOPs at 100 TFLOP/s = 21.47 us; bytes 3 * 2 MiB = 6.3 MB at 1 TB/s = 6.3 us
    assert step_time.gemm_seconds(1024, 1024, 1024, r) == pytest.approx(2 * 1024**3 / 100e12 + GEMM_OVERHEAD_S)
    # thin: m = 8 -> bytes dominate: 2*(8*1024 + 1024*1024) + 2*8*1024 at 1 TB/s
    thin = 2 * (8 * 1024 + 1024 * 1024) + 2 * 8 * 1024
    assert step_time.gemm_seconds(8, 1024, 1024, r) == pytest.approx(thin / 1e12 + GEMM_OVERHEAD_S)
    # a rate measured at the model's shapes is used flat
    flat = _rates(gemm_shaped=False)
    assert step_time.gemm_seconds(8, 1024, 1024, flat) == pytest.approx(2 * 8 * 1024**2 / 100e12)


def test_layer_gemm_scale_by_hand():
    """A measured layer's GEMMs against the roofline at the shapes they ran: measured / sustained
    over predicted. GEMMs that ran at the burst roofline (R / sustained) give 1: the catalog answer."""
    r = _rates()
    gemms = [(1024, 1024, 1024, 1), (8, 1024, 1024, 2)]    # one compute-bound, two thin (bytes-bound)
    predicted = step_time.gemm_seconds(1024, 1024, 1024, r) + 2 * step_time.gemm_seconds(8, 1024, 1024, r)
    assert step_time.layer_gemm_scale(gemms, 0.8 * predicted, r, 0.8) == pytest.approx(1.0)
    assert step_time.layer_gemm_scale(gemms, 0.01, r, 0.8) == pytest.approx(0.01 / 0.8 / predicted)
    # with the device's peak: never below R / (sustained x peak), so a layer that beat its roofline
    # does not run a larger layout's compute-bound GEMMs past the sustained share of the peak
    floor = r.gemm_tflops / (0.8 * 150.0)
    assert step_time.layer_gemm_scale(gemms, 1e-9, r, 0.8, peak_tflops=150.0) == pytest.approx(floor)
    assert step_time.layer_gemm_scale(gemms, 0.8 * predicted, r, 0.8, peak_tflops=150.0) == pytest.approx(1.0)
    # a rates object already scaled is not scaled twice
    assert step_time.layer_gemm_scale(gemms, 0.01, _rates(gemm_scale=3.0), 0.8) == pytest.approx(0.01 / 0.8 / predicted)
    # the scale multiplies every GEMM, of any shape
    assert step_time.gemm_seconds(8, 1024, 1024, _rates(gemm_scale=2.5)) == pytest.approx(
        2.5 * step_time.gemm_seconds(8, 1024, 1024, r))
    # layer_linears: the step model's own shapes at TP 8 (the tiny model of _tiny_parts), LM head last
    spec = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, ffn=4096, vocab=1000, seq_len=1024)
    assert step_time.layer_linears(spec, 8, 1) == [(1024, 384, 1024, 1), (1024, 1024, 128, 1), (1024, 1024, 1024, 1),
                                                   (1024, 1024, 512, 1), (1024, 125, 1024, 1)]
    assert step_time.passes([(1, 2, 3, 4)]) == [(1, 2, 3, 4), (1, 3, 2, 4), (3, 2, 1, 4)]


def test_the_gemm_scale_scales_only_the_gemms():
    _, _, base = _tiny_parts()
    spec, lay, _ = _tiny_parts()
    scaled = step_time.step_parts(spec, lay, _rates(gemm_scale=2.0))
    assert scaled["gemm"][0] == pytest.approx(2 * base["gemm"][0])
    for part in ("attention", "memory_bound", "optimizer"):
        assert scaled[part][0] == pytest.approx(base[part][0]), part
    # the slower GEMMs hide more of the backward's overlapped TP collectives, never less
    assert scaled["tp_comm"][0] <= base["tp_comm"][0]


def test_memory_bound_kernels_run_at_the_element_wise_rate_the_optimizer_at_the_copys():
    """A measured element-wise rate (eager, unfused kernels) times the norms and activations; the
    optimizer's streaming update and the GEMMs' operand traffic stay at the copy bandwidth."""
    spec, lay, base = _tiny_parts()
    slow = step_time.step_parts(spec, lay, _rates(elementwise_gbps=250.0))
    assert slow["memory_bound"][0] == pytest.approx(4 * base["memory_bound"][0])
    assert slow["optimizer"][0] == pytest.approx(base["optimizer"][0])
    assert slow["gemm"][0] == pytest.approx(base["gemm"][0])


def test_tp_collective_bytes_by_hand():
    # all-gather of a 1 GB buffer over 8 ranks moves 7/8 GB per GPU: at 100 GB/s, 8.75 ms (+7 hops)
    assert step_time.collective_seconds(1e9, 8, 100, 0) == pytest.approx(7 / 8 * 1e9 / 100e9)
    assert step_time.collective_seconds(1e9, 8, 100, 2) == pytest.approx(7 / 8 * 1e9 / 100e9 + 7 * 2e-6)
    assert step_time.collective_seconds(1e9, 1, 100, 2) == 0
    # per layer and micro-batch with sequence parallelism, each of t*h*2 bytes: 6 exposed (the forward's
    # 4, the backward's 2 all-gathers of the row-parallel layers' gradients), and 4 beside a GEMM: QKV's
    # and gate/up's re-all-gather beside the dgrad, reduce-scatter beside the wgrad
    spec = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, ffn=4096, vocab=1000, seq_len=1024)
    lay = _layout(spec, 8, tp=8, pp=1, micro_batch=1, global_batch=1, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, lay, _rates())
    one = 7 / 8 * 1024 * 1024 * 2 / 100e9                         # 18.4 us
    # QKV's dgrad and wgrad: 2 x 1024 x 1024 x 384 FLOPs at 100 TFLOP/s (compute-bound: 3.7 MB at
    # 1 TB/s is less) + 5 us = 13.1 us each, shorter than `one`: the excess is exposed, and the
    # slowdown while hidden (13.1 us x 0.189 / 1.189 ... as max(excess, one x s/(1+s))) is below it
    qkv = 2 * 1024 * 1024 * 384 / 100e12 + 5e-6
    s = step_time.OVERLAP_COMPUTE_SLOWDOWN
    assert one - qkv > one * s / (1 + s)
    # gate/up (n = 2 x 4096 / 8 = 1024): 2 x 1024^3 / 1e14 + 5 us = 26.5 us outlast `one`: all hidden,
    # costing the slowdown of the GEMM beside it, one x s / (1 + s)
    up = 2 * 1024**3 / 100e12 + 5e-6
    assert up > one
    per_layer = 6 * one + 2 * (one - qkv) + 2 * one * s / (1 + s)
    assert parts["tp_comm"][0] == pytest.approx(2 * per_layer + 2 * one)   # 2 layers + the LM head's 2
    # 2021 (no sequence parallelism): the same bytes as 8 all-reduce halves, all exposed
    old = step_time.step_parts(spec, lay, _rates(), sequence_parallel=False)
    assert old["tp_comm"][0] == pytest.approx(2 * 8 * one + 2 * one)


def test_collective_fit_recovers_bandwidth_and_latency():
    # times from collective_seconds itself at 100 GB/s + 5 us a hop, 8 ranks, 1 KiB .. 1 GiB
    sizes = [1 << p for p in range(10, 31, 2)]
    points = [(b, 8, float(step_time.collective_seconds(b, 8, 100, 5))) for b in sizes]
    bw, lat = step_time.fit_collective(points)
    assert bw == pytest.approx(100) and lat == pytest.approx(5)
    # by hand: 1 MiB over 8 ranks at 100 GB/s and 5 us a hop = 7/8 x 1 MiB / 100 GB/s + 35 us
    assert dict((b, t) for b, _, t in points)[1 << 20] == pytest.approx(7 / 8 * (1 << 20) / 100e9 + 35e-6)
    # a curve flatter than alpha-beta (the small sizes faster than any positive latency allows):
    # latency 0, the bandwidth fitted alone
    flat = [(b, 8, 7 / 8 * b / 50e9 * (0.5 if b < 1 << 20 else 1)) for b in sizes]
    bw, lat = step_time.fit_collective(flat)
    assert lat == 0 and 50 < bw < 100
    assert step_time.fit_collective(points[:1]) is None          # one size: latency and bandwidth inseparable
    assert step_time.fit_collective([(b, 8, 1e-3) for b in sizes]) is None   # time does not rise with size


def test_tp_collective_fit_adds_the_two_ops():
    def points(bw, lat):
        return tuple((b, 8, float(step_time.collective_seconds(b, 8, bw, lat))) for b in (1 << 16, 1 << 24, 1 << 30))
    # as many all-gathers as reduce-scatters on equal bytes: 1/bw adds, latency averages
    bw, lat, sizes = step_time.fit_tp_collectives({"allgather": points(100, 4), "reducescatter": points(50, 6)})
    assert bw == pytest.approx(2 / (1 / 100 + 1 / 50)) and lat == pytest.approx(5) and sizes == 3
    assert step_time.fit_tp_collectives({"allgather": points(100, 4)})[:2] == pytest.approx((100, 4))
    assert step_time.fit_tp_collectives({}) is None


def test_pipeline_bubble_by_hand():
    spec = custom_model(None, 1e9, layers=8, hidden=512, heads=8, ffn=2048, vocab=1000, seq_len=512)
    lay = _layout(spec, 4, tp=1, pp=4, micro_batch=1, global_batch=8, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, lay, _rates())
    # (pp - 1) / m of the compute: 3 micro-batch-times of the slowest stage against m = 8
    assert parts["pp_bubble"][0] == pytest.approx(3 * parts["stage_mb"][0])
    compute = sum(parts[p][0] for p in ("gemm", "attention", "memory_bound", "tp_comm"))
    assert parts["pp_bubble"][0] / compute == pytest.approx(3 / 8)
    inter = _layout(spec, 4, tp=1, pp=4, micro_batch=1, global_batch=8, recompute="none", vpp=2)
    assert step_time.step_parts(spec, inter, _rates())["pp_bubble"][0] == pytest.approx(1.5 * parts["stage_mb"][0])


def test_dp_volume_by_hand():
    # DP 4 of one GPU's P params: reduce-scatter 4P bytes and all-gather 2P bytes, each x 3/4, at 10 GB/s.
    spec = custom_model(None, 1e9, layers=2, hidden=256, heads=8, ffn=1024, vocab=1000, seq_len=256)
    lay = _layout(spec, 32, tp=8, pp=1, micro_batch=1, global_batch=4, recompute="none", vpp=1)
    p_gpu = memory.stage_params(spec, lay)[0][0]
    assert p_gpu == pytest.approx(spec.params / 8)
    rs, ag = 4 * p_gpu * 3 / 4 / 10e9, 2 * p_gpu * 3 / 4 / 10e9
    assert step_time.collective_seconds(4 * p_gpu, 4, 10, 0) == pytest.approx(rs)
    parts = step_time.step_parts(spec, lay, _rates())
    # a small model is one Megatron bucket (< 40M params): its reduce-scatter can only start when the
    # backward ends and its all-gather must end before the forward starts, so nothing overlaps
    assert p_gpu < 40e6 and step_time.dp_buckets(p_gpu, 4) == 1
    assert parts["dp_comm"][0] == pytest.approx(rs + ag)


def _tiny_parts(**kw):
    """One layer of a 2-layer model on 8 GPUs (TP 8, PP 1): t = 1024 tokens, h = 1024, 8 heads of
    128, 8 KV heads, ffn 4096 SwiGLU, vocabulary 1000; the rates of _rates()."""
    spec = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, ffn=4096, vocab=1000, seq_len=1024)
    lay = _layout(spec, 8, tp=8, pp=1, micro_batch=1, global_batch=1, recompute="none", vpp=1)
    return spec, lay, step_time.step_parts(spec, lay, _rates(), **kw)


def test_attention_time_by_hand():
    # causal forward 2*t*s*h / TP FLOPs = 2 * 1024 * 1024 * 1024 / 8; backward twice: 3x at 50 TFLOP/s, 2 layers
    _, _, parts = _tiny_parts()
    fwd = 2 * 1024 * 1024 * 1024 / 8 / 50e12
    assert parts["attention"][0] == pytest.approx(2 * 3 * fwd)
    _, _, v1 = _tiny_parts(flash_attention="v1")     # FlashAttention-1-era kernels: half the rate
    assert v1["attention"][0] == pytest.approx(2 * 3 * fwd / step_time.FLASH_V1_SPEED)


def test_2021_attention_by_hand_one_batched_kernel_per_gemm():
    """Megatron's 2021 CoreAttention: QK^T and probabilities @ V as one baddbmm / bmm over all the
    GPU's heads (one kernel's fixed cost each pass, not one per head), plus the fused softmax and
    dropout's bytes on the s x s scores."""
    r = _rates()
    # a batched GEMM: the batch's FLOPs and bytes, one fixed cost
    assert step_time.gemm_seconds(1024, 1024, 128, r, batch=8) == pytest.approx(
        8 * (step_time.gemm_seconds(1024, 1024, 128, r) - GEMM_OVERHEAD_S) + GEMM_OVERHEAD_S)
    spec = custom_model(None, 1e9, layers=2, hidden=1024, heads=8, ffn=4096, vocab=1000, seq_len=1024)
    lay = _layout(spec, 1, tp=1, pp=1, micro_batch=1, global_batch=1, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, lay, r, flash_attention=False, sequence_parallel=False)
    s, d, heads = 1024, 128, 8
    # QK^T (s x d)@(d x s): 2*s*s*d = 268 MFLOP a head, 2.68 us at 100 TFLOP/s, against 2.6 MB of bytes
    # (q, k in, the s x s scores out) at 1 TB/s = 2.62 us: compute-bound; PV (s x s)@(s x d) the same FLOPs.
    # Each: 8 heads' worth + 5 us once; backward: dgrad and wgrad, the same shapes transposed.
    one = (2 * s * s * d * heads / 100e12, (2 * (s * d + d * s) + 2 * s * s) * heads / 1e12)
    fwd_gemm = 2 * (max(one) + GEMM_OVERHEAD_S)
    bwd_gemm = sum(step_time.gemm_seconds(m, n, k, r, batch=heads) for m, n, k in
                   ((s, d, s), (d, s, s), (s, s, d), (s, d, s)))      # QK^T's dgrad, wgrad; PV's dgrad, wgrad
    scores = heads * s * s * np.array(step_time.UNFUSED_SCORE_BYTES) / 1e12   # memory_bound_gbps = membw here
    assert parts["attention"][0] == pytest.approx(2 * (fwd_gemm + scores[0] + bwd_gemm + scores[1]))


def test_selective_recompute_reruns_only_the_core_attention_and_saves_no_memory():
    spec, none_lay, none = _tiny_parts()
    sel_lay = dataclasses.replace(none_lay, recompute=np.array([parallelism.RECOMPUTE.index("selective")]))
    sel = step_time.step_parts(spec, sel_lay, _rates())
    fwd = 2 * 1024 * 1024 * 1024 / 8 / 50e12                     # one attention forward per layer
    assert sel["attention"][0] == pytest.approx(none["attention"][0] + 2 * fwd)
    for part in set(step_time.PARTS) - {"attention"}:
        assert sel[part][0] == pytest.approx(none[part][0]), part
    # FlashAttention stores no scores: the same bytes either way, so selective is never the faster choice
    assert memory.gpu_bytes(spec, sel_lay)[0] == memory.gpu_bytes(spec, none_lay)[0]
    # without FlashAttention (2021 kernels) the re-run is the QK^T, softmax and PV forward
    old = dict(flash_attention=False, sequence_parallel=False)
    assert step_time.step_parts(spec, sel_lay, _rates(), **old)["attention"][0] > \
        step_time.step_parts(spec, none_lay, _rates(), **old)["attention"][0]


def test_full_recompute_reruns_each_layers_forward_by_hand():
    """Full recompute runs every layer's forward again in its backward: its linear GEMMs, its
    attention forward, its forward element-wise bytes and its 4 forward TP collectives; the LM head,
    the optimizer and the data-parallel traffic do not run again."""
    spec, none_lay, none = _tiny_parts()
    full_lay = dataclasses.replace(none_lay, recompute=np.array([parallelism.RECOMPUTE.index("full")]))
    assert full_lay.recompute_share(spec.layers)[0] == 1
    full = step_time.step_parts(spec, full_lay, _rates())
    r, layers = _rates(), 2
    linear_fwd = sum(step_time.gemm_seconds(m, n, k, r) for m, n, k, _ in step_time.layer_linears(spec, 8, 1)[:-1])
    assert full["gemm"][0] - none["gemm"][0] == pytest.approx(layers * linear_fwd)
    assert full["attention"][0] - none["attention"][0] == pytest.approx(layers * 2 * 1024 * 1024 * 1024 / 8 / 50e12)
    h, f, kvd, d = 1024, 4096, 8 * 128, 128
    fwd_bytes = 1024 * ((8 * h + 12 * h + 6 * f + 4 * (h + kvd)) / 8 + 4 * d)    # test_memory_bound_bytes_by_hand
    assert full["memory_bound"][0] - none["memory_bound"][0] == pytest.approx(layers * fwd_bytes / 1000e9)
    one = 7 / 8 * 1024 * 1024 * 2 / 100e9                                          # one all-gather / reduce-scatter
    assert full["tp_comm"][0] - none["tp_comm"][0] == pytest.approx(layers * 4 * one)
    for part in ("optimizer", "dp_comm", "pp_bubble", "pp_comm", "cp_comm", "ep_comm"):
        assert full[part][0] == pytest.approx(none[part][0]), part


def test_dp_traffic_overlaps_two_thirds_of_a_micro_batch_for_gradients_one_third_for_weights():
    """Over a slow fabric (DP 16 > a node, 10 GB/s): the gradient reduce-scatter hides behind the
    last micro-batch's backward (2/3 of its compute), the weight all-gather behind the first's
    forward (1/3), less one bucket of each that cannot overlap; the rest is exposed."""
    spec = custom_model(None, 1e9, layers=4, hidden=2048, heads=16, ffn=8192, vocab=1000, seq_len=1024)
    lay = _layout(spec, 16, tp=1, pp=1, micro_batch=1, global_batch=16, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, lay, _rates())
    p_gpu = memory.stage_params(spec, lay)[0][0]
    buckets = step_time.dp_buckets(p_gpu, 16)
    assert buckets > 1
    rs = step_time.collective_seconds(4 * p_gpu, 16, 10, 0, buckets)
    ag = step_time.collective_seconds(2 * p_gpu, 16, 10, 0, buckets)
    stage_mb = parts["stage_mb"][0]
    assert rs - rs / buckets > 2 / 3 * stage_mb and ag - ag / buckets > 1 / 3 * stage_mb   # both partly exposed
    exposed = (rs - 2 / 3 * stage_mb) + (ag - 1 / 3 * stage_mb)    # floor + (rest - window) = total - window
    assert parts["dp_comm"][0] == pytest.approx(exposed)
    # the collectives outlast the compute beside them, so its slowdown is inside their time: none added
    assert parts["dp_overlap"][0] == 0
    # a fast fabric (DP inside the node at 100 GB/s would be another layout): at 1000 GB/s they hide,
    # and the compute they slowed gains s/(1+s) of the hidden time (step_time.overlap_interference)
    fast = step_time.step_parts(spec, lay, _rates(fabric_gbps=1000.0))
    rs, ag = rs / 100, ag / 100
    assert rs - rs / buckets < 2 / 3 * stage_mb and ag - ag / buckets < 1 / 3 * stage_mb
    assert fast["dp_comm"][0] == pytest.approx(rs / buckets + ag / buckets)
    assert fast["dp_overlap"][0] == pytest.approx(
        step_time.overlap_interference(rs - rs / buckets) + step_time.overlap_interference(ag - ag / buckets))


def test_the_search_picks_no_recompute_over_selective_when_it_fits():
    """The search tries none and full only (with FlashAttention, selective saves no memory and costs
    an attention forward): where none fits, it is chosen, and selective at that layout is slower."""
    plan = plan_training("llama3-8b", "H100-SXM", gpus=64)
    assert plan.parallelism["recompute"] == "none"
    given = plan_training("llama3-8b", "H100-SXM", gpus=64, **{k: plan.parallelism[k] for k in
                          ("tp", "pp", "micro_batch", "global_batch")}, recompute="selective")
    assert given.step["seconds"] > plan.step["seconds"]

def test_memory_bound_bytes_by_hand():
    # per token and layer, bf16, over TP 8 with sequence parallelism, as kernels.layer counts them:
    # forward norms 8h, residuals 12h, SwiGLU 6*ffn, rotary 4*(h + kv*d) = 8192 + 12288 + 24576 + 8192;
    # backward norms 12h, residuals 12h, SwiGLU 10*ffn, rotary the same; plus the rotary tables' 4*d
    # each way on every rank; 1024 tokens, 2 layers at 1 TB/s; plus the LM head's fp32 softmax, 12 bytes per logit
    _, _, parts = _tiny_parts()
    h, f, kvd, d = 1024, 4096, 8 * 128, 128
    fwd = (8 * h + 12 * h + 6 * f + 4 * (h + kvd)) / 8 + 4 * d
    bwd = (12 * h + 12 * h + 10 * f + 4 * (h + kvd)) / 8 + 4 * d
    head = 1024 * 1000 / 8 * 12
    assert parts["memory_bound"][0] == pytest.approx((2 * 1024 * (fwd + bwd) + head) / 1000e9)


def test_memory_bound_bytes_match_what_the_layer_op_counts():
    """The step model prices the element-wise bytes kernels.layer measured its rate on: one layer's
    forward + backward, per token, the same (Llama 3 70B at TP 8, MoE Mixtral at TP 2)."""
    kernels_layer = pytest.importorskip("kernels.layer")

    shapes = {"swiglu": dict(hidden=512, heads=8, kv_heads=2, ffn=1536, mlp="swiglu"),
              "gelu": dict(hidden=512, heads=8, kv_heads=8, ffn=2048, mlp="gelu"),
              "moe": dict(hidden=512, heads=8, kv_heads=2, ffn=1024, mlp="swiglu", experts=4, top_k=2)}
    for name, shape in shapes.items():
        tp = 2
        spec = custom_model(None, 1e9, layers=2, vocab=1000, seq_len=256, **shape)
        rank = kernels_layer.shard(kernels_layer.LayerShape(name, seq=256, vocab=1000, **shape), tp)
        ops = kernels_layer.elementwise_ops(rank, "bf16", "cpu")
        counted = sum(op.count * (op.fwd_bytes + op.bwd_bytes) for op in ops)
        lay = _layout(spec, tp, tp=tp, pp=1, micro_batch=1, global_batch=1, recompute="none", vpp=1,
                      **({"ep": 1} if spec.moe else {}))
        mem = step_time.step_parts(spec, lay, _rates(elementwise_gbps=1000.0))["memory_bound"][0]
        head = 256 * 1000 / tp * 12
        modelled = (mem * 1000e9 - head) / spec.layers
        # the norms' weight (h read forward, its gradient 2h backward, per call, not per token) aside
        weights = 2 * 2 * (shape["hidden"] + 2 * shape["hidden"])
        assert modelled == pytest.approx(counted - weights, rel=1e-9), name


def test_optimizer_bytes_by_hand():
    # Adam on the P/DP shard: 30 bytes per parameter; zeroing the P fp32 gradients: 4 bytes each; at 1 TB/s
    spec, lay, parts = _tiny_parts()
    p_gpu = memory.stage_params(spec, lay)[0][0]
    assert parts["optimizer"][0] == pytest.approx((30 * p_gpu / 1 + 4 * p_gpu) / 1000e9)


def test_pipeline_sends_by_hand():
    # each micro-batch sends its activation forward and its gradient back: t*h*2/TP bytes each, m of them;
    # TP*DP = 2 < 8: the stages share a node, so NVLink (100 GB/s here, no latency)
    spec = custom_model(None, 1e9, layers=8, hidden=512, heads=8, ffn=2048, vocab=1000, seq_len=512)
    lay = _layout(spec, 8, tp=2, pp=4, micro_batch=1, global_batch=8, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, lay, _rates())
    assert parts["pp_comm"][0] == pytest.approx(2 * 8 * 512 * 512 * 2 / 2 / 100e9)
    across = _layout(spec, 64, tp=2, pp=4, micro_batch=1, global_batch=8, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, across, _rates())     # TP*DP = 16: across nodes, 10 GB/s
    assert parts["pp_comm"][0] == pytest.approx(2 * 1 * 512 * 512 * 2 / 2 / 10e9)
    # TP*DP = 4 fits a node, but the 4 stages of 4 ranks span 2 nodes: stage 1 -> 2 crosses the fabric
    straddle = _layout(spec, 16, tp=2, pp=4, micro_batch=1, global_batch=8, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, straddle, _rates())
    assert parts["pp_comm"][0] == pytest.approx(2 * 4 * 512 * 512 * 2 / 2 / 10e9)


def test_dp_buckets_by_hand():
    # Megatron's default bucket: max(40M, 1M x DP) parameters
    assert step_time.dp_buckets(100e6, 4) == 3            # 40M buckets
    assert step_time.dp_buckets(4.41e9, 1024) == 5        # 1.024B buckets
    # each bucket pays the ring's DP-1 hops: 5 buckets over 1024 ranks at 5 us
    one = step_time.collective_seconds(1e9, 1024, 40, 5)
    assert step_time.collective_seconds(1e9, 1024, 40, 5, calls=5) == pytest.approx(one + 4 * 1023 * 5e-6)


def test_dp_comm_never_hides_the_last_bucket():
    spec = find_model("llama3-70b")
    lay = _layout(spec, 1024, tp=8, pp=1, micro_batch=1, global_batch=1024, recompute="none", vpp=1)
    parts = step_time.step_parts(spec, lay, _rates(fabric_gbps=1000.0))   # fast fabric: overlap hides all but the floor
    p_gpu = memory.stage_params(spec, lay)[0][0]
    n = step_time.dp_buckets(p_gpu, 128)[()]
    rs = step_time.collective_seconds(4 * p_gpu, 128, 1000, 0, n)
    ag = step_time.collective_seconds(2 * p_gpu, 128, 1000, 0, n)
    floor = (rs + ag) / n
    assert parts["dp_comm"][0] == pytest.approx(floor)
    # the hidden rest still costs: the compute beside it ran 18.9% slower (arXiv 2507.03114)
    assert parts["dp_overlap"][0] == pytest.approx((rs + ag - floor) * 0.189 / 1.189)


def test_overlapped_collective_by_hand():
    s = step_time.OVERLAP_COMPUTE_SLOWDOWN
    # 1 s of collective (0.1 s of it the last bucket) beside 2 s of compute: the compute outlasts it.
    # 0.9 s hidden covers 0.9/(1+s) s of compute; the step gains 0.9*s/(1+s) s, none of it exposed.
    exposed, slow = step_time.overlapped(1.0, 2.0, 0.1)
    assert exposed == pytest.approx(0.1) and slow == pytest.approx(0.9 * s / (1 + s))
    # 3 s beside 1 s of compute: the collective finishes last; the slowed compute (1+s s) is done by
    # then, so the step gains only the 2 s the collective outlasts the compute by: no slowdown on top.
    exposed, slow = step_time.overlapped(3.0, 1.0, 0.0)
    assert exposed == pytest.approx(2.0) and slow == pytest.approx(0.0)
    # in between (window < c < window*(1+s)): the slowed compute finishes last, at c*s/(1+s) past it
    c = 1.1
    exposed, slow = step_time.overlapped(c, 1.0, 0.0)
    assert exposed + slow == pytest.approx(c * s / (1 + s)) and exposed == pytest.approx(0.1)
    assert step_time.overlap_interference(1 + s) == pytest.approx(s)


def test_dp_overlap_costs_less_than_the_traffic_it_hides_and_nothing_when_the_fabric_sets_the_pace():
    spec = find_model("llama3-70b")
    lay = _layout(spec, 1024, tp=8, pp=1, micro_batch=1, global_batch=1024, recompute="none", vpp=1)
    for bw in (1.0, 20.0, 1000.0):
        parts = step_time.step_parts(spec, lay, _rates(fabric_gbps=bw))
        hidden = parts["dp_comm_total"][0] - parts["dp_comm"][0]
        assert 0 <= parts["dp_overlap"][0] <= step_time.overlap_interference(hidden) + 1e-12
        assert sum(parts[p] for p in step_time.PARTS)[0] == pytest.approx(parts["seconds"][0])
    slow = step_time.step_parts(spec, lay, _rates(fabric_gbps=1.0))    # DP traffic far longer than the step's compute
    assert slow["dp_overlap"][0] == 0.0


def test_software_without_dp_overlap_exposes_all_its_dp_traffic_and_slows_nothing():
    # DeepSpeed's pipeline engine and Megatron-LM before --overlap-grad-reduce reduce the gradients
    # after the last backward: dp_comm is the whole reduce-scatter + all-gather, dp_overlap nothing.
    spec = find_model("llama3-70b")
    lay = _layout(spec, 1024, tp=8, pp=1, micro_batch=1, global_batch=1024, recompute="none", vpp=1)
    for bw in (1.0, 20.0, 1000.0):
        over = step_time.step_parts(spec, lay, _rates(fabric_gbps=bw))
        after = step_time.step_parts(spec, lay, _rates(fabric_gbps=bw), overlap_dp=False)
        assert after["dp_comm"][0] == pytest.approx(after["dp_comm_total"][0])
        assert after["dp_comm_total"][0] == pytest.approx(over["dp_comm_total"][0])
        assert after["dp_overlap"][0] == 0.0
        assert after["seconds"][0] >= over["seconds"][0]
        assert sum(after[p] for p in step_time.PARTS)[0] == pytest.approx(after["seconds"][0])
        for part in ("gemm", "attention", "memory_bound", "tp_comm", "pp_bubble", "optimizer"):
            assert after[part][0] == pytest.approx(over[part][0])


def test_2021_fp16_allreduce_without_the_distributed_optimizer_by_hand():
    # Megatron-LM 2021 (local DDP, fp16): one all-reduce of the 2-byte gradients = reduce-scatter +
    # all-gather of 2P bytes, each x 3/4 at DP 4 over 10 GB/s, one bucket (one latency each); the
    # optimizer steps all P parameters (30 bytes each) and zeroes 2-byte gradients, at 1 TB/s.
    spec = custom_model(None, 1e9, layers=2, hidden=256, heads=8, ffn=1024, vocab=1000, seq_len=256)
    lay = _layout(spec, 32, tp=8, pp=1, micro_batch=1, global_batch=4, recompute="none", vpp=1)
    p_gpu = memory.stage_params(spec, lay)[0][0]
    lat = 5.0
    parts = step_time.step_parts(spec, lay, _rates(fabric_latency_us=lat), overlap_dp=False,
                                 distributed_optimizer=False)
    one = 2 * p_gpu * 3 / 4 / 10e9 + 3 * lat * 1e-6
    assert parts["dp_comm"][0] == pytest.approx(2 * one) and parts["dp_overlap"][0] == 0.0
    assert parts["optimizer"][0] == pytest.approx((30 * p_gpu + 2 * p_gpu) / 1000e9)
    today = step_time.step_parts(spec, lay, _rates(fabric_latency_us=lat), overlap_dp=False)
    assert today["dp_comm"][0] == pytest.approx(6 * p_gpu * 3 / 4 / 10e9 + 2 * 3 * lat * 1e-6)   # 4P + 2P
    for part in ("gemm", "attention", "memory_bound", "tp_comm"):
        assert parts[part][0] == pytest.approx(today[part][0])
    moe = find_model("mixtral-8x7b")
    with pytest.raises(ValueError, match="distributed_optimizer=False"):
        step_time.step_parts(moe, _layout(moe, 8, tp=1, pp=1, micro_batch=1, global_batch=8, recompute="none",
                                          vpp=1, ep=8, cp=1), _rates(), distributed_optimizer=False)


def test_an_unknown_attention_recipe_is_refused():
    spec = find_model("llama3-8b")
    lay = _layout(spec, 8, tp=1, pp=1, micro_batch=1, global_batch=8, recompute="none", vpp=1)
    with pytest.raises(ValueError, match="flash_attention"):
        step_time.step_parts(spec, lay, _rates(), flash_attention="V1")


def test_flash_attention_v1_halves_only_the_attention_rate():
    spec = find_model("llama2-70b")
    lay = _layout(spec, 2048, tp=8, pp=1, micro_batch=2, global_batch=1024, recompute="none", vpp=1)
    v2 = step_time.step_parts(spec, lay, _rates())
    v1 = step_time.step_parts(spec, lay, _rates(), flash_attention="v1")
    assert v1["attention"][0] == pytest.approx(v2["attention"][0] / step_time.FLASH_V1_SPEED)
    assert step_time.FLASH_V1_SPEED == 0.5
    for part in ("gemm", "memory_bound", "tp_comm", "optimizer"):
        assert v1[part][0] == pytest.approx(v2[part][0])


def test_fp8_speeds_only_the_linear_gemms():
    bf16 = plan_training("llama3-70b", "H100-SXM", tp=8, pp=4, micro_batch=1, recompute="none")
    fp8 = plan_training("llama3-70b", "H100-SXM", tp=8, pp=4, micro_batch=1, recompute="none", dtype="fp8")
    assert fp8.step["parts"]["gemm"] < 0.75 * bf16.step["parts"]["gemm"]
    assert fp8.step["parts"]["attention"] == pytest.approx(bf16.step["parts"]["attention"])
    # faster GEMMs hide less of the backward's overlapped TP collectives; fp8 costs its casts
    assert fp8.step["parts"]["tp_comm"] >= bf16.step["parts"]["tp_comm"]
    assert fp8.step["parts"]["memory_bound"] > bf16.step["parts"]["memory_bound"]


def test_fp8_casts_by_hand():
    """One layer of _tiny_parts's model (t = 1024, h = 1024, 8 heads = 8 KV heads of 128, ffn 4096
    SwiGLU, TP 8): per token inputs (h + h + h + ffn) / 8 = 896 and output gradients
    ((h + 2*8*128) + h + 2*ffn + h) / 8 = 1664 elements, each cast with its transpose (4 bytes), at
    the element-wise rate; the linear weights (h*3h + h^2 + 3*h*ffn = 16.8M, / 8) once a step at the copy's."""
    spec, lay, bf16 = _tiny_parts()
    fwd, bwd, weights = step_time.fp8_cast_elements(spec, lay, 1024.0)
    assert (fwd[0], bwd[0], weights[0]) == (1024 * 896, 1024 * 1664, (1024 * 3072 + 1024**2 + 3 * 1024 * 4096) / 8)
    fp8_rates = dataclasses.replace(_rates(), gemm_tflops=200.0)
    fp8 = step_time.step_parts(spec, lay, _rates(), linear_rates=fp8_rates)
    per_layer = 4 * (fwd + bwd) / (_rates().memory_bound_gbps * 1e9) + 4 * weights / 1000e9
    assert fp8["memory_bound"][0] - bf16["memory_bound"][0] == pytest.approx(2 * per_layer[0])   # 2 layers
    assert fp8["seconds"][0] == pytest.approx(sum(fp8[p][0] for p in step_time.PARTS))


def test_fp8_leaves_the_lm_head_in_bf16():
    """What a larger vocabulary adds to the GEMMs (the LM head, PP 1) is the same in bf16 and fp8:
    the head is not a Transformer Engine layer, so fp8 recipes do not reach it."""
    import dataclasses
    base = find_model("llama3-8b")
    added = {}
    for dtype in ("bf16", "fp8"):
        gemm = [plan_training(dataclasses.replace(base, vocab=v), "H100-SXM", gpus=64, tp=8, pp=1, micro_batch=1,
                              global_batch=64, recompute="none", dtype=dtype).step["parts"]["gemm"]
                for v in (128256, 2 * 128256)]
        added[dtype] = gemm[1] - gemm[0]
    assert added["bf16"] > 0
    assert added["fp8"] == pytest.approx(added["bf16"], rel=1e-9)


# ---- the plan as a whole -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["llama3-8b", "llama3-70b", "llama3.1-405b"])
def test_parts_add_up_and_the_layout_fits_and_multiplies_out(name):
    plan = plan_training(name, "H100-SXM", gpus=2048)
    lay, step = plan.parallelism, plan.step
    assert sum(step["parts"].values()) == pytest.approx(step["seconds"], rel=1e-12)
    assert lay["tp"] * lay["cp"] * lay["pp"] * lay["dp"] == plan.gpus
    assert lay["global_batch"] % (lay["dp"] * lay["micro_batch"]) == 0
    assert plan.assumptions["gpu_memory_gib"] <= memory.USABLE_FRACTION * plan.gpu.memory_gb
    spec = find_model(name)
    assert spec.heads % lay["tp"] == 0 and lay["tp"] <= 8 and lay["pp"] <= spec.layers


def test_given_layout_is_used_and_reported():
    plan = plan_training("llama3.1-405b", "H100-SXM", gpus=8192, tp=8, pp=16, micro_batch=1, global_batch=2048,
                         recompute="full", vpp=2)
    v = plan.parallelism["virtual_stages"]
    assert v == 2
    partly = plan_training("llama3.1-405b", "H100-SXM", gpus=8192, tp=8, pp=16, micro_batch=1, global_batch=2048,
                           recompute="full")   # interleaving left to the search: a searched layout
    assert partly.parallelism["chosen"] == "search"
    assert partly.assumptions["layout"].startswith("searched around --tp 8 --pp 16 --micro-batch 1 --global-batch "
                                                   "2048 --recompute full: fastest")
    assert plan.parallelism == {
        "tp": 8, "pp": 16, "dp": 64, "micro_batch": 1, "global_batch": 2048, "recompute": "full",
        "virtual_stages": v, "recompute_layers": 8, "sequence_parallel": True, "chosen": "given", "ep": 1,
        "cp": 1, "gpus_used": 8192,
        "flags": f"--tp 8 --pp 16 --vpp {v} --micro-batch 1 --global-batch 2048 --recompute full --recompute-layers 8"}


def test_405b_on_h100_uses_recompute_only_where_memory_needs_it():
    plan = plan_training("llama3.1-405b", "H100-SXM")
    assert plan.parallelism["recompute"] == "full" and 0 < plan.parallelism["recompute_layers"]


# ---- properties --------------------------------------------------------------------------------

GPUS_IN_ORDER = ["A100-SXM-80GB", "H100-SXM", "H200-SXM", "B200"]


@pytest.mark.parametrize("name,gpus", [("llama3-8b", 256), ("llama3-70b", 1024), ("llama3-70b", 16384),
                                       ("llama3.1-405b", 4096)])
def test_a_newer_gpu_is_never_slower(name, gpus):
    hours = [plan_training(name, g, gpus=gpus).gpu_hours for g in GPUS_IN_ORDER]
    assert all(b <= a * (1 + 1e-9) for a, b in zip(hours, hours[1:])), dict(zip(GPUS_IN_ORDER, hours))


def _hours(spec, gpu, gpus, **kw):
    return plan_training(spec, gpu, gpus=gpus, **kw).gpu_hours


@settings(max_examples=12, deadline=None)
@given(st.sampled_from(["llama3-8b", "llama3-70b"]), st.sampled_from([256, 1024, 4096]),
       st.floats(1.05, 3.0), st.sampled_from(["hbm_tbps", "memory_gb"]))
def test_more_hbm_bandwidth_or_memory_never_slower(name, gpus, factor, field):
    h100 = find_gpu("H100-SXM")
    better = dataclasses.replace(h100, **{field: getattr(h100, field) * factor})
    assert _hours(name, better, gpus) <= _hours(name, h100, gpus) * (1 + 1e-9)


@pytest.mark.parametrize("name,gpus", [("llama3-8b", 512), ("llama3-70b", 2048), ("llama3.1-405b", 8192)])
def test_a_faster_fabric_is_never_slower(name, gpus):
    hours = [_hours(name, "H100-SXM", gpus, network=n) for n in ("eth-100", "ib-hdr-200", "ib-ndr-400")]
    assert hours == sorted(hours, reverse=True)


def _days_never_rise(name, gpu, counts, **kw):
    days = [plan_training(name, gpu, gpus=g, **kw).wall_clock_days for g in counts]
    rises = [(a, b, da, db) for (a, da), (b, db) in zip(zip(counts, days), zip(counts[1:], days[1:])) if db > da * (1 + 1e-9)]
    assert not rises, rises


@pytest.mark.parametrize("name", ["llama3-8b", "llama3-70b", "llama3.1-405b"])
def test_more_gpus_never_take_longer_in_days(name):
    _days_never_rise(name, "H100-SXM", [512, 1024, 2048, 4096, 8192, 16384, 32768])


@pytest.mark.parametrize("name,gpu,counts", [
    ("gpt3-175b", "H100-SXM", [192, 200, 208, 216, 256, 264]),      # 208 = 16 x 13 once took 40% longer than 200
    ("llama3-8b", "H100-SXM", [1016, 1024, 1032, 1040]),            # 1,032 once cut the batch to 1,548 sequences
    ("llama3-70b", "H100-SXM", [72, 80, 88, 96, 104]),
    ("mixtral-8x7b", "A100-SXM-80GB", [2048, 4096, 8192]),          # MoE: 8,192 once slower than 4,096
    ("mixtral-8x7b", "H100-SXM", [4096, 8192, 16384]),
    ("llama3-70b", "B200", [1000, 1001, 1024, 3000]),
])
def test_more_gpus_never_take_longer_in_days_at_any_count(name, gpu, counts):
    """Any count, not only powers of two: a layout may leave GPUs idle, so a larger cluster can
    always run what a smaller one ran (parallelism.candidates)."""
    _days_never_rise(name, gpu, counts)


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 20000), st.integers(1, 3000), st.sampled_from(["llama3-70b", "mixtral-8x7b"]))
def test_more_gpus_never_take_longer_in_days_property(gpus, more, name):
    _days_never_rise(name, "H100-SXM", [gpus, gpus + more])


def test_idle_gpus_are_reported_and_billed():
    plan = plan_training("llama3-8b", "H100-SXM", gpus=1032)
    lay = plan.parallelism
    assert lay["gpus_used"] == lay["tp"] * lay["cp"] * lay["pp"] * lay["dp"] == 1024 and lay["global_batch"] == 2048
    assert "8 of the 1,032 GPUs idle (billed)" in plan.assumptions["idle_gpus"]
    assert plan.gpu_hours == pytest.approx(plan.wall_clock_days * 24 * 1032)
    assert plan.assumptions["goodput"] == pytest.approx(float(training_time.goodput(1024)), abs=1e-4)


def test_a_default_cluster_is_cut_to_the_gpus_its_layout_uses():
    """Given --gpus, idle GPUs are the user's and billed; a default size is costbench's choice, so a
    batch that cannot use it (a global batch of 1 on the 16,384 default) gets the GPUs it uses."""
    asked = plan_training("llama3-8b", "H100-SXM", global_batch=1, gpus=16384)
    cut = plan_training("llama3-8b", "H100-SXM", global_batch=1)
    used = asked.parallelism["gpus_used"]
    assert used < 16384 and cut.gpus == cut.parallelism["gpus_used"] == used and "idle_gpus" not in cut.assumptions
    assert cut.parallelism == {**asked.parallelism, "gpus_used": used}
    assert cut.wall_clock_days == pytest.approx(asked.wall_clock_days, rel=1e-9)
    assert cut.gpu_hours == pytest.approx(asked.gpu_hours * used / 16384, rel=1e-9)
    assert f"cut to the {used:,} GPUs its fastest layout uses" in cut.assumptions["gpus_from"]


def test_rates_are_checked():
    with pytest.raises(ValueError, match="gemm_tflops must be positive"):
        _rates(gemm_tflops=0)
    assert np.isfinite(step_time.collective_seconds(1.0, 2, 1.0, 0.0))
