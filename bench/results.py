"""Result files (schema_version 1, DESIGN.md): write them safely, read them strictly, summarise.

Writing follows pytest-benchmark's rule that a result is never overwritten: the file name is
claimed with O_CREAT|O_EXCL, and every later write goes to a temporary file in the same folder,
is fsynced and then os.replace'd over the claimed name, so at every instant the file on disk is
a complete, valid document; a sweep interrupted by Ctrl-C keeps the records that finished.

Reading (load) is torch-free and strict: a file that is missing, empty, not JSON, from another
schema version or with a field of the wrong type raises InputError naming the file and the field,
e.g. "results/x.json: records[3].time_ms.median: expected a number, got 'abc'".
"""

import contextlib
import datetime
import json
import math
import os
import re
import secrets
import socket
import threading

from bench import __version__
from cost_models.errors import InputError, OutputError
from cost_models.hardware import DTYPES
from cost_models.files import read_json
from kernels.records import best_matmul, sustained_matmul  # torch-free: the one home of the MAMF rule

SCHEMA_VERSION = 1
COLLECTIVES = ("allreduce", "reducescatter", "allgather", "alltoall")
LAYER_OPS = ("gemm", "attention", "elementwise")  # kernels.layer's records (costbench run --ops layer)
OPS = ("matmul", "membw") + COLLECTIVES + LAYER_OPS
MIB_256 = 256 << 20  # the size summary.collectives quotes beside the best: a common plateau point
LAYER_DTYPE = "bf16"  # summary.layer describes this dtype when measured (what training runs)


# ---- writing -------------------------------------------------------------------------------

def slug(text: str) -> str:
    """File-name-safe form of a tag or GPU name: 'coreweave/us-east' -> 'coreweave-us-east'."""
    return re.sub(r"[^a-z0-9.]+", "-", str(text).lower()).strip("-.")[:48]


def _finite(value):
    """NaN and inf are not JSON: store them as null rather than fail a run at its last write."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


_TEMP = re.compile(r"^\.(?P<base>.+)\.(?P<host>[a-z0-9.-]*)\.(?P<pid>\d+)\.[0-9a-f]{16}\.tmp$")
_OPEN_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _host() -> str:
    return slug(socket.gethostname()) or "host"


def _serialize(doc: dict) -> bytes:
    return (json.dumps(_finite(doc), indent=1, allow_nan=False) + "\n").encode()


def _write_temp(folder: str, base: str, data: bytes) -> str:
    """data in a new temporary file next to its final name; returns its path.

    The name is unpredictable (secrets) and carries host and pid so a later run can remove it if
    this process dies (clean_stale_temps); it is opened O_EXCL|O_NOFOLLOW, so a file or symlink
    planted under a guessed name is never followed or overwritten (issue 11, item 1)."""
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.{_host()}.{os.getpid()}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, _OPEN_NEW, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"{folder}: no free temporary file name")
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, 0o644)  # created 0o600 so nobody reads it half-written; a result is shareable
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return tmp


def fsync_dir(folder: str) -> None:
    try:  # make a rename durable; not every filesystem lets a directory be fsynced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def atomic_write_json(path: str, doc: dict, create: bool = False) -> None:
    """atomic_write_bytes of doc as JSON (NaN/inf stored as null)."""
    atomic_write_bytes(path, _serialize(doc), create)


@contextlib.contextmanager
def signals_deferred():
    """SIGINT and SIGTERM held until the block ends, then acted on as they would have been: files
    written together in it are all old or all new (a Ctrl-C in `report`'s writes left a new chart
    beside the old page). Python-level handlers, not a signal mask: a mask on the main thread lets
    the kernel hand the signal to another thread. Main thread only (elsewhere a plain block);
    SIGKILL cannot be held: report's manifest covers that."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    kinds = [k for k in (signal.SIGINT, getattr(signal, "SIGTERM", None)) if k is not None]
    old = {k: signal.signal(k, lambda signum, frame: caught.append(signum)) for k in kinds}
    try:
        yield
    finally:
        for k, handler in old.items():
            signal.signal(k, handler)
        if caught:
            handler = old[caught[0]]
            if callable(handler):          # SIGINT's KeyboardInterrupt, or the CLI's own handler
                handler(caught[0], None)
            elif handler == signal.SIG_DFL:
                signal.raise_signal(caught[0])


def atomic_write_bytes(path: str, data: bytes, create: bool = False) -> None:
    """Write data to path in one step: a temporary file in the same folder, fsync, then rename.

    create=False: os.replace over path (the previous version stays whole until the new one is).
    create=True: path must not exist; the temporary file is hard-linked to it (os.link fails on
    any existing name, symlinks included, and never follows one) so path appears only with its
    full content: a full disk at start leaves no empty file. Raises FileExistsError or OSError."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = _write_temp(folder, os.path.basename(path), data)
    try:
        if not create:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:  # a filesystem without hard links: claim the name exclusively, then rename
                os.close(os.open(path, _OPEN_NEW, 0o644))
                os.replace(tmp, path)
            else:
                os.unlink(tmp)
    except BaseException:  # Ctrl-C between write and rename included: leave no temp file behind
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(folder)


def staged_writes(folder: str, items: list) -> list:
    """Every (name, data) of items written to a temporary file in folder before any final name is
    touched; returns their temporary paths in order, for put_staged. A failure on any (a full disk)
    removes those already staged and raises: the folder is as it was (report's several files were
    left half old, half new by a disk that filled between them: hostile tester)."""
    staged = []
    try:
        for name, data in items:
            staged.append(_write_temp(folder, name, data))
    except BaseException:
        for tmp in staged:
            os.unlink(tmp)
        raise
    return staged


def put_staged(tmp: str, path: str) -> None:
    """A staged temporary file renamed over path (a rename needs no space)."""
    os.replace(tmp, path)


def clean_stale_temps(folder: str) -> list:
    """Remove this host's temporary files whose writer is dead (SIGKILL, power loss between write
    and rename); returns their names. A live writer's file (os.kill(pid, 0) succeeds, or the pid
    belongs to another user) and other hosts' files (a shared folder) are left alone."""
    removed, host = [], _host()
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _TEMP.match(name)
        if not m or m["host"] != host or int(m["pid"]) == os.getpid():
            continue
        try:
            os.kill(int(m["pid"]), 0)
            continue  # alive
        except PermissionError:
            continue  # alive, someone else's
        except (ProcessLookupError, OverflowError):
            pass
        try:
            if not os.path.isdir(os.path.join(folder, name)):
                os.unlink(os.path.join(folder, name))
                removed.append(name)
        except OSError:
            pass
    return removed


def gpu_label(machine: dict) -> str:
    """The <gpu> part of a file name and run id: catalog name, else torch's name, else 'cpu'."""
    gpu = machine.get("gpu") or {}
    if machine.get("device") == "cuda":
        return slug(gpu.get("normalized") or gpu.get("name") or "gpu")
    return "cpu"


class ResultWriter:
    """One result file, claimed at creation and rewritten atomically after every change.

    w = ResultWriter("results", machine, config, tag="coreweave/us-east")
    w.add(record) ...; w.finish(summary)      # w.path, w.doc, w.records
    """

    def __init__(self, out_dir: str, machine: dict, config: dict, tag: str | None = None,
                 version: str = __version__, now: datetime.datetime | None = None):
        now = now or datetime.datetime.now(datetime.timezone.utc)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        gpu = gpu_label(machine)
        self._lock = threading.Lock()  # a watchdog thread may finish the file while the run writes
        self.doc = {
            "schema_version": SCHEMA_VERSION,
            "run_id": "",
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "costbench_version": version,
            "tag": tag,
            "machine": machine,
            "config": config,
            "records": [],
            "summary": {},
        }
        try:
            os.makedirs(out_dir, exist_ok=True)
            clean_stale_temps(out_dir)
            for _ in range(100):  # a clash needs the same second, GPU, tag and 16-bit id: retry
                short = secrets.token_hex(2)
                name = "-".join(p for p in (stamp, gpu, slug(tag) if tag else "", short) if p)
                self.path = os.path.join(out_dir, name + ".json")
                self.doc["run_id"] = f"{stamp}-{gpu}-{short}"
                try:
                    atomic_write_json(self.path, self.doc, create=True)
                    self.saved_records = 0
                    break
                except FileExistsError:
                    continue
            else:
                raise InputError(f"{out_dir}: could not claim a new result file name")
        except OSError as e:
            raise OutputError(f"{out_dir}: cannot create a result file: {e.strerror or e}") from None

    @property
    def records(self) -> list:
        return self.doc["records"]

    def save(self) -> None:
        """Rewrite the file; on a full disk (or any OSError) raise OutputError saying what the
        file on disk still holds: os.replace never happened, so its last complete version."""
        with self._lock:
            try:
                atomic_write_json(self.path, self.doc)
            except OSError as e:
                raise OutputError(f"{self.path}: cannot write: {e.strerror or e}; the file keeps its last "
                                  f"complete version ({self.saved_records} records; `costbench cost "
                                  f"--results` fills a missing summary from them)") from None
            self.saved_records = len(self.records)

    def add(self, record: dict) -> None:
        self.records.append(record)
        self.save()

    def finish(self, summary: dict) -> None:
        self.doc["summary"] = summary
        self.save()


# ---- summary -------------------------------------------------------------------------------

def catalog_gpu(machine: dict):
    """The catalog GpuSpec of the measured GPU, or None for CPU runs, MIG slices (normalized is
    None for them: a slice is not rated against the whole GPU) and GPUs not in the catalog."""
    normalized = ((machine or {}).get("gpu") or {}).get("normalized")
    if (machine or {}).get("device") != "cuda" or not normalized or (machine or {}).get("mig"):
        return None
    from cost_models.hardware import find_gpu  # torch-free

    try:
        return find_gpu(normalized)
    except InputError:  # a file from a newer catalog: no peak rather than a guess
        return None


def _peak_table(machine: dict) -> dict:
    """Datasheet peaks of the measured GPU, or {} (see catalog_gpu)."""
    spec = catalog_gpu(machine)
    return spec.peak_tflops if spec else {}


def summarize(records: list, machine: dict) -> dict:
    """MAMF (the remeasure: burst) and its shape per dtype, the sustained re-timing, datasheet
    peak and efficiency (only where the GPU is known), the memory-copy bandwidth against the
    datasheet's HBM bandwidth, best all-reduce bus bandwidth and its message size, and how many
    records failed their check."""
    dtypes = list(dict.fromkeys(r["dtype"] for r in records if r.get("op") == "matmul"))
    peaks = _peak_table(machine)
    out = {"mamf_tflops": {}, "mamf_tflops_sustained": {}, "mamf_shape": {}, "peak_tflops": {},
           "efficiency": {}}
    for dtype in dtypes:
        best = best_matmul(records, dtype)
        if best is None:
            continue
        out["mamf_tflops"][dtype] = best["tflops"]
        out["mamf_shape"][dtype] = [best["m"], best["n"], best["k"]]
        sustained = sustained_matmul(records, dtype)
        if sustained:
            out["mamf_tflops_sustained"][dtype] = sustained["tflops"]
        if peaks.get(dtype):
            out["peak_tflops"][dtype] = peaks[dtype]
            out["efficiency"][dtype] = best["tflops"] / peaks[dtype]
    copies = [r for r in records if r.get("op") == "membw" and r.get("correct")]
    if copies:
        out["membw_gbps"] = max(r["gbps"] for r in copies)
        spec = catalog_gpu(machine)
        if spec:
            out["hbm_gbps_peak"] = spec.hbm_tbps * 1000
            out["membw_efficiency"] = out["membw_gbps"] / out["hbm_gbps_peak"]
    out["collectives"] = summarize_collectives(records, (machine or {}).get("nodes", 1))
    reduce = out["collectives"].get("allreduce")
    if reduce:  # the all-reduce keys readers had before the other collectives existed
        out.update(busbw_gbps_max=reduce["busbw_gbps_max"], busbw_bytes=reduce["bytes"],
                   allreduce_world_size=reduce["world_size"], allreduce_backend=reduce["backend"])
    layer = summarize_layer(records)
    if layer:
        out["layer"] = layer
    out["failed_checks"] = sum(1 for r in records if not record_ok(r))
    return out


def quoted_collective_records(records: list, op: str) -> list:
    """The records of one collective that its figures quote: the correct ones, out of place where
    the run has such records (nccl-tests' default), else the in-place ones (torch.distributed's
    all-reduce has only an in-place form). The one home of this rule: summary, compare, charts."""
    ok = [r for r in records if r.get("op") == op and r.get("wrong") == 0]
    return [r for r in ok if not r.get("inplace")] or ok


def summarize_collectives(records: list, nodes: int = 1) -> dict:
    """{op: best busbw and its size, busbw at 256 MiB (or None), world size, nodes, backend} over
    the correct records of each collective, out of place where there are such records (nccl-tests'
    default; all-reduce has only in-place ones). busbw is the per-iteration figure (the slowest
    rank's time, median over iterations); nccl-tests' back-to-back figure at the same size sits
    beside it."""
    out = {}
    for op in COLLECTIVES:
        chosen = quoted_collective_records(records, op)
        if not chosen:
            continue
        top = max(chosen, key=lambda r: r["busbw_gbps"])
        at_256 = next((r["busbw_gbps"] for r in chosen if r["bytes"] == MIB_256), None)
        out[op] = {"busbw_gbps_max": top["busbw_gbps"], "bytes": top["bytes"], "busbw_gbps_256mib": at_256,
                   "world_size": top["world_size"], "nodes": nodes, "backend": top["backend"],
                   "inplace": bool(top.get("inplace")),
                   "nccl_tests_busbw_gbps": (top.get("nccl_tests") or {}).get("busbw_gbps")}
    return out


def summarize_layer(records: list) -> dict | None:
    """summary.layer (SPEC): a model layer's rates per part, from its correct records, for bf16
    when measured (else the first dtype); with several dtypes each one's under "by_dtype".

    A record's "count" is how often one layer runs it (RMSNorm and the residual add twice), so
    the rates are the layer's: gemm_tflops = sum count*flops / sum count*median time over all GEMM
    records (the LM head included), attention_tflops likewise, elementwise_gbps = sum count*bytes
    / sum count*time. layer_ms is one layer's time per part (forward and backward; the LM head,
    once per model, is apart in lm_head_ms). None where a part has no correct record."""
    layer = [r for r in records if r.get("op") in LAYER_OPS]
    if not layer:
        return None
    dtypes = list(dict.fromkeys(r["dtype"] for r in layer))
    blocks = {d: _layer_block([r for r in layer if r["dtype"] == d]) for d in dtypes}
    out = dict(blocks[LAYER_DTYPE if LAYER_DTYPE in blocks else dtypes[0]])
    if len(blocks) > 1:
        out["by_dtype"] = blocks
    return out


def _layer_block(recs: list) -> dict:
    ok = [r for r in recs if r.get("correct")]

    def ms(rs):
        return sum(r.get("count", 1) * r["time_ms"]["median"] for r in rs) if rs else None

    def rate(rs, work, scale):
        total = ms(rs)
        return sum(r.get("count", 1) * r[work] for r in rs) / (total * 1e-3) / scale if total else None

    gemm = [r for r in ok if r["op"] == "gemm"]
    attention = [r for r in ok if r["op"] == "attention"]
    elementwise = [r for r in ok if r["op"] == "elementwise"]
    first = recs[0]
    return {"model": first.get("model"), "tp": first.get("tp"), "tokens": first.get("tokens"),
            "dtype": first["dtype"], "width_divisor": first.get("width_divisor", 1), "shape": first.get("shape"),
            "gemm_tflops": rate(gemm, "flops", 1e12), "attention_tflops": rate(attention, "flops", 1e12),
            "elementwise_gbps": rate(elementwise, "bytes", 1e9),
            "layer_ms": {"gemm": ms([r for r in gemm if r.get("per", "layer") == "layer"]),
                         "attention": ms(attention), "elementwise": ms(elementwise)},
            "lm_head_ms": ms([r for r in gemm if r.get("per") == "model"]),
            "failed_checks": len(recs) - len(ok)}


def record_ok(record: dict) -> bool:
    """False for a measurement that failed its correctness check."""
    if record.get("op") in ("matmul", "membw", *LAYER_OPS):
        return bool(record.get("correct"))
    if record.get("op") in COLLECTIVES:
        return record.get("wrong") == 0
    return True


# ---- reading -------------------------------------------------------------------------------

def _number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _integer(v):
    return isinstance(v, int) and not isinstance(v, bool)


_KINDS = {  # name -> (test, what the error says was expected)
    "number": (_number, "a number"),
    "number|null": (lambda v: v is None or _number(v), "a number or null"),
    "int": (_integer, "an integer"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "str|null": (lambda v: v is None or isinstance(v, str), "a string or null"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "dict": (lambda v: isinstance(v, dict), "an object"),
    "dict|null": (lambda v: v is None or isinstance(v, dict), "an object or null"),
    "list": (lambda v: isinstance(v, list), "a list"),
}

_TOP = {"schema_version": "int", "run_id": "str", "created_at": "str", "costbench_version": "str",
        "tag": "str|null", "machine": "dict", "config": "dict", "records": "list"}
# "summary" may be missing (SIGKILL, power loss before the last write): load computes it.
_MACHINE = {"device": "str", "gpu": "dict|null", "world_size": "int"}
MACHINE_DEVICES = ("cpu", "cuda")
_MACHINE_OPTIONAL = {"nodes": "int", "host_memory_gb": "number|null", "gpus": "list", "mig": "bool"}
# The summary's fields that readers (cost, compare, report) walk: checked when present, so that a
# hand-edited file fails here with its field named, not deep inside a reader.
_SUMMARY_OPTIONAL = {**{k: "dict|null" for k in ("mamf_tflops", "mamf_tflops_sustained", "mamf_shape",
                                                  "peak_tflops", "efficiency", "collectives", "layer")},
                     **{k: "number|null" for k in ("membw_gbps", "hbm_gbps_peak", "membw_efficiency",
                                                   "busbw_gbps_max")},
                     "complete": "bool", "stragglers": "list", "failures": "list", "mamf_tflops_by_rank": "dict|null"}
_TIME = {"min": "number", "median": "number", "mean": "number", "p10": "number", "p90": "number",
         "stdev": "number|null", "n": "int"}
_RECORD = {"op": "str", "dtype": "str", "time_ms": "dict"}
_BY_OP = {
    "matmul": {"m": "int", "n": "int", "k": "int", "tflops": "number", "correct": "bool",
               "max_rel_err": "number|null"},
    "membw": {"bytes": "int", "gbps": "number", "correct": "bool"},
    **{op: {"bytes": "int", "world_size": "int", "backend": "str", "algbw_gbps": "number",
            "busbw_gbps": "number", "wrong": "int"} for op in COLLECTIVES},
    "gemm": {"model": "str", "tp": "int", "tokens": "int", "name": "str", "pass": "str", "m": "int", "n": "int",
             "k": "int", "layout": "str", "flops": "number", "per": "str", "tflops": "number",
             "correct": "bool", "max_rel_err": "number|null"},
    "attention": {"model": "str", "tp": "int", "tokens": "int", "pass": "str", "batch": "int", "heads": "int",
                  "kv_heads": "int", "head_dim": "int", "seq": "int", "causal": "bool", "flops": "number",
                  "tflops": "number", "correct": "bool"},
    "elementwise": {"model": "str", "tp": "int", "tokens": "int", "name": "str", "pass": "str",
                    "bytes": "int", "gbps": "number", "correct": "bool"},
}


def _show(value) -> str:
    text = repr(value) if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(path: str, obj: dict, fields: dict, where: str) -> None:
    for name, kind in fields.items():
        field = f"{where}.{name}" if where else name
        if name not in obj:
            raise InputError(f"{path}: {field}: missing")
        test, expected = _KINDS[kind]
        if not test(obj[name]):
            raise InputError(f"{path}: {field}: expected {expected}, got {_show(obj[name])}")


def _check_present(path: str, obj: dict, fields: dict, where: str) -> None:
    """_check for the fields of `fields` that obj has (optional ones)."""
    _check(path, obj, {k: v for k, v in fields.items() if k in obj}, where)


def _check_layer_summary(path: str, layer) -> None:
    """summary.layer's labels and times (summarize_layer writes them; cost reads dtype): a dtype
    costbench times, non-negative times, by_dtype an object of such blocks."""
    if not isinstance(layer, dict):
        return
    blocks = [("summary.layer", layer)]
    by_dtype = layer.get("by_dtype")
    if by_dtype is not None:
        _check(path, layer, {"by_dtype": "dict"}, "summary.layer")
        _check(path, by_dtype, dict.fromkeys(by_dtype, "dict"), "summary.layer.by_dtype")
        blocks += [(f"summary.layer.by_dtype.{d}", b) for d, b in by_dtype.items()]
    for where, block in blocks:
        dtype = block.get("dtype")
        if dtype is not None and dtype not in DTYPES:
            raise InputError(f"{path}: {where}.dtype: expected one of {', '.join(DTYPES)}, got {_show(dtype)}")
        times = [("lm_head_ms", block.get("lm_head_ms"))]
        if block.get("layer_ms") is not None:
            _check(path, block, {"layer_ms": "dict"}, where)
            times += [(f"layer_ms.{k}", v) for k, v in block["layer_ms"].items()]
        for name, value in times:
            ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0)
            if not ok:
                raise InputError(f"{path}: {where}.{name}: expected a time of at least 0 ms or null, got {_show(value)}")


def validate(doc, path: str = "<result>") -> dict:
    """Check a parsed result document; returns it, or raises InputError naming path and field."""
    if not isinstance(doc, dict):
        raise InputError(f"{path}: expected a JSON object at the top, got {type(doc).__name__}")
    if "schema_version" in doc and doc["schema_version"] != SCHEMA_VERSION:
        raise InputError(f"{path}: schema_version: expected {SCHEMA_VERSION}, got "
                         f"{_show(doc['schema_version'])} (not a costbench v1 result file)")
    _check(path, doc, _TOP, "")
    _check(path, doc, {"summary": "dict|null"} if "summary" in doc else {}, "")
    _check(path, doc["machine"], _MACHINE, "machine")
    # costbench runs on "cpu" or "cuda" (run --device); another value (a hand-edited "tpu") would be
    # read as a CPU by every reader, so it is refused here with its name
    if doc["machine"]["device"] not in MACHINE_DEVICES:
        raise InputError(f"{path}: machine.device: expected one of {', '.join(MACHINE_DEVICES)}, "
                         f"got {_show(doc['machine']['device'])}")
    _check_present(path, doc["machine"], _MACHINE_OPTIONAL, "machine")
    summary = doc.get("summary") or {}
    _check_present(path, summary, _SUMMARY_OPTIONAL, "summary")
    collectives = summary.get("collectives") or {}
    _check(path, collectives, dict.fromkeys(collectives, "dict"), "summary.collectives")
    _check_layer_summary(path, summary.get("layer"))
    for i, rec in enumerate(doc["records"]):
        where = f"records[{i}]"
        if not isinstance(rec, dict):
            raise InputError(f"{path}: {where}: expected an object, got {_show(rec)}")
        _check(path, rec, _RECORD, where)
        _check(path, rec["time_ms"], _TIME, f"{where}.time_ms")
        if rec["op"] not in _BY_OP:  # later schema-1 writers may add ops; their common part is checked
            continue
        _check(path, rec, _BY_OP[rec["op"]], where)
    return doc


MAX_DEPTH = 32  # a result file nests ~5 deep; deeper is not ours (and json recursion has a limit)
MAX_STR = 1 << 16  # a host name, a note, a failure line: nothing costbench writes comes near 64 KiB
MAX_TAG = 1024     # what `run --tag` takes: a label; readers take up to MAX_STR (files written by hand or older runs)
MAX_INT = 2 ** 63  # bytes, shapes and counts fit in 64 bits; larger overflow float arithmetic later
MAX_GBPS = 1e5  # 100 TB/s: ~50x the fastest link or HBM shipping (NVLink 5: 1.8 TB/s, B200 HBM: 8 TB/s)
# The floors of a compute or memory rate the cost model divides by: 1 MFLOP/s and 1 MB/s, thousands of
# times below one CPU core; a 0 or 1e-300 there is no measurement (it priced a run at an MFU of 1e298%).
# Collectives may be 0: a world of one process has no link (busbw 0 by definition).
MIN_TFLOPS = 1e-6
MIN_GBPS = 1e-3


def _scan(doc, path: str) -> None:
    """Every value of doc: NaN/Infinity (json accepts them), integers beyond 64 bits, strings over
    64 KiB and nesting deeper than MAX_DEPTH are refused, naming the field. Iterative: the depth check is the point."""
    stack = [(doc, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(f"{path}: {where or 'top'}: nested deeper than {MAX_DEPTH} levels; not a result file")
        if isinstance(value, float) and not math.isfinite(value):
            raise InputError(f"{path}: {where}: {value} is not a finite number")
        if isinstance(value, str) and len(value) > MAX_STR:
            raise InputError(f"{path}: {where}: a string of {len(value)} characters; not a result file")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise InputError(f"{path}: {where}: integer of {len(str(abs(value)))} digits is out of range")
        if isinstance(value, dict):
            stack.extend((v, f"{where}.{k}" if where else str(k), depth + 1) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value))


def _tflops_ceiling() -> float:
    """10x the highest datasheet peak in the GPU catalog: no measurement can be above it."""
    from cost_models.hardware import gpus

    return 10 * max(v for g in gpus() for v in g.peak_tflops.values() if v)


def _iso_time(text: str) -> bool:
    """Whether text is an ISO 8601 date or time (a trailing Z read as UTC, as Python 3.10 does not)."""
    try:
        datetime.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return False
    return True


def _plausible(doc: dict, path: str) -> None:
    """Values that have the right type but cannot be measurements, and a summary that contradicts
    the records it summarises (README: What costbench refuses)."""
    def bad(where, value, why):
        raise InputError(f"{path}: {where}: {_show(value)} {why}")

    created = doc.get("created_at")
    if isinstance(created, str) and not _iso_time(created):   # compare and report list runs by it
        bad("created_at", created, "is not an ISO 8601 time (costbench writes 2026-11-22T10:15:00Z)")
    machine = doc["machine"]
    for key in ("world_size", "nodes"):
        if _integer(machine.get(key)) and machine[key] < 1:
            bad(f"machine.{key}", machine[key], "must be at least 1")
    gpu = machine.get("gpu") if isinstance(machine.get("gpu"), dict) else {}
    if machine.get("mig") is True and isinstance(gpu.get("normalized"), str):   # priced as the whole GPU once
        bad("machine.gpu.normalized", gpu["normalized"], "names a whole GPU, but machine.mig is true: a MIG "
            "slice has no catalog name, peak or price")
    ceiling = _tflops_ceiling()
    best, measured = {}, set()  # (op, dtype, key) -> highest rate among the records that passed their check
    for i, rec in enumerate(doc["records"]):
        where = f"records[{i}]"
        for key, value in rec["time_ms"].items():
            if _number(value) and value < 0:
                bad(f"{where}.time_ms.{key}", value, "is negative")
        for key in ("m", "n", "k", "world_size"):
            if _integer(rec.get(key)) and rec[key] < 1:
                bad(f"{where}.{key}", rec[key], "must be at least 1")
        if _integer(rec.get("bytes")) and rec["bytes"] < 0:
            bad(f"{where}.bytes", rec["bytes"], "is negative")
        for key, high in (("tflops", ceiling), ("busbw_gbps", MAX_GBPS), ("algbw_gbps", MAX_GBPS), ("gbps", MAX_GBPS)):
            value = rec.get(key)
            if not _rate(f"{where}.{key}", value, high, bad):
                continue
            k = (rec["op"], rec["dtype"], key)
            measured.add(k)
            if record_ok(rec):   # a summary is built from the records that passed (summarize)
                best[k] = max(best.get(k, 0), value)
    summary = doc.get("summary") or {}
    _plausible_summary(summary, ceiling, bad)
    for where, value, found, what in _summarised_rates(summary, best, measured):
        if not _number(value) or found is None:
            continue
        if found is False:
            bad(f"summary.{where}", value, f"has no {what} record that passed its check behind it (every one "
                "failed): the summary contradicts the records")
        if value > found * (1 + 1e-6):
            bad(f"summary.{where}", value, f"exceeds every {what} record (best {found:g}): the summary "
                "contradicts the records")
    _consistent_world(doc, bad)
    _layer_identity(doc, bad)
    failed = sum(1 for rec in doc["records"] if not record_ok(rec))
    # summarize counts exactly its records that failed: more is as false as fewer where there are
    # records (5 beside none failed warned "5 of its measurements failed"); a summary-only file has none
    claimed = summary.get("failed_checks")
    if _integer(claimed) and (claimed < failed or (doc["records"] and claimed > failed)):
        bad("summary.failed_checks", claimed, f"but {failed} records failed their check: the summary "
            "contradicts the records")


LAYER_IDENTITY = ("model", "tp", "tokens", "width_divisor", "shape")


def _layer_identity(doc: dict, bad) -> None:
    """summary.layer names the layer its records measured (summarize_layer takes them from the first
    record of its dtype): a hand-edited model llama3-70b beside records of llama3-8b's shapes had
    the cost model read 8B rates as 70B's measured ones."""
    layer = (doc.get("summary") or {}).get("layer")
    if not isinstance(layer, dict):
        return
    blocks = [("layer", layer)] + [(f"layer.by_dtype.{d}", b) for d, b in (layer.get("by_dtype") or {}).items()
                                    if isinstance(b, dict)]
    for where, block in blocks:
        first = next((r for r in doc["records"] if r.get("op") in LAYER_OPS and r.get("dtype") == block.get("dtype")),
                     None)
        if first is None:   # a summary-only file: nothing to compare with
            continue
        for key in LAYER_IDENTITY:
            expected = first.get(key, 1) if key == "width_divisor" else first.get(key)
            if key in block and block[key] != expected:
                bad(f"summary.{where}.{key}", block[key], f"but its records measured {_show(expected)}: the "
                    "summary contradicts the records")


def _consistent_world(doc: dict, bad) -> None:
    """No more nodes than ranks, and every collective ran over the machine's world: its records and
    summary say the same size (a hand-edited world_size 1 beside records of 2 was read)."""
    world = doc["machine"].get("world_size")
    if not _integer(world):
        return
    nodes = doc["machine"].get("nodes")
    if _integer(nodes) and nodes > world:
        bad("machine.nodes", nodes, f"exceeds machine.world_size {world} (a node runs at least one rank)")
    for i, rec in enumerate(doc["records"]):
        if rec.get("op") in COLLECTIVES and _integer(rec.get("world_size")) and rec["world_size"] != world:
            bad(f"records[{i}].world_size", rec["world_size"], f"differs from machine.world_size {world}")
    colls = (doc.get("summary") or {}).get("collectives")
    for op, c in (colls.items() if isinstance(colls, dict) else ()):
        if not isinstance(c, dict):
            continue
        if _integer(c.get("world_size")) and c["world_size"] != world:
            bad(f"summary.collectives.{op}.world_size", c["world_size"], f"differs from machine.world_size {world}")
        if _integer(c.get("nodes")) and c["nodes"] > world:
            bad(f"summary.collectives.{op}.nodes", c["nodes"], f"exceeds machine.world_size {world} (a node runs "
                "at least one rank)")


def _summarised_rates(summary: dict, best: dict, measured: set):
    """(field, value, found, what) for the summary's rates the cost model reads. found: the best
    rate among the records of that kind that passed their check; False where there are such
    records but every one failed; None where the file has none (a summary-only file). Each summary
    rate is a best or a total-work-over-total-time of passing records, so none can pass the best of
    them (a hand-edited 9,999 TFLOP/s attention on a CPU was read as measured, and a summary kept
    its MAMF while every matmul record failed: hostile testers)."""
    def top(op, key, dtype=None):
        def mine(keys):
            return [k for k in keys if k[0] == op and k[2] == key and dtype in (None, k[1])]
        found = [best[k] for k in mine(best)]
        return max(found) if found else (False if mine(measured) else None)

    for key in ("mamf_tflops", "mamf_tflops_sustained"):   # a sustained 500 TFLOP/s on a CPU was read
        mamf = summary.get(key) if isinstance(summary.get(key), dict) else {}
        for dtype, value in mamf.items():
            yield f"{key}.{dtype}", value, top("matmul", "tflops", dtype), f"{dtype} matmul"
    yield "busbw_gbps_max", summary.get("busbw_gbps_max"), top("allreduce", "busbw_gbps"), "all-reduce"
    yield "membw_gbps", summary.get("membw_gbps"), top("membw", "gbps"), "membw"
    colls = summary.get("collectives") if isinstance(summary.get("collectives"), dict) else {}
    for op, c in colls.items():
        if isinstance(c, dict):
            yield f"collectives.{op}.busbw_gbps_max", c.get("busbw_gbps_max"), top(op, "busbw_gbps"), op
    layer = summary.get("layer") if isinstance(summary.get("layer"), dict) else {}
    blocks = [("layer", layer)] + [(f"layer.by_dtype.{d}", b) for d, b in (layer.get("by_dtype") or {}).items()
                                   if isinstance(b, dict)]
    for name, block in blocks:
        dtype = block.get("dtype") if isinstance(block.get("dtype"), str) else None
        for key, op, unit in (("gemm_tflops", "gemm", "tflops"), ("attention_tflops", "attention", "tflops"),
                              ("elementwise_gbps", "elementwise", "gbps")):
            yield f"{name}.{key}", block.get(key), top(op, unit, dtype), f"{dtype or ''} layer {op}".replace("  ", " ")


def _plausible_summary(summary: dict, ceiling: float, bad) -> None:
    """The summary's rates, which the cost model reads directly (a summary-only file has no
    records to compare them with): none negative, none above what any hardware delivers."""
    layer = summary.get("layer") if isinstance(summary.get("layer"), dict) else {}
    colls = summary.get("collectives") if isinstance(summary.get("collectives"), dict) else {}
    rates = [("membw_gbps", summary.get("membw_gbps"), MAX_GBPS, MIN_GBPS),
             ("busbw_gbps_max", summary.get("busbw_gbps_max"), MAX_GBPS, 0),
             ("layer.gemm_tflops", layer.get("gemm_tflops"), ceiling, MIN_TFLOPS),
             ("layer.attention_tflops", layer.get("attention_tflops"), ceiling, MIN_TFLOPS),
             ("layer.elementwise_gbps", layer.get("elementwise_gbps"), MAX_GBPS, MIN_GBPS)]
    for key in ("mamf_tflops", "mamf_tflops_sustained"):
        if isinstance(summary.get(key), dict):
            rates += [(f"{key}.{d}", v, ceiling, MIN_TFLOPS) for d, v in summary[key].items()]
    rates += [(f"collectives.{op}.busbw_gbps_max", c.get("busbw_gbps_max"), MAX_GBPS, 0)
              for op, c in colls.items() if isinstance(c, dict)]
    for where, value, high, low in rates:
        _rate(f"summary.{where}", value, high, bad, low)
    _derived_ratios(summary, ceiling, bad)
    _straggler_items(summary.get("stragglers"), bad)


def _derived_ratios(summary: dict, ceiling: float, bad) -> None:
    """A summary's efficiency is its rate over its datasheet peak (summarize): shown and ranked as
    read, a hand-edited efficiency 50 was printed as 5000% and one on a CPU run (no peak) beside it."""
    peaks = summary.get("peak_tflops") if isinstance(summary.get("peak_tflops"), dict) else {}
    mamf = summary.get("mamf_tflops") if isinstance(summary.get("mamf_tflops"), dict) else {}
    effs = summary.get("efficiency") if isinstance(summary.get("efficiency"), dict) else {}
    for dtype, peak in peaks.items():
        if _number(peak) and not 0 < peak <= ceiling:
            bad(f"summary.peak_tflops.{dtype}", peak, f"is not a datasheet peak (above 0, at most {ceiling:g})")
    pairs = [(f"efficiency.{d}", e, mamf.get(d), peaks.get(d), f"mamf_tflops.{d} / peak_tflops.{d}")
             for d, e in effs.items()]
    pairs.append(("membw_efficiency", summary.get("membw_efficiency"), summary.get("membw_gbps"),
                  summary.get("hbm_gbps_peak"), "membw_gbps / hbm_gbps_peak"))
    if _number(summary.get("hbm_gbps_peak")) and not 0 < summary["hbm_gbps_peak"] <= MAX_GBPS:
        bad("summary.hbm_gbps_peak", summary["hbm_gbps_peak"], f"is not a datasheet bandwidth (above 0, at most "
            f"{MAX_GBPS:g})")
    for where, eff, rate, peak, ratio in pairs:
        if not _number(eff):
            continue
        if not (_number(rate) and _number(peak) and peak > 0):
            bad(f"summary.{where}", eff, f"has no {ratio} beside it (a run on a GPU the catalog knows has both)")
        if abs(eff - rate / peak) > 0.01 * max(rate / peak, 1e-9):
            bad(f"summary.{where}", eff, f"is not {ratio} = {rate / peak:.4g}: the summary contradicts itself")


def _straggler_items(listed, bad) -> None:
    """summary.stragglers as bench.stragglers writes them: objects with an integer rank, a host and
    uuid (strings or null) and a reason (a list [1, "x", null] was printed as three flagged GPUs)."""
    types = {"rank": (int,), "host": (str, type(None)), "uuid": (str, type(None)), "reason": (str,)}
    for i, item in enumerate(listed if isinstance(listed, list) else ()):
        if not isinstance(item, dict):
            bad(f"summary.stragglers[{i}]", item, "is not an object with rank, host, uuid and reason")
        for key, allowed in types.items():
            value = item.get(key)
            if not isinstance(value, allowed) or isinstance(value, bool):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
                bad(f"summary.stragglers[{i}].{key}", value, f"expected {names}")


def _rate(where: str, value, high: float, bad, low: float = 0) -> bool:
    """False for a value that is not a number (left to the schema); bad() for a negative rate, one
    below a positive `low` (a rate something divides by) or above `high`; True for a plausible one."""
    if not _number(value):
        return False
    if value < 0:
        bad(where, value, "is negative")
    if value < low:
        bad(where, value, f"is below {low:g}: not a measured rate (a run that measured nothing leaves it out)")
    if value > high:
        bad(where, value, f"is above {high:g}, more than any hardware delivers")
    return True


def load(path: str) -> dict:
    """Read and validate one result file. Any problem -> InputError with one line naming it.

    A file whose summary is missing or empty (a run killed by SIGKILL, a watchdog or a full disk
    keeps its records but never got its summary) is usable: the summary is computed from the
    records and marked complete: false, summary_from_records: true (SPEC)."""
    doc = read_json(path, "result file")
    _scan(doc, path)
    doc = fill_summary(validate(doc, path))
    _plausible(doc, path)
    return doc


def fill_summary(doc: dict) -> dict:
    """A file whose run never wrote its summary (killed by SIGKILL, power lost mid-run; the
    records are flushed as they finish) gets one computed from its records, marked
    complete: false and summary_from_records: true (SPEC.md). Other files are returned as they are."""
    if doc.get("summary"):
        return doc
    summary = summarize(doc["records"], doc["machine"])
    summary.update(complete=False, summary_from_records=True,
                   failures=[f"{r['op']} {r.get('dtype')}: failed its check" for r in doc["records"]
                             if not record_ok(r)])
    doc["summary"] = summary
    return doc


INTERRUPTED = "interrupted (Ctrl-C or SIGTERM)"   # summary.error of a run a signal stopped


def note_in_summary(note: str) -> bool:
    """Whether `costbench run`'s end-of-run summary prints this config note (cmd_run.summary_text):
    the run then writes it there only, not also as it happens (it read twice on one screen)."""
    return "not run" in note or "in-place" in note or note.startswith(("layer", "matmul"))
