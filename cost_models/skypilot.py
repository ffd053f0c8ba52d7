"""Turn a SkyPilot catalog file (skypilot-org/skypilot-catalog, catalogs/<version>/<cloud>/vms.csv)
into per-GPU price rows that `--prices` accepts.

SkyPilot's vms.csv has one row per instance type x region (x availability zone where the cloud
has them) with (at least) the columns InstanceType, AcceleratorName, AcceleratorCount, Price,
SpotPrice, Region, and AvailabilityZone for AWS and GCP (Lambda's and Azure's files have none);
Price and SpotPrice are $/hour for the whole instance (either may be empty: not offered there).
AcceleratorCount may be a fraction (Azure's NVads A10 v5 sells 1/6 of a GPU): such a share is
skipped and counted, as it rents no whole GPU-hour.

    $/GPU-hour = instance price / AcceleratorCount, for on-demand (Price) and spot (SpotPrice);
    per region the cheapest zone; per GPU and region the instance with the most GPUs (what a
    multi-node training run rents), ties broken by the lower price.

GCP lists GPUs and host VMs as separate rows: a GPU row has an empty InstanceType and prices only
the GPUs; a2/a3/a4 machine types (GPUs built in) have a host VM row with an empty AcceleratorName.
SkyPilot prices such an instance as host VM + its GPUs in the same zone, and so does this module
(gcp_host_gpus() maps the machine type to its GPUs). Pass GCP's whole vms.csv: GPU rows with no
host VM row in their zone, and host rows with no GPU row, are skipped and counted.

GPU names are normalised with SKYPILOT_GPUS (SkyPilot's "A100" is the 40 GB SXM part, not
costbench's "a100" alias); an accelerator not in that table or not in costbench's GPU catalog is
reported and skipped, never guessed.
"""

import csv
import dataclasses
import io
import math
import re

from cost_models.errors import InputError
from cost_models.files import check_unique_columns, read_text
from cost_models.hardware import gpus as catalog_gpus
from cost_models.prices import _usd

# SkyPilot accelerator name -> costbench catalog GPU. PCIe parts are told apart by instance name.
SKYPILOT_GPUS = {
    "A100": "A100-SXM-40GB", "A100-80GB": "A100-SXM-80GB", "A100-80GB-SXM": "A100-SXM-80GB",
    "H100": "H100-SXM", "H100-SXM": "H100-SXM", "H100-MEGA": "H100-SXM", "H100-NVLINK": "H100-SXM",
    "H100-PCIE": "H100-PCIe",
    "H200": "H200-SXM", "H200-SXM": "H200-SXM",
    "B200": "B200", "GB200": "GB200", "GH200": "GH200", "L40S": "L40S",
}
# Clouds whose vms.csv lists a marketplace's hosts (asking prices, no cluster or fabric sold): their
# rows are written marketplace=yes, as the catalog's are (a refreshed vast file ranked as a cluster).
MARKETPLACES = frozenset({"vast"})
# Instance names that say PCIe: the same accelerator name then means the PCIe part.
_PCIE = re.compile(r"pci", re.IGNORECASE)
_PCIE_GPUS = {"H100-SXM": "H100-PCIe"}   # A100 PCIe is not in the GPU catalog: skipped

# GCP machine types whose GPUs come with the VM: (family regex, SkyPilot accelerator name).
# The count is the machine type's "-<n>g" suffix (a2-highgpu-8g: 8 GPUs).
_GCP_FAMILIES = [
    (r"a2-(highgpu|megagpu)-(\d+)g", "A100"),
    (r"a2-ultragpu-(\d+)g", "A100-80GB"),
    (r"a3-(highgpu|edgegpu)-(\d+)g(-.*)?", "H100"),
    (r"a3-megagpu-(\d+)g", "H100-MEGA"),
    (r"a3-ultragpu-(\d+)g", "H200"),
    (r"a4-highgpu-(\d+)g", "B200"),
]
REQUIRED = ("InstanceType", "AcceleratorName", "AcceleratorCount", "Price", "SpotPrice", "Region")
# Optional: Lambda's (catalogs/v8) and Azure's (v6) files price per region and have no zone column
ZONE = "AvailabilityZone"


def gcp_host_gpus(instance_type: str) -> tuple[str, int] | None:
    """(SkyPilot accelerator name, count) for a GCP machine type with built-in GPUs, else None."""
    for pattern, accel in _GCP_FAMILIES:
        m = re.fullmatch(pattern, instance_type)
        if m:
            count = next(int(g) for g in m.groups() if g and g.isdigit())
            return accel, count
    return None


@dataclasses.dataclass
class Offer:
    """One instance in one zone: its GPUs and $/hour for the whole instance."""

    instance: str
    accel: str
    count: float                # whole for every offer priced; a fraction is a share of one GPU
    region: str
    zone: str
    price: float | None
    spot: float | None


@dataclasses.dataclass
class Import:
    rows: list[dict]            # prices.csv rows (dicts with its columns)
    unknown: dict               # accelerator name -> rows skipped
    unmatched: int = 0          # GCP: GPU or host rows without their other half in the zone
    fractional: dict = dataclasses.field(default_factory=dict)   # accelerator -> offers of a GPU share
    unpriced: dict = dataclasses.field(default_factory=dict)     # catalog GPU -> offers with no price at all


def _money(value: str, where: str) -> float | None:
    if value.strip() == "":
        return None
    try:
        x = float(value)
    except ValueError:
        raise InputError(f"{where}: {value!r} is not a price") from None
    if not (math.isfinite(x) and x >= 0):
        raise InputError(f"{where}: {value!r} is not a non-negative price")
    return x


def _count(value: str, where: str) -> float:
    """The instance's GPUs: a positive number, whole or (a share of one GPU) a fraction."""
    try:
        x = float(value)
    except ValueError:
        raise InputError(f"{where}: column AcceleratorCount: {value!r} is not a number") from None
    if not (math.isfinite(x) and x > 0):
        raise InputError(f"{where}: column AcceleratorCount: {value!r} must be a positive number of GPUs")
    return int(x) if x == int(x) else x


def read_offers(path: str, provider: str) -> tuple[list[Offer], int]:
    """The file's GPU offers (GCP: host VM + GPUs joined per zone) and, for GCP, how many GPU or
    host rows had no partner in their zone."""
    # the shared reader: a FIFO or device is refused (not blocked on), a BOM dropped, bytes that
    # are not UTF-8 named by line
    text = read_text(path, "SkyPilot vms.csv")
    if not text.strip():
        raise InputError(f"{path}: empty file, not a SkyPilot vms.csv")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        header = reader.fieldnames or []
        check_unique_columns(path, header)
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(f"{path}:1: not a SkyPilot vms.csv: missing column(s) {', '.join(missing)}")
        rows = list(reader)
    except csv.Error as e:
        raise InputError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None

    offers, hosts, gpu_rows = [], {}, {}
    for line, r in enumerate(rows, start=2):
        where = f"{path}:{line}"
        if None in r:   # DictReader keeps a row's cells past the header under None
            raise InputError(f"{where}: {len(header) + len(r[None])} cells under a header of {len(header)} columns "
                             f"(a comma in an unquoted cell?)")
        if any(r.get(c) is None for c in REQUIRED):
            raise InputError(f"{where}: {len(header)} columns expected (truncated row?)")
        for column in (*REQUIRED, ZONE):   # what --prices refuses is refused where it is written
            cell = r.get(column) or ""
            if not cell.isprintable():
                bad = next(ch for ch in cell if not ch.isprintable())
                raise InputError(f"{where}: column {column}: a control character ({bad!r}); not a catalog value")
        instance, accel = r["InstanceType"].strip(), r["AcceleratorName"].strip()
        region, zone = r["Region"].strip(), (r.get(ZONE) or "").strip()
        if not region and (instance or accel):   # a price row is per region: an empty one cannot be priced
            raise InputError(f"{where}: column Region: empty")
        price = _money(r["Price"], f"{where}: column Price")
        spot = _money(r["SpotPrice"], f"{where}: column SpotPrice")
        if provider == "gcp" and not instance and accel:
            gpu_rows[(accel, _count(r["AcceleratorCount"], where), zone)] = (region, price, spot)
        elif provider == "gcp" and instance and not accel:
            built_in = gcp_host_gpus(instance)
            if built_in:
                hosts[(instance, zone)] = (built_in, region, price, spot)
        elif accel:
            offers.append(Offer(instance, accel, _count(r["AcceleratorCount"], where), region, zone, price, spot))

    unmatched = 0
    used = set()
    for (instance, zone), ((accel, count), region, price, spot) in hosts.items():
        gpu = gpu_rows.get((accel, count, zone))
        if gpu is None:
            unmatched += 1
            continue
        used.add((accel, count, zone))
        _, gpu_price, gpu_spot = gpu
        offers.append(Offer(instance, accel, count, region, zone,
                            None if price is None or gpu_price is None else price + gpu_price,
                            None if spot is None or gpu_spot is None else spot + gpu_spot))
    # GPU rows no host VM row claims: GPUs attached to a general-purpose VM (n1 + T4/V100/...),
    # which costbench does not price, or a file cut short of its host rows.
    unmatched += sum(1 for k in gpu_rows if k not in used and k[0] in SKYPILOT_GPUS)
    return offers, unmatched


def catalog_gpu(offer: Offer, known: set) -> str | None:
    """costbench's GPU name for an offer, or None when SkyPilot's name is not one we can map."""
    name = SKYPILOT_GPUS.get(offer.accel.upper()) or SKYPILOT_GPUS.get(offer.accel)
    if name and _PCIE.search(offer.instance):
        name = _PCIE_GPUS.get(name)
    return name if name in known else None


def import_vms(path: str, provider: str, as_of: str = "", source: str | None = None) -> Import:
    """prices.csv rows from a SkyPilot vms.csv for `provider` (see the module docstring)."""
    provider = provider.strip().lower()
    if not provider:
        raise InputError("--provider: empty name")
    offers, unmatched = read_offers(path, provider)
    known = {g.name for g in catalog_gpus()}
    unknown: dict = {}
    best: dict = {}   # (gpu, kind, region) -> (rank, row)
    per_zone: dict = {}
    fractional: dict = {}
    unpriced: dict = {}
    for o in offers:
        if o.count != int(o.count):   # a share of one GPU (Azure's 1/6 A10): no whole GPU-hour to price
            fractional[o.accel] = fractional.get(o.accel, 0) + 1
            continue
        gpu = catalog_gpu(o, known)
        if gpu is None:
            unknown[o.accel] = unknown.get(o.accel, 0) + 1
            continue
        if not o.price and not o.spot:   # empty or $0 cells: the GPU is known, the offer has no price
            unpriced[gpu] = unpriced.get(gpu, 0) + 1
        for kind, total in (("on-demand", o.price), ("spot", o.spot)):
            if total is None or total == 0:   # $0: not a price (no --prices row may be free), not offered
                continue
            # cheapest zone of this instance type in this region
            key = (gpu, kind, o.region, o.instance)
            if key not in per_zone or total < per_zone[key][0]:
                per_zone[key] = (total, o)
    for (gpu, kind, region, instance), (total, o) in per_zone.items():
        usd = total / o.count
        try:   # the bounds every --prices row must keep: a row written here must load there
            _usd(repr(usd))
        except ValueError as e:
            raise InputError(f"{path}: {instance} in {region} ({kind}): ${usd:g} per GPU-hour {e}") from None
        rank = (-o.count, usd, instance)
        key = (gpu, kind, region)
        if key not in best or rank < best[key][0]:
            origin = source or path
            best[key] = (rank, {
                "provider": provider, "gpu": gpu, "pricing": kind, "usd_per_gpu_hour": round(usd, 6),
                "usd_low": "", "usd_high": "", "region": region, "as_of": as_of,
                "source": f"{origin}: {instance} ${total:g}/h {'spot ' if kind == 'spot' else ''}"
                          f"/ {o.count} GPUs, " + (f"zone {o.zone} (cheapest in {region})" if o.zone else region),
                "instance_gpus": o.count, "marketplace": "yes" if provider in MARKETPLACES else "no",
            })
    rows = [row for _, row in best.values()]
    rows.sort(key=lambda r: (r["gpu"], r["pricing"], r["usd_per_gpu_hour"], r["region"]))
    return Import(rows, unknown, unmatched, fractional, unpriced)
