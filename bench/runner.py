"""One measurement run: fingerprint, warm-up, matmul MAMF search per dtype, memory bandwidth,
collective sweeps, a model layer's own work (kernels.layer), the MAMF shapes re-timed at the end
(sustained), fingerprint again, result file.

The flow is DESIGN.md's: every finished record goes to the result file at once (bench.results
rewrites it atomically), the summary is computed from the records at the end, and the file is
finished even when the run is interrupted. Under torchrun only rank 0 prints and writes; on GPUs
every rank times its own GPU's matmul too, and the per-rank MAMFs go into the summary
(`mamf_tflops_by_rank`) because one slow or faulty GPU is exactly what a rented node can hide.
On CPU only rank 0 times matmul: ranks there share the host's cores and would measure contention.
Every rank reads its GPU's NVML fingerprint before and after (bench.gpu_fingerprint); rank 0
gathers them into machine.gpus and the summary names stragglers and throttling GPUs
(bench.stragglers).

torch and kernels are imported inside run(), so RunConfig validates arguments without torch,
except the layer's shape: with `layer` in ops, kernels.layer (and so torch) checks --model/--tp.
"""

import dataclasses
import os
import signal
import threading
import sys
import tempfile

from bench import results
from bench.cli import EXIT_CHECK_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_RANK_FAILED
from bench.progress import Progress
from bench.stragglers import slow_ranks, stragglers
from cost_models.errors import InputError, unknown_name
from cost_models.hardware import DTYPES  # kernels.matmul.DTYPES is this tuple; importing it here needs no torch
from kernels.records import LAYOUTS  # torch-free

DEFAULT_OPS = ("matmul", "membw") + results.COLLECTIVES  # RunConfig's (run_quick's); layer needs a --model
OPS = DEFAULT_OPS + ("layer",)
LAYER_SHAPE_FLAGS = ("hidden", "heads", "kv_heads", "ffn", "vocab", "seq", "experts", "top_k", "moe_ffn")
DEVICES = ("auto", "cpu", "cuda")


@dataclasses.dataclass
class RunConfig:
    """What `costbench run` was asked for. dtypes None: kernels.matmul.default_dtypes(device)."""
    device: str = "auto"
    ops: tuple = DEFAULT_OPS
    dtypes: tuple | None = None
    quick: bool = False
    tag: str | None = None
    out: str = "results"
    inplace: bool = False          # also time reduce-scatter and all-gather in place
    max_bytes: int | None = None   # the largest collective message size (default: kernels.collectives)
    layout: str | None = None      # None: TN (matmul_layout); given, it needs matmul in ops
    warmup_s: float | None = None  # None: kernels.matmul.WARMUP_S of the device
    model: str | None = None  # the layer op's model: a catalog name...
    tp: int = 1
    tp_given: bool = False    # --tp was on the command line: only the layer op reads it
    shape: dict = dataclasses.field(default_factory=dict)  # ...and/or LAYER_SHAPE_FLAGS overriding it
    layer_shape: object = dataclasses.field(default=None, init=False)  # kernels.layer.LayerShape or None

    def __post_init__(self):
        if self.device not in DEVICES:
            raise unknown_name("device", self.device, DEVICES)
        if self.layout is not None and self.layout not in LAYOUTS:
            raise unknown_name("layout", self.layout, LAYOUTS)
        if self.warmup_s is not None and not 0 <= self.warmup_s <= 3600:
            raise InputError(f"--warmup-s {self.warmup_s:g}: must be between 0 and 3600 seconds")
        for op in self.ops:
            if op not in OPS:
                raise unknown_name("op", op, OPS)
        for dtype in self.dtypes or ():
            if dtype not in DTYPES:
                raise unknown_name("dtype", dtype, DTYPES)
        if self.max_bytes is not None and (self.max_bytes < 4 or self.max_bytes % 4):
            raise InputError(f"--max-bytes {self.max_bytes}: must be a positive multiple of 4 bytes (fp32 elements)")
        _check_tag(self.tag)
        _check_applies(self)
        # keep the order given, drop repeats: `--dtypes bf16,bf16` measures bf16 once
        self.ops = tuple(dict.fromkeys(self.ops))
        self.dtypes = tuple(dict.fromkeys(self.dtypes)) if self.dtypes else None
        if "layer" in self.ops:
            self.layer_shape = layer_shape(self.model, self.shape, self.tp)
            if self.layer_shape is None and self.ops == ("layer",):   # skipped with a note: then nothing runs
                raise InputError("--ops layer without --model (or --hidden/--heads/--ffn): nothing to measure; "
                                 "name the model, e.g. --model llama3-8b")
        elif self.model is not None or self.tp_given or any(v is not None for v in self.shape.values()):
            raise InputError("--model, --tp and the shape flags describe the layer op: add layer to --ops")

    @property
    def matmul_layout(self) -> str:
        return self.layout or "TN"


def _check_tag(tag: str | None) -> None:
    """A tag every reader can read back (bench.results.MAX_STR) and print as one table cell: a
    100,000-character tag was measured, exited 0 and then refused by compare and cost; a newline
    or an escape sequence in one broke compare's table and recoloured the terminal."""
    if tag is None:
        return
    if len(tag) > results.MAX_TAG:
        raise InputError(f"--tag: {len(tag):,} characters; at most {results.MAX_TAG} (a label such as "
                         "coreweave/us-east-04)")
    bad = next((c for c in tag if not c.isprintable()), None)
    if bad is not None:
        raise InputError(f"--tag {ascii(tag)[:60]}: holds the non-printable character {ascii(bad)}; a tag is "
                         "one line of printable text")


# flags that only some ops read: each given without one of those ops would be recorded as if applied
_APPLIES = (("dtypes", ("matmul", "layer"), "sets the dtypes of matmul and layer"),
            ("layout", ("matmul",), "sets matmul's operand layout (layer times its own TN/NN/NT passes)"),
            ("warmup_s", ("matmul", "membw"), "warms the GPU before matmul and membw; nothing else warms up"),
            ("inplace", ("reducescatter", "allgather"), "adds in-place reduce-scatter and all-gather "
                                                        "(all-reduce is always in place, all-to-all never)"),
            ("max_bytes", results.COLLECTIVES, "bounds the collectives' message sizes"))


def _check_applies(cfg: "RunConfig") -> None:
    for field, ops, what in _APPLIES:
        value = getattr(cfg, field)
        given = value is not None and value is not False   # `not in (None, False)` let 0.0 (== False) by
        if given and not any(op in cfg.ops for op in ops):
            raise InputError(f"--{field.replace('_', '-')} {what}: add {' or '.join(ops)} to --ops "
                             f"(--ops {','.join(cfg.ops)})")


def layer_shape(model: str | None, flags: dict, tp: int):
    """The layer op's model shape (kernels.layer.LayerShape), checked against tp; None when
    neither --model nor shape flags name one (the op is then skipped with a note)."""
    from cost_models.models import find_model
    from kernels import layer

    flags = {k: v for k, v in flags.items() if v is not None}
    unknown = set(flags) - set(LAYER_SHAPE_FLAGS)
    if unknown:
        raise InputError(f"layer shape: unknown field(s) {', '.join(sorted(unknown))}")
    if model is None and not flags:
        return None
    if ("experts" in flags) != ("top_k" in flags) and not (model and find_model(model).moe):
        raise InputError("--experts and --top-k go together (a mixture of experts needs both)")
    if model is not None:
        spec = find_model(model)
        base = {"hidden": spec.hidden, "heads": spec.heads, "kv_heads": spec.kv_heads, "ffn": spec.ffn,
                "vocab": spec.vocab, "seq": spec.seq_len, "mlp": spec.mlp, "experts": spec.experts,
                "top_k": spec.top_k, "moe_ffn": spec.moe_ffn}
        missing = [k for k in ("heads", "kv_heads", "ffn") if base[k] is None and k not in flags]
        if missing:
            raise InputError(f"--model {spec.name}: the catalog has no {', '.join(missing)}; give "
                             + " ".join(f"--{k.replace('_', '-')}" for k in missing))
        changed = {k: v for k, v in flags.items() if base[k] != v}
        # a changed catalog shape is another model: its name must not claim the catalog's
        name = spec.name if not changed else (
            f"custom ({spec.name} with " + ", ".join(f"{k}={v}" for k, v in changed.items()) + ")")
    else:
        missing = [k for k in ("hidden", "heads", "ffn") if k not in flags]
        if missing:
            raise InputError("--ops layer without --model needs " + ", ".join(f"--{k}" for k in missing))
        from cost_models.models import DEFAULT_SEQ_LEN

        base = {"kv_heads": flags["heads"], "vocab": None, "seq": DEFAULT_SEQ_LEN}
        name = "custom"
    shape = layer.LayerShape(name=name, **{**base, **flags})
    layer.shard(shape, tp)  # InputError if tp cannot split it
    from cost_models.parallelism import GPUS_PER_NODE
    if tp > GPUS_PER_NODE:   # as `cost --tp` refuses: a layer at that TP is one no priced layout runs
        raise InputError(f"--tp {tp}: tensor parallelism must stay within a node of {GPUS_PER_NODE} GPUs "
                         f"(the step model runs TP over NVLink; cost --results could not use this layer)")
    return shape


@dataclasses.dataclass
class RunOutcome:
    path: str | None        # the result file (None on ranks other than 0)
    result: dict            # the document as written
    exit_code: int          # bench.cli's EXIT_*: 0 ok, 1 a check failed, 3 a rank failed, 130 interrupted
    failures: list          # one line per failed check


def check_out_dir(out: str) -> None:
    """Create --out if needed and prove it is writable, before anything is measured."""
    if os.path.lexists(out) and not os.path.isdir(out):   # makedirs said "(File exists)" of these
        what = ("a symbolic link to a missing path" if os.path.islink(out) and not os.path.exists(out)
                else "a file, not a folder" if os.path.isfile(out) else "not a folder")
        raise InputError(f"--out {out}: is {what}; result files go in a folder (it is created if missing)")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".costbench-probe-"):
            pass
    except OSError as e:
        raise InputError(f"--out {out}: cannot write result files there ({e.strerror or e})") from None


def resolve_device(device: str) -> str:
    """'auto' -> cuda when a GPU is visible, else cpu; 'cuda' without a GPU is an input error."""
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise InputError(f"--device cuda: no CUDA GPU is visible (torch {torch.__version__} is {build})")
    if device == "auto":
        return "cuda" if has_cuda else "cpu"
    return device


def human_bytes(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


class _Signals:
    """Ctrl-C and SIGTERM (`kill`, Slurm preemption, a Kubernetes pod stop) for one run. While
    measuring, the first is raised as KeyboardInterrupt, so the sweep stops where it is; the handler
    disarms itself as it raises, and once measuring is over it is disarmed, so every later signal is
    only noted until the result file is finished and its summary printed. With handlers swapped at
    the end instead, a signal between two swaps (or during the summary and the final write, noted
    but never read again) left a file with no summary, or one marked complete that exited 130 or 0
    regardless (hostile testers, rounds 4 and 6)."""

    def __init__(self):
        self.noted, self.armed, self.previous = [], True, {}

    def handler(self, signum, frame):
        self.noted.append(signum)
        if self.armed:
            self.armed = False
            raise KeyboardInterrupt(f"signal {signum}")

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():   # handlers can only be set there
            for signum in (signal.SIGINT, signal.SIGTERM):
                self.previous[signum] = signal.signal(signum, self.handler)

    def release(self) -> None:
        self.armed = False
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _loud(progress: Progress, failures: list, text: str) -> None:
    failures.append(text)
    progress.write(f"!!! CHECK FAILED: {text}")


class _Run:
    """State of one run; methods are its phases. Only rank 0 has a writer."""

    def __init__(self, cfg: RunConfig, device: str, rank: int, world: int):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.leader = rank == 0
        self.records, self.failures, self.by_rank = [], [], {}
        self.gpus = []  # every rank's fingerprint, before and after (rank 0, after gather_gpus)
        self.progress = Progress(enabled=self.leader)
        self.writer = None

    def add(self, record: dict) -> None:
        self.records.append(record)
        if self.writer:
            self.writer.add(record)

    def measures_matmul(self) -> bool:
        return self.leader or self.device == "cuda"

    def warm_up(self, seconds: float) -> None:
        """Busy the GPU before the first timed shape (mamf-finder: a cold GPU reads high)."""
        from kernels import matmul

        if seconds > 0 and self.measures_matmul():
            self.progress.phase(f"warm-up {seconds:g} s")
            count = matmul.warm_up(self.device, seconds)
            self.progress.step(f"{count} matmuls")

    def matmul(self, dtypes: list, config: dict) -> None:
        from kernels import matmul

        for dtype in dtypes:
            mine = []
            if self.measures_matmul():
                self.progress.phase(f"matmul {dtype}")
                for rec in matmul.search(dtype, self.device, self.cfg.quick, layout=self.cfg.matmul_layout):
                    mine.append(rec)
                    if self.leader:
                        self.add(rec)
                    self.progress.step(f"{rec['m']}x{rec['n']}x{rec['k']} {rec['tflops']:.3g} TFLOP/s")
                    if not rec["correct"]:
                        _loud(self.progress, self.failures,
                              f"matmul {dtype} {rec['m']}x{rec['n']}x{rec['k']}: max_rel_err "
                              f"{rec['max_rel_err']} exceeds {matmul.TOLERANCE[dtype]}")
            again = [r for r in mine if r.get("phase") == "remeasure"]
            first = again[0] if again else None
            winner = first and next((r for r in mine if r.get("phase") == "search" and
                                     (r["m"], r["n"], r["k"]) == (first["m"], first["n"], first["k"])), None)
            if winner and self.leader and not matmul.held_up(first, winner):   # the search's winner fell
                rest = ("the next-best shapes were re-measured too and the best remeasure is the MAMF"
                        if len(again) > 1 else "no other shape was left to re-measure: the MAMF may read low")
                self._note(config, f"matmul {dtype}: the search's best shape {first['m']}x{first['n']}x{first['k']} "
                           f"re-measured at {first['tflops']:.3g} TFLOP/s, under {matmul.HOLDS_UP:.0%} of its search "
                           f"figure (a spike, or a busy machine): {rest}")
            elif winner and self.leader and len(again) > 1:   # kernels.matmul.search: the best median beside it
                second = again[1]
                self._note(config, f"matmul {dtype}: {second['m']}x{second['n']}x{second['k']}, faster on its "
                           f"median than the search's winner {first['m']}x{first['n']}x{first['k']} was on its own "
                           "(a busy machine widened the winner's spread), was re-measured too; the best remeasure "
                           "is the MAMF")
            if self.world > 1 and self.device == "cuda":
                self._gather_rank_mamf(dtype, matmul.best(mine), sum(not r["correct"] for r in mine))

    def sustained(self, dtypes: list) -> None:
        """Re-time each dtype's MAMF shape at the end of the run, after the GPU has been busy
        through every phase: the sustained figure beside the burst one (the remeasure)."""
        from kernels import matmul

        if not self.measures_matmul():
            return
        for dtype in dtypes:
            top = results.best_matmul(self.records, dtype)  # other ranks keep no records: skipped
            if top is None:
                continue
            self.progress.phase(f"matmul {dtype} sustained")
            rec = matmul.measure(top["m"], top["n"], top["k"], dtype, self.device,
                                 matmul.remeasure_budget_ms(self.device, self.cfg.quick),
                                 layout=top.get("layout", self.cfg.matmul_layout), phase="sustained")
            self.add(rec)
            self.progress.step(f"{rec['m']}x{rec['n']}x{rec['k']} {rec['tflops']:.3g} TFLOP/s")
            if not rec["correct"]:
                _loud(self.progress, self.failures, f"matmul {dtype} sustained {rec['m']}x{rec['n']}x{rec['k']}: "
                      f"max_rel_err {rec['max_rel_err']} exceeds {matmul.TOLERANCE[dtype]}")

    def membw(self) -> None:
        from kernels import membw

        if not self.measures_matmul():  # CPU ranks share the host's memory bus, as its cores
            return
        self.progress.phase("membw")
        rec = membw.measure(self.device)
        if self.leader:
            self.add(rec)
        self.progress.step(f"{human_bytes(rec['bytes'])} copy {rec['gbps']:,.1f} GB/s")
        if not rec["correct"]:
            _loud(self.progress, self.failures, f"membw {human_bytes(rec['bytes'])}: the copy differs from its source")

    def fingerprint(self, when: str) -> None:
        """This rank's NVML snapshot, `when` "before" or "after" its measurements."""
        from bench import gpu_fingerprint
        from kernels import local_cuda_index

        if not self.gpus:
            self.gpus = [{"rank": self.rank, "before": None, "after": None}]
        snap = gpu_fingerprint.read(local_cuda_index() if self.device == "cuda" else None)
        self.gpus[0].update({"host": snap["host"], when: snap})

    def gather_gpus(self) -> None:
        """Rank 0 gets every rank's fingerprint entry (all_gather_object: every rank calls it)."""
        if self.world > 1:
            import torch.distributed as dist

            gathered = [None] * self.world
            dist.all_gather_object(gathered, self.gpus[0])
            self.gpus = gathered

    def _gather_rank_mamf(self, dtype: str, best: dict | None, failed: int) -> None:
        """Every rank's MAMF for dtype, so a slow or faulty GPU on any rank shows up."""
        import torch.distributed as dist

        gathered = [None] * self.world
        dist.all_gather_object(gathered, (best["tflops"] if best else None, failed))
        values = [v for v, _ in gathered]
        self.by_rank[dtype] = values
        for r, (_, bad) in enumerate(gathered):
            if r != self.rank and bad:  # this rank's own failures were reported as they happened
                _loud(self.progress, self.failures, f"matmul {dtype} on rank {r}: {bad} shapes wrong")
        for r, fraction in slow_ranks(values):
            self.progress.write(f"warning: rank {r} reached {values[r]:.1f} {dtype} TFLOP/s, {fraction:.0%} "
                                "of the median rank's: check that GPU (clocks, thermals, PCIe link)")

    def layer(self, config: dict) -> None:
        """One layer of --model at --tp: every GEMM pass, attention and the element-wise work per
        dtype. Rank 0 only: TP's split is in the shapes, one GPU times them."""
        from kernels import layer

        shape = self.cfg.layer_shape
        if shape is None:
            self._note(config, "layer: skipped, no --model (or --hidden/--heads/--ffn) given")
            return
        rank = layer.plan_shape(shape, self.cfg.tp, self.device, self.cfg.quick)
        dtypes = list(self.cfg.dtypes or layer.default_dtypes(self.device))
        config["layer"] = {"model": shape.name, "tp": self.cfg.tp, "dtypes": dtypes,
                           "shape": dataclasses.asdict(shape), "rank": dataclasses.asdict(rank)}
        if rank.width_divisor > 1 or rank.tokens < shape.micro_batch * shape.seq:
            self._note(config, f"layer: {layer.describe_shrink(shape, rank)}")
        if not self.leader:
            return
        for dtype in dtypes:
            reason = layer.unsupported_reason(dtype, self.device)
            if reason:
                self._note(config, f"layer {dtype}: skipped ({reason})")
                continue
            if skip := layer.attention_skip_reason(dtype, self.device, rank.head_dim):
                self._note(config, f"layer {dtype}: {skip}")
            if self.writer:
                self.writer.save()
            self.progress.phase(f"layer {shape.name} tp{self.cfg.tp} {dtype}",
                                total=layer.count(rank, dtype, self.device))
            for rec in layer.measure(rank, dtype, self.device, self.cfg.quick):
                self.add(rec)
                what = " ".join(str(rec[k]) for k in ("op", "name", "pass") if k in rec)
                rate = f"{rec['tflops']:.3g} TFLOP/s" if "tflops" in rec else f"{rec['gbps']:.3g} GB/s"
                self.progress.step(f"{what} {rate}")
                if not rec["correct"]:
                    _loud(self.progress, self.failures,
                          f"layer {dtype} {what}: max_rel_err {rec['max_rel_err']} exceeds {layer.tolerance(rec)}")

    def _note(self, config: dict, text: str) -> None:
        config["notes"].append(text)
        if not results.note_in_summary(text):   # the summary, printed even when interrupted, has the rest
            self.progress.write(f"note: {text}")

    def collectives(self, config: dict, timeout_s: float) -> None:
        """Every asked-for collective over all ranks: out of place, then (--inplace) in place."""
        from kernels import collectives

        cfg = collectives.default_config(self.device, self.cfg.quick, self.cfg.max_bytes, timeout_s)
        config["collective_sizes"] = cfg.sizes
        if self.world == 1:
            self._note(config, collectives.NO_LINK_NOTE)
        if self.writer:
            self.writer.save()
        # Rank 0 may still be timing matmul (CPU): wait for it here, under the group's long
        # timeout, so that each message size's watchdog times only that size.
        collectives.barrier("waiting for every rank before the collectives")
        for op in (o for o in self.cfg.ops if o in collectives.OPS):
            modes = [op in collectives.INPLACE_ONLY]
            if self.cfg.inplace and op not in collectives.INPLACE_ONLY:
                if op in collectives.NO_INPLACE:
                    self._note(config, f"{op}: {collectives.NO_INPLACE[op]}")
                else:
                    modes.append(True)
            for inplace in modes:
                self._sweep(collectives, op, cfg, inplace, config)

    def _sweep(self, collectives, op: str, cfg, inplace: bool, config: dict) -> None:
        name = collectives.NAMES[op]
        self.progress.phase(f"{op} {collectives.DTYPE}{' in place' if inplace else ''}", total=len(cfg.sizes))
        for rec in collectives.sweep(op, self.device, cfg, inplace, self.on_timeout, config["notes"]):
            self.add(rec)
            self.progress.step(f"{human_bytes(rec['bytes'])} busbw {rec['busbw_gbps']:.3g} GB/s")
            if rec["wrong"]:
                _loud(self.progress, self.failures,
                      f"{name} {human_bytes(rec['bytes'])}: {rec['wrong']} elements differ from the exact result")

    def summary(self, machine: dict, complete: bool, error: str | None = None) -> dict:
        summary = results.summarize(self.records, machine)
        if self.by_rank:
            summary["mamf_tflops_by_rank"] = dict(self.by_rank)
        summary["stragglers"] = stragglers(self.gpus, self.by_rank)
        summary["complete"] = complete
        summary["failures"] = list(self.failures)  # includes other ranks' matmul checks
        if error:
            summary["error"] = error
        return summary

    def on_timeout(self, message: str) -> None:
        """A Watchdog fired (another rank hung or died while this one waits in C++): finish the
        result file as far as it got, say so in one line, and end the process (exit 3)."""
        try:
            if self.writer:
                self.writer.finish(self.summary(self.writer.doc["machine"], False, message))
                message += f"; {self.writer.path} is valid and holds {len(self.records)} records"
        finally:
            sys.stderr.write(f"costbench run: error: {message}\n")
            sys.stderr.flush()
            os._exit(EXIT_RANK_FAILED)


def _teardown(device: str, failed: bool) -> None:
    """Leave the process group. After a rank failure NCCL's communicator may never drain, so it
    is aborted rather than destroyed, and a teardown that still hangs ends the process (exit 3)."""
    import torch.distributed as dist
    from kernels import collectives

    def give_up(_message):
        os._exit(EXIT_RANK_FAILED)

    with collectives.Watchdog(10.0, "leaving the process group", give_up):
        try:
            abort = getattr(dist.distributed_c10d, "_abort_process_group", None)
            if failed and device == "cuda" and abort:
                abort()
            else:
                dist.destroy_process_group()
        except Exception:  # after an interrupt or a dead peer the group may be half torn down already
            pass


def _check_message_sizes(cfg: RunConfig, world: int) -> None:
    """A --max-bytes below one fp32 element per rank leaves the chunked collectives no size to run
    (4 B on 2 ranks: reduce-scatter, all-gather and all-to-all measured nothing, without a word)."""
    from kernels.collectives import ELEMENT_BYTES, INPLACE_ONLY

    chunked = [op for op in cfg.ops if op in results.COLLECTIVES and op not in INPLACE_ONLY]
    least = ELEMENT_BYTES * world
    if cfg.max_bytes is not None and chunked and cfg.max_bytes < least:
        raise InputError(f"--max-bytes {cfg.max_bytes}: below one fp32 element per rank for {', '.join(chunked)} "
                         f"at world size {world}, which would measure nothing; at least {least} bytes")


def nothing_to_measure(cfg: RunConfig, device: str) -> str | None:
    """Why this run would measure nothing on `device` (every op a dtype op whose every dtype is
    skipped here: `--ops matmul --dtypes fp8` on a CPU), or None when something runs."""
    from kernels import layer, matmul

    why = []
    for op in cfg.ops:
        if op in ("matmul", "layer"):
            kernels = matmul if op == "matmul" else layer
            if op == "layer" and cfg.layer_shape is None:
                continue   # skipped with a note (no model named)
            dtypes = list(cfg.dtypes or kernels.default_dtypes(device))
            reasons = [kernels.unsupported_reason(d, device) for d in dtypes]
            if not all(reasons):
                return None
            why.append(f"{op} {', '.join(dtypes)}: {reasons[0]}")
        else:
            return None   # membw and the collectives run on any device
    return f"--dtypes {','.join(cfg.dtypes or ())}: nothing to measure on {device} (" + "; ".join(why) + ")"


def run(cfg: RunConfig, report=None) -> RunOutcome:
    """Measure, write the result file (rank 0), and say how it went; report(outcome), if given, is
    called once the file is final, with Ctrl-C and SIGTERM still held (the summary table is printed
    there). Raises InputError for arguments that cannot work here (--device cuda without a GPU, an
    unwritable --out, a bad torchrun environment or COSTBENCH_TIMEOUT_S)."""
    from bench import launch as launch_env

    launch = launch_env.from_env()
    if launch.distributed:
        launch_env.check_master()
    _check_message_sizes(cfg, launch.world_size)
    device = resolve_device(cfg.device)  # first: refusing --device cuda must not create --out
    if cfg.layer_shape is not None and "layer" in cfg.ops:   # a shape too big to run: refused before any file
        from kernels import layer, select_cuda_device

        if device == "cuda":
            select_cuda_device()
        layer.check_fits(layer.plan_shape(cfg.layer_shape, cfg.tp, device, cfg.quick), device)
    nothing = nothing_to_measure(cfg, device)
    if nothing:   # refused before --out is made: an empty file would read as a complete measurement
        raise InputError(nothing)
    check_out_dir(cfg.out)
    from bench import env
    from kernels import collectives, matmul, select_cuda_device

    rank, world = launch.rank, launch.world_size
    if device == "cuda":
        select_cuda_device()  # LOCAL_RANK % device_count(), also in a single process
    state = _Run(cfg, device, rank, world)
    dtypes = list(cfg.dtypes or matmul.default_dtypes(device)) if "matmul" in cfg.ops else []
    skipped = {d: r for d in dtypes if (r := matmul.unsupported_reason(d, device))}
    warmup_s = matmul.WARMUP_S[device] if cfg.warmup_s is None else cfg.warmup_s
    config = {"ops": list(cfg.ops), "dtypes": dtypes, "quick": cfg.quick, "device": device,
              # recorded where an op applies it: an all-reduce run neither lays out matrices nor warms up
              "layout": cfg.matmul_layout if "matmul" in cfg.ops else None,
              "warmup_s": warmup_s if dtypes or "membw" in cfg.ops else None, "skipped_dtypes": skipped,
              "inplace": cfg.inplace, "max_bytes": cfg.max_bytes, "timeout_s": launch.timeout_s, "notes": []}
    interrupted, error, created, machine, bug = False, None, False, None, None
    signals = _Signals()
    try:
        signals.install()
        try:
            try:
                # needed before matmul, to gather every GPU's MAMF; one process gets a group of one
                if launch.distributed or any(op in collectives.OPS for op in cfg.ops):
                    created = collectives.init_distributed(device, launch.timeout_s, state.on_timeout,
                                                           launch.distributed)
                machine = env.fingerprint(device)
                state.fingerprint("before")
                machine["gpus"] = state.gpus  # this rank's until the end, when rank 0 has gathered every rank's
                if state.leader:
                    state.writer = results.ResultWriter(cfg.out, machine, config, tag=cfg.tag)
                    for dtype, reason in skipped.items():
                        state.progress.write(f"skipping matmul {dtype}: {reason}")
                measured = [d for d in dtypes if d not in skipped]
                if measured or "membw" in cfg.ops:
                    state.warm_up(warmup_s)
                if measured:
                    state.matmul(measured, config)
                if "membw" in cfg.ops:
                    state.membw()
                if any(op in collectives.OPS for op in cfg.ops):
                    state.collectives(config, launch.timeout_s)
                if "layer" in cfg.ops:
                    state.layer(config)
                state.sustained(measured)
                state.fingerprint("after")
                state.gather_gpus()
                signals.armed = False   # measured: a signal from here is only noted, and read below
            except KeyboardInterrupt:
                interrupted = True
            except collectives.RankFailure as e:
                error = f"rank {rank}: {e}"
            except Exception as e:   # a bug: still close the file (complete: false, with the error), then let it out
                bug, error = e, f"internal error: {type(e).__name__}: {e}"
        except KeyboardInterrupt:   # raised inside an except clause above (the handler raises once)
            interrupted = True
        signals.armed = False   # the error paths: the handler raises no more
        state.progress.close()
        if error and not bug:   # a bug's own line is the CLI's
            print(f"costbench run: error: {error}", file=sys.stderr)
        machine = machine or env.fingerprint(device)
        machine["gpus"] = state.gpus
        doc = None
        while doc is None or (signals.noted and not (interrupted or error)):
            # a signal noted before the file is final makes it an interrupted run (a rank failure
            # stays one): the summary is (re)written complete: false, once more for one that came
            # during the first write
            interrupted = interrupted or (bool(signals.noted) and not error)
            # summary.error says what stopped it, an interruption too (the README's schema promised it)
            summary = state.summary(machine, not (interrupted or error),
                                    error or (results.INTERRUPTED if interrupted else None))
            doc = {"summary": summary, "config": config, "machine": machine, "records": state.records}
            if state.writer:
                state.writer.finish(summary)
                doc = state.writer.doc
        # after the file: a teardown that hangs ends the process (exit 3) with the summary written
        if created or (launch.distributed and error):
            _teardown(device, bool(error) or interrupted)   # peers gone or going: abort, not destroy
        path = state.writer.path if state.writer else None
        if (interrupted or error) and path:
            print(f"costbench run: {'interrupted' if interrupted else 'stopped'}; {path} is valid and holds "
                  f"{len(state.records)} records (complete: false)", file=sys.stderr)
        code = (EXIT_INTERRUPTED if interrupted else EXIT_RANK_FAILED if error
                else EXIT_CHECK_FAILED if state.failures else EXIT_OK)
        outcome = RunOutcome(path, doc, code, state.failures)
        if report is not None and bug is None:   # the summary table, with signals still only noted
            report(outcome)
    finally:
        signals.release()   # a signal after the file is final is noted and let go: nothing was cut short
    if bug is not None:
        raise bug
    return outcome
