"""kernels.allreduce: nccl-tests arithmetic, the exact check, a 2-rank gloo run, world size 1."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kernels import allreduce as ar

TINY = dict(budget_ms=5.0, warmup_ms=1.0, min_iters=2, max_iters=20)


def test_busbw_factor_is_nccl_tests_2_n_minus_1_over_n():
    assert [ar.busbw_factor(n) for n in (1, 2, 4, 8)] == [0.0, 1.0, 1.5, 1.75]
    with pytest.raises(ValueError):
        ar.busbw_factor(0)


def test_bandwidths_in_gb_per_s_of_1e9_bytes():
    # 1e9 bytes in 500 ms: algbw 2 GB/s; on 8 ranks busbw = 2 * 2*7/8 = 3.5 GB/s (all exact).
    assert ar.bandwidths_gbps(1_000_000_000, 500.0, 8) == (2.0, 3.5)
    assert ar.bandwidths_gbps(1_000_000_000, 500.0, 1) == (2.0, 0.0)


def test_message_sizes_double_inclusive():
    sizes = ar.message_sizes(32 * ar.KiB, ar.GiB)
    assert sizes[0] == 32768 and sizes[-1] == 2 ** 30 and len(sizes) == 16
    assert all(b == 2 * a for a, b in zip(sizes, sizes[1:]))
    assert ar.message_sizes(8, 15) == [8]
    for lo, hi in [(0, 8), (16, 8), (6, 12)]:
        with pytest.raises(ValueError):
            ar.message_sizes(lo, hi)


def test_default_sizes_gpu_full_range_cpu_smaller_quick_smaller_still():
    gpu, cpu, quick = (ar.default_config(d, q).sizes for d, q in [("cuda", False), ("cpu", False), ("cpu", True)])
    assert (gpu[0], gpu[-1]) == (32 * ar.KiB, ar.GiB)
    assert cpu[-1] < gpu[-1] and quick[-1] < cpu[-1]


def test_multiplier_sum_closed_form_matches_brute_force():
    for n in range(1, 70):
        assert ar.multiplier_sum(n) == sum(ar.rank_multiplier(r) for r in range(n))
    assert ar.sum_is_exact(8) and ar.sum_is_exact(100_000) and not ar.sum_is_exact(10 ** 6)


def test_seeded_sum_is_exact_and_corruption_is_counted():
    world, numel = 3, 1000
    srcs = [ar.fill_source(numel, r, "cpu", seed=7) for r in range(world)]
    assert all(bool((s >= 1).all()) for s in srcs)  # random, never zero
    assert not torch.equal(srcs[0], srcs[1])          # ranks send different values
    total = srcs[0] + srcs[1] + srcs[2]               # what an all-reduce must produce
    assert [ar.count_wrong(total, s, r, world) for r, s in enumerate(srcs)] == [0, 0, 0]
    total[[3, 500]] += 1
    assert ar.count_wrong(total, srcs[1], 1, world) == 2


def test_config_validates():
    with pytest.raises(ValueError):
        ar.SweepConfig([6])
    with pytest.raises(ValueError):
        ar.SweepConfig([8], min_iters=5, max_iters=2)


def test_world_size_1_runs_on_a_local_group_and_cleans_up():
    cfg = ar.SweepConfig([4096, 8192], **TINY)
    records = list(ar.sweep("cpu", config=cfg))
    assert [r["bytes"] for r in records] == [4096, 8192]
    for r in records:
        assert (r["op"], r["dtype"], r["world_size"], r["backend"], r["wrong"]) == ("allreduce", "fp32", 1, "gloo", 0)
        assert r["busbw_gbps"] == 0.0 and r["algbw_gbps"] > 0
        assert 2 <= r["time_ms"]["n"] <= 20
    assert not dist.is_initialized()  # the group the sweep made is gone


def test_a_wrong_sum_is_counted(monkeypatch):
    real = dist.all_reduce

    def off_by_one(tensor, op=dist.ReduceOp.SUM, **kw):
        work = real(tensor, op=op, **kw)
        if tensor.dtype == torch.float32:  # the measured buffer; the timing reductions are fp64
            tensor[0] += 1
        return work

    monkeypatch.setattr(dist, "all_reduce", off_by_one)
    records = list(ar.sweep("cpu", config=ar.SweepConfig([4096], **TINY)))
    assert records[0]["wrong"] == 1


def _two_rank_worker(rank, store_path, out_dir):
    dist.init_process_group("gloo", store=dist.FileStore(store_path, 2), rank=rank, world_size=2)
    cfg = ar.SweepConfig([4096, 65536], **TINY)
    records = list(ar.sweep("cpu", config=cfg))  # joins the existing group, leaves it up
    src = ar.fill_source(1024, rank, "cpu", seed=3)
    buf = src.clone()
    dist.all_reduce(buf)
    if rank == 0:
        buf[:3] += 1  # a corrupted result on one rank
    wrong = ar.count_wrong(buf, src, rank, 2)
    dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"records": records, "wrong": wrong}, f)


def test_two_gloo_ranks_agree_and_check_exactly(tmp_path):
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert [r["bytes"] for r in r0["records"]] == [4096, 65536]
    for rec in r0["records"]:
        assert (rec["world_size"], rec["backend"], rec["wrong"]) == (2, "gloo", 0)
        assert rec["busbw_gbps"] == rec["algbw_gbps"] > 0  # 2(n-1)/n = 1 for n = 2
    # Iteration counts agreed and per-iteration times MAX-reduced: both ranks hold the same stats.
    assert r0["records"] == r1["records"]
    assert (r0["wrong"], r1["wrong"]) == (3, 0)


def test_watchdog_ends_a_hung_step_with_a_clear_message():
    code = "import time; from kernels.allreduce import Watchdog\nwith Watchdog(0.2, 'test step'):\n    time.sleep(30)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "test step did not finish within 0.2 s on rank 0" in proc.stderr


@pytest.mark.gpu
def test_nccl_sweep_on_one_gpu():
    records = list(ar.sweep("cuda", config=ar.SweepConfig([1 << 20, 1 << 24], **TINY)))
    assert all(r["backend"] == "nccl" and r["wrong"] == 0 and r["world_size"] >= 1 for r in records)
