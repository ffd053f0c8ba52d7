"""GPU memory of one training GPU under a parallel layout (vectorised over layouts).

- Model states, Megatron's distributed optimizer (Megatron-LM docs, "Distributed Optimizer":
  bf16 parameters with fp32 gradients take 6 bytes per parameter replicated plus 12 sharded over
  DP): bf16 weights 2 + fp32 main gradients 4 on every DP rank, fp32 master weights, Adam momentum
  and variance 4+4+4 divided over DP. A GPU holds its pipeline stage's layers / TP, plus the
  embedding (first stage) or the LM head (last stage).
- Activations of one layer for one micro-batch, bf16, per Korthikanti et al. 2022 ("Reducing
  Activation Recomputation in Large Transformer Models", sec. 4) redone for a Llama-style layer
  without dropout: per token, the two norms' inputs 4h; attention: the QKV input 2h, Q 2h, K and V
  4*kv*d, the attention output 2h; MLP: its input 2h, then gated 6*ffn (gate and up outputs, the
  SwiGLU output) or plain 4*ffn (the GeLU input and output). (A GPT layer with 4h MLP gives 32h,
  Korthikanti's 34h less the two dropout masks.) Sequence parallelism with TP divides all of it by
  TP. FlashAttention never stores the s x s scores (Korthikanti's 5*a*s/h term), the memory that
  selective recompute (re-running the core attention in the backward) exists to save: with it none
  and selective take the same memory (the core attention's inputs Q, K, V and its output, the
  output projection's input, are stored either way), selective costing one more attention
  forward (step_time.py).
  Full recompute keeps only each layer's input (2h per token, / TP) plus one layer's working set.
  The search recomputes only as many layers per stage as memory needs (fit_recompute), any N of
  them: per-block checkpointing, as PyTorch-native stacks wrap chosen transformer blocks one by one
  (torchtitan's layer-frequency selective AC checkpoints every k-th block; Meta's Llama 3 stack,
  which the 405B rows calibrate on, is its own, not Megatron). Megatron-LM's --recompute-method block
  --recompute-num-layers N is that N without interleaving; with v virtual stages its count is per
  model chunk, so a Megatron stage recomputes a multiple of v layers, between the search's N and
  all of them. --recompute full recomputes them all.
- Pipelining, 1F1B (Narayanan et al. 2021 sec. 2.2): the first stage holds min(PP, micro-batches)
  micro-batches in flight; interleaving with v virtual stages multiplies that by 1 + (PP-1)/(PP*v).
  The last stage holds one (interleaved: ((v-1)*PP + 1)/v, Megatron's warm-up of (v-1)*PP model
  chunks there before the first backward: num_warmup_microbatches in megatron/core/pipeline_parallel/
  schedules.py, (PP - rank - 1) * 2 + (v - 1) * PP), plus the fp32
  logits and their gradient (tokens x V/TP x 8 bytes).
- Mixture of experts with expert parallelism EP (Megatron-Core, expert-tensor-parallel = TP): each
  GPU holds E/EP of each MoE layer's experts, each split over TP like a dense MLP, so a stage's
  expert weights are divided by TP*EP; the distributed optimizer shards them over the
  expert-data-parallel group of DP/EP ranks (their 12 bytes per parameter / (DP/EP)). A token's
  MoE MLP keeps its input 2h and, for each of its top_k experts, the dispatched copy 2h and the
  expert's activations (6 or 4 x moe_ffn): balanced routing gives every GPU t*top_k routed tokens.
  The dispatcher all-gathers the routed tokens over TP (each TP rank holds a slice of every local
  expert, so each needs whole tokens), so the dispatched copies are not divided by TP; the rest
  of the layer is, the experts' activations being slices of moe_ffn.
- Context parallelism CP (parallelism.py): a GPU holds 1/CP of each sequence's tokens, so the
  activations and logits above are of micro_batch x seq / CP tokens; the weights are replicated
  over CP and the optimizer's 12 bytes sharded over the DP x CP ranks (DP x CP / EP for experts).
  The layer being run also holds the K and V all-gathered over CP, whole-sequence (micro_batch x
  seq x 2 x kv_heads/TP x head size x 2 bytes), and in its backward their gradient before the
  reduce-scatter: twice that, transient, for one layer (step_time.py).
- Only USABLE_FRACTION of the GPU's memory counts (CUDA context, NCCL buffers, allocator
  fragmentation take the rest).
"""

import numpy as np

from cost_models.flops import expert_weights, layer_linear_weights
from cost_models.parallelism import RECOMPUTE, stage_layers

REPLICATED_BYTES_PER_PARAM = 6     # bf16 weights + fp32 main gradients
SHARDED_BYTES_PER_PARAM = 12       # fp32 master weights + Adam momentum + variance, over DP
USABLE_FRACTION = 0.9
FULL = RECOMPUTE.index("full")


def mlp_activation_bytes(spec, ffn):
    """Stored activation bytes per token of one MLP of width ffn: gated 6*ffn, plain 4*ffn."""
    return 6 * ffn if spec.mlp == "swiglu" else 4 * ffn


def activation_bytes_per_token(spec, tp=1):
    """One layer's stored activations per token of the micro-batch on one GPU at tensor-parallel
    degree `tp` with sequence parallelism, bf16 (module docstring): all of it / TP but an MoE's
    dispatched token copies, which every TP rank holds whole."""
    h, d = spec.hidden, spec.hidden / spec.heads
    if spec.moe:
        mlp, dispatched = spec.top_k * mlp_activation_bytes(spec, spec.expert_ffn), spec.top_k * 2 * h
    else:
        mlp, dispatched = mlp_activation_bytes(spec, spec.ffn), 0
    return (4 * h + (6 * h + 4 * spec.kv_heads * d) + (2 * h + mlp)) / tp + dispatched


def gathered_kv_bytes(spec, layouts):
    """One layer's K and V all-gathered over CP on one GPU, bf16: the whole micro-batch's sequences
    (micro_batch x seq tokens) x 2 x kv_heads/TP x head size x 2 bytes: the all-gather's full buffer."""
    d = spec.hidden / spec.heads
    return layouts.micro_batch * float(spec.seq_len) * 2 * spec.kv_heads / layouts.tp * d * 2


def expert_layer_params(spec):
    """One layer's expert weights (all E experts; 0 for a dense model)."""
    return float(expert_weights(spec.hidden, spec.experts, spec.expert_ffn, spec.mlp == "swiglu")) if spec.moe else 0.0


def layer_params(spec):
    """One layer's parameters: linear weights (all experts and the router for an MoE) and 2 norms."""
    if spec.moe:
        dense = layer_linear_weights(spec.hidden, spec.heads, spec.kv_heads, 0, spec.mlp == "swiglu")
        return dense + spec.hidden * spec.experts + expert_layer_params(spec) + 2 * spec.hidden
    return layer_linear_weights(spec.hidden, spec.heads, spec.kv_heads, spec.ffn, spec.mlp == "swiglu") + 2 * spec.hidden


def stage_param_split(spec, layouts):
    """((first dense, first expert), (last dense, last expert)) parameters per GPU: a stage's
    non-expert weights / TP plus embedding or head / TP, and its expert weights / (TP*EP). Scaled
    so that, summed over the stages and EP ranks, they give spec.params. Expert parts are 0 for a
    dense model, whose dense parts are then exactly stage_params."""
    first, last = stage_layers(spec.layers, layouts.pp)
    per_layer, vh = layer_params(spec), spec.vocab * spec.hidden
    scale = spec.params / (spec.layers * per_layer + 2 * vh)
    ends = np.where(layouts.pp == 1, 2 * vh, vh)     # embedding and LM head: one stage holds both
    p_first, p_last = first * per_layer + ends, last * per_layer + ends
    if not spec.moe:
        zero = np.zeros(len(layouts))
        return (scale * p_first / layouts.tp, zero), (scale * p_last / layouts.tp, zero)
    ex = expert_layer_params(spec)
    e_first, e_last = first * ex, last * ex
    ep = layouts.ep_degrees
    return ((scale * (p_first - e_first) / layouts.tp, scale * e_first / (layouts.tp * ep)),
            (scale * (p_last - e_last) / layouts.tp, scale * e_last / (layouts.tp * ep)))


def stage_params(spec, layouts):
    """(first stage, last stage) parameters per GPU: dense plus expert (stage_param_split)."""
    (d_first, e_first), (d_last, e_last) = stage_param_split(spec, layouts)
    return d_first + e_first, d_last + e_last


def model_state_bytes(dense, expert, layouts):
    """Distributed-optimizer model states of one GPU: 6 B per parameter, plus 12 B sharded over DP x CP
    (dense) or over the DP x CP / EP expert-data-parallel ranks (experts)."""
    shards = layouts.dp * layouts.cp_degrees
    per_dense = REPLICATED_BYTES_PER_PARAM + SHARDED_BYTES_PER_PARAM / shards
    if not np.any(expert):
        return dense * per_dense
    edp = shards / layouts.ep_degrees
    return dense * per_dense + expert * (REPLICATED_BYTES_PER_PARAM + SHARDED_BYTES_PER_PARAM / edp)


def gpu_bytes(spec, layouts, recompute_layers=None):
    """Peak bytes on the fullest GPU of each layout (first or last pipeline stage), with
    `recompute_layers` per stage fully recomputed (default: layouts.recompute_share)."""
    tp, pp, v = layouts.tp, layouts.pp, layouts.vpp
    (d_first, e_first), (d_last, e_last) = stage_param_split(spec, layouts)
    states_first, states_last = model_state_bytes(d_first, e_first, layouts), model_state_bytes(d_last, e_last, layouts)
    cp = layouts.cp_degrees
    tokens = layouts.micro_batch * spec.seq_len / cp                 # this GPU's share of the micro-batch
    layer = tokens * activation_bytes_per_token(spec, tp)            # one layer, one micro-batch
    kept_full = tokens * 2 * spec.hidden / tp
    first, last = stage_layers(spec.layers, pp)
    r = (layouts.recompute_share(spec.layers) * first if recompute_layers is None
         else np.asarray(recompute_layers, dtype=float))
    working = np.where(r > 0, layer, 0)                              # the layer being recomputed
    working = working + np.where(cp > 1, 2 * gathered_kv_bytes(spec, layouts), 0)
    in_flight = np.minimum(pp, layouts.micro_batches) * np.where(v > 1, 1 + (pp - 1) / (pp * v), 1)
    # the last stage: one micro-batch in 1F1B; interleaved, Megatron's warm-up runs (v-1)*PP model
    # chunks forward on it before its first backward, so (v-1)*PP + 1 chunks of 1/v of its layers
    last_flight = np.where(v > 1, np.minimum(((v - 1) * pp + 1) / v, layouts.micro_batches), 1)
    logits = tokens * spec.vocab / tp * 8

    def acts(n_layers, flight):
        done = np.minimum(r, n_layers)
        return (done * kept_full + (n_layers - done) * layer) * flight

    first_gpu = states_first + acts(first, in_flight) + working
    last_gpu = states_last + acts(last, last_flight) + working + logits   # at PP = 1 the one stage: the larger
    return np.maximum(first_gpu, last_gpu)


def fit_recompute(spec, layouts, usable):
    """Layers per stage to recompute fully so each full-recompute layout fits `usable` bytes: the
    fewest (at least 1), memory falling linearly with each; all of them if even that does not fit.
    0 for the other layouts."""
    per_stage, _ = stage_layers(spec.layers, layouts.pp)
    one_done = gpu_bytes(spec, layouts, np.ones(len(layouts)))
    all_done = gpu_bytes(spec, layouts, per_stage)
    step = (one_done - all_done) / np.maximum(per_stage - 1, 1)     # bytes saved per further layer
    extra = np.where(one_done > usable, np.ceil((one_done - usable) / np.maximum(step, 1)), 0)
    r = np.clip(1 + extra, 1, per_stage)
    full = layouts.recompute == FULL
    return np.where(full, r, 0).astype(int)


def usable_bytes(memory_gb):
    """The bytes a training job may use: memory_gb is in GiB, as datasheets count."""
    return USABLE_FRACTION * np.asarray(memory_gb, dtype=float) * 2**30
