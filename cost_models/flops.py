"""FLOPs of a dense (or mixture-of-experts) decoder-only transformer, per token and per layer.

Derivation (Kaplan et al. 2020; Narayanan et al. 2021 sec. 5.1; PaLM, Chowdhery et al. 2022, appendix B). Works on scalars or numpy arrays.

- Linear layers: a GEMM with a (k x n) weight costs 2*k*n FLOPs per token forward (one
  multiply-add per weight), the backward pass twice that (the activation gradient, "dgrad", and
  the weight gradient, "wgrad"). Per layer the weights are QKV h*(h + 2*kv*d) (d = h/heads, grouped
  query attention shares kv heads), the attention output h*h, and the MLP: three h x ffn matrices
  when gated (SwiGLU: gate, up, down), two when plain (GeLU: fc1, fc2). The LM head is one h x V
  GEMM per token. Summed over the model this is 2*N per token forward for the N weights touched,
  hence the familiar 6*N*D for training. The input embedding is a table lookup, not a GEMM: its
  vocab x h weights are in the parameter count but do no multiply-adds, so they are left out of N
  here (Megatron-LM's num_floating_point_operations likewise counts the logit layer's 6*V*h per
  token and no embedding). It matters for small models with large vocabularies: Llama 3 8B's
  embedding is 6.5% of its 8.03B parameters; counted, a 1-layer model with a 128K vocabulary would
  report more FLOP/s than its GPU's peak. A tied embedding (GPT-2/GPT-3: the LM head multiplies by
  the embedding's own matrix) is counted once in N and does run, as the LM head: nothing to leave
  out (the catalog's tied_embeddings column; cost.py).
- Attention scores: per layer and token, QK^T and softmax*V are each 2*seq*h FLOPs forward with
  full attention; a causal mask halves them, and FlashAttention skips the masked half, so
  2*seq*h forward (6*seq*h for training). We count the causal (halved) figure, as Megatron-LM's
  current formula does; Narayanan et al. 2021 count the unhalved one (their 96*B*s*l*h^2*(1 +
  s/6h + V/16lh) also counts the recomputed forward): scripts/calibration.py converts.
- Full activation recompute runs each layer's forward again in the backward pass (not the LM
  head's): the hardware does 4 passes where the model needs 3. Model FLOPs (what MFU and
  training_flops count) never include recomputation.
"""

import numpy as np


def mlp_matrices(gated):
    """Weight matrices of h x ffn in one MLP: 3 gated (SwiGLU), 2 plain (GeLU)."""
    return np.where(np.asarray(gated, dtype=bool), 3, 2)


def layer_linear_weights(hidden, heads, kv_heads, ffn, gated=True):
    """Weights of one layer's linear layers (QKV, attention output, MLP), no biases or norms."""
    h = np.asarray(hidden, dtype=float)
    head_dim = h / np.asarray(heads)
    qkv = h * (h + 2 * np.asarray(kv_heads) * head_dim)
    return qkv + h * h + mlp_matrices(gated) * h * np.asarray(ffn, dtype=float)


def expert_weights(hidden, experts, moe_ffn, gated=True):
    """Weights of one MoE layer's experts (each an MLP of width moe_ffn): 0 for a dense model."""
    return np.asarray(experts, dtype=float) * mlp_matrices(gated) * np.asarray(hidden, dtype=float) * np.asarray(moe_ffn)


def params_from_shape(layers, hidden, heads, kv_heads, ffn, vocab, gated=True, tied=False,
                      experts=0, top_k=0, moe_ffn=None):
    """Parameters of a decoder-only model from its shape: layers x (linear weights + 2 norms),
    the embedding and, unless tied, the LM head, and the final norm (Llama 3 70B: 70.55e9).

    A mixture of experts (experts > 0; every layer an MoE layer, as Mixtral) replaces each MLP
    by `experts` MLPs of width moe_ffn (default ffn) plus the router's h x experts weights; with
    top_k = 0 that gives the total; with top_k > 0, the active parameters (the top_k experts a token
    uses): Mixtral 8x7B 46.70e9 total, 12.88e9 active."""
    h = np.asarray(hidden, dtype=float)
    if experts:
        width = ffn if moe_ffn is None else moe_ffn
        used = top_k if top_k else experts
        per_layer = (layer_linear_weights(hidden, heads, kv_heads, 0, gated) + h * experts
                     + expert_weights(hidden, used, width, gated) + 2 * h)
    else:
        per_layer = layer_linear_weights(hidden, heads, kv_heads, ffn, gated) + 2 * h
    embeddings = (1 if tied else 2) * np.asarray(vocab, dtype=float) * h
    return np.asarray(layers) * per_layer + embeddings + h


def attention_forward_flops_per_token(hidden, seq_len, causal=True):
    """QK^T + softmax*V of one layer, forward, per token: 4*s*h, halved with a causal mask."""
    full = 4.0 * np.asarray(seq_len, dtype=float) * np.asarray(hidden)
    return full / 2 if causal else full


def flops_per_token(active_params, layers, hidden, seq_len, causal=True, embedding=0):
    """Model training FLOPs per token: 6 * (N - the input embedding's `embedding` weights, a lookup)
    (forward + backward) + causal attention 6*L*s*h."""
    attention = np.asarray(layers) * attention_forward_flops_per_token(hidden, seq_len, causal)
    return 6.0 * (np.asarray(active_params) - np.asarray(embedding)) + 3 * attention


def training_flops(active_params, tokens, layers, hidden, seq_len, causal=True, embedding=0):
    """Total model training FLOPs = flops_per_token * tokens (no recomputation: MFU's numerator)."""
    return flops_per_token(active_params, layers, hidden, seq_len, causal, embedding) * np.asarray(tokens)
