"""kernels.membw: the copy record on CPU, its check, the GB/s arithmetic."""

import pytest
import torch

from kernels import membw


def test_membw_cpu_record():
    r = membw.measure("cpu", nbytes=4 << 20, budget_ms=20)
    assert set(r) == {"op", "dtype", "bytes", "time_ms", "gbps", "correct"}
    assert (r["op"], r["dtype"], r["bytes"], r["correct"]) == ("membw", "u8", 4 << 20, True)
    assert r["gbps"] > 0 and r["gbps"] == pytest.approx(2 * (4 << 20) / (r["time_ms"]["median"] * 1e-3) / 1e9)
    assert r["time_ms"]["n"] >= 5


def test_gbps_counts_read_and_written_bytes():
    assert membw.gbps(10**9, 1000.0) == 2.0  # 1 GB copied in 1 s: 1 GB read + 1 GB written


def test_copy_check_catches_a_wrong_copy():
    src = torch.randint(0, 256, (1 << 20,), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    dst = src.clone()
    assert membw.copy_matches(dst, src)
    assert not membw.copy_matches(torch.zeros_like(src), src)  # a copy that did nothing
    dst[: 1 << 19] = 0  # half lost: a 64k sample sees it
    assert not membw.copy_matches(dst, src)
    small = torch.arange(10, dtype=torch.uint8)
    assert membw.copy_matches(small.clone(), small) and not membw.copy_matches(small.flip(0), small)


def test_bad_arguments():
    with pytest.raises(ValueError):
        membw.measure("tpu")
    with pytest.raises(ValueError):
        membw.measure("cpu", nbytes=-1)


@pytest.mark.gpu
def test_membw_cuda_reaches_a_plausible_bandwidth():
    r = membw.measure("cuda", nbytes=1 << 30)
    assert r["correct"] and r["gbps"] > 100
