"""One measurement run: fingerprint, matmul MAMF search per dtype, all-reduce sweep, result file.

The flow is DESIGN.md's: every finished record goes to the result file at once (bench.results
rewrites it atomically), the summary is computed from the records at the end, and the file is
finished even when the run is interrupted. Under torchrun only rank 0 prints and writes; on GPUs
every rank times its own GPU's matmul too, and the per-rank MAMFs go into the summary
(`mamf_tflops_by_rank`) because one slow or faulty GPU is exactly what a rented node can hide.
On CPU only rank 0 times matmul: ranks there share the host's cores and would measure contention.

torch and kernels are imported inside run(), so RunConfig validates arguments without torch.
"""

import contextlib
import dataclasses
import os
import signal
import threading
import statistics
import sys
import tempfile

from bench import results
from bench.progress import Progress
from cost_models.errors import InputError, unknown_name
from cost_models.hardware import DTYPES  # kernels.matmul.DTYPES is this tuple; importing it here needs no torch

OPS = ("matmul", "allreduce")
DEVICES = ("auto", "cpu", "cuda")
SLOW_RANK = 0.9  # a rank below 90% of the median rank's MAMF gets a warning


@dataclasses.dataclass
class RunConfig:
    """What `costbench run` was asked for. dtypes None: kernels.matmul.default_dtypes(device)."""
    device: str = "auto"
    ops: tuple = OPS
    dtypes: tuple | None = None
    quick: bool = False
    tag: str | None = None
    out: str = "results"

    def __post_init__(self):
        if self.device not in DEVICES:
            raise unknown_name("device", self.device, DEVICES)
        for op in self.ops:
            if op not in OPS:
                raise unknown_name("op", op, OPS)
        for dtype in self.dtypes or ():
            if dtype not in DTYPES:
                raise unknown_name("dtype", dtype, DTYPES)
        # keep the order given, drop repeats: `--dtypes bf16,bf16` measures bf16 once
        self.ops = tuple(dict.fromkeys(self.ops))
        self.dtypes = tuple(dict.fromkeys(self.dtypes)) if self.dtypes else None


@dataclasses.dataclass
class RunOutcome:
    path: str | None        # the result file (None on ranks other than 0)
    result: dict            # the document as written
    exit_code: int          # 0 ok, 1 a correctness check failed, 130 interrupted
    failures: list          # one line per failed check


def check_out_dir(out: str) -> None:
    """Create --out if needed and prove it is writable, before anything is measured."""
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


def slow_ranks(values: list, threshold: float = SLOW_RANK) -> list:
    """[(rank, fraction of the median)] for ranks whose MAMF is below threshold x the median rank's.
    None (a rank with no correct result) is left to the correctness report."""
    known = [v for v in values if v]
    if not known:
        return []
    mid = statistics.median(known)
    return [(r, v / mid) for r, v in enumerate(values) if v and v < threshold * mid]


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM (`kill`, Slurm preemption, a Kubernetes pod stop) ends the run as Ctrl-C does:
    the result file gets its summary with complete: false instead of stopping mid-record."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _loud(progress: Progress, failures: list, text: str) -> None:
    failures.append(text)
    progress.write(f"!!! CHECK FAILED: {text}")


class _Run:
    """State of one run; methods are its phases. Only rank 0 has a writer."""

    def __init__(self, cfg: RunConfig, device: str, rank: int, world: int):
        self.cfg, self.device, self.rank, self.world = cfg, device, rank, world
        self.leader = rank == 0
        self.records, self.failures, self.by_rank = [], [], {}
        self.progress = Progress(enabled=self.leader)
        self.writer = None

    def add(self, record: dict) -> None:
        self.records.append(record)
        if self.writer:
            self.writer.add(record)

    def matmul(self, dtypes: list) -> None:
        from kernels import matmul

        measures = self.leader or self.device == "cuda"
        for dtype in dtypes:
            mine = []
            if measures:
                self.progress.phase(f"matmul {dtype}")
                for rec in matmul.search(dtype, self.device, self.cfg.quick):
                    mine.append(rec)
                    if self.leader:
                        self.add(rec)
                    self.progress.step(f"{rec['m']}x{rec['n']}x{rec['k']} {rec['tflops']:.3g} TFLOP/s")
                    if not rec["correct"]:
                        _loud(self.progress, self.failures,
                              f"matmul {dtype} {rec['m']}x{rec['n']}x{rec['k']}: max_rel_err "
                              f"{rec['max_rel_err']} exceeds {matmul.TOLERANCE[dtype]}")
            if self.world > 1 and self.device == "cuda":
                self._gather_rank_mamf(dtype, matmul.best(mine), sum(not r["correct"] for r in mine))

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

    def allreduce(self, config: dict) -> None:
        from kernels import allreduce

        cfg = allreduce.default_config(self.device, self.cfg.quick)
        config["allreduce_sizes"] = cfg.sizes
        if self.world == 1:
            config["notes"].append(allreduce.NO_LINK_NOTE)
            self.progress.write(f"note: {allreduce.NO_LINK_NOTE}")
        if self.writer:
            self.writer.save()
        self.progress.phase(f"allreduce {allreduce.DTYPE}", total=len(cfg.sizes))
        for rec in allreduce.sweep(self.device, config=cfg):
            self.add(rec)
            self.progress.step(f"{human_bytes(rec['bytes'])} busbw {rec['busbw_gbps']:.3g} GB/s")
            if rec["wrong"]:
                _loud(self.progress, self.failures,
                      f"all-reduce {human_bytes(rec['bytes'])}: {rec['wrong']} elements differ from the exact sum")


def run(cfg: RunConfig) -> RunOutcome:
    """Measure, write the result file (rank 0), and say how it went. Raises InputError for
    arguments that cannot work here (--device cuda without a GPU, an unwritable --out)."""
    check_out_dir(cfg.out)
    device = resolve_device(cfg.device)
    from bench import env
    from kernels import allreduce, matmul

    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    created = world > 1 and allreduce.init_distributed(device)  # needed before matmul to gather
    state = _Run(cfg, device, rank, world)
    dtypes = list(cfg.dtypes or matmul.default_dtypes(device)) if "matmul" in cfg.ops else []
    skipped = {d: r for d in dtypes if (r := matmul.unsupported_reason(d, device))}
    config = {"ops": list(cfg.ops), "dtypes": dtypes, "quick": cfg.quick, "device": device,
              "skipped_dtypes": skipped, "notes": []}
    machine = env.fingerprint(device)
    if state.leader:
        state.writer = results.ResultWriter(cfg.out, machine, config, tag=cfg.tag)
        for dtype, reason in skipped.items():
            state.progress.write(f"skipping matmul {dtype}: {reason}")
    interrupted = False
    try:
        with terminate_as_interrupt():
            if dtypes:
                state.matmul([d for d in dtypes if d not in skipped])
            if "allreduce" in cfg.ops:
                state.allreduce(config)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        state.progress.close()
        if created:
            try:
                import torch.distributed as dist
                dist.destroy_process_group()
            except Exception:  # after an interrupt the group may be half torn down already
                pass
    summary = results.summarize(state.records, machine)
    if state.by_rank:
        summary["mamf_tflops_by_rank"] = state.by_rank
    summary["complete"] = not interrupted
    summary["failures"] = state.failures  # includes other ranks' matmul checks
    doc = {"summary": summary, "config": config, "machine": machine, "records": state.records}
    if state.writer:
        state.writer.finish(summary)
        doc = state.writer.doc
    path = state.writer.path if state.writer else None
    if interrupted and path:
        print(f"costbench run: interrupted; {path} is valid and holds {len(state.records)} records",
              file=sys.stderr)
    return RunOutcome(path, doc, 130 if interrupted else 1 if state.failures else 0, state.failures)
