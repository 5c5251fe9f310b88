"""The `climate` tool server: global mean surface temperature under SSP scenarios.

Model choice (see the climate note in the design material): FaIR 1.6.4 end to end.
It ships the RCMIP SSP emissions inside its wheel, so nothing is downloaded at run
time, while FaIR 2.x would need the same emissions fetched from the network.

Calibration: FaIR runs with the AR6 best-estimate TCR 1.8 K and ECS 3.0 K, and the
anomaly uses the AR6 WG1 SPM method: the change from the 1995-2014 mean plus the
assessed 0.85 °C of warming from 1850-1900 to 1995-2014. That removes FaIR 1.6's own
historical bias (about +0.2 °C) from every projection; the tests hold it to Table
SPM.1 within 0.4 °C.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from tool_servers.base import Tool, ToolArguments

AR6_TCR_ECS = (1.8, 3.0)
AR6_WARMING_TO_1995_2014_C = 0.85
REFERENCE_PERIOD = (1995, 2014)
SCENARIOS = ("ssp119", "ssp126", "ssp245", "ssp370", "ssp585")
# Columns of FaIR 1.6's 40-column emissions array that the deltas scale.
SPECIES_COLUMNS = {"CO2": (1, 2), "CH4": (3,), "SO2": (5,), "BC": (9,)}


class GlobalTemperature(ToolArguments):
    """Arguments of `global_temperature` (DESIGN §5)."""

    scenario: Literal["ssp119", "ssp126", "ssp245", "ssp370", "ssp585"]
    start_year: int = Field(ge=1850, le=2300)
    end_year: int = Field(ge=1850, le=2300)
    delta_CO2: float = Field(
        default=0.0, ge=-100, le=1000, description="% change of CO2 emissions."
    )
    delta_CH4: float = Field(
        default=0.0, ge=-100, le=1000, description="% change of CH4 emissions."
    )
    delta_SO2: float = Field(
        default=0.0, ge=-100, le=1000, description="% change of SO2 emissions."
    )
    delta_BC: float = Field(default=0.0, ge=-100, le=1000, description="% change of BC emissions.")
    delta_from_year: int = Field(
        default=2015, ge=1850, le=2300, description="First year the emission changes apply."
    )

    @model_validator(mode="after")
    def _ordered(self) -> GlobalTemperature:
        if self.end_year < self.start_year:
            raise ValueError("end_year must not be before start_year")
        return self


def _squeeze_single(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = fn(*args, **kwargs)
        if isinstance(result, np.ndarray) and result.shape == (1,):
            return result[0]
        return result

    return wrapper


@functools.cache
def _fair() -> Any:
    """Import FaIR 1.6 once, adapted to NumPy 2.

    FaIR 1.6 stores one-element arrays returned by its forcing functions into scalar
    slots (`F[0, i] = f(...)`), which NumPy ≥ 2.4 refuses. Returning the scalar from
    those functions is the whole fix; the physics is untouched.
    """
    from fair import forward
    from fair.forcing import aerosols, bc_snow, contrails, h2o_st, landuse, ozone_st, ozone_tr

    for module in (ozone_tr, ozone_st, h2o_st, contrails, aerosols, bc_snow, landuse):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__:
                setattr(module, name, _squeeze_single(fn))
    return forward


@functools.cache
def scenario_emissions(scenario: str) -> np.ndarray:
    """FaIR 1.6's 40-column emissions array for one SSP, read from its packaged RCMIP file.

    `import fair.SSPs` parses the file once per scenario, nine times, which takes about
    half a minute; loading only the one asked for takes about two seconds.
    """
    import importlib.util
    from pathlib import Path

    import fair

    folder = Path(fair.__file__).parent / "SSPs"
    spec = importlib.util.spec_from_file_location("fair.SSPs._shared", folder / "_shared.py")
    assert spec is not None and spec.loader is not None
    shared = importlib.util.module_from_spec(spec)
    shared.__package__ = "fair.SSPs"
    spec.loader.exec_module(shared)
    data = folder / "data" / "rcmip-emissions-annual-means-5-1-0-ssp-only.csv"
    emissions: np.ndarray = shared.load_emissions_data(str(data), scenario).emissions
    return emissions


@functools.lru_cache(maxsize=256)
def temperature_series(
    scenario: str, deltas: tuple[tuple[str, float], ...], delta_from_year: int
) -> tuple[np.ndarray, np.ndarray]:
    """(years, anomaly vs 1850-1900 in °C) for one scenario and set of emission deltas."""
    forward = _fair()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from fair.ancil import cmip6_solar, cmip6_volcanic, natural

    emissions = scenario_emissions(scenario).copy()
    years = emissions[:, 0]
    future = years >= delta_from_year
    for species, percent in deltas:
        for column in SPECIES_COLUMNS[species]:
            emissions[future, column] *= 1 + percent / 100
    # Volcanic and solar forcing as in FaIR's SSP runs: historical to 2125, zero after.
    volcanic, solar = np.zeros(len(years)), np.zeros(len(years))
    volcanic[:361] = cmip6_volcanic.Forcing.volcanic[:361]
    solar[:361] = cmip6_solar.Forcing.solar[:361]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, temperature = forward.fair_scm(
            emissions=emissions,
            natural=natural.Emissions.emissions,
            F_volcanic=volcanic,
            F_solar=solar,
            fixPre1850RCP=False,
            tcrecs=np.array(AR6_TCR_ECS),
        )
    lo, hi = REFERENCE_PERIOD
    reference = temperature[(years >= lo) & (years <= hi)].mean()
    return years.astype(int), temperature - reference + AR6_WARMING_TO_1995_2014_C


def global_temperature(args: GlobalTemperature) -> dict[str, Any]:
    """Mean anomaly over [start_year, end_year], plus the yearly series."""
    deltas = tuple(
        (species, value)
        for species, value in (
            ("CO2", args.delta_CO2),
            ("CH4", args.delta_CH4),
            ("SO2", args.delta_SO2),
            ("BC", args.delta_BC),
        )
        if value != 0
    )
    years, anomaly = temperature_series(args.scenario, deltas, args.delta_from_year)
    window = (years >= args.start_year) & (years <= args.end_year)
    series = {
        int(y): round(float(t), 4) for y, t in zip(years[window], anomaly[window], strict=True)
    }
    return {
        "value": float(anomaly[window].mean()),
        "unit": "°C vs 1850-1900",
        "series": series,
        "scenario": args.scenario,
    }


CLIMATE_TOOLS = [
    Tool(
        name="global_temperature",
        description=(
            "Global mean surface temperature anomaly (°C vs 1850-1900) under an SSP scenario, "
            "averaged over start_year..end_year, from the FaIR simple climate model calibrated "
            "to IPCC AR6. Optional % changes of CO2, CH4, SO2 and BC emissions from "
            "delta_from_year on."
        ),
        arguments=GlobalTemperature,
        run=global_temperature,
        timeout_s=20.0,
    )
]
