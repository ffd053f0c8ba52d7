"""Synthetic schema-1 result files with every field SPEC.md names (matmul layout/phase/sustained,
the four collectives, membw, layer, fingerprint stragglers), for compare and report tests.
The figures are made up (plausible H100 numbers), never presented as measurements."""

import json
import os

STATS = {"min": 1.0, "median": 1.0, "mean": 1.0, "p10": 1.0, "p90": 1.0, "stdev": 0.0, "n": 10}
SIZES = [1 << 20, 16 << 20, 256 << 20, 1 << 30]
FACTOR = {"allreduce": 2 * 7 / 8, "reducescatter": 7 / 8, "allgather": 7 / 8, "alltoall": 7 / 8}


def layer_shape(model="llama3-70b"):
    """summary.layer.shape of a catalog model, as `run --ops layer --model MODEL` writes it."""
    from bench.runner import layer_shape as shape_of

    return shape_of(model, {}, 1).key()


def time_stats(ms):
    return {**STATS, "min": ms, "median": ms, "mean": ms, "p10": ms, "p90": ms}


def result(tag="coreweave/us-east", bf16=750.0, gpu="H100-SXM", world=8, run_id="r1", busbw=360.0,
           stragglers=None, created="2026-11-22T10:15:00Z"):
    """A full H100-node result document; bf16 = the bf16 MAMF, busbw = all-reduce's best."""
    records = []
    for dtype, tflops, peak in (("bf16", bf16, 989.0), ("fp32", 50.0, 67.0)):
        for phase, shape, f in (("search", 4096, 0.9), ("search", 8192, 1.0), ("remeasure", 8192, 1.0),
                                ("sustained", 8192, 0.97)):
            t = tflops * f
            records.append({"op": "matmul", "dtype": dtype, "m": shape, "n": shape, "k": shape, "layout": "TN",
                            "phase": phase, "time_ms": time_stats(2 * shape ** 3 / t / 1e9), "tflops": t,
                            "correct": True, "max_rel_err": 1e-3})
    collectives = {}
    for op, factor in FACTOR.items():
        best = busbw if op == "allreduce" else busbw * 0.9
        for i, size in enumerate(SIZES):
            bus = best * (i + 1) / len(SIZES)
            algbw = bus / factor
            records.append({"op": op, "dtype": "fp32", "bytes": size, "world_size": world, "backend": "nccl",
                            "inplace": False, "time_ms": time_stats(size / algbw / 1e6), "time_ms_rank_mean": 1.0,
                            "algbw_gbps": algbw, "busbw_gbps": bus, "nccl_tests": {}, "wrong": 0})
        collectives[op] = {"busbw_gbps_max": best, "bytes": SIZES[-1], "busbw_gbps_256mib": best * 3 / 4,
                           "world_size": world, "nodes": 1, "backend": "nccl"}
    records.append({"op": "membw", "dtype": "u8", "bytes": 1 << 30, "time_ms": time_stats(0.8), "gbps": 2700.0,
                    "correct": True})
    summary = {
        "mamf_tflops": {"bf16": bf16, "fp32": 50.0}, "mamf_tflops_sustained": {"bf16": bf16 * 0.97, "fp32": 48.5},
        "mamf_shape": {"bf16": [8192] * 3, "fp32": [8192] * 3}, "peak_tflops": {"bf16": 989.0, "fp32": 67.0},
        "efficiency": {"bf16": bf16 / 989.0, "fp32": 50 / 67.0},
        "busbw_gbps_max": busbw, "busbw_bytes": SIZES[-1], "allreduce_world_size": world,
        "allreduce_backend": "nccl", "collectives": collectives,
        "membw_gbps": 2700.0, "hbm_gbps_peak": 3350.0, "membw_efficiency": 2700 / 3350,
        "layer": {"model": "llama3-70b", "tp": 8, "tokens": 8192, "dtype": "bf16", "gemm_tflops": bf16 * 0.8,
                  "shape": layer_shape("llama3-70b"),
                  "attention_tflops": 400.0, "elementwise_gbps": 2000.0,
                  "layer_ms": {"gemm": 5.0, "attention": 2.0, "elementwise": 1.0}},
        "failed_checks": 0, "failures": [], "complete": True,
    }
    if stragglers:
        summary["stragglers"] = stragglers
    return {
        "schema_version": 1, "run_id": run_id, "created_at": created, "costbench_version": "0.1.0", "tag": tag,
        "machine": {"hostname": "node-1", "device": "cuda", "world_size": world, "nodes": 1, "host_memory_gb": 2015,
                    "mig": False, "gpu": {"name": "NVIDIA H100 80GB HBM3", "normalized": gpu, "count": world,
                                          "memory_gb": 79.6}, "gpus": []},
        "config": {"ops": ["matmul", "allreduce", "reducescatter", "allgather", "alltoall", "membw", "layer"],
                   "quick": False, "warmup_s": 30},
        "records": records, "summary": summary,
    }


def write(folder, name, doc) -> str:
    path = os.path.join(str(folder), name)
    with open(path, "w") as f:
        json.dump(doc, f)
    return path


def two_providers(folder) -> list[str]:
    """Three coreweave runs (one setup, summarised) and one aws run with a straggler."""
    return [
        write(folder, "cw1.json", result("coreweave/us-east", bf16=740.0, run_id="cw1")),
        write(folder, "cw2.json", result("coreweave/us-east", bf16=760.0, run_id="cw2")),
        write(folder, "cw3.json", result("coreweave/us-east", bf16=700.0, run_id="cw3")),
        write(folder, "aws1.json", result("aws/us-east-1", bf16=720.0, run_id="aws1", busbw=300.0,
                                          stragglers=[{"rank": 3, "host": "ip-10-0-0-7", "uuid": "GPU-ab12",
                                                       "reason": "bf16 MAMF 81% of the node median"}])),
    ]


PRICES = ("provider,gpu,pricing,usd_per_gpu_hour,usd_low,usd_high,region,as_of,source\n"
          "coreweave,H100-SXM,on-demand,6.16,,,,2025-01,test row\n"
          "aws,H100-SXM,on-demand,6.88,,12.29,us-east-1,2025-01,test row\n"
          "aws,H100-SXM,on-demand,8.00,,,ap-south-1,2025-01,test row\n"
          "lambda,H100-SXM,on-demand,3.99,,,all,2025-01,test row\n")


def prices(folder) -> str:
    """A --prices file with fixed test rows (the catalog's figures change as it is refreshed)."""
    return write_text(folder, "prices.csv", PRICES)


def write_text(folder, name, text) -> str:
    path = os.path.join(str(folder), name)
    with open(path, "w") as f:
        f.write(text)
    return path
