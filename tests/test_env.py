"""bench.env: the machine fingerprint has every schema field and never crashes on missing info."""

import subprocess

import pytest

from bench import env

FIELDS = {"hostname", "os", "python", "torch", "cuda", "nccl", "driver", "cpu", "device", "gpu",
          "world_size", "nodes"}


def test_fingerprint_has_the_schema_fields():
    m = env.fingerprint("cpu")
    assert FIELDS <= set(m)
    assert m["device"] == "cpu" and m["python"].count(".") == 2 and m["torch"]
    assert set(m["gpu"]) == {"name", "normalized", "count", "memory_gb"}


@pytest.mark.parametrize("environ, expect", [
    ({}, (1, 1)),
    ({"WORLD_SIZE": "8", "LOCAL_WORLD_SIZE": "8"}, (8, 1)),
    ({"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8"}, (16, 2)),
    ({"WORLD_SIZE": "4"}, (4, 1)),
    ({"WORLD_SIZE": "junk", "LOCAL_WORLD_SIZE": "0"}, (1, 1)),
])
def test_world_from_torchrun_environment(monkeypatch, environ, expect):
    for key in ("WORLD_SIZE", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    assert env.world() == expect


def test_missing_tools_give_null_not_a_crash(monkeypatch):
    monkeypatch.setattr(env.shutil, "which", lambda name: None)
    assert env._driver() is None

    def broken(*a, **k):
        raise subprocess.TimeoutExpired("nvidia-smi", 10)

    monkeypatch.setattr(env.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    monkeypatch.setattr(env.subprocess, "run", broken)
    assert env._driver() is None


def test_cpu_model_without_proc_cpuinfo(monkeypatch):
    def no_file(*a, **k):
        raise OSError("no /proc")

    monkeypatch.setattr(env, "open", no_file, raising=False)  # shadows the builtin in bench.env
    monkeypatch.setattr(env.platform, "processor", lambda: "x86_64")
    assert env._cpu_model() == "x86_64"
    monkeypatch.setattr(env.platform, "processor", lambda: "")
    assert env._cpu_model() is None


def test_gpu_info_when_cuda_init_fails(monkeypatch):
    import torch

    def boom():
        raise RuntimeError("CUDA driver initialization failed")

    monkeypatch.setattr(torch.cuda, "is_available", boom)
    assert env.gpu_info() == {"name": None, "normalized": None, "count": 0, "memory_gb": None}


@pytest.mark.gpu
def test_gpu_fingerprint_on_a_gpu():
    m = env.fingerprint("cuda")
    assert m["gpu"]["name"] and m["gpu"]["count"] >= 1 and m["gpu"]["memory_gb"] > 0
    assert m["cuda"] and m["nccl"]


@pytest.mark.parametrize("machine, warned", [
    ({"device": "cpu", "load_avg_1m": 1.5, "cpu_count": 2}, True),
    ({"device": "cpu", "load_avg_1m": 0.4, "cpu_count": 2}, False),
    ({"device": "cuda", "load_avg_1m": 9.0, "cpu_count": 2}, False),   # GPU figures do not share the cores
    ({"device": "cpu", "load_avg_1m": None, "cpu_count": 2}, False),
])
def test_a_busy_cpu_is_named_in_the_run_summary(machine, warned):
    note = env.busy_cpu_note(machine)
    assert (note is not None) == warned
    if warned:
        assert "1.5 on 2 cores" in note


def test_the_fingerprint_records_the_load_average():
    assert isinstance(env.fingerprint("cpu")["load_avg_1m"], (float, type(None)))
