"""What a machine delivers, read from a result file's summary: the measured rates of the step model.

The CLI loads and validates the file (bench.results.load, DESIGN.md schema 1) and hands the dict
here: cost_models never imports bench. Every field is optional (SPEC.md): a run that measured
only matmul gives only MAMF; `costbench run --ops layer,membw,allgather,...` gives every rate the
step model needs. A bad field raises InputError naming the file and the field.

Fields read (summary unless noted): mamf_tflops.{dtype}; busbw_gbps_max; membw_gbps;
layer.{model, tp, dtype, gemm_tflops, attention_tflops, elementwise_gbps, shape, width_divisor, tokens};
records[] of op "gemm" (the layer's GEMM shapes and median times); records[] of op "allgather" and
"reducescatter" (bytes, world_size, median time: the TP collectives' latency and bandwidth);
collectives.{op}.busbw_gbps_max; machine.device ("cpu" makes the device "cpu"),
machine.gpu.normalized, machine.host_memory_gb, machine.world_size, machine.nodes.
"""

import dataclasses
import math

from cost_models.errors import InputError

CPU = "cpu"  # every CPU is one device, "cpu": no catalog entry, no catalog prices


@dataclasses.dataclass(frozen=True)
class Throughput:
    gpu: str | None              # catalog name (machine.gpu.normalized); "cpu" for a CPU; None: a GPU the catalog lacks
    mamf_tflops: dict            # dtype -> measured maximum achievable matmul TFLOP/s
    busbw_gbps: float | None     # best all-reduce bus bandwidth measured, GB/s; None if not measured
    world_size: int = 1
    nodes: int = 1
    source: str = "result file"
    membw_gbps: float | None = None
    collectives: dict = dataclasses.field(default_factory=dict)   # op -> best busbw GB/s
    layer: dict = dataclasses.field(default_factory=dict)         # summary.layer's numbers and labels
    # The TP collectives' correct records: op -> ((bytes, world_size, seconds), ...), for a latency fit
    tp_collective_times: dict = dataclasses.field(default_factory=dict)
    host_memory_gb: float | None = None
    device_name: str | None = None   # machine.gpu.name, for errors about GPUs the catalog lacks
    failed_checks: int = 0           # summary.failed_checks: records left out of the rates above
    complete: bool = True            # summary.complete: False when the run stopped before its end

    def __post_init__(self):
        numbers = {f"summary.mamf_tflops.{d}": v for d, v in self.mamf_tflops.items()}
        numbers.update({"summary.busbw_gbps_max": self.busbw_gbps, "summary.membw_gbps": self.membw_gbps,
                        "machine.host_memory_gb": self.host_memory_gb})
        numbers.update({f"summary.collectives.{op}.busbw_gbps_max": v for op, v in self.collectives.items()})
        numbers.update({f"summary.layer.{k}": v for k, v in self.layer.items()
                        if k in ("gemm_tflops", "attention_tflops", "elementwise_gbps")})
        for name, value in numbers.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InputError(f"{self.source}: {name}: must be a positive number")

    @property
    def measured_layer(self) -> bool:
        return bool(self.layer.get("gemm_tflops"))

    @classmethod
    def from_result(cls, result: dict, source: str = "result file") -> "Throughput":
        """Throughput from a schema-1 result dict; `source` (the file name) goes into errors."""
        if not isinstance(result, dict):
            raise InputError(f"{source}: expected a JSON object, got {type(result).__name__}")

        def field(path: str, kind=(int, float)):
            node = result
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    return None
                node = node[part]
            if node is None:
                return None
            if not isinstance(node, kind) or (isinstance(node, bool) and kind is not bool):
                what = kind.__name__ if isinstance(kind, type) else "a number"
                raise InputError(f"{source}: field {path}: expected {what}, got {type(node).__name__}")
            return node

        def measured(path):
            """A measured rate: 0 or below means "not measured" (a skipped or failed op)."""
            value = field(path)
            return float(value) if value is not None and value > 0 else None

        version = field("schema_version", int)
        if version != 1:
            raise InputError(f"{source}: field schema_version: {version} is not supported (expected 1)")
        mamf = {}
        for dtype in (field("summary.mamf_tflops", dict) or {}):
            value = measured(f"summary.mamf_tflops.{dtype}")
            if value is not None:
                mamf[dtype] = value
        collectives = {}
        for op in (field("summary.collectives", dict) or {}):
            value = measured(f"summary.collectives.{op}.busbw_gbps_max")
            if value is not None:
                collectives[op] = value
        layer = {}
        if field("summary.layer", dict):
            for key in ("gemm_tflops", "attention_tflops", "elementwise_gbps"):
                value = measured(f"summary.layer.{key}")
                if value is not None:
                    layer[key] = value
            for key in ("model", "dtype"):
                value = field(f"summary.layer.{key}", str)
                if value is not None:
                    layer[key] = value
            for key in ("tp", "width_divisor", "tokens"):
                value = field(f"summary.layer.{key}", int)
                if value is not None and value < 1:
                    raise InputError(f"{source}: field summary.layer.{key}: must be a positive whole number, got {value}")
                if value is not None:
                    layer[key] = value
            shape = field("summary.layer.shape", dict)
            if shape is not None:
                layer["shape"] = _layer_shape(shape, source)
            gemms = _layer_gemms(result.get("records"), layer.get("dtype"), source)
            if gemms:
                layer["gemms"] = gemms
        device = field("machine.device", str)
        gpu = CPU if device == CPU else field("machine.gpu.normalized", str)
        host = field("machine.host_memory_gb")
        return cls(
            gpu=gpu, mamf_tflops=mamf, busbw_gbps=measured("summary.busbw_gbps_max"),
            world_size=int(field("machine.world_size", int) or 1), nodes=int(field("machine.nodes", int) or 1),
            source=source, membw_gbps=measured("summary.membw_gbps"), collectives=collectives, layer=layer,
            host_memory_gb=float(host) if host is not None else None,   # 0: refused below, not "unknown"
            device_name=field("machine.gpu.name", str),
            tp_collective_times=_collective_times(result.get("records"), TP_COLLECTIVES, source),
            failed_checks=failed_checks(result.get("records"), field("summary.failed_checks", int),
                                         field("summary.layer.failed_checks", int)),
            complete=field("summary.complete", bool) is not False,
        )


TP_COLLECTIVES = ("allgather", "reducescatter")   # what sequence-parallel TP runs (step_time)


def failed_checks(records, *summarised) -> int:
    """Records that failed their check (a check's `correct` false, a collective's `wrong` elements;
    bench.results.record_ok), or the summary's count where it says more (a file without records)."""
    failed = sum(1 for r in records if isinstance(r, dict) and (r.get("correct") is False or
                                                                 (r.get("wrong") or 0) > 0)) \
        if isinstance(records, list) else 0
    return max(failed, *(n or 0 for n in summarised))


def _collective_times(records, ops, source) -> dict:
    """op -> ((bytes, world_size, seconds), ...) of the correct records (wrong == 0) of the ops `ops`
    (kernels.collectives: bytes is nccl-tests' size, the full buffer; the median time)."""
    if not isinstance(records, list):
        return {}
    out = {}
    for i, r in enumerate(records):
        if not (isinstance(r, dict) and r.get("op") in ops and r.get("wrong") == 0):
            continue
        size, world = r.get("bytes"), r.get("world_size")
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (size, world)):
            raise InputError(f"{source}: records[{i}] ({r['op']}): bytes and world_size must be positive whole numbers")
        seconds = _median_seconds(r, i, source)
        if world > 1:
            out[r["op"]] = out.get(r["op"], ()) + ((size, world, seconds),)
    return out


def _median_seconds(record, i, source) -> float:
    """records[i].time_ms.median in seconds, checked positive."""
    median = record["time_ms"].get("median") if isinstance(record.get("time_ms"), dict) else None
    if not (isinstance(median, (int, float)) and not isinstance(median, bool) and math.isfinite(median)
            and median > 0):
        raise InputError(f"{source}: records[{i}].time_ms.median: must be a positive number")
    return median * 1e-3


def _layer_gemms(records, dtype, source) -> tuple:
    """((m, n, k, count, seconds), ...) of the layer's correct GEMM records in the summary's dtype
    (op "gemm", kernels.layer): the shapes it timed and their median times, which say how far the
    device fell from the step model's roofline at those shapes (step_time.layer_gemm_scale)."""
    if not isinstance(records, list):
        return ()
    out = []
    for i, r in enumerate(records):
        if not (isinstance(r, dict) and r.get("op") == "gemm" and r.get("correct") is True and r.get("dtype") == dtype):
            continue
        values = [r.get(key) for key in ("m", "n", "k", "count")]
        if r.get("count") is None:
            values[3] = 1
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in values):
            raise InputError(f"{source}: records[{i}] (a layer GEMM): m, n, k and count must be positive whole numbers")
        out.append((*values, _median_seconds(r, i, source)))
    return tuple(out)


# summary.layer.shape (kernels.layer.LayerShape.key()): what the measured layer's work depends on.
LAYER_SHAPE_POSITIVE = ("hidden", "heads", "kv_heads", "ffn", "seq", "micro_batch")
LAYER_SHAPE_OPTIONAL = ("vocab", "moe_ffn")       # positive, or null
LAYER_SHAPE_KEYS = LAYER_SHAPE_POSITIVE + LAYER_SHAPE_OPTIONAL + ("experts", "top_k", "mlp")


def _layer_shape(shape: dict, source: str) -> dict:
    """The fields a cost model matches against, checked (positive whole numbers, experts and top_k
    both 0 or both set, mlp a name); fields this version does not know (a newer writer's) are listed
    under "unknown": a layer that may differ in them is not matched (cost._layer_matches)."""
    def bad(key, value, what):
        return InputError(f"{source}: field summary.layer.shape.{key}: expected {what}, got {value!r}")

    def whole(value):
        return isinstance(value, int) and not isinstance(value, bool)

    out = {}
    for key in LAYER_SHAPE_POSITIVE + LAYER_SHAPE_OPTIONAL:
        value = shape.get(key)
        if value is None and key in LAYER_SHAPE_OPTIONAL:
            out[key] = None
        elif not (whole(value) and value > 0):
            raise bad(key, value, "a positive whole number")
        else:
            out[key] = value
    for key in ("experts", "top_k"):
        value = shape.get(key, 0)
        if not (whole(value) and value >= 0):
            raise bad(key, value, "a whole number (0: dense)")
        out[key] = value
    if bool(out["experts"]) != bool(out["top_k"]) or out["top_k"] > out["experts"]:
        raise bad("top_k", out["top_k"], f"1 to experts ({out['experts']}) for a mixture of experts, 0 for a dense model")
    mlp = shape.get("mlp", "swiglu")
    if not isinstance(mlp, str):
        raise bad("mlp", mlp, "a name")
    out["mlp"] = mlp
    unknown = sorted(set(shape) - set(LAYER_SHAPE_KEYS))
    if unknown:
        out["unknown"] = unknown
    return out
