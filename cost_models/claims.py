"""The GPU-cloud claims costbench puts numbers on, each with its source, and how a what-if tests one.

A claim speaks to one what-if key (`vary`). Two kinds:
- "speedup": between two what-if rows picked by `base` and `other` (predicates on a row), the
  speedup of `other` over `base` = base GPU-hours / other GPU-hours (per-GPU speed; at a fixed
  --gpus it is also the wall-clock ratio).
- "cheaper": within rows, how much cheaper one group of price rows is than another, as the range
  over every pair (1 - cheaper group's cost / dearer group's cost), from each row's
  cost_usd_by_provider (groups by provider) or between two rows (groups by row). Those costs are
  of offers that sell a cluster of the row's size (whatif.row leaves out single-GPU instances and
  marketplace listings for a larger cluster): the claims are about training runs.

Sources are those the project's reference notes cite for each claim.
"""

import dataclasses
from typing import Callable

INDUSTRY_2025 = "industry analysis (2025)"

# Hyperscalers as the claim means them; every other provider in the catalog counts as a specialised
# GPU cloud. An assumption of this module (Oracle is counted with the three big clouds).
HYPERSCALERS = frozenset({"aws", "azure", "gcp", "oci"})


def _family(gpu: str | None) -> str:
    """Catalog GPU name -> generation: 'H100-SXM' -> 'H100', 'A100-SXM-80GB' -> 'A100'."""
    return (gpu or "").split("-")[0].upper()


def _gpu(family):
    return lambda row: _family(row.get("gpu")) == family


def _value(pred):
    return lambda row: pred(str(row.get("value", "")).lower())


@dataclasses.dataclass(frozen=True)
class Claim:
    vary: str                  # the what-if key it speaks to; "tco" for costbench tco
    label: str                 # "H100 / A100"
    kind: str                  # "speedup" | "cheaper" | "note"
    claimed: tuple             # (low, high): x for speedups, a fraction for "cheaper"
    text: str
    source: str
    base: Callable | None = None
    other: Callable | None = None


CLAIMS = (
    Claim("network", "InfiniBand / Ethernet", "speedup", (3, 4),
          "400 Gb/s InfiniBand vs 100 Gb/s Ethernet makes distributed training 3-4x faster", INDUSTRY_2025,
          base=_value(lambda v: v.startswith("eth")), other=_value(lambda v: v.startswith("ib"))),
    Claim("gpu", "H100 / A100", "speedup", (3, 3), "H100 = 3x A100", INDUSTRY_2025, _gpu("A100"), _gpu("H100")),
    Claim("gpu", "H200 / H100", "speedup", (1.5, 1.5), "H200 = 1.5x H100", INDUSTRY_2025, _gpu("H100"), _gpu("H200")),
    Claim("gpu", "GB200 / H200", "speedup", (2, 2), "GB200 = 2x H200", INDUSTRY_2025, _gpu("H200"), _gpu("GB200")),
    Claim("virtualization-overhead", "bare metal / VM", "speedup", (1.05, 1.10),
          "bare metal is 5-10% faster than VMs", INDUSTRY_2025,
          base=lambda row: (row.get("value") or 0) > 0, other=lambda row: row.get("value") == 0),
    Claim("pricing", "specialised clouds vs hyperscalers", "cheaper", (0.3, 0.8),
          "specialised GPU clouds are 30-80% cheaper than hyperscalers", INDUSTRY_2025,
          base=lambda provider: provider in HYPERSCALERS, other=lambda provider: provider not in HYPERSCALERS),
    Claim("pricing", "reserved vs on-demand", "cheaper", (0.3, 0.5),
          "reserved 1-3-year capacity is typically 30-50% below on-demand", INDUSTRY_2025,
          base=_value(lambda v: v == "on-demand"), other=_value(lambda v: v.startswith("reserved"))),
    Claim("tco", "utilisation 70% -> 85%", "note", (0.7, 0.85),
          "fleet utilisation rising from 70% to 85% is the path to profit", INDUSTRY_2025),
)


def _basis(*rows) -> str:
    measured = [bool(r.get("measured")) for r in rows]
    return "measured" if all(measured) else "measured-model" if any(measured) else "model"


def _found(claim: Claim, value, basis: str, compared: str) -> dict:
    return {"claim": claim.label, "text": claim.text, "source": claim.source, "kind": claim.kind,
            "claimed": list(claim.claimed), "found": value, "basis": basis, "compared": compared}


def _speedup(claim, rows):
    """The first `other` row against every `base` row (each VM overhead against bare metal)."""
    other = next((r for r in rows if claim.other(r)), None)
    if other is None or not other.get("gpu_hours"):
        return []
    return [_found(claim, base["gpu_hours"] / other["gpu_hours"], _basis(base, other),
                   f"{other['value']} vs {base['value']}") for base in rows if claim.base(base)]


def _cheaper_range(cheap: list[float], dear: list[float]):
    pairs = [1 - c / d for c in cheap for d in dear if d > 0]
    return [min(pairs), max(pairs)] if pairs else None


def _cheaper(claim, rows):
    found = []
    if claim.label.startswith("specialised"):   # groups of providers within each row
        for r in rows:
            if r.get("value") == "all":   # each provider's cheapest of any kind: spot against on-demand, not like for like
                continue
            by = r.get("cost_usd_by_provider") or {}
            rng = _cheaper_range([c for p, c in by.items() if claim.other(p)],
                                 [c for p, c in by.items() if claim.base(p)])
            if rng:
                found.append(_found(claim, rng, _basis(r), f"{r['value']}: specialised vs hyperscaler, every pair"))
        return found
    base = next((r for r in rows if claim.base(r)), None)  # groups by row, same provider in both
    for other in (r for r in rows if claim.other(r)):
        if base is None:
            break
        a, b = base.get("cost_usd_by_provider") or {}, other.get("cost_usd_by_provider") or {}
        pairs = [1 - b[p] / a[p] for p in a.keys() & b.keys() if a[p] > 0]
        if pairs:
            # billed: a term's commitment counts, so a short run on a 3-year reservation can be dearer
            found.append(_found(claim, [min(pairs), max(pairs)], _basis(base, other) + ", billed for this run",
                                f"{other['value']} vs {base['value']}, same provider"))
    return found


def evaluate(vary: str, rows: list[dict]) -> list[dict]:
    """The claims that apply to a what-if over `vary`, each with what the rows show.

    rows: what-if rows (value, gpu, gpu_hours, measured, cost_usd_by_provider). Claims whose rows
    are missing (no Ethernet row, no price for a group) are left out."""
    found = []
    for claim in CLAIMS:
        if claim.vary != vary:
            continue
        found += _speedup(claim, rows) if claim.kind == "speedup" else _cheaper(claim, rows)
    return found


def claim(label: str) -> Claim:
    return next(c for c in CLAIMS if c.label == label)


def describe(f: dict) -> str:
    """One line: 'H100 / A100: 2.4x model vs 3x claimed (H100 = 3x A100; industry analysis (2025))'."""
    lo, hi = f["claimed"]
    if f["kind"] == "speedup":
        got, want = f"{f['found']:.2f}x", f"{lo:g}x" if lo == hi else f"{lo:g}-{hi:g}x"
        found = (f["found"], f["found"])
    else:
        found = f["found"]
        got, want = _range(*found), f"{lo:.0%} to {hi:.0%} cheaper"
    return (f"{f['claim']} ({f['compared']}): {got} {f['basis']} vs {want} claimed: {verdict(found, (lo, hi))} "
            f"({f['text']}; {f['source']})")


def _range(a: float, b: float) -> str:
    """A cheaper-by range in words: "-7% to 3% cheaper" read as a minus; it is 7% dearer to 3% cheaper."""
    def one(x):
        return f"{x:.0%} cheaper" if x >= 0 else f"{-x:.0%} dearer"
    if f"{a:.0%}" == f"{b:.0%}":   # one pair, or ends that round alike: "15% dearer", not "15% to 15%"
        return one(a)
    if a >= 0 and b >= 0:
        return f"{a:.0%} to {b:.0%} cheaper"
    if a < 0 and b < 0:
        return f"{-b:.0%} to {-a:.0%} dearer"
    return f"{one(a)} to {one(b)}"


def verdict(found: tuple, claimed: tuple) -> str:
    """Where the model's figure (a range, or one value twice) stands against the claimed range."""
    (a, b), (lo, hi) = sorted(found), claimed
    if b < lo:
        return "below the claim"
    if a > hi:
        return "above the claim"
    if lo <= a and b <= hi:
        return "within the claim"
    return "overlapping the claim"
