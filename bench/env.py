"""The machine fingerprint stored with every result (DESIGN.md's `machine` object).

What pytest-benchmark records with its results (machine_info: host, Python, CPU), plus what a GPU
measurement depends on: torch, CUDA, NCCL, the driver, the GPU as torch names it and its catalog
name, and the torchrun world (processes, nodes), the host's memory, and whether the GPU is a MIG
slice (then it has no catalog name: a slice is never rated or priced as the whole GPU). Every
probe is allowed to fail: a missing piece is null, never a crash, since the fingerprint is taken
before anything is measured. The per-rank NVML state (clocks, power, ECC, ...) is
bench.gpu_fingerprint's, stored under machine.gpus by the runner.
"""

import os
import platform
import shutil
import socket
import subprocess


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _driver() -> str | None:
    """NVIDIA driver version from pynvml if installed, else nvidia-smi; None without either."""
    try:
        import pynvml

        pynvml.nvmlInit()
        version = pynvml.nvmlSystemGetDriverVersion()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # not installed, no driver, no permission: fall through
        pass
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.split()
    return lines[0] if out.returncode == 0 and lines else None


def host_memory_gb() -> float | None:
    """The host's RAM in GiB (2^30 bytes), from sysconf; None where sysconf lacks the names."""
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _env_int(name: str) -> int | None:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return None


def world() -> tuple[int, int]:
    """(world_size, nodes) from torchrun's environment; (1, 1) outside torchrun."""
    world_size = _env_int("WORLD_SIZE") or 1
    per_node = _env_int("LOCAL_WORLD_SIZE") or world_size
    return world_size, max(1, -(-world_size // per_node))  # ceil: a short last node still counts


def gpu_info() -> dict:
    """{name, normalized, count, memory_gb} of this process's GPU (LOCAL_RANK % count) as torch
    sees it; name None without CUDA.
    memory_gb is the device's memory in GiB (2^30 bytes), the unit of the datasheets' "80 GB" and
    "141 GB": an H100 80GB reports 79.6 and an H200 140.4 (in 1e9 bytes they would read 85 and 151)."""
    info = {"name": None, "normalized": None, "count": 0, "memory_gb": None}
    try:
        import torch

        if not torch.cuda.is_available():
            return info
        from kernels import local_cuda_index

        props = torch.cuda.get_device_properties(local_cuda_index())
        info.update(name=props.name, count=torch.cuda.device_count(),
                    memory_gb=round(props.total_memory / 2**30, 1))
    except Exception:  # a broken driver or CUDA init failure: report no GPU rather than crash
        return info
    from cost_models.hardware import normalize_device_name

    info["normalized"] = normalize_device_name(info["name"], info["memory_gb"])
    return info


def _torch_versions() -> dict:
    """torch's version and the CUDA, cuBLAS and NCCL it runs with (bench.gpu_fingerprint)."""
    from bench.gpu_fingerprint import software_versions

    try:
        import torch
    except ImportError:
        return {"torch": None, **software_versions()}
    return {"torch": torch.__version__.split("+")[0], **software_versions()}


def load_average() -> float | None:
    """The host's 1-minute load average as the run starts (None where the OS has none). On CPU the
    figures measure what the cores have left: other work on them (a shared node, a parallel build)
    makes matmul read many times lower, as torch's threads wait for cores they do not get."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def busy_cpu_note(machine: dict) -> str | None:
    """A warning when other work held half the cores or more as a CPU run started, else None."""
    load, cores = machine.get("load_avg_1m"), machine.get("cpu_count")
    if machine.get("device") != "cpu" or load is None or not cores or load < cores / 2:
        return None
    return (f"the host's load average was {load:g} on {cores} cores as the run started: other work shared "
            "the cores, so the CPU figures read low and vary (run again on an idle machine)")


def fingerprint(device: str) -> dict:
    """The `machine` object of a result file; `device` is the one measured (cpu or cuda)."""
    world_size, nodes = world()
    from cost_models.hardware import mig_profile

    gpu = gpu_info()
    return {
        "hostname": socket.gethostname(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **_torch_versions(),
        "driver": _driver(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_avg_1m": load_average(),
        "device": device,
        "host_memory_gb": host_memory_gb(),
        "gpu": gpu,
        "mig": bool(gpu["name"] and mig_profile(gpu["name"])),
        "world_size": world_size,
        "nodes": nodes,
    }
