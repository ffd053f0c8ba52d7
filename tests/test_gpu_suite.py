"""scripts/gpu_suite.sh's control flow, on CPU: python3 and nvidia-smi are stand-ins on PATH that
log what they were asked to run, so the parts, their order and the exit status can be checked
without a GPU (the commands themselves are tested where their code lives)."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "scripts" / "gpu_suite.sh"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def _suite(tmp_path, *args, fail_on=""):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls.log"
    # the stand-in python3 logs its arguments, fails when they contain FAIL_ON, and writes the
    # result file a layer run's --out would hold so that the pricing step runs
    _stub(bin_dir, "python3", f"""echo "$*" >> {log}
case "$*" in *"{fail_on or '@never@'}"*) exit 3 ;; esac
case "$*" in *"--ops layer,membw"*) for a; do [ "$prev" = --out ] && mkdir -p "$a" && echo {{}} > "$a/r.json"; prev=$a; done ;; esac
exit 0
""")
    _stub(bin_dir, "nvidia-smi", "echo name\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(SUITE), str(tmp_path / "out"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    calls = log.read_text().splitlines() if log.exists() else []
    return done, calls


def test_part_1_runs_the_checks_and_layer_runs_but_not_the_full_run(tmp_path):
    done, calls = _suite(tmp_path, "workplace/h100", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert calls[0] == "scripts/gpu_checks.py --warmup-s 30"   # on a cold GPU, first
    layers = [c for c in calls if "--ops layer,membw" in c]
    assert [c.split("--model ")[1].split()[0:3] for c in layers] == [
        ["llama3-8b", "--tp", "1"], ["llama3-70b", "--tp", "8"], ["mixtral-8x7b", "--tp", "2"]]
    assert all("--warmup-s 10" in c and "--tag workplace/h100/layer-" in c for c in layers)
    assert any(c.startswith("-m bench cost --model llama3-70b --results") for c in calls)
    assert not any(c.startswith("-m bench run --device cuda --tag") for c in calls)


def test_part_2_runs_only_the_full_run(tmp_path):
    done, calls = _suite(tmp_path, "workplace/h100", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert calls == [f"-m bench run --device cuda --tag workplace/h100 --out {tmp_path / 'out'}"]
    assert "mamf_finder: skipped" in done.stdout


def test_a_failed_step_fails_the_suite_after_the_rest_ran(tmp_path):
    done, calls = _suite(tmp_path, "t", fail_on="bench_timing_vs_triton")
    assert done.returncode == 1
    assert "== timing_vs_triton: exit 3" in (tmp_path / "out" / "suite.log").read_text()
    assert calls[-1].startswith("-m bench run --device cuda --tag t")   # part 2 still ran


@pytest.mark.parametrize("part", ["3", "both"])
def test_an_unknown_part_is_refused(tmp_path, part):
    done, calls = _suite(tmp_path, "t", part)
    assert done.returncode == 2 and calls == []
    assert f"part '{part}'" in done.stderr
