"""Training FLOPs of a dense (or mixture-of-experts) transformer. Works on scalars or numpy arrays.

Derivation (Kaplan et al. 2020; Narayanan et al. 2021; REFERENCES.md "Compute and memory rules"):
- Matmuls with the weights: a forward pass costs 2 FLOPs per active parameter per token (one
  multiply-add), the backward pass twice that (gradients w.r.t. activations and w.r.t. weights),
  so 6*N*D for N active parameters and D tokens. Full activation recompute runs the forward again
  in the backward pass: 8*N*D.
- Attention scores: per layer and token, QK^T and softmax*V are each 2*seq*hidden FLOPs forward
  (the query heads together span `hidden`; grouped KV heads do not change it), so 4*L*s*h forward
  and 3x that = 12*L*s*h for training with full attention. With a causal mask half the score
  matrix is needed, which FlashAttention skips: 6*L*s*h. We use the causal (halved) count, as
  Megatron-LM's current formula does; PaLM's MFU convention (12*L*H*Q*T) is the unhalved one.
  Recompute adds one more forward: 16*L*s*h full, 8*L*s*h causal.
"""

import numpy as np


def flops_per_token(active_params, layers, hidden, seq_len, recompute=False, causal=True):
    """Training FLOPs per token: (6 or 8) * N + attention (see module docstring)."""
    passes = 4 if recompute else 3          # forward + backward(2x forward) [+ recomputed forward]
    attention_forward = 4 * np.asarray(layers) * np.asarray(seq_len) * np.asarray(hidden)
    if causal:
        attention_forward = attention_forward / 2
    return 2 * passes * np.asarray(active_params) + passes * attention_forward


def training_flops(active_params, tokens, layers, hidden, seq_len, recompute=False, causal=True):
    """Total training FLOPs = flops_per_token * tokens."""
    return flops_per_token(active_params, layers, hidden, seq_len, recompute, causal) * np.asarray(tokens)
