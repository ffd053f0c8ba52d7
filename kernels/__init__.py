"""What costbench times: matmul, memory bandwidth, collectives; kernels.timing times them and
kernels.records holds the torch-free rules over their records. torch is imported lazily here, so
kernels.records stays importable without it."""

import os


def local_cuda_index() -> int:
    """This process's GPU: LOCAL_RANK % device_count(). Launchers that give each process one
    visible GPU (CUDA_VISIBLE_DEVICES per rank, Slurm's --gpus-per-task) still set LOCAL_RANK to
    0..7, where a plain LOCAL_RANK would name a GPU that process cannot see."""
    import torch

    count = torch.cuda.device_count()
    if count < 1:
        raise RuntimeError("no CUDA device is visible")
    return int(os.environ.get("LOCAL_RANK", 0) or 0) % count


def select_cuda_device() -> int:
    """Make local_cuda_index() the current CUDA device (events, streams and the L2 flush buffer
    follow the current device) and return it."""
    import torch

    index = local_cuda_index()
    torch.cuda.set_device(index)
    return index


def torch_device(device: str):
    """The torch.device for "cpu" or "cuda". On CUDA the *current* device, explicitly (set by
    select_cuda_device to LOCAL_RANK % device_count()), which a bare "cuda" would not name."""
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if device == "cuda" else torch.device("cpu")
