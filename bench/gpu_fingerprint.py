"""One GPU's state as NVML reports it, read by every rank before and after its measurements.

What a rented node can hide and a result depends on: the GPU's identity (name, UUID), its clocks
(SM and memory, current and max), power (limit and draw), temperature, ECC mode and error
counts, MIG and persistence mode, the PCIe link (generation and width, current and max), why its
clocks are held down (NVML's clock-event reasons: thermal or power slowdown), and the software
that runs it (driver, CUDA, cuBLAS, NCCL). Read through nvidia-ml-py (module `pynvml`), the
library nvidia-smi itself is built on.

Nothing here may crash a run: without a GPU or without NVML the snapshot says why in "nvml"
("unavailable: <why>"), and a query a GPU does not support (ECC on a consumer card, most queries
on a MIG slice) is null with its error under "errors".
"""

import datetime
import functools
import importlib
import os
import socket

# NVML clock-event reason bits (nvml.h nvmlClocksEventReason*) by the name recorded
_REASONS = {
    "gpu_idle": 0x1, "applications_clocks_setting": 0x2, "sw_power_cap": 0x4, "hw_slowdown": 0x8,
    "sync_boost": 0x10, "sw_thermal_slowdown": 0x20, "hw_thermal_slowdown": 0x40,
    "hw_power_brake_slowdown": 0x80, "display_clock_setting": 0x100,
}


def clock_event_reasons(mask: int) -> list[str]:
    """NVML's reason bitmask as names, e.g. 0x24 -> ["sw_power_cap", "sw_thermal_slowdown"]."""
    return [name for name, bit in _REASONS.items() if mask & bit]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def software_versions() -> dict:
    """torch's CUDA runtime, cuBLAS and NCCL versions (null where there is no such library)."""
    out = {"cuda": None, "cublas": None, "nccl": None}
    try:
        import torch
    except ImportError:
        return out
    out["cuda"] = torch.version.cuda
    out["cublas"] = _cublas_version()
    try:
        if torch.cuda.is_available():
            nccl = torch.cuda.nccl.version()
            out["nccl"] = ".".join(map(str, nccl)) if isinstance(nccl, tuple) else str(nccl)
    except Exception:  # a build without NCCL
        pass
    return out


@functools.cache  # a scan of every installed distribution; read() asks before and after the run
def _cublas_version() -> str | None:
    """cuBLAS's version: the pip wheel torch runs with (nvidia-cublas-cu12 and the like), else
    cublasGetProperty from the shared library loaded in this process; None on CPU builds."""
    from importlib import metadata

    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("nvidia-cublas"):
            return dist.version
    try:
        import ctypes

        for lib in ("libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"):
            try:
                cublas = ctypes.CDLL(lib)
                break
            except OSError:
                continue
        else:
            return None
        parts = []
        for prop in (0, 1, 2):  # MAJOR_VERSION, MINOR_VERSION, PATCH_LEVEL
            value = ctypes.c_int()
            if cublas.cublasGetProperty(prop, ctypes.byref(value)) != 0:
                return None
            parts.append(str(value.value))
        return ".".join(parts)
    except Exception:
        return None


def _torch_uuid(cuda_index: int) -> str | None:
    """The NVML UUID ("GPU-..." or "MIG-...") of torch's device cuda_index, when torch knows it."""
    try:
        import torch

        uuid = str(torch.cuda.get_device_properties(cuda_index).uuid)
    except Exception:
        return None
    return uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"


def _handle(nvml, cuda_index: int, uuid: str | None):
    """NVML's handle for torch's device cuda_index. NVML numbers all GPUs, torch only the visible
    ones: by UUID when torch has it, else through CUDA_VISIBLE_DEVICES, else the same index."""
    if uuid:
        # torch reports the bare CUDA UUID (prefixed "GPU-" by _torch_uuid); NVML names a MIG
        # slice "MIG-<uuid>", and the index fallback below would name its parent GPU instead
        bare = uuid.removeprefix("GPU-").removeprefix("MIG-")
        for candidate in dict.fromkeys((uuid, f"GPU-{bare}", f"MIG-{bare}")):
            try:
                return nvml.nvmlDeviceGetHandleByUUID(candidate)
            except Exception:
                pass
    visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    if cuda_index < len(visible):
        entry = visible[cuda_index]
        if entry.isdigit():
            return nvml.nvmlDeviceGetHandleByIndex(int(entry))
        return nvml.nvmlDeviceGetHandleByUUID(entry)
    return nvml.nvmlDeviceGetHandleByIndex(cuda_index)


def _queries(nvml, h) -> dict:
    """Field -> a call returning its value; each is tried on its own."""
    def ecc(kind):
        return lambda: nvml.nvmlDeviceGetTotalEccErrors(h, kind, nvml.NVML_VOLATILE_ECC)

    def reasons():
        get = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None) \
            or nvml.nvmlDeviceGetCurrentClocksThrottleReasons  # the older name
        return clock_event_reasons(get(h))

    return {
        "name": lambda: _text(nvml.nvmlDeviceGetName(h)),
        "uuid": lambda: _text(nvml.nvmlDeviceGetUUID(h)),
        "sm_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_SM),
        "sm_clock_max_mhz": lambda: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM),
        "mem_clock_mhz": lambda: nvml.nvmlDeviceGetClockInfo(h, nvml.NVML_CLOCK_MEM),
        "mem_clock_max_mhz": lambda: nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_MEM),
        "power_limit_w": lambda: nvml.nvmlDeviceGetPowerManagementLimit(h) / 1000,  # mW
        "power_draw_w": lambda: nvml.nvmlDeviceGetPowerUsage(h) / 1000,
        "temperature_c": lambda: nvml.nvmlDeviceGetTemperature(h, nvml.NVML_TEMPERATURE_GPU),
        "clock_event_reasons": reasons,
        "ecc_mode": lambda: bool(nvml.nvmlDeviceGetEccMode(h)[0]),  # (current, pending)
        "ecc_errors_corrected": ecc(nvml.NVML_MEMORY_ERROR_TYPE_CORRECTED),
        "ecc_errors_uncorrected": ecc(nvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED),
        "mig_mode": lambda: bool(nvml.nvmlDeviceGetMigMode(h)[0]),
        "persistence_mode": lambda: bool(nvml.nvmlDeviceGetPersistenceMode(h)),
        "pcie_gen": lambda: nvml.nvmlDeviceGetCurrPcieLinkGeneration(h),
        "pcie_width": lambda: nvml.nvmlDeviceGetCurrPcieLinkWidth(h),
        "pcie_gen_max": lambda: nvml.nvmlDeviceGetMaxPcieLinkGeneration(h),
        "pcie_width_max": lambda: nvml.nvmlDeviceGetMaxPcieLinkWidth(h),
        "driver": lambda: _text(nvml.nvmlSystemGetDriverVersion()),
        "cuda_driver": lambda: "{}.{}".format(*divmod(nvml.nvmlSystemGetCudaDriverVersion() // 10, 100)),
    }


def read(cuda_index: int | None, nvml=None, uuid: str | None = None) -> dict:
    """One snapshot of torch's GPU cuda_index (None: this rank has no GPU). `nvml` is the pynvml
    module (tests pass a stand-in); `uuid` defaults to the one torch reports for that device."""
    snap = {"host": socket.gethostname(),
            "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **software_versions()}
    if cuda_index is None:
        snap["nvml"] = "unavailable: no GPU on this rank"
        return snap
    try:
        nvml = nvml or importlib.import_module("pynvml")
        nvml.nvmlInit()
    except Exception as e:  # not installed, no driver, no permission
        snap["nvml"] = f"unavailable: {type(e).__name__}: {e}"
        return snap
    try:
        try:
            handle = _handle(nvml, cuda_index, uuid or _torch_uuid(cuda_index))
        except Exception as e:
            snap["nvml"] = f"unavailable: no NVML device for cuda:{cuda_index} ({type(e).__name__}: {e})"
            return snap
        errors = {}
        for field, query in _queries(nvml, handle).items():
            try:
                snap[field] = query()
            except Exception as e:  # NotSupported on this GPU, or on a MIG slice
                snap[field] = None
                errors[field] = f"{type(e).__name__}: {e}"
        snap["nvml"] = "ok"
        snap["errors"] = errors
        return snap
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
