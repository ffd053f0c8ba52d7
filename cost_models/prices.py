"""Rental prices per GPU-hour (cost_models/data/prices.csv), plus a user's own file.

Each row: provider, GPU (catalog name), pricing kind, $/GPU-hour, region, as_of, source. The
catalog's rows come from SkyPilot's public price catalog (github.com/skypilot-org/skypilot-catalog,
catalogs/<version>/<cloud>/vms.csv: instance price / GPUs in the instance) and providers' own pages;
each row's source names the file and commit, or the page.

A user's --prices FILE has the same columns; a row with the same provider + gpu + pricing + region
as a catalog row replaces it (a negotiated rate), any other row is added. GPU names in a user file
may be anything find_gpu() understands ("h100") and are stored under the catalog name. In a user
file `as_of` and `source` may be left empty: an undated row is never called stale.

Pricing kinds (what a cost row with each means, cost.price_rows applies it):
  on-demand       pay per hour, no commitment
  spot            interruptible capacity at the quoted snapshot price; costbench leaves goodput
                  unchanged (interruptions are not modelled): the cost is a lower bound
  reserved-1y/3y  a 1- or 3-year term: the whole term is paid whether the run uses it or not
                  (commitment_usd = GPUs x term hours x price)
  capacity-block  AWS EC2 Capacity Blocks for ML: a block of 1-14 days, or a multiple of 7 days up
                  to 182 (AWS Capacity Blocks pricing page), paid in full up front
"""

import calendar
import dataclasses
import datetime
import math
import os

from cost_models.catalog import (Column, as_of_date, at_most, load_csv, load_data, non_negative, one_of, positive,
                                 text)
from cost_models.errors import InputError, unknown_name
from cost_models.hardware import find_gpu
from cost_models.units import PLAUSIBLE

PRICING_KINDS = ("on-demand", "spot", "reserved-1y", "reserved-3y", "capacity-block")
HOURS_PER_YEAR = 8760  # 365 days, as providers bill a 1-year term
TERM_HOURS = {"reserved-1y": HOURS_PER_YEAR, "reserved-3y": 3 * HOURS_PER_YEAR}
DEFAULT_STALE_MONTHS = 6
TODAY_ENV = "COSTBENCH_TODAY"  # YYYY-MM-DD: the reference "today" for price ages (tests, reruns)
SPOT_NOTE = "spot: interruptions not modelled (goodput unchanged), so this cost is a lower bound"
_MIN_USD, _MAX_USD, (_, _WHY_MAX) = PLAUSIBLE["usd_per_gpu_hour"]
_at_most_usd = at_most(non_negative, _MAX_USD, _WHY_MAX)


def _usd(value: str) -> float:
    """A price per GPU-hour within PLAUSIBLE (README: What costbench refuses): a price of 0 would
    make any run free and win every comparison."""
    x = _at_most_usd(value)
    if x < _MIN_USD:
        raise ValueError(f"is below ${_MIN_USD:g} an hour (a free GPU has no price to compare)")
    return x


def positive_whole(value: str) -> int:
    number = positive(value)
    if number != int(number):
        raise ValueError("must be a whole number")
    return int(number)


_COLUMNS = [
    Column("provider"), Column("gpu"), Column("pricing", one_of(*PRICING_KINDS)),
    Column("usd_per_gpu_hour", _usd), Column("usd_low", _usd, required=False),
    Column("usd_high", _usd, required=False), Column("region", text, required=False),
    Column("as_of", as_of_date, required=False), Column("source", text, required=False),
    Column("instance_gpus", at_most(positive_whole, PLAUSIBLE["gpus"][1], PLAUSIBLE["gpus"][2]), required=False), Column("marketplace", one_of("yes", "no"), required=False),
]
CATALOG_PATH = "cost_models/data/prices.csv"


@dataclasses.dataclass(frozen=True)
class Price:
    provider: str
    gpu: str
    pricing: str
    usd_per_gpu_hour: float
    as_of: str          # YYYY, YYYY-MM or YYYY-MM-DD; "" = undated (a user's row)
    source: str
    usd_low: float | None = None
    usd_high: float | None = None
    region: str = ""
    instance_gpus: int | None = None   # GPUs in the instance the price is for (None: not recorded)
    marketplace: bool = False          # a marketplace host's asking price: no cluster or fabric sold

    def __post_init__(self):
        if self.pricing not in PRICING_KINDS:
            raise unknown_name("pricing", self.pricing, PRICING_KINDS)
        for what in ("usd_per_gpu_hour", "usd_low", "usd_high"):
            value = getattr(self, what)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise InputError(f"price {self.provider}/{self.gpu}: {what} must be a non-negative number")
        if not self.low <= self.usd_per_gpu_hour <= self.high:
            raise InputError(f"price {self.provider}/{self.gpu}: need usd_low <= usd_per_gpu_hour <= usd_high")

    @property
    def key(self) -> tuple:
        # the region in any case: a --prices row for US-EAST-1 replaces the catalog's us-east-1 (it was
        # listed beside it, and --region us-east-1 kept the catalog's price)
        return (self.provider, self.gpu, self.pricing, self.region.casefold())

    @property
    def ranged(self) -> bool:
        return self.usd_low is not None or self.usd_high is not None

    # One rule for both commands: where only one end of a range is published, the list price
    # stands for the other end (it is a price someone can pay); None when there is no range.
    @property
    def low(self) -> float:
        return self.usd_low if self.usd_low is not None else self.usd_per_gpu_hour

    @property
    def high(self) -> float:
        return self.usd_high if self.usd_high is not None else self.usd_per_gpu_hour

    def offer(self, gpus: int, node_gpus: int) -> str | None:
        """What this offer is, where a cluster of `gpus` GPUs in nodes of `node_gpus` (the cost model's
        NVLink node) is not what it sells: instances of fewer GPUs than a node, or a marketplace
        host's GPUs (no cluster or fabric sold). None where the row records neither, or `gpus` fit
        in one such instance."""
        small, market = self.cluster_gaps(gpus, node_gpus)
        if not (small or market):
            return None
        return ", ".join(([f"{self.instance_gpus}-GPU instances"] if small else []) + (["marketplace"] if market else []))

    def cluster_gaps(self, gpus: int, node_gpus: int) -> tuple[bool, bool]:
        """(instances smaller than a node, a marketplace listing), each where `gpus` GPUs do not fit
        in one instance (see offer)."""
        n = self.instance_gpus
        return n is not None and n < node_gpus and gpus > n, self.marketplace and gpus > (n or 1)

    def range_or_none(self) -> tuple:
        """(low, high) $/GPU-hour where the price has a range, else (None, None)."""
        return (self.low, self.high) if self.ranged else (None, None)


def _rows_to_prices(rows: list[dict], path: str, dated: bool) -> list[Price]:
    prices, lines = [], {}
    for r in rows:
        where = f"{path}:{r['_line']}"
        if dated:
            for col in ("as_of", "source"):
                if not r[col]:
                    raise InputError(f"{where}: column {col}: empty (every catalog row needs one)")
        try:
            # "cpu": the device every CPU result file prices as (no catalog rows; a user's file may add them)
            gpu = "cpu" if r["gpu"].strip().lower() == "cpu" else find_gpu(r["gpu"]).name
        except InputError as e:
            raise InputError(f"{where}: column gpu: {e}") from None
        try:
            prices.append(Price(provider=r["provider"].lower(), gpu=gpu, pricing=r["pricing"],
                                usd_per_gpu_hour=r["usd_per_gpu_hour"], usd_low=r["usd_low"],
                                usd_high=r["usd_high"], region=r["region"] or "", as_of=r["as_of"] or "",
                                source=r["source"] or f"your file {where}", instance_gpus=r.get("instance_gpus"),
                                marketplace=r.get("marketplace") == "yes"))
        except InputError as e:
            raise InputError(f"{where}: {e}") from None
        # two prices for one offer: which is meant cannot be guessed (the last would win silently)
        key = prices[-1].key
        if key in lines:
            raise InputError(f"{where}: repeats line {lines[key]}'s provider, gpu, pricing and region "
                             f"({', '.join(k or '(none)' for k in key)}); keep one, or give each its region")
        lines[key] = r["_line"]
    return prices


def catalog_prices() -> list[Price]:
    return _rows_to_prices(load_data("prices.csv", _COLUMNS), CATALOG_PATH, dated=True)


def load_prices(path: str | None = None) -> list[Price]:
    """The catalog's prices, with `path`'s rows (if given) replacing or adding to them."""
    merged = {p.key: p for p in catalog_prices()}
    if path is not None:
        # age_days and stale: what `prices --format csv` adds, derived from as_of, so its output loads back
        for p in _rows_to_prices(load_csv(path, _COLUMNS, ignored=("age_days", "stale")), path, dated=False):
            merged[p.key] = p
    return list(merged.values())


def select(prices: list[Price], gpu: str | None = None, pricing: str = "all",
           providers: list[str] | None = None, region: str | None = None) -> list[Price]:
    """Filter prices; an unknown provider, pricing kind or region -> InputError with close matches."""
    if pricing != "all" and pricing not in PRICING_KINDS:
        raise unknown_name("pricing", pricing, (*PRICING_KINDS, "all"))
    known = sorted({p.provider for p in prices})
    wanted = None
    if providers:
        wanted = set()
        for name in providers:
            if name.lower() not in known:   # a provider the catalog lacks comes with the user's own rows
                raise InputError(f"{unknown_name('provider', name, known)} (no rows for it in the catalog or --prices; give them with --prices FILE)")
            wanted.add(name.lower())
    if region is not None:
        regions = sorted({p.region for p in prices if p.region and (wanted is None or p.provider in wanted)})
        if region.casefold() not in {r.casefold() for r in regions}:
            raise unknown_name("region", region, regions)
    return [p for p in prices
            if (gpu is None or p.gpu == gpu) and (pricing == "all" or p.pricing == pricing)
            and (wanted is None or p.provider in wanted) and (region is None or p.region.casefold() == region.casefold())]


def cluster_order(p: Price, gpus: int | None, node_gpus: int = 8) -> tuple:
    """The order offers are chosen in for a cluster of `gpus` GPUs (None: any size): whole nodes
    before a marketplace's nodes before single GPUs, then the price, then the region."""
    small, market = p.cluster_gaps(gpus, node_gpus) if gpus is not None else (False, False)
    return (small, market, p.usd_per_gpu_hour, p.region)


def cheapest_regions(prices: list[Price], gpus: int | None = None, node_gpus: int = 8) -> list[Price]:
    """One row per provider x GPU x pricing kind: its cheapest region (ties: the first region by
    name, so the choice is stable). With `gpus`, a region whose offer comes closer to a cluster of
    that many GPUs in nodes of `node_gpus` (Price.cluster_gaps: whole nodes first, then a
    marketplace's) comes before a cheaper one (a 1-GPU listing beside the same provider's 8-GPU
    one): a cluster is what is priced."""
    best = {}
    for p in sorted(prices, key=lambda p: cluster_order(p, gpus, node_gpus)):
        best.setdefault((p.provider, p.gpu, p.pricing), p)
    return list(best.values())


# --- age --------------------------------------------------------------------------------------

def today() -> datetime.date:
    """The reference date for price ages: the clock, or $COSTBENCH_TODAY (YYYY-MM-DD) if set."""
    override = os.environ.get(TODAY_ENV)
    if override:
        try:
            return datetime.date.fromisoformat(override)
        except ValueError:
            raise InputError(f"${TODAY_ENV}: {override!r} is not a date (YYYY-MM-DD)") from None
    return datetime.date.today()


def as_of_start(as_of: str) -> datetime.date | None:
    """First day of the period an as_of names (2026-07 -> 2026-07-01; 2025 -> 2025-01-01): a price
    known only to the month is taken as old as it could be. None for an undated row."""
    if not as_of:
        return None
    parts = [int(x) for x in as_of.split("-")] + [1, 1]
    return datetime.date(parts[0], parts[1], parts[2])


def age_days(price: Price, ref: datetime.date) -> int | None:
    """Days from the row's as_of to `ref`; 0, not negative, for a row quoted after `ref` (a rerun
    with $COSTBENCH_TODAY set before the catalog's newest quotes: such a row is as fresh as can be)."""
    start = as_of_start(price.as_of)
    return None if start is None else max(0, (ref - start).days)


def add_months(start: datetime.date, months: int) -> datetime.date:
    """The same day `months` calendar months on, clamped to the month's end (01-31 + 1 -> 02-28)."""
    year, month0 = divmod(start.month - 1 + months, 12)
    year += start.year
    last = calendar.monthrange(year, month0 + 1)[1]
    return datetime.date(year, month0 + 1, min(start.day, last))


def is_stale(price: Price, ref: datetime.date, stale_months: float = DEFAULT_STALE_MONTHS) -> bool:
    """Older than `stale_months` at `ref`: `ref` past the day that many calendar months after as_of
    (a fraction of a month as days of a 30.44-day month). A quote 6 months and 6 days old is older
    than 6 months (whole months compared with > marked it only from 7). An undated (user) row never is."""
    start = as_of_start(price.as_of)
    if start is None:
        return False
    whole = math.floor(stale_months)
    return ref > add_months(start, whole) + datetime.timedelta(days=(stale_months - whole) * 30.44)


def stale_warning(prices: list[Price], ref: datetime.date, stale_months: float) -> str | None:
    """One line naming how many quoted rows are older than the threshold, and the oldest."""
    old = [p for p in prices if is_stale(p, ref, stale_months)]
    if not old:
        return None
    oldest = min(old, key=lambda p: as_of_start(p.as_of))
    return (f"{len(old)} of {len(prices)} price rows are older than {stale_months:g} month{'' if stale_months == 1 else 's'} at "
            f"{ref.isoformat()} (oldest: {oldest.provider} {oldest.gpu} {oldest.pricing}, as of "
            f"{oldest.as_of}); re-check them, pass your own with --prices, or set --stale-months")


# --- term commitments -------------------------------------------------------------------------

def capacity_block_days(run_days: float) -> int:
    """Days of Capacity Blocks a run of `run_days` buys: 1-14 whole days, beyond that a multiple
    of 7 days; runs longer than one 182-day block take several blocks (each a multiple of 7), so the
    182-day cap never changes the total and is not applied."""
    if not (run_days > 0 and math.isfinite(run_days)):
        raise InputError(f"capacity block: run length {run_days!r} days must be positive")
    days = math.ceil(run_days - 1e-9)
    return days if days <= 14 else 7 * math.ceil(days / 7)


def commitment_usd(price: Price, gpus: int, run_days: float | None) -> float | None:
    """What the term costs whatever the run uses: GPUs x term hours x price.

    reserved-1y/3y: the term is the reservation's (a 15-day run still pays for the year);
    capacity-block: the blocks the run needs (capacity_block_days). None for kinds without a term
    or when the cluster size or run length is unknown.
    """
    if not gpus:
        return None
    if price.pricing in TERM_HOURS:
        return gpus * TERM_HOURS[price.pricing] * price.usd_per_gpu_hour
    if price.pricing == "capacity-block" and run_days and math.isfinite(run_days):
        return gpus * capacity_block_days(run_days) * 24 * price.usd_per_gpu_hour
    return None
