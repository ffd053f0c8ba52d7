"""Network fabrics (cost_models/data/networks.csv): per-GPU bandwidth and latency.

The bandwidth is compared with nccl-tests' busbw (bytes moved per GPU per second), which is what
a ring collective's time scales with: time = size * factor / busbw, factor (n-1)/n for
reduce-scatter and all-gather (nccl-tests doc/PERFORMANCE.md).
"""

import dataclasses

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
