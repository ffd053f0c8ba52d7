"""Rental prices per GPU-hour (cost_models/data/prices.csv), plus a user's own file.

A user's --prices FILE has the same columns; a row with the same provider + gpu + pricing + region
as a catalog row replaces it (a negotiated rate), any other row is added. GPU names in a user file
may be anything find_gpu() understands ("h100") and are stored under the catalog name.
"""

import dataclasses
import math

from cost_models.catalog import Column, as_of_date, load_csv, load_data, non_negative, one_of, text
from cost_models.errors import InputError, unknown_name
from cost_models.hardware import find_gpu

PRICING_KINDS = ("on-demand", "spot", "reserved-1y", "reserved-3y")
_COLUMNS = [
    Column("provider"), Column("gpu"), Column("pricing", one_of(*PRICING_KINDS)),
    Column("usd_per_gpu_hour", non_negative), Column("usd_low", non_negative, required=False),
    Column("usd_high", non_negative, required=False), Column("region", text, required=False),
    Column("as_of", as_of_date), Column("source"),
]


@dataclasses.dataclass(frozen=True)
class Price:
    provider: str
    gpu: str
    pricing: str
    usd_per_gpu_hour: float
    as_of: str
    source: str
    usd_low: float | None = None
    usd_high: float | None = None
    region: str = ""

    def __post_init__(self):
        if self.pricing not in PRICING_KINDS:
            raise unknown_name("pricing", self.pricing, PRICING_KINDS)
        for what in ("usd_per_gpu_hour", "usd_low", "usd_high"):
            value = getattr(self, what)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"price {self.provider}/{self.gpu}: {what} must be a non-negative number")
        low = self.usd_low if self.usd_low is not None else self.usd_per_gpu_hour
        high = self.usd_high if self.usd_high is not None else self.usd_per_gpu_hour
        if not low <= self.usd_per_gpu_hour <= high:
            raise InputError(f"price {self.provider}/{self.gpu}: need usd_low <= usd_per_gpu_hour <= usd_high")

    @property
    def key(self) -> tuple:
        return (self.provider, self.gpu, self.pricing, self.region)


def _rows_to_prices(rows: list[dict], path: str) -> list[Price]:
    prices = []
    for r in rows:
        where = f"{path}:{r['_line']}"
        try:
            gpu = find_gpu(r["gpu"]).name
        except InputError as e:
            raise InputError(f"{where}: column gpu: {e}") from None
        try:
            prices.append(Price(provider=r["provider"].lower(), gpu=gpu, pricing=r["pricing"],
                                usd_per_gpu_hour=r["usd_per_gpu_hour"], usd_low=r["usd_low"],
                                usd_high=r["usd_high"], region=r["region"] or "", as_of=r["as_of"],
                                source=r["source"]))
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
    return prices


def catalog_prices() -> list[Price]:
    return _rows_to_prices(load_data("prices.csv", _COLUMNS), "cost_models/data/prices.csv")


def load_prices(path: str | None = None) -> list[Price]:
    """The catalog's prices, with `path`'s rows (if given) replacing or adding to them."""
    merged = {p.key: p for p in catalog_prices()}
    if path is not None:
        for p in _rows_to_prices(load_csv(path, _COLUMNS), path):
            merged[p.key] = p
    return list(merged.values())


def select(prices: list[Price], gpu: str | None = None, pricing: str = "all",
           providers: list[str] | None = None) -> list[Price]:
    """Filter prices; unknown provider or pricing kind -> InputError with close matches."""
    if pricing != "all" and pricing not in PRICING_KINDS:
        raise unknown_name("pricing", pricing, (*PRICING_KINDS, "all"))
    known = sorted({p.provider for p in prices})
    wanted = None
    if providers:
        wanted = set()
        for name in providers:
            if name.lower() not in known:
                raise unknown_name("provider", name, known)
            wanted.add(name.lower())
    return [p for p in prices
            if (gpu is None or p.gpu == gpu) and (pricing == "all" or p.pricing == pricing)
            and (wanted is None or p.provider in wanted)]
