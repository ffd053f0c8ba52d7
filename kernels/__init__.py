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


def free_bytes(device: str) -> float | None:
    """Memory this process can still take: on a GPU the driver's free bytes plus what torch's
    caching allocator holds but no tensor uses (reserved less allocated: the driver counts it as
    taken, yet the next allocation reuses it, so late in a run the free bytes alone read low); on
    CPU the host's MemAvailable,
    or less where a cgroup (a Kubernetes pod, a Slurm job) caps the memory (cgroup v2 memory.max
    less memory.current); None where neither can be read."""
    if device == "cuda":
        import torch

        cached = torch.cuda.memory_reserved() - torch.cuda.memory_allocated()
        return float(torch.cuda.mem_get_info()[0] + max(cached, 0))
    found = [v for v in (_meminfo_available(), _cgroup_room()) if v is not None]
    return float(min(found)) if found else None


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):   # not Linux, or a /proc/meminfo of another shape
        return None
    return None


def _cgroup_room(root: str = "/sys/fs/cgroup") -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or None (no limit, or not v2)."""
    try:
        with open("/proc/self/cgroup") as f:
            path = next((line.strip().split("::", 1)[1] for line in f if line.startswith("0::")), None)
        if path is None:
            return None
        folder = os.path.join(root, path.lstrip("/"))
        with open(os.path.join(folder, "memory.max")) as f:
            limit = f.read().strip()
        if limit == "max":
            return None
        with open(os.path.join(folder, "memory.current")) as f:
            return max(0, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        return None
