"""Own versus rent: what one owned GPU-hour costs, and when owning (or renting out) pays.

Torch-free, pure arithmetic on one small dataclass, OwnedGpu. Units: USD, years, hours, kW.

Owned cost per *used* GPU-hour at utilisation u (the share of the year's 8,760 hours the GPU
does paid or useful work):

    owned(u) = (capital_usd_per_year + opex_usd_per_year) / (8760 u)  +  kW x PUE x $/kWh

capital_usd_per_year is the level yearly payment that repays the capex, net of the residual value
received at the end, with interest at `interest` a year on the outstanding debt (the capital
recovery factor of engineering economics; an annuity):

    capital_usd_per_year = (capex - residual / (1 + r)^L) x CRF(r, L),  CRF = r / (1 - (1 + r)^-L)

At r = 0 this is straight-line depreciation, (capex - residual) / L; for r > 0 it is straight-line
depreciation plus interest on the debt as it is paid down (interest_usd_per_year reports that
part: the payment less the straight-line depreciation). Power is paid only for hours the GPU
works (idle draw is not modelled), so the power term does not depend on u.

Worked example (README): capex $30,000, life 4 years, 0.7 kW, PUE 1.3, $0.08/kWh, nothing else:
capital 30000 / 4 = $7,500 a year; power 0.7 x 1.3 x 0.08 = $0.0728 per used hour;
u = 100%: 7500 / 8760 + 0.0728 = 0.85616 + 0.0728 = $0.92896;
u = 50%:  7500 / 4380 + 0.0728 = 1.71233 + 0.0728 = $1.78513.

Break-even utilisation against a rental price p (owning is cheaper above it):
    owned(u) < p  <=>  u > fixed_usd_per_year / (8760 (p - power_usd_per_used_hour))
None ("never") when p does not cover the power or the threshold is above 100%.

The provider's side (a GPU cloud that bought the GPU and rents it at p): yearly net cash
C = (p - power per hour) x 8760 u - opex. The debt is paid back after n years when the present
value of n years of C equals the capex: capex = C (1 - (1 + r)^-n) / r, so
    n = -ln(1 - capex r / C) / ln(1 + r)     (n = capex / C at r = 0),
never when C <= capex r (the cash does not even cover the interest). The price that pays back
capex and interest within the life is the p at which n = L. The residual value arrives only at
the end of the life and is left out of payback (conservative).
"""

import dataclasses
import math

from cost_models.errors import InputError

HOURS_PER_YEAR = 8760  # 365 x 24; the worked example above uses it
SENSITIVITY_LIFE_YEARS = (3, 4, 5)              # the 3-5 year useful-life range in the debate
SENSITIVITY_UTILIZATION = (0.5, 0.7, 0.85, 1.0)


def _check(name, value, ok, what):
    if not (isinstance(value, (int, float)) and math.isfinite(value) and ok(value)):
        # named as the flag the user typed (`--capex`), as every other refusal names its input
        raise InputError(f"--{name.removeprefix('--')}: {value!r} must be {what}")


def check_utilization(value, name="utilization"):
    _check(name, value, lambda v: 0 < v <= 1, "in (0, 1] (a share of the year's hours)")
    return value


@dataclasses.dataclass(frozen=True)
class OwnedGpu:
    """One owned GPU's economics. capex_usd includes its share of server and network."""

    capex_usd: float
    life_years: float
    power_kw: float          # GPU plus its share of the server, while working
    pue: float               # facility power / IT power
    usd_per_kwh: float
    utilization: float = 1.0
    residual_fraction: float = 0.0   # resale value at the end of the life, as a share of capex
    interest: float = 0.0            # yearly cost of capital on the debt that bought the GPU
    opex_usd_per_year: float = 0.0   # staff, maintenance, colocation: anything besides power

    def __post_init__(self):
        _check("capex", self.capex_usd, lambda v: v >= 0, "a non-negative number of USD")
        _check("life-years", self.life_years, lambda v: v > 0, "positive")
        _check("power-kw", self.power_kw, lambda v: v >= 0, "non-negative")
        _check("pue", self.pue, lambda v: v >= 1, "at least 1 (facility power / IT power)")
        _check("usd-per-kwh", self.usd_per_kwh, lambda v: v >= 0, "non-negative")
        check_utilization(self.utilization)
        _check("residual-fraction", self.residual_fraction, lambda v: 0 <= v < 1, "in [0, 1)")
        _check("interest", self.interest, lambda v: 0 <= v < 1, "a yearly rate in [0, 1), e.g. 0.08")
        _check("opex-usd-per-gpu-year", self.opex_usd_per_year, lambda v: v >= 0, "non-negative")

    def replace(self, **changes) -> "OwnedGpu":
        return dataclasses.replace(self, **changes)

    # --- cost of owning ---------------------------------------------------------------------
    def _crf(self, years: float) -> float:
        """Capital recovery factor: the yearly payment per dollar borrowed over `years`."""
        r = self.interest
        return 1 / years if r == 0 else r / (1 - (1 + r) ** -years)

    @property
    def capital_usd_per_year(self) -> float:
        """Level yearly payment: straight-line depreciation plus interest (annuity)."""
        residual = self.capex_usd * self.residual_fraction
        return (self.capex_usd - residual * (1 + self.interest) ** -self.life_years) * self._crf(self.life_years)

    @property
    def depreciation_usd_per_year(self) -> float:
        return self.capex_usd * (1 - self.residual_fraction) / self.life_years

    @property
    def interest_usd_per_year(self) -> float:
        return self.capital_usd_per_year - self.depreciation_usd_per_year

    @property
    def fixed_usd_per_year(self) -> float:
        """What the year costs whether or not the GPU works: capital plus opex."""
        return self.capital_usd_per_year + self.opex_usd_per_year

    @property
    def power_usd_per_used_hour(self) -> float:
        return self.power_kw * self.pue * self.usd_per_kwh

    def owned_usd_per_gpu_hour(self, utilization: float | None = None) -> float:
        """Cost of one used GPU-hour at `utilization` (default: this GPU's)."""
        u = check_utilization(self.utilization if utilization is None else utilization)
        return self.fixed_usd_per_year / (HOURS_PER_YEAR * u) + self.power_usd_per_used_hour

    # --- against a rental price ------------------------------------------------------------
    def break_even_utilization(self, rental_usd_per_hour: float) -> float | None:
        """The utilisation above which owning is cheaper than renting at this price; None: never."""
        margin = rental_usd_per_hour - self.power_usd_per_used_hour
        if margin <= 0:
            return None
        u = self.fixed_usd_per_year / (HOURS_PER_YEAR * margin)
        return u if u <= 1 else None

    def break_even_committed(self, rental_usd_per_hour: float) -> float | None:
        """Against a term price (a reservation, paid every hour of the term whether the GPU works or
        not): both sides are then mostly fixed, and owning, whose power is paid only for the hours
        it works, is cheaper BELOW this utilisation: fixed + power x 8760 u < price x 8760. 1.0: at
        any utilisation; None: never (the term costs less than owning's fixed part alone)."""
        margin = rental_usd_per_hour - self.fixed_usd_per_year / HOURS_PER_YEAR
        if margin <= 0:
            return None
        power = self.power_usd_per_used_hour
        return 1.0 if power == 0 else min(1.0, margin / power)

    def saving_usd_over_life(self, rental_usd_per_hour: float, committed: bool = False) -> float:
        """Renting the same used hours minus owning, over the life (negative: owning loses).
        committed: a term price, paid for every hour, so each used hour costs price / utilisation."""
        used_hours = HOURS_PER_YEAR * self.utilization * self.life_years
        rent = rental_usd_per_hour / self.utilization if committed else rental_usd_per_hour
        return (rent - self.owned_usd_per_gpu_hour()) * used_hours

    # --- the provider's side ---------------------------------------------------------------
    def net_cash_usd_per_year(self, rental_usd_per_hour: float, utilization: float | None = None) -> float:
        u = check_utilization(self.utilization if utilization is None else utilization)
        return (rental_usd_per_hour - self.power_usd_per_used_hour) * HOURS_PER_YEAR * u - self.opex_usd_per_year

    def payback_years(self, rental_usd_per_hour: float, utilization: float | None = None) -> float | None:
        """Years of renting at this price until capex and interest are paid back; None: never."""
        cash = self.net_cash_usd_per_year(rental_usd_per_hour, utilization)
        r = self.interest
        if cash <= 0 or cash <= self.capex_usd * r:
            return None
        if r == 0:
            return self.capex_usd / cash
        return -math.log(1 - self.capex_usd * r / cash) / math.log(1 + r) + 0.0   # + 0.0: no -0.0 at capex 0

    def payback_price(self, utilization: float | None = None) -> float:
        """The rental $/GPU-hour that pays back capex and interest in exactly the life."""
        u = check_utilization(self.utilization if utilization is None else utilization)
        needed = self.capex_usd * self._crf(self.life_years) + self.opex_usd_per_year
        return needed / (HOURS_PER_YEAR * u) + self.power_usd_per_used_hour

    # --- sensitivity -----------------------------------------------------------------------
    def sensitivity(self, lives=SENSITIVITY_LIFE_YEARS, utilizations=SENSITIVITY_UTILIZATION) -> dict:
        """Owned $/used GPU-hour for each life x utilisation: {"life_years", "utilization",
        "owned_usd_per_gpu_hour": one list per life, one value per utilisation}."""
        grid = [[self.replace(life_years=life).owned_usd_per_gpu_hour(u) for u in utilizations] for life in lives]
        return {"life_years": list(lives), "utilization": list(utilizations), "owned_usd_per_gpu_hour": grid}


# --- defaults for `costbench tco`, each with where it comes from ----------------------------------
@dataclasses.dataclass(frozen=True)
class Default:
    value: float
    source: str


# The GPU alone; the analysis gives no server/network share and no other source in the project does,
# so none is added by default: pass --capex with your system's share included.
CAPEX_USD = {"H100-SXM": Default(30_000, "industry analysis (2025): H100 ~$30,000 per GPU; "
                                          "assumption: no server/network share added")}
# Non-GPU draw of an 8-GPU server per GPU slot: NVIDIA DGX H100 User Guide, power specifications,
# 10.2 kW maximum input with 8 x 700 W GPUs -> (10.2 - 5.6) / 8 = 0.575 kW. A maximum, not a typical
# draw; assumed the same for other 8-GPU servers.
SERVER_KW_PER_GPU = Default(0.575, "NVIDIA DGX H100 User Guide: 10.2 kW max per 8-GPU system, "
                                   "less 8 GPUs' TDP, per GPU (a maximum)")
DEFAULTS = {
    "life_years": Default(4, "midpoint of the 3-5 year useful life argued in the neocloud amortisation "
                             "debate (industry analysis 2025)"),
    "utilization": Default(0.7, "fleet utilisation 70% (industry analysis 2025; 85% is the claimed target)"),
    "residual_fraction": Default(0.0, "assumption: worth nothing after its life (conservative)"),
    "pue": Default(1.3, "assumption: a modern colocation facility; no published source in the project"),
    "usd_per_kwh": Default(0.08, "assumption: industrial electricity; no published source in the project"),
    "interest": Default(0.08, "assumption: cost of the debt that bought the GPUs; no published source "
                              "in the project, vary it"),
    "opex_usd_per_year": Default(0.0, "assumption: staff, maintenance and space not counted"),
}


def default_power_kw(tdp_w: float) -> float:
    """The GPU's TDP plus its share of the server's draw (SERVER_KW_PER_GPU)."""
    return tdp_w / 1000 + SERVER_KW_PER_GPU.value
