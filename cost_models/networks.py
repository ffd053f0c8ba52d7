"""Network fabrics (cost_models/data/networks.csv): per-GPU bandwidth and latency.

The bandwidth is compared with nccl-tests' busbw (bytes moved per GPU per second), which is what
a ring collective's time scales with: time = size * factor / busbw, factor (n-1)/n for
reduce-scatter and all-gather (nccl-tests doc/PERFORMANCE.md).
"""

import dataclasses
import re

from cost_models.catalog import Column, as_of_date, load_data, one_of, positive
from cost_models.errors import InputError, unknown_name

_COLUMNS = [
    Column("name"), Column("scope", one_of("intra-node", "inter-node")), Column("link_gbit_s", positive),
    Column("gpus_per_link", positive), Column("latency_us", positive), Column("source"), Column("as_of", as_of_date),
]
DEFAULT_NETWORK = "ib-ndr-400"  # the common H100 training fabric: one 400 Gb/s NDR port per GPU


@dataclasses.dataclass(frozen=True)
class Network:
    name: str
    scope: str
    link_gbit_s: float
    gpus_per_link: float
    latency_us: float
    source: str
    as_of: str

    def __post_init__(self):
        if not (self.link_gbit_s > 0 and self.gpus_per_link > 0 and self.latency_us > 0):
            raise InputError(f"network {self.name}: bandwidth, sharing and latency must be positive")

    @property
    def gbps_per_gpu(self) -> float:
        """GB/s (1e9 bytes) per GPU, one direction: line rate / 8 bits / GPUs sharing the link."""
        return self.link_gbit_s / 8 / self.gpus_per_link


def networks() -> list[Network]:
    return [Network(**{k: v for k, v in r.items() if k != "_line"}) for r in load_data("networks.csv", _COLUMNS)]


def find_network(name: str) -> Network:
    catalog = networks()
    for net in catalog:
        if net.name == name.strip().lower():
            return net
    raise unknown_name("network", name, [n.name for n in catalog])


# The fabric an instance type is sold with, where the source a networks.csv row cites says so (GCP's
# "Networking and GPU machines" page, AWS's P5 page). A price row's source names its instance, so a
# cost row can say it would run on another fabric than the one timed (--network): GCP's A3 High
# moves Llama 3 70B's GPU-hours by 1.57x against ib-ndr-400 (`whatif --vary network=`). AWS's p5e/p5en
# (H200) are left out: no page the project cites gives their fabric.
INSTANCE_FABRICS = {"a3-highgpu-8g": "gcp-a3-high", "a3-megagpu-8g": "gcp-a3-mega", "a3-ultragpu-8g": "gcp-rdma-3200",
                    "a4-highgpu-8g": "gcp-rdma-3200", "a2-ultragpu-8g": "gcp-a2", "a2-highgpu-8g": "gcp-a2",
                    "p5.48xlarge": "efa-3200"}
# the GPU each instance holds (the start of its GPU catalog name): a row of another GPU naming one is
# not that instance (a B200 row whose source mentions p5.48xlarge is not on its EFA)
INSTANCE_GPUS = {"a3-highgpu-8g": "H100", "a3-megagpu-8g": "H100", "a3-ultragpu-8g": "H200", "a4-highgpu-8g": "B200",
                 "a2-ultragpu-8g": "A100", "a2-highgpu-8g": "A100", "p5.48xlarge": "H100"}
_INSTANCE = re.compile("|".join(rf"(?<![\w.-]){re.escape(name)}(?![\w-])" for name in INSTANCE_FABRICS),
                       re.IGNORECASE)


def instance_fabric(source: str, gpu: str | None = None) -> tuple[str, str] | None:
    """(instance, network name) for the first instance of INSTANCE_FABRICS a price row's source names
    (in any case), else None; with `gpu`, only an instance that holds that GPU."""
    for found in _INSTANCE.finditer(source or ""):
        name = found.group(0).lower()
        if gpu is None or gpu.upper().startswith(INSTANCE_GPUS[name]):
            return name, INSTANCE_FABRICS[name]
    return None
