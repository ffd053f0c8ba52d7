"""Time of one training step from its parts, for many layouts at once (numpy).

The step of the slowest pipeline stage (Narayanan et al. 2021, sec. 2-3; Korthikanti et al. 2022):

    seconds = gemm + attention + memory_bound + tp_comm + cp_comm + ep_comm   (m micro-batches of the stage's work)
            + pp_bubble + pp_comm + dp_comm + dp_overlap + optimizer

- Per micro-batch of t = micro_batch * seq tokens, each layer runs its linear layers as Megatron
  splits them over TP (QKV and gate/up by columns, attention output and down by rows): forward
  GEMMs (t x k) @ (k x n/TP), and in backward the dgrad and wgrad GEMMs of the same sizes, each
  timed by Rates' roofline (rates.py). Full recompute runs the forward again. The LM head runs
  once per micro-batch on the last stage.
- Attention: model FLOPs (flops.py; forward 2*t*s*h / TP, backward twice that) at the attention
  rate; full recompute adds a forward, and so does selective recompute, which re-runs only the core
  attention in the backward (Korthikanti et al. 2022 sec. 5; Megatron-Core checkpoints it whenever
  recompute_granularity is "selective", FlashAttention or not: transformer/attention.py,
  checkpoint_core_attention).
- Memory-bound bytes per token and layer, bf16, as kernels.layer counts them for the kernels whose
  rate it measures (`run --ops layer`'s element-wise records): two RMSNorms (forward read + write h
  each: 8h; backward reads dy and x, writes dx: 12h), two residual adds (read 2h, write h: 12h;
  the backward's one add of the skip's and the branch's gradients: 12h), the MLP activation
  (SwiGLU reads 2*ffn, writes ffn: 6*ffn bytes, its backward reads dy, gate, up and writes both
  gradients: 10*ffn; GeLU 4*ffn and 6*ffn), rotary on Q and K (4*(h + kv*d) each way) plus its
  cos/sin rows (4*d, on every rank); all but the tables / TP with sequence parallelism. Full
  recompute adds a forward. Plus the LM head's fp32 softmax and its gradient (12 bytes per logit).
  With fp8 linear layers, their casts (fp8_cast_elements, FP8_CAST_BYTES): each GEMM input and
  output gradient cast with its transpose, and the layer's weights once a step. Not credited: the
  casts Transformer Engine fuses into the norm or the activation before a GEMM, and the fp8
  all-gather that halves the sequence-parallel all-gathers' bytes (tp_comm stays bf16's).
- TP with sequence parallelism (Korthikanti et al. 2022, sec. 4.2.2): per layer, forward 2
  all-gathers and 2 reduce-scatters of the t x h bf16 activation, backward the same; full
  recompute adds the forward's 4. Each moves S*(TP-1)/TP bytes per GPU (nccl-tests' busbw
  definition) plus (TP-1) hops of latency. Exposed: the forward's 4 and the backward's 2
  all-gathers of the row-parallel layers' output gradients. Overlapped: a column-parallel layer's
  (QKV, gate/up) backward re-all-gathers its input (Megatron-LM's
  LinearWithGradAccumulationAndAsyncCommunication keeps only the sequence-parallel slice) beside
  its input-gradient GEMM and reduce-scatters that gradient beside its weight-gradient GEMM: each
  costs only what outlasts its GEMM plus the slowdown of that GEMM while it runs (overlapped(),
  OVERLAP_COMPUTE_SLOWDOWN), counted in tp_comm. Without sequence parallelism (2021) the
  column-parallel layers' input gradients are all-reduced, exposed: the same bytes as the 4
  backward collectives.
- PP: the 1F1B bubble is (PP-1)/v micro-batch-times of the stage (Narayanan et al. eq. 1 and
  sec. 2.2.2, v virtual stages); each micro-batch sends its activation (t*h*2/TP bytes with the
  scatter/gather optimisation) forward and its gradient back, across nodes once the pipeline
  group's TP*DP*PP ranks outgrow a node, v times when interleaved.
- DP, distributed optimizer: per step a reduce-scatter of the fp32 gradients and an all-gather
  of the bf16 weights of the GPU's P parameters: 4P and 2P bytes x (DP-1)/DP / busbw, issued in
  Megatron's buckets of max(40M, 1M x DP) parameters (dp_buckets), each paying the ring's (DP-1)
  hops. Megatron overlaps them with the last micro-batch's backward and the first's forward
  (--overlap-grad-reduce, --overlap-param-gather): only what exceeds two thirds (backward) and one
  third (forward) of one micro-batch-time of the stage is exposed, and never less than one bucket
  of each (the last gradient bucket is complete only when the backward ends; the first weight
  bucket must arrive before the forward can start). The hidden part is not free: the compute it
  runs beside is slowed (overlapped(), OVERLAP_COMPUTE_SLOWDOWN); that added time is the part
  dp_overlap, dp_comm being the exposed collectives alone.
- Mixture of experts (every layer an MoE layer, E experts, top_k = k, expert width f), expert
  parallelism EP as Megatron-Core's alltoall dispatcher runs it (--moe-token-dispatcher-type
  alltoall; expert-tensor parallelism = TP, the default; dropless, balanced routing: no capacity
  factor, no load imbalance). With sequence parallelism a GPU holds t/TP of the micro-batch's t
  tokens; the router (a t/TP x h x E GEMM, small) sends each to k experts, so the GPU's dispatch
  send buffer is S = (t/TP) * k * h * 2 bytes (bf16) and the share (EP-1)/EP of it goes to the
  other EP ranks (the rest stays local): (t/TP)*k*h*2*(EP-1)/EP bytes leave and as many arrive
  (TP = 1: tokens_per_micro_batch x top_k x hidden x 2 x (EP-1)/EP, per direction). The combine
  sends the experts' outputs back: the same bytes. Forward: dispatch + combine per MoE layer;
  backward: the combine's gradient is dispatched and the dispatch's gradient combined, 2 more; full
  recompute repeats the forward's 2. Each all-to-all takes (EP-1)/EP x S / busbw + (EP-1) latency
  hops, at the all-to-all rate (rates.py: NVLink when EP x TP <= 8, else the fabric), not
  overlapped (ep_comm): Megatron's overlap of the all-to-all with compute
  (--overlap-moe-expert-parallel-comm, --moe-shared-expert-overlap) is optional and not modelled.
  After the all-to-all the GPU all-gathers its TP group's routed tokens (k x the dense MLP's
  all-gather bytes) and reduce-scatters the experts' outputs: the MLP's half of tp_comm carries
  k times the bytes. Balanced routing gives each GPU's E/EP experts t*k tokens in all, i.e.
  m = t*k*EP/E each (EP = 1: t*k/E), so the expert GEMMs are (m x h) @ (h x 2f/TP) and
  (m x f/TP) @ (f/TP x h), E/EP of them: the same FLOPs as k dense MLPs of width f, but thinner
  (the roofline slows them). Memory-bound: the activation on k copies plus the permutation (read
  h, write k*h) and unpermutation (read k*h, write h), bf16: 4h + 4kh bytes per token of the
  sequence-parallel slice; and where a GPU holds more than one expert (E/EP > 1), the dispatcher's
  second permutation (sort_chunks_by_idxs, megatron/core/transformer/moe/token_dispatcher.py:
  "permute->A2A(EP)->AG(TP)->sort_chunk(if num_local_experts>1)") reads and writes the t*k routed
  rows after the TP all-gather, and combine_preprocess undoes it: 8kh bytes per token of the whole
  micro-batch (not / TP), its backward the same copies again (x2, not x3: a gather's gradient is
  one more gather).
  Gradients and optimizer: dense parameters over DP as above; expert parameters (E/EP experts /
  TP per GPU) over the expert-data-parallel group of DP/EP ranks, in their own buckets.
- Context parallelism CP (parallelism.py), Llama 3's all-gather-based attention ("The Llama 3 Herd
  of Models" sec. 3.3.2): a GPU holds t/CP of the micro-batch's tokens (two load-balanced chunks of
  each sequence), so every part above that is per token (the GEMMs' m, memory-bound bytes, TP
  collectives, PP sends, the all-to-all) is of t/CP tokens; attention computes its t/CP queries
  against the whole sequence's keys, 1/CP of the causal FLOPs. Before it the GPU all-gathers K and
  V over the CP ranks (the full buffer: micro_batch x seq x 2 x kv_heads/TP x head size x 2 bytes,
  memory.gathered_kv_bytes), exposed ("the all-gather communication latency is exposed in the
  critical path", small beside the attention thanks to GQA's few KV heads); the backward gathers
  them again and reduce-scatters their gradient, and each recomputed forward (full, or the core
  attention of selective) gathers them once more: (3 + recomputes) collectives per layer and
  micro-batch (cp_comm), over NVLink while TP x CP <= 8, else the fabric. Gradients reduce over
  the DP x CP ranks (the weights are replicated over CP), the optimizer steps a 1/(DP x CP) shard.
- Optimizer: Adam on the GPU's P/DP shard reads fp32 master, momentum, variance and gradient and
  writes the first three plus bf16 weights (30 bytes per parameter), and the P fp32 gradients
  are zeroed (4 bytes each): bytes over memory bandwidth.
"""

import dataclasses

import numpy as np

from cost_models.flops import expert_weights, layer_linear_weights
from cost_models.memory import gathered_kv_bytes, mlp_activation_bytes, stage_param_split
from cost_models.parallelism import GPUS_PER_NODE, RECOMPUTE, stage_layers
from cost_models.rates import GEMM_OVERHEAD_S

# 2021 Megatron's fused scale-mask-softmax + dropout on the fp16 s x s scores, bytes per score
# element: forward reads the scores and writes probabilities (2 + 2), dropout reads them and writes
# the output and a 1-byte mask (2 + 2 + 1); backward reads the gradient and mask and writes (2 + 1 + 2),
# then the softmax backward reads probabilities and gradient and writes (2 + 2 + 2).
UNFUSED_SCORE_BYTES = (9, 11)   # (forward, backward)
# Backward / forward bytes of the MLP activation (module docstring; kernels.layer's records):
# SwiGLU 10*ffn / 6*ffn, GeLU 6*ffn / 4*ffn.
ACTIVATION_BACKWARD = {"swiglu": 5 / 3, "gelu": 3 / 2}
# Overlap is not free: compute kernels run beside an overlapped collective slow down by 18.9% on
# average (up to 40%), against the same kernels with no communication beside them (Lee et al. 2025,
# "Characterizing Compute-Communication Overlap in GPU-Accelerated Distributed Deep Learning",
# arXiv 2507.03114, abstract: GPT and Llama models on 4 A100s, H100s, MI250s or MI210s, several
# precisions). The published average, not a fit (overlapped()). An extrapolation: measured on
# 4-GPU systems, applied here to data-parallel traffic across nodes, which also runs NCCL kernels
# on the GPU's SMs beside the compute; the paper notes newer datapaths and precisions reduce it.
OVERLAP_COMPUTE_SLOWDOWN = 0.189
# FlashAttention-2 is "around 2x faster than FlashAttention" (v1) on A100, which reached 25-40% of
# peak where v2 reaches 50-73% (Dao 2023, "FlashAttention-2", abstract and sec. 1): v1-era kernels
# run attention at half the rate (rates.ATTENTION_FRACTION is v2's, at the low end of its range).
FLASH_V1_SPEED = 0.5
FLASH_RECIPES = (True, "v2", "v1", False)   # True = "v2" (today's); False: 2021 Megatron's unfused softmax
# fp8 linear layers (Transformer Engine's recipes) cast each GEMM input and each output gradient from
# bf16 to fp8 together with its transpose (Hopper's fp8 GEMMs take only the TN layout, so the weight
# gradient needs X^T and dY^T): read 2 bytes, write 1 + 1, per element; and the weights likewise once
# a step (TE caches them over the micro-batches: is_first_microbatch).
FP8_CAST_BYTES = 4
DDP_BUCKET_MIN_PARAMS = 40e6             # Megatron-LM DDP default bucket: max(40M, 1M x DP) parameters
DDP_BUCKET_PARAMS_PER_DP_RANK = 1e6
PARTS = ("gemm", "attention", "memory_bound", "tp_comm", "cp_comm", "ep_comm", "pp_bubble", "pp_comm", "dp_comm",
         "dp_overlap", "optimizer")


def overlap_interference(hidden_seconds):
    """Seconds an overlapped collective adds to the compute it hides behind, when the compute outlasts
    it: while it runs, the compute kernels beside it run 1 + OVERLAP_COMPUTE_SLOWDOWN times slower
    (NCCL's kernels hold SMs, so a GEMM's waves no longer fit, and share HBM), so `hidden_seconds`
    of collective cover only hidden / (1 + s) seconds of the compute's work: the rest,
    hidden * s / (1 + s), is added time."""
    s = OVERLAP_COMPUTE_SLOWDOWN
    return np.asarray(hidden_seconds, dtype=float) * s / (1 + s)


def overlapped(total, window, floor):
    """(exposed, slowdown) seconds of a collective of `total` seconds issued beside `window` seconds of
    compute, `floor` of it never hidden (the bucket that is ready only when the compute is done).
    The rest, c = total - floor, runs beside the compute, which it slows by 1 + s while it runs:
    - c <= window * (1 + s): the compute finishes last, window + c * s/(1 + s) after it started;
    - longer: the collective finishes last, at c; the compute, slowed all along, was done by then.
    So the step gains max(c - window, c * s/(1 + s)): `exposed` is its s = 0 part, max(c - window, 0)
    (plus the floor), and `slowdown` the rest, never both counted."""
    rest = np.maximum(np.asarray(total, dtype=float) - floor, 0.0)
    over = np.maximum(rest - window, 0.0)
    return floor + over, np.maximum(over, overlap_interference(rest)) - over


def gemm_seconds(m, n, k, rates, elem_bytes=2, batch=1):
    """One (m x k) @ (k x n) GEMM, or one batched GEMM of `batch` of them (bmm: one kernel, so one
    fixed cost): roofline at the rates' GEMM rate and copy bandwidth + a fixed cost, times
    rates.gemm_scale (a measured layer's distance from this roofline: layer_gemm_scale); a rate
    measured at the very shapes (gemm_shaped False) is used flat."""
    flops = 2.0 * m * n * k * batch
    if not rates.gemm_shaped:
        return flops / (rates.gemm_tflops * 1e12)
    moved = (elem_bytes * (m * k + k * n) + 2.0 * m * n) * batch
    roofline = np.maximum(flops / (rates.gemm_tflops * 1e12), moved / (rates.membw_gbps * 1e9)) + GEMM_OVERHEAD_S
    return roofline * rates.gemm_scale


def _fwd_bwd(m, n, k, rates, elem_bytes, batch=1):
    """(forward, backward) seconds of one linear layer (or `batch` of them in one bmm each): fprop
    (m,k)@(k,n); dgrad (m,n)@(n,k); wgrad (k,m)@(m,n)."""
    fwd = gemm_seconds(m, n, k, rates, elem_bytes, batch)
    return fwd, gemm_seconds(m, k, n, rates, elem_bytes, batch) + gemm_seconds(k, n, m, rates, elem_bytes, batch)


def layer_linears(spec, tp, micro_batch):
    """(m, n, k, count) of the forward GEMM of each linear layer of one layer of `spec` on one TP rank,
    at expert parallelism 1, plus the LM head (once), as step_parts runs them and kernels.layer
    times them (`run --ops layer`): QKV, attention output, the MLP (or the router and E experts of
    t*k/E tokens each)."""
    h, t, d = float(spec.hidden), float(micro_batch * spec.seq_len), spec.hidden / spec.heads
    out = [(t, (h + 2 * spec.kv_heads * d) / tp, h, 1), (t, h, h / tp, 1)]
    gated = 2 if spec.mlp == "swiglu" else 1
    if spec.moe:
        m, f = t * spec.top_k / spec.experts, spec.expert_ffn
        out += [(t / tp, float(spec.experts), h, 1), (m, gated * f / tp, h, spec.experts),
                (m, h, f / tp, spec.experts)]
    else:
        out += [(t, gated * spec.ffn / tp, h, 1), (t, h, spec.ffn / tp, 1)]
    return out + [(t, spec.vocab / tp, h, 1)]


def passes(linears):
    """(m, n, k, count) of every GEMM of these linear layers' forward and backward (fprop, dgrad, wgrad)."""
    return [g for m, n, k, c in linears for g in ((m, n, k, c), (m, k, n, c), (k, n, m, c))]


def layer_gemm_scale(gemms, measured_seconds, rates, sustained, peak_tflops=None):
    """Rates.gemm_scale from a measured layer: its GEMMs `gemms` ((m, n, k, count), as run) took
    `measured_seconds` in all, in a burst; a training step sustains `sustained` of a burst's rate
    (rates.GEMM_SUSTAINED_FRACTION, as for MAMF), so the step's time for them is measured /
    sustained, against the roofline's prediction at `rates` (unscaled): their ratio.

    With `peak_tflops` (the device's peak in the dtype: a datasheet, or a CPU's measured stand-in)
    the scale is at least rates.gemm_tflops / (sustained x peak): a layer that beat its roofline
    (thin shapes the roofline took for memory-bound ran from cache) must not carry that to the
    compute-bound GEMMs of a larger layout and run them past the sustained share of the peak (an MFU
    above 100% on a CPU whose peak is its own measured rate: hostile tester)."""
    unscaled = dataclasses.replace(rates, gemm_scale=1.0)
    predicted = sum(c * float(gemm_seconds(m, n, k, unscaled)) for m, n, k, c in gemms)
    scale = measured_seconds / sustained / predicted
    return scale if peak_tflops is None else max(scale, rates.gemm_tflops / (sustained * peak_tflops))


def collective_seconds(size_bytes, ranks, busbw_gbps, latency_us, calls=1):
    """A ring all-gather or reduce-scatter of `size_bytes` (the full buffer) over `ranks` GPUs, issued
    as `calls` collectives (buckets): the bytes are the same, each call pays the ring's ranks-1 hops."""
    ranks = np.asarray(ranks, dtype=float)
    frac = np.where(ranks > 1, (ranks - 1) / np.maximum(ranks, 1), 0.0)
    hops = np.asarray(calls) * np.maximum(ranks - 1, 0)
    return size_bytes * frac / (np.asarray(busbw_gbps) * 1e9) + hops * latency_us * 1e-6


def fit_collective(points):
    """(busbw GB/s, latency us per hop) of collective_seconds fitted to measured all-gathers and
    reduce-scatters `points` ((bytes, ranks, seconds), nccl-tests' size: the full buffer), or None
    when they cannot tell the two apart (one size) or never leave the latency-bound sizes. Least squares on
    relative error, so that the small sizes, which set the latency, count as much as the large ones,
    which set the bandwidth; a negative latency (a curve flatter than alpha-beta) is refitted as 0.
    The sweep's best busbw alone would price a small TP message as if it ran at a large one's rate."""
    if len({b for b, _, _ in points}) < 2:
        return None
    size, ranks, secs = (np.array(col, dtype=float) for col in zip(*points))
    gb, hops, w = size * (ranks - 1) / ranks / 1e9, ranks - 1, 1 / secs
    (inv_bw, lat), *_ = np.linalg.lstsq(np.column_stack([gb * w, hops * w]), np.ones_like(secs), rcond=None)
    if lat < 0:
        inv_bw, lat = float(np.sum(gb * w) / np.sum((gb * w) ** 2)), 0.0
    # the bandwidth must explain a tenth of the largest size's time, else the sweep never left the
    # latency-bound sizes and says nothing of the bandwidth
    largest = np.argmax(gb)
    return (1 / inv_bw, lat * 1e6) if inv_bw * gb[largest] >= 0.1 * secs[largest] else None


def fit_tp_collectives(times):
    """(busbw GB/s, latency us a hop, sizes) of sequence-parallel TP traffic from measured
    all-gathers and reduce-scatters (op -> points, fit_collective), or None if neither fits: SP runs
    as many of each on equal bytes, so their times add: the harmonic mean of the busbws, the mean
    of the latencies."""
    fits = [f for f in (fit_collective(p) for p in times.values()) if f]
    if not fits:
        return None
    sizes = len({b for p in times.values() for b, _, _ in p})
    return len(fits) / sum(1 / bw for bw, _ in fits), sum(lat for _, lat in fits) / len(fits), sizes


def dp_buckets(params, dp):
    """Megatron's gradient buckets for `params` parameters on a GPU at data-parallel degree `dp`:
    ceil(params / bucket), bucket = max(40M, 1M x DP) parameters (Megatron-LM
    DistributedDataParallelConfig.bucket_size default: "larger DP sizes need larger buckets to
    ensure collectives do not become latency-bound")."""
    bucket = np.maximum(DDP_BUCKET_MIN_PARAMS, DDP_BUCKET_PARAMS_PER_DP_RANK * np.asarray(dp, dtype=float))
    return np.maximum(np.ceil(np.asarray(params, dtype=float) / bucket), 1)


def alltoall_send_bytes(spec, layouts):
    """One GPU's send buffer in one token all-to-all (dispatch or combine) of one MoE layer and
    micro-batch: (micro_batch * seq / (CP x TP)) tokens x top_k x hidden x 2 bytes (bf16); the share
    (EP-1)/EP of it crosses to other GPUs (module docstring). 0 for a dense model."""
    if not spec.moe:
        return np.zeros(len(layouts))
    tokens = layouts.micro_batch * float(spec.seq_len) / (layouts.cp_degrees * layouts.tp)
    return tokens * spec.top_k * spec.hidden * 2.0


def alltoall_link(rates, layouts):
    """(busbw GB/s, latency us) of the EP all-to-all: NVLink when the EP x TP ranks fit in a node."""
    in_node = layouts.ep_degrees * layouts.tp <= GPUS_PER_NODE
    return (np.where(in_node, rates.alltoall_node_gbps, rates.alltoall_fabric_gbps),
            np.where(in_node, rates.tp_latency_us, rates.fabric_latency_us))


def _mlp_gemms(spec, layouts, t, tp, rates, elem, router_rates):
    """(forward, backward) seconds of one layer's MLP GEMMs for one micro-batch: the dense MLP
    split over TP, or the router (at `router_rates`, bf16: Megatron's router is a plain linear, not a
    Transformer Engine layer, so fp8 does not reach it) plus E/EP local experts of m = t*k*EP/E
    tokens each."""
    h = float(spec.hidden)
    if not spec.moe:
        up = (2 if spec.mlp == "swiglu" else 1) * spec.ffn
        shapes, count = ((up / tp, h), (h, spec.ffn / tp)), 1.0
        m = t
    else:
        f = spec.expert_ffn
        up = (2 if spec.mlp == "swiglu" else 1) * f
        ep = layouts.ep_degrees.astype(float)
        shapes, count = ((up / tp, h), (h, f / tp)), spec.experts / ep
        m = t * spec.top_k * ep / spec.experts
    fwd = bwd = 0.0
    for n, k in shapes:
        f_, b_ = _fwd_bwd(m, n, k, rates, elem)
        fwd, bwd = fwd + count * f_, bwd + count * b_
    if spec.moe:   # the router's logits, bf16, on this GPU's t/TP tokens
        f_, b_ = _fwd_bwd(t / tp, float(spec.experts), h, router_rates, 2)
        fwd, bwd = fwd + f_, bwd + b_
    return fwd, bwd


def fp8_cast_elements(spec, layouts, t):
    """(forward, backward, weights) elements one GPU casts to fp8 for one layer: the inputs of its
    linear layers and their output gradients for one micro-batch of t tokens, and its linear weights.
    Dense, with sequence parallelism: every cast is of 1/TP of the tensor (Transformer Engine casts
    the norm's output before the all-gather and all-gathers fp8; the row-parallel layers' inputs and
    the column-parallel layers' gradients are TP slices; the gradients that arrive as SP slices are
    cast before their all-gather), so per token (QKV, out, gate/up, down): inputs h + h + h + ffn,
    gradients (h + 2*kv*d) + h + up + h, all / TP. A mixture of experts' MLP gets the dispatcher's
    whole, bf16-all-gathered tokens (k copies): inputs k*h and k*f/TP, gradients k*up/TP and k*h."""
    h, kv, d = float(spec.hidden), spec.kv_heads, float(spec.hidden) / spec.heads
    tp = layouts.tp.astype(float)
    attn_in, attn_grad = 2 * h / tp, (h + 2 * kv * d + h) / tp
    gated = 2 if spec.mlp == "swiglu" else 1
    if spec.moe:
        k, f = spec.top_k, float(spec.expert_ffn)
        mlp_in, mlp_grad = k * h + k * f / tp, k * gated * f / tp + k * h
        weights = (float(layer_linear_weights(h, spec.heads, kv, 0, gated == 2)) / tp
                   + float(expert_weights(h, spec.experts, f, gated == 2)) / (tp * layouts.ep_degrees))
    else:
        f = float(spec.ffn)
        mlp_in, mlp_grad = (h + f) / tp, (gated * f + h) / tp
        weights = float(layer_linear_weights(h, spec.heads, kv, f, gated == 2)) / tp
    return t * (attn_in + mlp_in), t * (attn_grad + mlp_grad), weights


def step_parts(spec, layouts, rates, linear_rates=None, flash_attention=True, sequence_parallel=True,
               overlap_dp=True, distributed_optimizer=True) -> dict:
    """{part: seconds per step (array over layouts)} plus "seconds" (their sum) and "stage_mb" (one
    micro-batch of the slowest stage). `linear_rates`: the transformer layers' linear GEMM rates when
    they run in another dtype (fp8); attention, the LM head, the MoE router and all else use `rates`.

    flash_attention="v1" models FlashAttention-1-era kernels (2022-23: the FlashAttention-1
    backward, e.g. in xformers' memory-efficient attention) at FLASH_V1_SPEED x the attention rate.
    flash_attention=False, sequence_parallel=False model the 2021 Megatron-LM recipe of Narayanan
    et al.: attention as two batched GEMMs over all heads (QK^T and PV, k = head size: thin, so the
    roofline slows them) with the s x s scores written and read by the fused masked softmax and
    dropout (UNFUSED_SCORE_BYTES per score element per pass), dropout on the residual branches, and
    norms, residuals and dropout replicated on every TP rank (no sequence parallelism; TP uses 2
    all-reduces per layer and pass, the same bytes as the all-gathers + reduce-scatters).
    overlap_dp=False models software that runs the data-parallel collectives after the backward and
    the optimizer step (Megatron-LM before --overlap-grad-reduce / --overlap-param-gather, 2023;
    DeepSpeed's pipeline engine): all of dp_comm exposed, nothing beside the compute to slow it.
    distributed_optimizer=False models 2021 Megatron-LM's fp16 data parallelism (--DDP-impl local,
    before the distributed optimizer of 2022): after the pipeline flush, one all-reduce of the whole
    fp16 gradient buffer (2 bytes a parameter: --accumulate-allreduce-grads-in-fp32 was off by
    default, forced on only for bf16), a ring's reduce-scatter plus all-gather of it, 2 x 2P bytes,
    where the distributed optimizer moves 4P + 2P; and every GPU steps the optimizer on all its P
    parameters (its 30 bytes each over P, not P/DP, and 2 bytes a parameter to zero the fp16
    gradients). Use it with overlap_dp=False: that software did not overlap either."""
    lin_rates = linear_rates or rates
    elem = 1 if linear_rates is not None else 2
    h, s, kv = float(spec.hidden), float(spec.seq_len), spec.kv_heads
    d = h / spec.heads
    tp, pp, dp, v, cp = (np.asarray(a, dtype=float) for a in (layouts.tp, layouts.pp, layouts.dp, layouts.vpp,
                                                              layouts.cp_degrees))
    full = layouts.recompute_share(spec.layers)     # share of layers whose forward runs again
    selective = (layouts.recompute == RECOMPUTE.index("selective")).astype(float)   # core attention again
    t = layouts.micro_batch * s / cp                # this GPU's tokens of one micro-batch (1/CP of each sequence)

    # Linear layers of one layer, one micro-batch: (m, n, k) as Megatron splits them over TP.
    fwd = bwd = 0.0
    for n, k in (((h + 2 * kv * d) / tp, h), (h, h / tp)):
        f, b = _fwd_bwd(t, n, k, lin_rates, elem)
        fwd, bwd = fwd + f, bwd + b
    f, b = _mlp_gemms(spec, layouts, t, tp, lin_rates, elem, rates)
    fwd, bwd = fwd + f, bwd + b
    gemm = fwd + bwd + full * fwd
    # The LM head stays bf16 under fp8: Megatron-Core's output layer is a plain ColumnParallelLinear,
    # not a Transformer Engine layer, so no fp8 recipe reaches it (DeepSeek-V3 likewise keeps it in BF16).
    head_f, head_b = _fwd_bwd(t, spec.vocab / tp, h, rates, 2)
    head_gemm = head_f + head_b

    if flash_attention not in FLASH_RECIPES:
        raise ValueError(f"flash_attention must be one of {FLASH_RECIPES}, got {flash_attention!r}")
    if flash_attention:
        speed = FLASH_V1_SPEED if flash_attention == "v1" else 1.0
        attn_fwd = 2 * t * s * h / tp / (speed * rates.attention_tflops * 1e12)
        attention = attn_fwd * (3 + full + selective)
    else:
        heads = layouts.micro_batch * spec.heads / tp     # per GPU, one micro-batch
        # QK^T and probabilities @ V over every head at once, unmasked: one baddbmm and one bmm per
        # pass (Megatron's 2021 CoreAttention), so one kernel's fixed cost each, not one per head
        qk_f, qk_b = _fwd_bwd(s / cp, s, d, rates, 2, heads)
        pv_f, pv_b = _fwd_bwd(s / cp, d, s, rates, 2, heads)
        score_bytes = [heads * s / cp * s * nbytes / (rates.memory_bound_gbps * 1e9) for nbytes in UNFUSED_SCORE_BYTES]
        f, b = qk_f + pv_f + score_bytes[0], qk_b + pv_b + score_bytes[1]
        attention = f + b + (full + selective) * f

    # Per token, forward and backward, the bytes kernels.layer counts for the kernels whose rate it
    # measures (module docstring), so that a measured element-wise rate prices the bytes it was measured on.
    act_b = ACTIVATION_BACKWARD[spec.mlp]
    if spec.moe:   # k routed copies through the experts, plus permute and unpermute (as many bytes back)
        act = spec.top_k * mlp_activation_bytes(spec, spec.expert_ffn)
        split = (act + 4 * h + 4 * spec.top_k * h, act * act_b + 4 * h + 4 * spec.top_k * h)
    else:
        act = mlp_activation_bytes(spec, spec.ffn)
        split = (act, act * act_b)
    rotary = 4 * (h + kv * d)                  # the TP rank's q and k heads, read and written
    tables = 4 * d                             # its cos and sin rows, on every rank
    norms_res = (8 * h + 12 * h, 12 * h + 12 * h)
    if sequence_parallel:
        fwd_bytes = t * (norms_res[0] + split[0] + rotary) / tp + t * tables
        bwd_bytes = t * (norms_res[1] + split[1] + rotary) / tp + t * tables
    else:   # norms, residual adds and their dropouts (read h + write h + 1-byte mask, twice) on every rank
        fwd_bytes = t * (norms_res[0] + 10 * h + tables) + t * (split[0] + rotary) / tp
        bwd_bytes = t * (norms_res[1] + 10 * h + tables) + t * (split[1] + rotary) / tp
    membound = (fwd_bytes * (1 + full) + bwd_bytes) / (rates.memory_bound_gbps * 1e9)
    if spec.moe:   # the second permutation, on every GPU holding more than one expert (module docstring)
        sort_bytes = np.where(spec.experts / layouts.ep_degrees > 1, t * 8.0 * spec.top_k * h, 0.0)
        membound = membound + sort_bytes * (2 + full) / (rates.memory_bound_gbps * 1e9)
    head_mem = t * spec.vocab / tp * 12 / (rates.memory_bound_gbps * 1e9)
    fp8_weights = 0.0
    if linear_rates is not None:   # fp8: the casts of the linear layers' inputs and output gradients
        fwd_cast, bwd_cast, weights = fp8_cast_elements(spec, layouts, t)
        membound = membound + FP8_CAST_BYTES * (fwd_cast * (1 + full) + bwd_cast) / (rates.memory_bound_gbps * 1e9)
        fp8_weights = FP8_CAST_BYTES * weights / (rates.membw_gbps * 1e9)    # per layer, once a step

    one = collective_seconds(t * h * 2, tp, rates.tp_gbps, rates.tp_latency_us)
    # The backward of a column-parallel layer under sequence parallelism (Megatron-LM's
    # LinearWithGradAccumulationAndAsyncCommunication): the re-all-gather of its input runs beside its
    # input-gradient GEMM and the reduce-scatter of that gradient beside its weight-gradient GEMM,
    # each exposed only where it outlasts the GEMM and slowing the GEMM while it runs (overlapped()).
    # QKV's always; the MLP's gate/up for a dense model (an MoE's TP traffic is the dispatcher's).
    column = [((h + 2 * kv * d) / tp, h)]
    if not spec.moe:
        column.append(((2 if spec.mlp == "swiglu" else 1) * spec.ffn / tp, h))
    # 2021 (no SP): the all-reduce of each column-parallel input gradient, exposed; nothing re-gathered
    async_tp = 0.0 if sequence_parallel else one * len(column)
    for n, k in column if sequence_parallel else ():
        dgrad, wgrad = gemm_seconds(t, k, n, lin_rates, elem), gemm_seconds(k, n, t, lin_rates, elem)
        for window in (dgrad, wgrad):
            exposed, slow = overlapped(one, window, 0.0)
            async_tp = async_tp + exposed + slow
    if spec.moe:   # the MLP's all-gather / reduce-scatter carry the k routed copies
        mlp_one = collective_seconds(t * h * 2 * spec.top_k, tp, rates.tp_gbps, rates.tp_latency_us)
        tp_comm = one * (3 + 2 * full) + mlp_one * (4 + 2 * full) + async_tp
    else:
        tp_comm = one * (6 + 4 * full) + async_tp
    head_tp = 2 * one
    cp_in_node = tp * cp <= GPUS_PER_NODE
    cp_one = collective_seconds(gathered_kv_bytes(spec, layouts), cp, np.where(cp_in_node, rates.tp_gbps, rates.fabric_gbps),
                                np.where(cp_in_node, rates.tp_latency_us, rates.fabric_latency_us))
    cp_comm = cp_one * (3 + full + selective)
    a2a_bw, a2a_lat = alltoall_link(rates, layouts)
    ep_comm = collective_seconds(alltoall_send_bytes(spec, layouts), layouts.ep_degrees, a2a_bw, a2a_lat) * (4 + 2 * full)

    # The slowest stage: ceil(L/PP) layers, or the last stage's rest plus the LM head.
    first, last = stage_layers(spec.layers, layouts.pp)
    per_layer = np.stack([gemm, attention + 0 * gemm, membound + 0 * gemm, tp_comm + 0 * gemm, cp_comm + 0 * gemm,
                          ep_comm + 0 * gemm])
    head = np.stack([head_gemm + 0 * gemm, 0 * gemm, head_mem + 0 * gemm, head_tp + 0 * gemm, 0 * gemm, 0 * gemm])
    first_stage = per_layer * first + np.where(pp == 1, head, 0)
    last_stage = per_layer * last + head
    use_last = (pp > 1) & (last_stage.sum(0) > first_stage.sum(0))
    stage = np.where(use_last, last_stage, first_stage)     # (6, layouts): one micro-batch
    stage_mb = stage.sum(0)
    m = layouts.micro_batches.astype(float)

    bubble = np.where(pp > 1, (pp - 1) / v * stage_mb, 0.0)
    # Megatron orders ranks TP, then CP, then DP, then PP: a stage is a block of TP*CP*DP ranks, so
    # once the pipeline group spans more than one node some stage boundary crosses it, and in 1F1B's
    # lock step the slowest hop sets every micro-batch's pace.
    cross_node = tp * cp * dp * pp > GPUS_PER_NODE
    p2p_bw = np.where(cross_node, rates.fabric_gbps, rates.tp_gbps)
    p2p_lat = np.where(cross_node, rates.fabric_latency_us, rates.tp_latency_us)
    p2p = t * h * 2 / tp / (p2p_bw * 1e9) + p2p_lat * 1e-6
    pp_comm = np.where(pp > 1, 2 * m * v * p2p, 0.0)

    (d_first, e_first), (d_last, e_last) = stage_param_split(spec, layouts)
    first_fuller = d_first + e_first >= d_last + e_last
    params = np.where(first_fuller, d_first, d_last)         # dense parameters of the fuller stage
    dpc = dp * cp                                            # the gradients' ranks: DP x CP
    dp_in_node = tp * dpc <= GPUS_PER_NODE
    dp_bw = np.where(dp_in_node, rates.tp_gbps, rates.fabric_gbps)
    dp_lat = np.where(dp_in_node, rates.tp_latency_us, rates.fabric_latency_us)
    if distributed_optimizer:
        buckets = dp_buckets(params, dpc)
        rs = collective_seconds(4 * params, dpc, dp_bw, dp_lat, buckets)
        ag = collective_seconds(2 * params, dpc, dp_bw, dp_lat, buckets)
        optimizer = (30 * params / dpc + 4 * params) / (rates.membw_gbps * 1e9)
    else:   # one fp16 all-reduce of the whole buffer = reduce-scatter + all-gather of its 2P bytes
        buckets = np.ones_like(params)
        rs = ag = collective_seconds(2 * params, dpc, dp_bw, dp_lat, buckets)
        optimizer = (30 * params + 2 * params) / (rates.membw_gbps * 1e9)
    if spec.moe and not distributed_optimizer:
        raise ValueError("distributed_optimizer=False models 2021 dense-model software; MoE models use the distributed optimizer")
    if spec.moe:   # expert parameters: their own buckets over the DP/EP expert-data-parallel ranks
        experts = np.where(first_fuller, e_first, e_last)
        edp = dpc / layouts.ep_degrees
        e_buckets = dp_buckets(experts, edp)
        rs = rs + collective_seconds(4 * experts, edp, dp_bw, dp_lat, e_buckets)
        ag = ag + collective_seconds(2 * experts, edp, dp_bw, dp_lat, e_buckets)
        buckets = buckets + e_buckets        # the exposed floor below: one bucket of average size
        optimizer = optimizer + (30 * experts / edp + 4 * experts) / (rates.membw_gbps * 1e9)
    # The last gradient bucket is ready only when the backward ends and the first weight bucket is
    # needed before the forward starts: at least one bucket of each is exposed, whatever the overlap.
    if overlap_dp:
        rs_exposed, rs_slow = overlapped(rs, 2 / 3 * stage_mb, rs / buckets)
        ag_exposed, ag_slow = overlapped(ag, 1 / 3 * stage_mb, ag / buckets)
        dp_comm, dp_overlap = rs_exposed + ag_exposed, rs_slow + ag_slow
    else:
        dp_comm, dp_overlap = rs + ag, 0.0 * rs

    stage_count = np.where(use_last, last, first)
    parts = {"gemm": m * stage[0], "attention": m * stage[1], "memory_bound": m * stage[2] + fp8_weights * stage_count,
             "tp_comm": m * stage[3], "cp_comm": m * stage[4], "ep_comm": m * stage[5], "pp_bubble": bubble, "pp_comm": pp_comm, "dp_comm": dp_comm,
             "dp_overlap": dp_overlap, "optimizer": optimizer}
    parts["seconds"] = sum(parts[p] for p in PARTS)
    parts["stage_mb"] = stage_mb
    parts["dp_comm_total"] = rs + ag      # before overlap: what the exposed dp_comm is part of
    return parts
