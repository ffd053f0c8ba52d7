"""What a machine delivers: measured MAMF per dtype and all-reduce busbw, read from a result file.

The CLI loads and validates the file (bench.results.load, DESIGN.md schema 1) and hands the dict
here: cost_models never imports bench. Only the fields the cost model uses are checked, and a bad
one raises InputError naming the file and the field.
"""

import dataclasses
import math

from cost_models.errors import InputError


@dataclasses.dataclass(frozen=True)
class Throughput:
    gpu: str | None              # catalog name (machine.gpu.normalized); None for CPU or unknown GPUs
    mamf_tflops: dict            # dtype -> measured maximum achievable matmul TFLOP/s
    busbw_gbps: float | None     # best all-reduce bus bandwidth measured, GB/s; None if not measured
    world_size: int = 1
    nodes: int = 1
    source: str = "result file"

    def __post_init__(self):
        for dtype, value in self.mamf_tflops.items():
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{self.source}: summary.mamf_tflops.{dtype}: must be a positive number")
        if self.busbw_gbps is not None and not (math.isfinite(self.busbw_gbps) and self.busbw_gbps > 0):
            raise InputError(f"{self.source}: summary.busbw_gbps_max: must be a positive number")

    @classmethod
    def from_result(cls, result: dict, source: str = "result file") -> "Throughput":
        """Throughput from a schema-1 result dict; `source` (the file name) goes into errors."""

        def field(path: str, kind, optional=False):
            node = result
            for part in path.split("."):
                if not isinstance(node, dict) or part not in node:
                    if optional:
                        return None
                    raise InputError(f"{source}: missing field {path}")
                node = node[part]
            if node is None and optional:
                return None
            if not isinstance(node, kind) or isinstance(node, bool):
                raise InputError(f"{source}: field {path}: expected {getattr(kind, '__name__', 'number')}, "
                                 f"got {type(node).__name__}")
            return node

        if not isinstance(result, dict):
            raise InputError(f"{source}: expected a JSON object, got {type(result).__name__}")
        version = field("schema_version", int)
        if version != 1:
            raise InputError(f"{source}: field schema_version: {version} is not supported (expected 1)")
        mamf = field("summary.mamf_tflops", dict)
        numbers = {}
        for dtype, value in mamf.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InputError(f"{source}: field summary.mamf_tflops.{dtype}: expected a number")
            if value > 0:  # 0 means "not measured" in a run that skipped or failed that dtype
                numbers[dtype] = float(value)
        busbw = field("summary.busbw_gbps_max", (int, float), optional=True)
        return cls(
            gpu=field("machine.gpu.normalized", str, optional=True),
            mamf_tflops=numbers,
            busbw_gbps=float(busbw) if busbw else None,
            world_size=int(field("machine.world_size", int, optional=True) or 1),
            nodes=int(field("machine.nodes", int, optional=True) or 1),
            source=source,
        )
