"""bench.results: file naming, atomic never-overwriting writes, interrupted sweeps, strict load()."""

import datetime
import json
import os
import re
import subprocess
import sys

import pytest

from bench import results
from cost_models.errors import InputError

MACHINE = {"device": "cpu", "gpu": {"name": None, "normalized": None, "count": 0, "memory_gb": None},
           "world_size": 1}
H100 = {"device": "cuda", "gpu": {"name": "NVIDIA H100 80GB HBM3", "normalized": "H100-SXM",
                                  "count": 8, "memory_gb": 85.0}, "world_size": 8}
NOW = datetime.datetime(2026, 11, 22, 10, 15, 0, tzinfo=datetime.timezone.utc)


def time_ms(median=1.0):
    return {"min": median, "median": median, "mean": median, "p10": median, "p90": median, "stdev": 0.0, "n": 5}


def matmul(dtype="fp32", m=64, tflops=1.0, correct=True):
    return {"op": "matmul", "dtype": dtype, "m": m, "n": m, "k": m, "time_ms": time_ms(),
            "tflops": tflops, "correct": correct, "max_rel_err": 1e-6}


def allreduce(nbytes=4096, busbw=1.0, wrong=0):
    return {"op": "allreduce", "dtype": "fp32", "bytes": nbytes, "world_size": 8, "backend": "nccl",
            "time_ms": time_ms(), "algbw_gbps": busbw / 1.75, "busbw_gbps": busbw, "wrong": wrong}


def files(folder):
    return sorted(os.listdir(folder))


def test_name_and_round_trip(tmp_path):
    w = results.ResultWriter(str(tmp_path), H100, {"ops": ["matmul"]}, tag="CoreWeave/us-east 04", now=NOW)
    name = os.path.basename(w.path)
    assert name.startswith("20261122T101500Z-h100-sxm-coreweave-us-east-04-") and name.endswith(".json")
    w.add(matmul("bf16", tflops=700.0))
    w.finish(results.summarize(w.records, H100))
    doc = results.load(w.path)
    assert doc == json.loads(json.dumps(w.doc))
    assert doc["created_at"] == "2026-11-22T10:15:00Z" and doc["tag"] == "CoreWeave/us-east 04"
    assert doc["run_id"].startswith("20261122T101500Z-h100-sxm-")
    assert files(tmp_path) == [name]


def test_never_overwrites(tmp_path):
    paths = {results.ResultWriter(str(tmp_path), MACHINE, {}, now=NOW).path for _ in range(20)}
    assert len(paths) == 20 and len(files(tmp_path)) == 20


def test_slug():
    assert results.slug("coreweave/us-east") == "coreweave-us-east"
    assert results.slug("  Lambda: 8x H100!! ") == "lambda-8x-h100"


def test_every_add_leaves_a_valid_file(tmp_path):
    w = results.ResultWriter(str(tmp_path), MACHINE, {})
    assert results.load(w.path)["records"] == []
    for i in range(3):
        w.add(matmul(m=64 * (i + 1)))
        assert len(results.load(w.path)["records"]) == i + 1


def test_interrupted_sweep_keeps_finished_records_and_no_temp_files(tmp_path):
    def sweep():
        yield matmul(m=64)
        yield matmul(m=128)
        raise KeyboardInterrupt

    w = results.ResultWriter(str(tmp_path), MACHINE, {})
    with pytest.raises(KeyboardInterrupt):
        for rec in sweep():
            w.add(rec)
    assert [r["m"] for r in results.load(w.path)["records"]] == [64, 128]
    assert files(tmp_path) == [os.path.basename(w.path)]


def test_interrupt_inside_a_write_leaves_the_previous_file_and_no_temp(tmp_path, monkeypatch):
    w = results.ResultWriter(str(tmp_path), MACHINE, {})
    w.add(matmul(m=64))

    def ctrl_c(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        w.add(matmul(m=128))
    monkeypatch.undo()
    assert [r["m"] for r in results.load(w.path)["records"]] == [64]
    assert files(tmp_path) == [os.path.basename(w.path)]


def test_killed_writer_process_leaves_a_valid_file(tmp_path):
    # A real SIGINT in another process, between records: the file on disk is complete.
    code = (
        "import os, signal, sys\n"
        "from bench import results\n"
        "w = results.ResultWriter(sys.argv[1], {'device': 'cpu', 'gpu': None, 'world_size': 1}, {})\n"
        f"rec = {matmul()!r}\n"
        "for i in range(5):\n"
        "    w.add(rec)\n"
        "    if i == 2:\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=root, capture_output=True, text=True)
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr
    (name,) = files(tmp_path)
    assert len(results.load(str(tmp_path / name))["records"]) == 3


def test_nan_is_stored_as_null_not_invalid_json(tmp_path):
    rec = matmul()
    rec["max_rel_err"] = float("nan")
    w = results.ResultWriter(str(tmp_path), MACHINE, {})
    w.add(rec)
    assert results.load(w.path)["records"][0]["max_rel_err"] is None


def test_summary_on_a_known_gpu():
    recs = [matmul("bf16", m=4096, tflops=700.0), matmul("bf16", m=8192, tflops=790.0),
            matmul("bf16", m=2048, tflops=900.0, correct=False),  # a wrong result is not the MAMF
            matmul("fp8", m=8192, tflops=1400.0),
            allreduce(1 << 20, 100.0), allreduce(1 << 30, 450.0), allreduce(1 << 29, 900.0, wrong=5)]
    s = results.summarize(recs, H100)
    assert s["mamf_tflops"] == {"bf16": 790.0, "fp8": 1400.0}
    assert s["mamf_shape"] == {"bf16": [8192, 8192, 8192], "fp8": [8192, 8192, 8192]}
    assert s["peak_tflops"] == {"bf16": 989.0, "fp8": 1979.0}
    assert s["efficiency"]["bf16"] == 790.0 / 989.0
    assert (s["busbw_gbps_max"], s["busbw_bytes"]) == (450.0, 1 << 30)
    assert s["failed_checks"] == 2


def test_summary_on_cpu_and_unknown_gpu_has_no_peak_or_efficiency():
    unknown = {"device": "cuda", "gpu": {"name": "NVIDIA RTX 9000", "normalized": None}, "world_size": 1}
    for machine in (MACHINE, unknown):
        s = results.summarize([matmul("fp32", tflops=0.1)], machine)
        assert s["mamf_tflops"] == {"fp32": 0.1}
        assert s["peak_tflops"] == {} and s["efficiency"] == {}
        assert "busbw_gbps_max" not in s


# ---- load() errors: one line naming the file and the field ---------------------------------

def write_doc(tmp_path, doc, name="x.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc)
    return str(path)


def good_doc():
    return {"schema_version": 1, "run_id": "r", "created_at": "2026-11-22T10:15:00Z",
            "costbench_version": "0.1.0", "tag": None, "machine": {**MACHINE, "world_size": 8}, "config": {},
            "records": [matmul(), allreduce(), matmul(), matmul()], "summary": {}}


def load_error(path):
    with pytest.raises(InputError) as e:
        results.load(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(path + ": ")
    return msg


def test_load_accepts_a_good_document(tmp_path):
    assert results.load(write_doc(tmp_path, good_doc()))["run_id"] == "r"


@pytest.mark.parametrize("text, expect", [
    ("", "empty file"),
    ('{"schema_version": 1, "records": [', "not valid JSON (truncated?)"),
    ("hello", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
])
def test_load_rejects_non_result_files(tmp_path, text, expect):
    assert expect in load_error(write_doc(tmp_path, text))


def test_load_missing_file_and_directory(tmp_path):
    assert "no such result file" in load_error(str(tmp_path / "nope.json"))
    assert "is a directory" in load_error(str(tmp_path))


def mutate(path_keys, value):
    doc = good_doc()
    target = doc
    for key in path_keys[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path_keys[-1]]
    else:
        target[path_keys[-1]] = value
    return doc


@pytest.mark.parametrize("keys, value, expect", [
    (["records", 3, "time_ms", "median"], "abc", "records[3].time_ms.median: expected a number, got 'abc'"),
    (["schema_version"], 2, "schema_version: expected 1, got 2"),
    (["records", 1, "wrong"], 1.5, "records[1].wrong: expected an integer, got 1.5"),
    (["records", 0, "correct"], "yes", "records[0].correct: expected true or false, got 'yes'"),
    (["records", 2, "m"], KeyError, "records[2].m: missing"),
    (["records", 0, "tflops"], True, "records[0].tflops: expected a number, got true"),
    (["machine", "device"], KeyError, "machine.device: missing"),
    (["machine", "device"], "tpu", "machine.device: expected one of cpu, cuda, got 'tpu'"),
    (["summary", "layer"], {"dtype": "bogus"}, "summary.layer.dtype: expected one of bf16, fp16, tf32, fp32, fp8"),
    (["summary", "layer"], {"dtype": "bf16", "lm_head_ms": -5}, "summary.layer.lm_head_ms: expected a time of at least 0"),
    (["summary", "layer"], {"by_dtype": "x"}, "summary.layer.by_dtype: expected an object, got 'x'"),
    (["summary", "layer"], {"by_dtype": {"bf16": {"layer_ms": {"gemm": "slow"}}}},
     "summary.layer.by_dtype.bf16.layer_ms.gemm: expected a time"),
    (["records"], {}, "records: expected a list"),
    (["run_id"], KeyError, "run_id: missing"),
    # the summary fields that cost, compare and report walk (each crashed compare and report once)
    (["summary", "mamf_tflops"], [1, 2], "summary.mamf_tflops: expected an object or null, got [1, 2]"),
    (["summary", "efficiency"], "zz", "summary.efficiency: expected an object or null, got 'zz'"),
    (["summary", "collectives"], -1, "summary.collectives: expected an object or null, got -1"),
    (["summary", "collectives"], {"allgather": [1]}, "summary.collectives.allgather: expected an object, got [1]"),
    (["summary", "complete"], "yes", "summary.complete: expected true or false, got 'yes'"),
    (["summary", "membw_gbps"], "fast", "summary.membw_gbps: expected a number or null, got 'fast'"),
    (["machine", "nodes"], "zz", "machine.nodes: expected an integer, got 'zz'"),
])
def test_load_names_the_bad_field(tmp_path, keys, value, expect):
    msg = load_error(write_doc(tmp_path, mutate(keys, value)))
    assert expect in msg


def test_load_does_not_import_torch():
    code = "import sys; import bench.results; assert 'torch' not in sys.modules"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_summary_membw_and_burst_sustained_on_a_known_gpu_and_a_mig_slice():
    recs = [matmul("bf16", m=4096, tflops=700.0), matmul("bf16", m=8192, tflops=790.0),
            dict(matmul("bf16", m=8192, tflops=780.0), phase="remeasure"),
            dict(matmul("bf16", m=8192, tflops=760.0), phase="sustained"),
            {"op": "membw", "dtype": "u8", "bytes": 1 << 31, "time_ms": matmul()["time_ms"],
             "gbps": 3000.0, "correct": True},
            {"op": "membw", "dtype": "u8", "bytes": 1 << 31, "time_ms": matmul()["time_ms"],
             "gbps": 9000.0, "correct": False}]  # a wrong copy is never the figure
    s = results.summarize(recs, H100)
    # the MAMF is the re-measurement (burst), not the search's best median
    assert s["mamf_tflops"] == {"bf16": 780.0} and s["mamf_tflops_sustained"] == {"bf16": 760.0}
    assert (s["membw_gbps"], s["hbm_gbps_peak"], s["membw_efficiency"]) == (3000.0, 3350.0, 3000.0 / 3350.0)
    assert s["failed_checks"] == 1
    mig = {"device": "cuda", "mig": True, "world_size": 1,
           "gpu": {"name": "NVIDIA H100 80GB HBM3 MIG 1g.10gb", "normalized": None, "count": 1, "memory_gb": 9.8}}
    s = results.summarize(recs, mig)  # a slice is never rated against the whole GPU
    assert s["peak_tflops"] == {} and s["efficiency"] == {} and "membw_efficiency" not in s
    assert "hbm_gbps_peak" not in s and s["membw_gbps"] == 3000.0


def test_membw_record_is_validated(tmp_path):
    doc = good_doc()
    doc["records"].append({"op": "membw", "dtype": "u8", "bytes": 1024, "time_ms": matmul()["time_ms"],
                           "gbps": "fast", "correct": True})
    assert "records[4].gbps: expected a number" in load_error(write_doc(tmp_path, doc))


def _layer_record(op, dtype="bf16", rate=1.0):
    """One of kernels.layer's records (`run --ops layer`), its rate in TFLOP/s (gbps for element-wise),
    its work what that rate does in its 1 ms."""
    base = {"op": op, "dtype": dtype, "model": "llama3-8b", "tp": 1, "tokens": 256, "pass": "fprop",
            "time_ms": time_ms(), "correct": True}
    if op == "gemm":
        return {**base, "name": "qkv", "m": 256, "n": 6144, "k": 4096, "layout": "TN", "flops": rate * 1e9, "per": "layer",
                "tflops": rate, "max_rel_err": 1e-3}
    if op == "attention":
        return {**base, "batch": 1, "heads": 32, "kv_heads": 8, "head_dim": 128, "seq": 256, "causal": True,
                "flops": rate * 1e9, "tflops": rate}
    return {**base, "name": "rmsnorm", "bytes": int(rate * 1e6), "gbps": rate}


@pytest.mark.parametrize("field, value, needle", [
    ("membw_gbps", 99999.0, "summary.membw_gbps: 99999.0 exceeds every membw record (best 50)"),
    ("collectives.allreduce.busbw_gbps_max", 9000.0,
     "summary.collectives.allreduce.busbw_gbps_max: 9000.0 exceeds every allreduce record (best 2)"),
    ("layer.gemm_tflops", 5000.0, "summary.layer.gemm_tflops: 5000.0 exceeds every bf16 layer gemm record (best 0.9)"),
    ("layer.attention_tflops", 9999.0, "summary.layer.attention_tflops: 9999.0 exceeds every bf16 layer attention"),
    ("layer.elementwise_gbps", 500.0, "summary.layer.elementwise_gbps: 500.0 exceeds every bf16 layer elementwise"),
    ("layer.by_dtype.fp32.gemm_tflops", 70.0, "summary.layer.by_dtype.fp32.gemm_tflops: 70.0 exceeds every fp32"),
    # the layer it names is the one its records measured (8B rates were read as 70B's)
    ("layer.model", "llama3-70b", "summary.layer.model: 'llama3-70b' but its records measured 'llama3-8b'"),
    ("layer.tp", 8, "summary.layer.tp: 8 but its records measured 1: the summary contradicts the records"),
    ("layer.by_dtype.fp32.tokens", 9, "summary.layer.by_dtype.fp32.tokens: 9 but its records measured 256"),
])
def test_a_summary_rate_above_every_record_it_summarises_is_refused(tmp_path, field, value, needle):
    """The cost model reads these rates from the summary; each is a best or a total work over total
    time of its records, so none passes the best record. A hand edit that did (attention at 9,999
    TFLOP/s on a CPU) was priced as measured (hostile tester)."""
    records = [{"op": "membw", "dtype": "u8", "bytes": 1 << 30, "time_ms": time_ms(), "gbps": 50.0, "correct": True},
               allreduce(busbw=2.0), _layer_record("gemm", rate=0.9), _layer_record("attention", rate=0.1),
               _layer_record("elementwise", rate=5.0), _layer_record("gemm", "fp32", rate=0.5)]
    doc = {"schema_version": 1, "run_id": "r", "created_at": "2026-01-01T00:00:00Z", "costbench_version": "0",
           "tag": None, "machine": {**MACHINE, "world_size": 8}, "config": {}, "records": records,
           "summary": results.summarize(records, {**MACHINE, "world_size": 8})}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    results.load(str(path))   # the summary as written agrees with its records
    node = doc["summary"]
    *parents, last = field.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=re.escape(needle)):
        results.load(str(path))


@pytest.mark.parametrize("edit, needle", [
    (lambda s: s["efficiency"].update(bf16=50.0), "summary.efficiency.bf16: 50.0 is not mamf_tflops.bf16 / "
     "peak_tflops.bf16 = 0.7583: the summary contradicts itself"),
    (lambda s: s["peak_tflops"].update(bf16=-989.0), "summary.peak_tflops.bf16: -989.0 is not a datasheet peak"),
    (lambda s: s["peak_tflops"].pop("bf16"), "summary.efficiency.bf16: 0.7583417593528817 has no mamf_tflops.bf16 "
     "/ peak_tflops.bf16 beside it"),
    (lambda s: s.update(membw_efficiency=3.0), "summary.membw_efficiency: 3.0 is not membw_gbps / hbm_gbps_peak"),
    (lambda s: s.update(hbm_gbps_peak=0), "summary.hbm_gbps_peak: 0 is not a datasheet bandwidth"),
    (lambda s: s.update(stragglers=[1, "x", None]), "summary.stragglers[0]: 1 is not an object with rank, host"),
    (lambda s: s.update(stragglers=[{"rank": "3", "host": None, "uuid": None, "reason": "slow"}]),
     "summary.stragglers[0].rank: '3' expected int"),
    (lambda s: s.update(stragglers=[{"rank": 3, "host": 7, "uuid": None, "reason": "slow"}]),
     "summary.stragglers[0].host: 7 expected str or null"),
])
def test_a_summarys_efficiency_and_stragglers_are_what_summarize_writes(tmp_path, edit, needle):
    """Shown and ranked as read: an efficiency of 50 was printed as 5000% and a stragglers list
    [1, "x", null] as three flagged GPUs (hostile tester)."""
    from tests import synthetic

    doc = synthetic.result()
    path = synthetic.write(tmp_path, "ok.json", doc)
    assert results.load(path)["summary"]["efficiency"]["bf16"] == pytest.approx(750 / 989)
    doc["summary"]["stragglers"] = [{"rank": 3, "host": "ip-10-0-0-7", "uuid": None, "reason": "slow"}]
    results.load(synthetic.write(tmp_path, "flagged.json", doc))
    edit(doc["summary"])
    msg = load_error(synthetic.write(tmp_path, "edited.json", doc))
    assert needle in msg and msg.startswith(str(tmp_path / "edited.json"))
