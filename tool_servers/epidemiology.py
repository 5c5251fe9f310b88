"""The `epidemiology` tool server: SIR, SEIR and SEIHR compartment models with
time-windowed interventions (DESIGN §5, `simulate_epidemic`).

SEIHR adds hospital care: a fraction of the infectious move to H instead of R, stay
`hospital_days`, and `icu_fraction` of H is reported as ICU occupancy. Interventions
scale the contact rate by (1 - contact_reduction) inside their window; overlapping
windows multiply. The ODEs are integrated piecewise between window edges, so a jump in
the contact rate never smears across a step.
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from scipy.integrate import solve_ivp

from tool_servers.base import Tool, ToolArguments

MAX_DAYS = 3650
SAMPLES_PER_DAY = 20


class Intervention(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start_day: float = Field(ge=0, le=MAX_DAYS)
    end_day: float = Field(ge=0, le=MAX_DAYS)
    contact_reduction: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Intervention:
        if self.end_day <= self.start_day:
            raise ValueError("an intervention's end_day must be after its start_day")
        return self


class SimulateEpidemic(ToolArguments):
    model: Literal["SIR", "SEIR", "SEIHR"]
    population: float = Field(gt=0, le=1e10)
    r0: float = Field(gt=0, le=30, description="Basic reproduction number.")
    infectious_period_days: float = Field(gt=0, le=365)
    incubation_period_days: float | None = Field(default=None, gt=0, le=365)
    initial_infected: float = Field(gt=0)
    days: float = Field(gt=0, le=MAX_DAYS, description="Simulated days.")
    interventions: list[Intervention] = Field(default_factory=list, max_length=50)
    output: Literal["peak_day", "peak_infected", "final_size", "infected_at_day"]
    day: float | None = Field(default=None, ge=0, description="For infected_at_day.")
    hospitalization_fraction: float = Field(default=0.05, ge=0, le=1, description="SEIHR.")
    hospital_days: float = Field(default=10.0, gt=0, le=365, description="SEIHR.")
    icu_fraction: float = Field(default=0.2, ge=0, le=1, description="SEIHR: share of H in ICU.")

    @model_validator(mode="after")
    def _consistent(self) -> SimulateEpidemic:
        if self.model != "SIR" and self.incubation_period_days is None:
            raise ValueError(f"{self.model} needs incubation_period_days")
        if self.initial_infected > self.population:
            raise ValueError("initial_infected cannot exceed the population")
        if self.output == "infected_at_day":
            if self.day is None:
                raise ValueError("infected_at_day needs day")
            if self.day > self.days:
                raise ValueError(f"day={self.day} is after the simulated {self.days} days")
        return self


def _contact_factor(interventions: list[Intervention], t: float) -> float:
    factor = 1.0
    for w in interventions:
        if w.start_day <= t < w.end_day:
            factor *= 1 - w.contact_reduction
    return factor


def _rhs(args: SimulateEpidemic, factor: float) -> Any:
    gamma = 1 / args.infectious_period_days
    beta = args.r0 * gamma * factor
    sigma = 1 / args.incubation_period_days if args.incubation_period_days else 0.0
    n = args.population
    p_h = args.hospitalization_fraction if args.model == "SEIHR" else 0.0
    eta = 1 / args.hospital_days

    def rhs(_t: float, y: np.ndarray) -> list[float]:
        s, e, i, h, _r = y
        infection = beta * s * i / n
        if args.model == "SIR":
            return [-infection, 0.0, infection - gamma * i, 0.0, gamma * i]
        return [
            -infection,
            infection - sigma * e,
            sigma * e - gamma * i,
            p_h * gamma * i - eta * h,
            (1 - p_h) * gamma * i + eta * h,
        ]

    return rhs


def integrate(args: SimulateEpidemic) -> tuple[np.ndarray, np.ndarray]:
    """Times and states [S, E, I, H, R] sampled SAMPLES_PER_DAY times a day."""
    edges = {0.0, args.days}
    for w in args.interventions:
        edges.update(t for t in (w.start_day, w.end_day) if 0 < t < args.days)
    bounds = sorted(edges)
    y = np.array([args.population - args.initial_infected, 0.0, args.initial_infected, 0.0, 0.0])
    times, states = [np.array([0.0])], [y[:, None]]
    for a, b in itertools.pairwise(bounds):
        grid = np.linspace(a, b, max(2, round((b - a) * SAMPLES_PER_DAY) + 1))
        sol = solve_ivp(
            _rhs(args, _contact_factor(args.interventions, a)),
            (a, b),
            y,
            t_eval=grid,
            method="LSODA",
            rtol=1e-9,
            atol=1e-9,
        )
        times.append(sol.t[1:])
        states.append(sol.y[:, 1:])
        y = sol.y[:, -1]
    return np.concatenate(times), np.concatenate(states, axis=1)


def simulate_epidemic(args: SimulateEpidemic) -> dict[str, Any]:
    t, (s, e, i, h, r) = integrate(args)
    peak = int(np.argmax(i))
    summary: dict[str, Any] = {
        "peak_day": float(t[peak]),
        "peak_infected": float(i[peak]),
        "final_size": float(args.population - s[-1]),
        "final_size_fraction": float((args.population - s[-1]) / args.population),
        "population_drift": float(np.abs(s + e + i + h + r - args.population).max()),
    }
    if args.day is not None:
        summary["infected_at_day"] = float(np.interp(args.day, t, i))
    if args.model == "SEIHR":
        summary["peak_hospitalized"] = float(h.max())
        summary["peak_icu"] = float(h.max() * args.icu_fraction)
    return {"value": summary[args.output], **summary}


EPIDEMIOLOGY_TOOLS = [
    Tool(
        name="simulate_epidemic",
        description=(
            "Simulate an SIR, SEIR or SEIHR (with hospital and ICU) epidemic with optional "
            "contact-reducing interventions over day windows. Returns the requested output "
            "(peak_day, peak_infected, final_size or infected_at_day) as value, plus all of "
            "them."
        ),
        arguments=SimulateEpidemic,
        run=simulate_epidemic,
        timeout_s=20.0,
    )
]
