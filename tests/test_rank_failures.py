"""Ranks that fail: a killed rank, a stalled one, a bad launch environment, a summary-less file.

Multi-rank runs start `costbench run` processes with the environment torchrun gives them (RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT): the same env:// rendezvous, without torchrun's agent
(which would also SIGTERM the survivors, hiding what costbench itself does).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from bench import cli, launch, results
from cost_models.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A rank that dies or stalls where the test says (RANK and FAIL_AT select it), then costbench's CLI.
DRIVER = """
import os, signal, sys, time
from kernels import collectives as co
rank, fail = int(os.environ["RANK"]), os.environ.get("FAIL_AT", "")
if fail in ("kill-mid-sweep", "stall-mid-sweep") and rank == 1:
    real = co.measure_size
    def measure_size(op, nbytes, *a, **k):
        if nbytes >= 65536 and fail == "kill-mid-sweep":
            os.kill(os.getpid(), signal.SIGKILL)
        if nbytes >= 65536:
            time.sleep(120)
        return real(op, nbytes, *a, **k)
    co.measure_size = measure_size
if fail == "stall-before-init" and rank == 1:
    time.sleep(120)
if fail == "stall-in-first-collective" and rank == 1:
    co.dist.barrier = lambda *a, **k: time.sleep(120)
from bench.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_ranks(n, args, fail_at, timeout_s="5"):
    port = _free_port()
    procs = []
    for rank in range(n):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(n), LOCAL_RANK=str(rank),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), FAIL_AT=fail_at,
                   COSTBENCH_TIMEOUT_S=timeout_s)
        procs.append(subprocess.Popen([sys.executable, "-c", DRIVER, "run", "--device", "cpu", *args],
                                      cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    return procs


def finish(procs, limit_s=60):
    out = []
    deadline = time.monotonic() + limit_s
    for p in procs:
        try:
            stdout, stderr = p.communicate(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            stdout, stderr = p.communicate()
        out.append((p.returncode, stdout, stderr))
    return out


def test_a_rank_killed_mid_sweep_ends_the_others_with_one_line_and_a_finished_file(tmp_path):
    procs = launch_ranks(3, ["--ops", "allreduce", "--quick", "--out", str(tmp_path)], "kill-mid-sweep", "60")
    (code0, _, err0), (code1, _, _), (code2, _, err2) = finish(procs)
    assert code1 == -signal.SIGKILL
    assert (code0, code2) == (3, 3), (err0, err2)
    for err in (err0, err2):
        assert "Traceback" not in err
        errors = [ln for ln in err.splitlines() if "error:" in ln]
        assert len(errors) == 1 and "all-reduce" in errors[0] and "failed" in errors[0], err
    [name] = os.listdir(tmp_path)
    doc = results.load(str(tmp_path / name))
    s = doc["summary"]
    assert s["complete"] is False and "summary_from_records" not in s and "rank 0" in s["error"]
    assert [r["bytes"] for r in doc["records"]] == [32768]  # what finished before the kill
    assert s["collectives"]["allreduce"]["bytes"] == 32768 and s["collectives"]["allreduce"]["world_size"] == 3


def test_a_rank_stalled_mid_sweep_ends_the_job_and_rank_0_finishes_the_file(tmp_path):
    # what NCCL does when a peer dies: nothing, the others wait in the collective; the watchdog
    # ends them, rank 0 finishing its file from the watchdog's thread first
    procs = launch_ranks(2, ["--ops", "allreduce", "--quick", "--out", str(tmp_path)], "stall-mid-sweep", "5")
    (code0, _, err0), (code1, _, err1) = finish(procs)
    assert (code0, code1) == (3, 3), (err0, err1)
    errors = [ln for ln in err0.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "all-reduce (in place) of 65536 bytes did not finish within 5 s on rank 0" in errors[0]
    assert "Traceback" not in err0 + err1
    [name] = os.listdir(tmp_path)
    doc = results.load(str(tmp_path / name))
    assert doc["summary"]["complete"] is False and "did not finish" in doc["summary"]["error"]
    assert [r["bytes"] for r in doc["records"]] == [32768]


@pytest.mark.parametrize("where", ["stall-before-init", "stall-in-first-collective"])
def test_a_stalled_rank_ends_the_job_within_the_timeout(tmp_path, where):
    t0 = time.monotonic()
    procs = launch_ranks(2, ["--ops", "allreduce", "--quick", "--out", str(tmp_path)], where, "2")
    # before init, rank 1 never joins and only rank 0 can end (under torchrun the agent then ends
    # rank 1); inside the first collective both ranks are in start-up and both end
    waiting = procs[:1] if where == "stall-before-init" else procs
    ended = finish(waiting)
    elapsed = time.monotonic() - t0
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert [code for code, _, _ in ended] == [3] * len(waiting), ended
    err0 = ended[0][2]
    # the first rank whose watchdog fires says so; a peer may instead see it leave mid-barrier
    assert err0.startswith("costbench run: error: ") and "start-up" in err0, err0
    if where == "stall-before-init":
        assert "did not finish within 2 s on rank 0" in err0 and "COSTBENCH_TIMEOUT_S" in err0
    assert "Traceback" not in err0 and err0.count("\n") == 1
    # the timeout plus importing torch (seconds on a busy 2-core CI machine), not the group's 30 minutes
    assert elapsed < 2 + 45
    assert os.listdir(tmp_path) == []  # nothing was measured: no result file


@pytest.mark.parametrize("env, expect", [
    ({"COSTBENCH_TIMEOUT_S": "abc"}, "COSTBENCH_TIMEOUT_S='abc': expected a positive number of seconds"),
    ({"COSTBENCH_TIMEOUT_S": "0"}, "COSTBENCH_TIMEOUT_S='0': expected a positive number"),
    ({"COSTBENCH_TIMEOUT_S": "-5"}, "COSTBENCH_TIMEOUT_S='-5': expected a positive number"),
    ({"COSTBENCH_TIMEOUT_S": "nan"}, "COSTBENCH_TIMEOUT_S='nan': expected a positive number"),
    ({"WORLD_SIZE": "abc", "RANK": "0"}, "WORLD_SIZE='abc': expected a whole number"),
    ({"WORLD_SIZE": "0", "RANK": "0"}, "WORLD_SIZE='0': expected a whole number at least 1"),
    ({"WORLD_SIZE": "2"}, "WORLD_SIZE=2 is set but RANK is not: launch with torchrun"),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "RANK='2': expected a whole number from 0 to 1"),
    ({"WORLD_SIZE": "2", "RANK": "0"}, "WORLD_SIZE=2 but MASTER_ADDR is not set: launch with torchrun"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h"}, "WORLD_SIZE=2 but MASTER_PORT is not set"),
    ({"WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "h", "MASTER_PORT": "99999"}, "MASTER_PORT='99999'"),
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "x", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "LOCAL_RANK='x'"),
    # more local ranks than the world has (it waited out the start-up timeout)
    ({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "5", "MASTER_ADDR": "h", "MASTER_PORT": "1"},
     "LOCAL_RANK='5': expected a whole number from 0 to 1"),
])
def test_bad_launch_environment_is_one_line_exit_2(monkeypatch, capsys, tmp_path, env, expect):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "COSTBENCH_TIMEOUT_S"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InputError, match="^" + expect.replace("(", r"\(").replace("?", r"\?")):
        launch.from_env()
    assert cli.main(["run", "--device", "cpu", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("costbench run: error: " + expect) and err.count("\n") == 1
    assert os.listdir(tmp_path) == []


def test_good_launch_environments():
    assert launch.from_env({}) == launch.Launch()
    assert launch.from_env({"COSTBENCH_TIMEOUT_S": "2.5"}).timeout_s == 2.5
    assert launch.from_env({"WORLD_SIZE": "1", "RANK": "0"}) == launch.Launch()  # no rendezvous needed
    got = launch.from_env({"WORLD_SIZE": "8", "RANK": "3", "LOCAL_RANK": "3", "MASTER_ADDR": "node1",
                           "MASTER_PORT": "29500"})
    assert got == launch.Launch(3, 8, 3, launch.DEFAULT_TIMEOUT_S, distributed=True)


def _record(op, nbytes, busbw, inplace=False, wrong=0):
    return {"op": op, "dtype": "fp32", "bytes": nbytes, "world_size": 4, "backend": "nccl",
            "inplace": inplace, "time_ms": {"min": 1, "median": 1, "mean": 1, "p10": 1, "p90": 1, "stdev": 0, "n": 5},
            "time_ms_rank_mean": 0.9, "algbw_gbps": busbw, "busbw_gbps": busbw,
            "nccl_tests": {"time_ms": 0.95, "algbw_gbps": busbw, "busbw_gbps": busbw * 1.01, "iters": 5}, "wrong": wrong}


@pytest.mark.parametrize("summary", ["missing", {}, None])
def test_a_summary_less_file_is_read_back_with_a_summary_from_its_records(tmp_path, summary):
    doc = {"schema_version": 1, "run_id": "x", "created_at": "2026-11-23T00:00:00Z", "costbench_version": "0.1.0",
           "tag": None, "machine": {"device": "cuda", "gpu": None, "world_size": 4, "nodes": 2}, "config": {},
           "records": [_record("allreduce", 1 << 20, 50.0, True), _record("allreduce", 256 << 20, 90.0, True),
                       _record("allgather", 256 << 20, 80.0), _record("allgather", 256 << 20, 85.0, inplace=True),
                       _record("allgather", 1 << 30, 70.0), _record("alltoall", 1 << 30, 99.0, wrong=3)]}
    if summary != "missing":
        doc["summary"] = summary
    path = tmp_path / "killed.json"
    path.write_text(json.dumps(doc))
    s = results.load(str(path))["summary"]
    assert s["complete"] is False and s["summary_from_records"] is True
    assert s["busbw_gbps_max"] == 90.0 and s["busbw_bytes"] == 256 << 20  # the all-reduce keys as before
    assert s["collectives"]["allreduce"] == {"busbw_gbps_max": 90.0, "bytes": 256 << 20, "busbw_gbps_256mib": 90.0,
                                             "world_size": 4, "nodes": 2, "backend": "nccl", "inplace": True,
                                             "nccl_tests_busbw_gbps": 90.9}
    gather = s["collectives"]["allgather"]  # out of place only: the in-place 85 is not quoted
    assert (gather["busbw_gbps_max"], gather["bytes"], gather["busbw_gbps_256mib"]) == (80.0, 256 << 20, 80.0)
    assert "alltoall" not in s["collectives"]  # its only record failed the check
    assert s["failed_checks"] == 1 and s["failures"] == ["alltoall fp32: failed its check"]


def test_a_master_addr_that_does_not_resolve_is_one_line(monkeypatch):
    """Four lines of torch's socket warnings and exit 3 came before: the environment's mistake,
    named (exit 2 through InputError). The resolver is stood in for: a CI machine's may answer
    EAI_AGAIN for every name."""
    real = socket.getaddrinfo

    def resolve(host, *args):
        if host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args)

    monkeypatch.setattr(launch.socket, "getaddrinfo", resolve)
    with pytest.raises(InputError, match=r"MASTER_ADDR='no\.such\.host\.invalid': cannot resolve it"):
        launch.check_master({"MASTER_ADDR": "no.such.host.invalid"})
    launch.check_master({"MASTER_ADDR": "127.0.0.1"})
    launch.check_master({})   # unset: from_env has said what a distributed run needs


def test_a_temporary_dns_failure_is_left_to_the_rendezvous(monkeypatch):
    """EAI_AGAIN (a pod whose DNS record is not up yet) is retried by torch until the start-up
    timeout: refusing it would fail a job that would have started (code review)."""
    def again(*_):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(launch.socket, "getaddrinfo", again)
    launch.check_master({"MASTER_ADDR": "job-master-0.job"})
