"""GPU memory needed for training, and the fewest GPUs that can hold it with full sharding.

- Model states: mixed-precision Adam keeps 16 bytes per parameter (bf16 weights 2 + bf16 gradients
  2 + fp32 master weights, momentum and variance 4+4+4; ZeRO paper, Rajbhandari et al. 2020), for
  every parameter, active or not (a mixture of experts stores all its experts).
- Activations for one sequence of `seq_len` tokens, from Korthikanti et al. 2022 ("Reducing
  Activation Recomputation in Large Transformer Models"): per layer s*h*(34 + 5*a*s/h) bytes in
  bf16; FlashAttention does not store the a*s^2 score matrix, leaving 34*s*h per layer. With full
  recompute only each layer's input is kept (2*s*h bytes) plus one layer's 34*s*h working set.
  (The 34 assumes a 4h MLP; SwiGLU models are close enough for a capacity estimate.)
- Full sharding (ZeRO-3/FSDP, or tensor + pipeline + sequence parallelism) divides both states
  and activations over the sharding group. Only USABLE_FRACTION of the GPU's memory is counted:
  the CUDA context, NCCL buffers and allocator fragmentation take the rest.
"""

import numpy as np

BYTES_PER_PARAM = 16
ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN = 34
USABLE_FRACTION = 0.9


def state_bytes(params):
    """Weights + gradients + Adam states, bytes."""
    return BYTES_PER_PARAM * np.asarray(params, dtype=float)


def activation_bytes(layers, hidden, seq_len, recompute=False):
    """Activations of one sequence (micro-batch 1), bytes, before sharding."""
    per_layer = ACTIVATION_BYTES_PER_TOKEN_PER_HIDDEN * np.asarray(seq_len, dtype=float) * np.asarray(hidden)
    if recompute:
        return 2 * np.asarray(seq_len, dtype=float) * np.asarray(hidden) * np.asarray(layers) + per_layer
    return per_layer * np.asarray(layers)


def training_bytes(params, layers, hidden, seq_len, recompute=False):
    """Everything that must fit across the sharding group, bytes."""
    return state_bytes(params) + activation_bytes(layers, hidden, seq_len, recompute)


def sharding_degree(params, layers, hidden, seq_len, memory_gb, recompute=False):
    """How many GPUs' usable memory the training state fills (a fraction: 18.2 means 18.2 GPUs)."""
    usable = USABLE_FRACTION * np.asarray(memory_gb, dtype=float) * 1e9
    return training_bytes(params, layers, hidden, seq_len, recompute) / usable


def min_gpus(params, layers, hidden, seq_len, memory_gb, recompute=False):
    """Fewest GPUs whose usable memory holds states + activations when fully sharded."""
    return np.ceil(sharding_degree(params, layers, hidden, seq_len, memory_gb, recompute)).astype(int)
