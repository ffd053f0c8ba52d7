"""bench.gpu_fingerprint with a stand-in NVML (present, absent, raising); bench.stragglers with
exact inputs; host memory and MIG in bench.env."""

import types

import pytest

from bench import env, gpu_fingerprint, stragglers
from bench.gpu_fingerprint import clock_event_reasons


class NVMLError(Exception):
    pass


def fake_nvml(sm_clock=1980, not_supported=(), init_error=None, by_uuid=True):
    """A stand-in for the pynvml module: one H100 at NVML index 3, UUID GPU-abc."""
    calls = {"shutdown": 0, "index": None}

    def maybe(name, value):
        def f(*args):
            if name in not_supported:
                raise NVMLError("Not Supported")
            return value(*args) if callable(value) else value
        return f

    def init():
        if init_error:
            raise init_error

    def by_index(i):
        calls["index"] = i
        return "handle"

    def by_uuid_fn(uuid):
        if not by_uuid:
            raise NVMLError("Not Found")
        assert uuid == "GPU-abc"
        return "handle"

    m = types.SimpleNamespace(
        NVML_CLOCK_SM=1, NVML_CLOCK_MEM=2, NVML_TEMPERATURE_GPU=0, NVML_VOLATILE_ECC=0,
        NVML_MEMORY_ERROR_TYPE_CORRECTED=0, NVML_MEMORY_ERROR_TYPE_UNCORRECTED=1,
        nvmlInit=init, nvmlShutdown=lambda: calls.__setitem__("shutdown", calls["shutdown"] + 1),
        nvmlDeviceGetHandleByIndex=by_index, nvmlDeviceGetHandleByUUID=by_uuid_fn,
        nvmlDeviceGetName=maybe("name", b"NVIDIA H100 80GB HBM3"),
        nvmlDeviceGetUUID=maybe("uuid", "GPU-abc"),
        nvmlDeviceGetClockInfo=maybe("clock", lambda h, kind: sm_clock if kind == 1 else 2619),
        nvmlDeviceGetMaxClockInfo=maybe("maxclock", lambda h, kind: 1980 if kind == 1 else 2619),
        nvmlDeviceGetPowerManagementLimit=maybe("power", 700000),
        nvmlDeviceGetPowerUsage=maybe("power", 612345),
        nvmlDeviceGetTemperature=maybe("temp", 61),
        nvmlDeviceGetCurrentClocksEventReasons=maybe("reasons", 0x4 | 0x40),
        nvmlDeviceGetEccMode=maybe("ecc", (1, 1)),
        nvmlDeviceGetTotalEccErrors=maybe("ecc", lambda h, kind, counter: 7 if kind == 0 else 0),
        nvmlDeviceGetMigMode=maybe("mig", (0, 0)),
        nvmlDeviceGetPersistenceMode=maybe("persistence", 1),
        nvmlDeviceGetCurrPcieLinkGeneration=maybe("pcie", 5),
        nvmlDeviceGetCurrPcieLinkWidth=maybe("pcie", 16),
        nvmlDeviceGetMaxPcieLinkGeneration=maybe("pcie", 5),
        nvmlDeviceGetMaxPcieLinkWidth=maybe("pcie", 16),
        nvmlSystemGetDriverVersion=maybe("driver", "580.159"),
        nvmlSystemGetCudaDriverVersion=maybe("driver", 13000),
    )
    return m, calls


def test_snapshot_with_nvml_present():
    nvml, calls = fake_nvml()
    s = gpu_fingerprint.read(0, nvml=nvml, uuid="GPU-abc")
    assert s["nvml"] == "ok" and s["errors"] == {}
    assert (s["name"], s["uuid"], s["sm_clock_mhz"], s["sm_clock_max_mhz"]) == ("NVIDIA H100 80GB HBM3", "GPU-abc", 1980, 1980)
    assert (s["mem_clock_mhz"], s["mem_clock_max_mhz"]) == (2619, 2619)
    assert (s["power_limit_w"], s["power_draw_w"], s["temperature_c"]) == (700.0, 612.345, 61)
    assert (s["ecc_mode"], s["ecc_errors_corrected"], s["ecc_errors_uncorrected"]) == (True, 7, 0)
    assert (s["mig_mode"], s["persistence_mode"]) == (False, True)
    assert (s["pcie_gen"], s["pcie_width"], s["pcie_gen_max"], s["pcie_width_max"]) == (5, 16, 5, 16)
    assert (s["driver"], s["cuda_driver"]) == ("580.159", "13.0")
    assert s["clock_event_reasons"] == ["sw_power_cap", "hw_thermal_slowdown"]
    assert {"host", "time", "cuda", "cublas", "nccl"} <= set(s)
    assert calls["shutdown"] == 1


def test_unsupported_queries_are_null_with_their_error():
    nvml, calls = fake_nvml(not_supported=("ecc", "pcie"))
    s = gpu_fingerprint.read(0, nvml=nvml, uuid="GPU-abc")
    assert s["nvml"] == "ok" and s["ecc_mode"] is None and s["pcie_gen"] is None
    assert s["errors"]["ecc_mode"] == "NVMLError: Not Supported" and s["sm_clock_mhz"] == 1980
    assert calls["shutdown"] == 1


def test_nvml_absent_or_failing_says_why():
    s = gpu_fingerprint.read(None)
    assert s["nvml"] == "unavailable: no GPU on this rank" and s["host"]
    nvml, _ = fake_nvml(init_error=NVMLError("NVML Shared Library Not Found"))
    s = gpu_fingerprint.read(0, nvml=nvml)
    assert s["nvml"] == "unavailable: NVMLError: NVML Shared Library Not Found" and "sm_clock_mhz" not in s


def test_nvml_not_installed(monkeypatch):
    def no_module(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(gpu_fingerprint.importlib, "import_module", no_module)
    assert gpu_fingerprint.read(0)["nvml"] == "unavailable: ModuleNotFoundError: No module named 'pynvml'"


def test_device_found_through_cuda_visible_devices_without_a_uuid(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    nvml, calls = fake_nvml(by_uuid=False)
    monkeypatch.setattr(gpu_fingerprint, "_torch_uuid", lambda i: None)
    assert gpu_fingerprint.read(0, nvml=nvml)["nvml"] == "ok" and calls["index"] == 3
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    gpu_fingerprint.read(1, nvml=nvml)
    assert calls["index"] == 1


def test_mig_slice_found_by_its_mig_uuid_not_its_parents_index():
    nvml, calls = fake_nvml()
    seen = []

    def by_uuid(uuid):
        seen.append(uuid)
        if uuid != "MIG-abc":
            raise NVMLError("Not Found")
        return "mig-handle"

    nvml.nvmlDeviceGetHandleByUUID = by_uuid
    assert gpu_fingerprint.read(0, nvml=nvml, uuid="GPU-abc")["nvml"] == "ok"
    assert seen == ["GPU-abc", "MIG-abc"] and calls["index"] is None


def test_clock_event_reasons():
    assert clock_event_reasons(0) == [] and clock_event_reasons(0x1) == ["gpu_idle"]
    assert clock_event_reasons(0x88) == ["hw_slowdown", "hw_power_brake_slowdown"]


# ---- stragglers ----------------------------------------------------------------------------

def gpu(rank, host="node-a", before=1980, after=1980, reasons=()):
    uuid = f"GPU-{rank}"
    return {"rank": rank, "host": host,
            "before": {"uuid": uuid, "sm_clock_mhz": before},
            "after": {"uuid": uuid, "sm_clock_mhz": after, "clock_event_reasons": list(reasons)}}


def test_slow_gpu_is_named_against_its_nodes_median():
    gpus = [gpu(0), gpu(1), gpu(2), gpu(3, host="node-b"), gpu(4, host="node-b"), gpu(5, host="node-b")]
    mamf = {"bf16": [790.0, 785.0, 700.0, 600.0, 610.0, 605.0]}  # node b is slower but even
    out = stragglers.stragglers(gpus, mamf)
    assert out == [{"rank": 2, "host": "node-a", "uuid": "GPU-2",
                    "reason": "bf16 MAMF 700.0 TFLOP/s is 89% of its node's median 785.0"}]


def test_throttling_gpu_is_named():
    gpus = [gpu(0), gpu(1, before=1980, after=1700), gpu(2, reasons=("sw_power_cap",)),
            gpu(3, reasons=("sw_power_cap", "hw_thermal_slowdown"))]
    out = stragglers.stragglers(gpus, {"bf16": [790.0, 780.0, 789.0, 788.0]})
    assert [(s["rank"], s["reason"]) for s in out] == [
        (1, "SM clock dropped from 1980 to 1700 MHz during the run"),
        (3, "clocks held down after the run by hw_thermal_slowdown")]  # the power cap alone is normal


def test_no_stragglers_without_figures_or_nvml():
    assert stragglers.stragglers([]) == []
    blind = [{"rank": 0, "host": "h", "before": {"nvml": "unavailable: no GPU on this rank"}, "after": None}]
    assert stragglers.stragglers(blind, {"fp32": [0.1]}) == []
    assert stragglers.stragglers(blind, {"fp32": [None]}) == []


def test_two_reasons_for_one_gpu_are_joined():
    out = stragglers.stragglers([gpu(0), gpu(1), gpu(2, after=1000)], {"bf16": [790.0, 790.0, 500.0]})
    assert len(out) == 1 and out[0]["rank"] == 2 and "; SM clock dropped" in out[0]["reason"]


# ---- env -----------------------------------------------------------------------------------

def test_machine_has_host_memory_and_mig():
    m = env.fingerprint("cpu")
    assert m["host_memory_gb"] > 0 and m["mig"] is False


@pytest.mark.gpu
def test_snapshot_on_a_real_gpu():
    s = gpu_fingerprint.read(0)
    assert s["nvml"] == "ok", s["nvml"]
    assert s["uuid"].startswith(("GPU-", "MIG-")) and s["sm_clock_max_mhz"] > 0 and s["driver"]
