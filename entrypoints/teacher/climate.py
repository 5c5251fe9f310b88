"""Climate questions from sciserve's own `global_temperature` schema (tool_servers/
climate.py: FaIR 1.6 calibrated to AR6). AWL's climate items ask city-level
projections from the authors' emulator arrays, which a global-mean model cannot answer,
so these ask what the tool does answer: the global mean surface temperature anomaly
relative to 1850-1900 over a window of years, under an SSP scenario, optionally with
one species' emissions changed by a percentage from a given year on.

Templates:
- `window`: a 20-year AR6 reporting window (2021-2040, 2041-2060, 2081-2100) or any
  5-, 10- or 20-year window starting 2020-2090;
- `year`: one year, 2025-2100;
- `emissions`: `window`'s question with delta_CO2 / delta_CH4 / delta_SO2 / delta_BC of
  -80% to +100% (steps of 10) from 2020, 2025, 2030 or 2040 on.
"""

from __future__ import annotations

import random
from typing import Any

from entrypoints.teacher.problems import Ask, Draft

DOMAIN = "climate"
TOOL = "global_temperature"
SCENARIOS = {
    "ssp119": "SSP1-1.9",
    "ssp126": "SSP1-2.6",
    "ssp245": "SSP2-4.5",
    "ssp370": "SSP3-7.0",
    "ssp585": "SSP5-8.5",
}
AR6_WINDOWS = ((2021, 2040), (2041, 2060), (2081, 2100))
SPECIES = {"CO2": "carbon dioxide (CO2)", "CH4": "methane (CH4)", "SO2": "sulfur dioxide (SO2)",
           "BC": "black carbon (BC)"}  # fmt: skip
DELTA_FROM = (2020, 2025, 2030, 2040)
MODEL = "the FaIR simple climate model (calibrated to IPCC AR6)"
ASK = Ask(
    rule="value",
    path=("value",),
    options="number",
    quantity="the mean global surface temperature anomaly",
    unit="°C",
    digits=2,
)


def _window(rng: random.Random) -> tuple[int, int]:
    if rng.random() < 0.5:
        return rng.choice(AR6_WINDOWS)
    length = rng.choice((5, 10, 20))
    start = rng.randint(2020, 2100 - length + 1)
    return start, start + length - 1


def draw(rng: random.Random) -> Draft:
    template = rng.choice(("window", "year", "emissions"))
    scenario = rng.choice(list(SCENARIOS))
    name = SCENARIOS[scenario]
    args: dict[str, Any] = {"scenario": scenario}
    if template == "year":
        year = rng.randint(2025, 2100)
        args |= {"start_year": year, "end_year": year}
        question = (
            f"According to {MODEL}, what is the global mean surface temperature anomaly "
            f"(°C, relative to 1850-1900) in the year {year} under the {name} scenario?"
        )
    else:
        start, end = _window(rng)
        args |= {"start_year": start, "end_year": end}
        period = f"averaged over {start}-{end}"
        if template == "window":
            question = (
                f"According to {MODEL}, what is the global mean surface temperature anomaly "
                f"(°C, relative to 1850-1900) {period} under the {name} scenario?"
            )
        else:
            species = rng.choice(list(SPECIES))
            percent = rng.choice([p for p in range(-80, 101, 10) if p != 0])
            since = rng.choice(DELTA_FROM)
            args |= {f"delta_{species}": float(percent), "delta_from_year": since}
            change = f"{abs(percent)}% {'higher' if percent > 0 else 'lower'}"
            question = (
                f"Suppose global {SPECIES[species]} emissions are {change} than in the {name} "
                f"scenario from {since} onward, with all other emissions as in {name}. "
                f"According to {MODEL}, what is the global mean surface temperature anomaly "
                f"(°C, relative to 1850-1900) {period}?"
            )
    return Draft(
        domain=DOMAIN,
        template=f"climate/{template}",
        question=question,
        tool=TOOL,
        arguments=args,
        ask=ASK,
        scenario=dict(args),
    )
