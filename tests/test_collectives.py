"""kernels.collectives: nccl-tests arithmetic, each op's exact expected output, 1- and 3-rank gloo runs."""

import json
import io
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from kernels import collectives as co

TINY = dict(budget_ms=5.0, warmup_ms=1.0, min_iters=2, max_iters=20)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_busbw_factors_are_nccl_tests():
    # all-reduce 2(n-1)/n; reduce-scatter, all-gather, all-to-all (n-1)/n (nccl-tests *GetBw)
    assert [co.busbw_factor("allreduce", n) for n in (1, 2, 4, 8)] == [0.0, 1.0, 1.5, 1.75]
    for op in ("reducescatter", "allgather", "alltoall"):
        assert [co.busbw_factor(op, n) for n in (1, 2, 4, 8)] == [0.0, 0.5, 0.75, 0.875]
    with pytest.raises(ValueError):
        co.busbw_factor("allreduce", 0)
    with pytest.raises(ValueError):
        co.busbw_factor("broadcast", 2)


def test_bandwidths_in_gb_per_s_of_1e9_bytes():
    # 1e9 bytes in 500 ms: algbw 2 GB/s; on 8 ranks all-reduce busbw 2 * 14/8, all-gather 2 * 7/8.
    assert co.bandwidths_gbps("allreduce", 1_000_000_000, 500.0, 8) == (2.0, 3.5)
    assert co.bandwidths_gbps("allgather", 1_000_000_000, 500.0, 8) == (2.0, 1.75)
    assert co.bandwidths_gbps("alltoall", 1_000_000_000, 500.0, 1) == (2.0, 0.0)


def test_chunked_sizes_round_down_to_whole_chunks_as_nccl_tests():
    assert co.op_bytes("allreduce", 4096, 3) == 4096
    assert [co.op_bytes(op, 4096, 3) for op in ("reducescatter", "allgather", "alltoall")] == [4092] * 3
    assert co.op_bytes("allgather", 8, 3) == 0  # less than one element per rank: left out


def test_message_sizes_double_inclusive():
    sizes = co.message_sizes(32 * co.KiB, co.GiB)
    assert sizes[0] == 32768 and sizes[-1] == 2 ** 30 and len(sizes) == 16
    assert co.message_sizes(8, 15) == [8]
    for lo, hi in [(0, 8), (16, 8), (6, 12)]:
        with pytest.raises(ValueError):
            co.message_sizes(lo, hi)


def test_default_sizes_gpu_to_4_gib_settable_cpu_smaller():
    gpu, quick_gpu, cpu, quick = (co.default_config(d, q).sizes for d, q in
                                  [("cuda", False), ("cuda", True), ("cpu", False), ("cpu", True)])
    assert (gpu[0], gpu[-1]) == (32 * co.KiB, 4 * co.GiB) and quick_gpu[-1] == 256 * co.MiB
    assert cpu[-1] < gpu[-1] and quick[-1] < cpu[-1]
    assert co.default_config("cuda", max_bytes=16 * co.GiB).sizes[-1] == 16 * co.GiB
    assert co.default_config("cpu", True, max_bytes=8192).sizes == [8192]  # below the usual bottom
    with pytest.raises(ValueError):
        co.SweepConfig([8], step_timeout_s=0)


def test_multiplier_sum_closed_form_matches_brute_force():
    for n in range(1, 70):
        assert co.multiplier_sum(n) == sum(co.rank_multiplier(r) for r in range(n))
    assert co.sum_is_exact(8) and co.sum_is_exact(100_000) and not co.sum_is_exact(10 ** 6)


def _simulate(op, sends, world):
    """Each op by its definition, from every rank's contribution: what rank r must receive."""
    if op == "allreduce":
        return [sum(sends) for _ in range(world)]
    if op == "reducescatter":
        return [sum(sends).chunk(world)[r] for r in range(world)]
    if op == "allgather":
        return [torch.cat(sends) for _ in range(world)]
    return [torch.cat([sends[j].chunk(world)[r] for j in range(world)]) for r in range(world)]  # alltoall


@pytest.mark.parametrize("op", co.OPS)
@pytest.mark.parametrize("world", [1, 2, 3, 17])
def test_expected_output_is_each_ops_definition_exactly(op, world):
    base = co.base_values(world * 50, "cpu", seed=7)
    assert bool((base >= 1).all() and (base <= co.BASE_MAX).all())  # random, never zero
    sends = [co.send_values(op, base, r, world) for r in range(world)]
    if world > 1:
        assert not torch.equal(sends[0], sends[1])  # ranks contribute different values
    for r, want in enumerate(_simulate(op, sends, world)):
        got = co.expected_output(op, base, r, world)
        assert torch.equal(got, want) and co.count_wrong(want, got) == 0
    corrupted = co.expected_output(op, base, 0, world).clone()
    corrupted[[1, 7]] += 1
    assert co.count_wrong(corrupted, co.expected_output(op, base, 0, world)) == 2


def test_world_size_1_runs_every_op_on_a_local_group_and_cleans_up():
    assert co.init_distributed("cpu", env_rendezvous=False)
    try:
        cfg = co.SweepConfig([4096, 8192], **TINY)
        for op in co.OPS:
            records = list(co.sweep(op, "cpu", cfg))
            assert [r["bytes"] for r in records] == [4096, 8192]
            for r in records:
                assert (r["op"], r["dtype"], r["world_size"], r["backend"], r["wrong"]) == (op, "fp32", 1, "gloo", 0)
                assert r["inplace"] == (op == "allreduce")
                assert r["busbw_gbps"] == 0.0 and r["algbw_gbps"] > 0 and r["nccl_tests"]["time_ms"] > 0
                assert 2 <= r["time_ms"]["n"] <= 20
        with pytest.raises(ValueError, match="in-place all-to-all"):
            list(co.sweep("alltoall", "cpu", cfg, inplace=True))
    finally:
        dist.destroy_process_group()


def test_a_size_beyond_the_hosts_memory_ends_the_sweep_with_a_note(monkeypatch):
    """--max-bytes 1T on a 23 GiB host swept on towards the OOM killer (hostile tester round 6)."""
    import kernels
    monkeypatch.setattr(kernels, "free_bytes", lambda device: 5 * 8192 + 1)   # room for 8 KiB, not 16
    assert co.init_distributed("cpu", env_rendezvous=False)
    try:
        notes = []
        records = list(co.sweep("allreduce", "cpu", co.SweepConfig([4096, 8192, 16384, 32768], **TINY), notes=notes))
    finally:
        dist.destroy_process_group()
    assert [r["bytes"] for r in records] == [4096, 8192]
    (note,) = notes
    assert note.endswith("of 16384 bytes: not run, some rank lacks the host memory; larger sizes skipped")


def test_a_wrong_sum_is_counted(monkeypatch):
    real = dist.all_reduce

    def off_by_one(tensor, op=dist.ReduceOp.SUM, **kw):
        work = real(tensor, op=op, **kw)
        if tensor.dtype == torch.float32:  # the measured buffer; the timing reductions are fp64
            tensor[0] += 1
        return work

    monkeypatch.setattr(dist, "all_reduce", off_by_one)
    co.init_distributed("cpu", env_rendezvous=False)
    try:
        records = list(co.sweep("allreduce", "cpu", co.SweepConfig([4096], **TINY)))
    finally:
        dist.destroy_process_group()
    assert records[0]["wrong"] == 1


def _three_rank_worker(rank, store_path, out_dir):
    dist.init_process_group("gloo", store=dist.FileStore(store_path, 3), rank=rank, world_size=3)
    cfg = co.SweepConfig([4096, 49152], **TINY)
    records = []
    for op in co.OPS:
        for inplace in ([False, True] if op in ("reducescatter", "allgather") else [False]):
            records += list(co.sweep(op, "cpu", cfg, inplace))
    real = co.Buffers.call

    def corrupt(self):  # then rank 1's all-gather output arrives with one wrong element
        real(self)
        if rank == 1:
            self.output[5] += 1

    co.Buffers.call = corrupt
    wrong = next(co.sweep("allgather", "cpu", co.SweepConfig([4096], **TINY)))["wrong"]
    dist.destroy_process_group()
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump({"records": records, "wrong": wrong}, f)


def test_three_gloo_ranks_every_op_exact_in_and_out_of_place(tmp_path):
    mp.spawn(_three_rank_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=3, join=True)
    outs = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(3)]
    assert [o["wrong"] for o in outs] == [1, 1, 1]  # one rank's wrong element is counted everywhere
    ranks = [o["records"] for o in outs]
    kinds = [(r["op"], r["inplace"], r["bytes"]) for r in ranks[0]]
    assert kinds == [("allreduce", True, 4096), ("allreduce", True, 49152),
                     ("reducescatter", False, 4092), ("reducescatter", False, 49152),
                     ("reducescatter", True, 4092), ("reducescatter", True, 49152),
                     ("allgather", False, 4092), ("allgather", False, 49152),
                     ("allgather", True, 4092), ("allgather", True, 49152),
                     ("alltoall", False, 4092), ("alltoall", False, 49152)]
    for rec in ranks[0]:
        assert (rec["world_size"], rec["backend"], rec["wrong"]) == (3, "gloo", 0), rec
        factor = 4 / 3 if rec["op"] == "allreduce" else 2 / 3
        assert rec["busbw_gbps"] == pytest.approx(rec["algbw_gbps"] * factor)
        assert rec["algbw_gbps"] == pytest.approx(rec["bytes"] / rec["time_ms"]["median"] / 1e6)
        nt = rec["nccl_tests"]
        assert nt["busbw_gbps"] == pytest.approx(rec["bytes"] / nt["time_ms"] / 1e6 * factor)
        # each iteration's mean over ranks is at most its max, so their medians keep that order
        assert rec["time_ms_rank_mean"] <= rec["time_ms"]["median"]
    # iteration counts agreed, times MAX/SUM-reduced: every rank holds the same records
    assert ranks[0] == ranks[1] == ranks[2]


def test_watchdog_ends_a_hung_step_with_one_line_and_exit_3():
    code = "import time; from kernels.collectives import Watchdog\nwith Watchdog(0.2, 'test step'):\n    time.sleep(30)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 3
    assert proc.stderr.startswith("costbench: error: test step did not finish within 0.2 s on rank 0")
    assert proc.stderr.count("\n") == 1


def test_one_line_keeps_the_first_line_of_a_multi_line_error():
    assert co.one_line(RuntimeError("\n[pair.cc:534] Connection closed by peer\nException raised from ...")) \
        == "Connection closed by peer"
    assert co.one_line(RuntimeError("")) == "RuntimeError"


@pytest.mark.gpu
def test_nccl_sweeps_on_one_gpu():
    co.init_distributed("cuda", env_rendezvous=False)
    try:
        cfg = co.SweepConfig([1 << 20, 1 << 24], **TINY)
        for op in co.OPS:
            for r in co.sweep(op, "cuda", cfg):
                assert r["backend"] == "nccl" and r["wrong"] == 0 and r["world_size"] >= 1
    finally:
        dist.destroy_process_group()


def test_a_cgroup_limit_caps_the_hosts_free_memory(tmp_path, monkeypatch):
    """A pod or Slurm job's memory.max is the limit, not the host's MemAvailable (code review)."""
    import builtins

    import kernels

    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "memory.max").write_text("1000000\n")
    (tmp_path / "job" / "memory.current").write_text("400000\n")
    real_open = builtins.open

    def fake_open(path, *a, **k):
        if path == "/proc/self/cgroup":
            return io.StringIO("0::/job\n")
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    assert kernels._cgroup_room(str(tmp_path)) == 600000
    (tmp_path / "job" / "memory.max").write_text("max\n")
    assert kernels._cgroup_room(str(tmp_path)) is None
    monkeypatch.setattr(kernels, "_cgroup_room", lambda: 600000)
    assert kernels.free_bytes("cpu") == 600000   # below any host's MemAvailable


def test_gpu_free_bytes_counts_the_allocators_cache(monkeypatch):
    """torch's cache (reserved, no tensor in it) is taken for the driver yet reused by the next
    allocation: the room is the driver's free bytes plus reserved less allocated."""
    import torch

    import kernels

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (10 * 2**30, 80 * 2**30))
    monkeypatch.setattr(torch.cuda, "memory_reserved", lambda *a: 30 * 2**30)
    monkeypatch.setattr(torch.cuda, "memory_allocated", lambda *a: 12 * 2**30)
    assert kernels.free_bytes("cuda") == 28 * 2**30
