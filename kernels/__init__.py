"""What costbench times: matmul (kernels.matmul) and the collectives (kernels.collectives). Imports torch."""


def torch_device(device: str):
    """The torch.device for "cpu" or "cuda". On CUDA the *current* device, explicitly: under
    torchrun each rank has set its own (cuda:LOCAL_RANK), which a bare "cuda" would not name."""
    import torch

    return torch.device("cuda", torch.cuda.current_device()) if device == "cuda" else torch.device("cpu")
