"""PDE questions from AWL's diffusion template (src/PDE/make_problems.py): the same
three scenarios, parameter ranges and sentences, one asked quantity per question.

- scenarios: heat conduction (D 0.1-1.0, L 10-100 cm, T 60-600 s), chemical diffusion
  (D 0.0001-0.001, L 1-10 cm, T 10-1000 s), population spread (D 0.1-1.0, L 10-100 km,
  T 1-10 years);
- 1D: constant or step initial condition; 2D (Ly 5-10): constant or the 100/0
  checkerboard of 0.5 x 0.5 cells; Dirichlet (values 0-100), Neumann or periodic;
- asked: maximum, minimum, average, the value at a point, or the maximum gradient;
  AWL's options: a number or an interval, one in two.
"""

from __future__ import annotations

import random
from typing import Any

from entrypoints.teacher.problems import Ask, Draft

DOMAIN = "pde"
TOOL = "setup_and_solve"
SCENARIOS = {
    # name: (D range and digits, L range, T range, unit, variable, time unit, length unit)
    "heat_conduction": ((0.1, 1.0, 2), (10, 100), (60, 600), "°C", "temperature", "seconds", "cm"),
    "chemical_diffusion": (
        (0.0001, 0.001, 4), (1, 10), (10, 1000), "mol/L", "concentration", "seconds", "cm",
    ),
    "population_spread": (
        (0.1, 1.0, 2), (10, 100), (1, 10), "individuals/km²", "population density", "years", "km",
    ),
}  # fmt: skip
SOLUTION_TYPES = (
    "get_max_value",
    "get_min_value",
    "get_mean_value",
    "get_value_at_point",
    "get_max_gradient",
)
# What the solving process calls each asked quantity.
SOLUTION_WORDS = {
    "get_max_value": "maximum",
    "get_min_value": "minimum",
    "get_mean_value": "average",
    "get_value_at_point": "value at the point",
    "get_max_gradient": "maximum gradient",
}
READ_KEYS = ("solution_type", "solution_x", "solution_y")  # what a question asks, not its setup


def draw(rng: random.Random) -> Draft:
    scenario = rng.choice(list(SCENARIOS))
    (d_low, d_high, d_digits), l_range, t_range, unit, variable, t_unit, l_unit = SCENARIOS[
        scenario
    ]
    diffusivity = round(rng.uniform(d_low, d_high), d_digits)
    length = rng.randint(*l_range)
    time = rng.randint(*t_range)
    dimension = rng.choice(["1D", "2D"])
    process = scenario.replace("_", " ")
    args: dict[str, Any] = {"dimension": dimension, "D": float(diffusivity), "T": float(time)}
    if dimension == "1D":
        args["L"] = float(length)
        ic_type = rng.choice(["constant", "step"])
        if ic_type == "constant":
            value = rng.randint(0, 100)
            ic = f"constant initial {variable} of {value} {unit}"
            args |= {"ic_type": "constant", "ic_params": {"value": float(value)}}
        else:
            left, right = rng.randint(0, 100), rng.randint(0, 100)
            ic = f"step function with {left} {unit} for x < L/2 and {right} {unit} for x ≥ L/2"
            args |= {
                "ic_type": "step",
                "ic_params": {"left_value": float(left), "right_value": float(right)},
            }
        bc_type = rng.choice(["dirichlet", "neumann", "periodic"])
        if bc_type == "dirichlet":
            left, right = rng.randint(0, 100), rng.randint(0, 100)
            bc = (
                f"Dirichlet boundary conditions with {left} {unit} at x=0 and {right} {unit} at x=L"
            )
            bc_params: dict[str, float] | None = {
                "left_value": float(left),
                "right_value": float(right),
            }
        else:
            bc, bc_params = _open_boundary(bc_type), None
        size = f"(D={diffusivity}, L={length} {l_unit})"
    else:
        width = rng.randint(5, 10)
        args |= {"Lx": float(length), "Ly": float(width)}
        ic_type = rng.choice(["constant", "checkerboard"])
        if ic_type == "constant":
            value = rng.randint(0, 100)
            ic = f"constant initial {variable} of {value} {unit}"
            args |= {"ic_type": "constant", "ic_params": {"value": float(value)}}
        else:
            ic = f"checkerboard pattern with alternating 100 {unit} and 0 {unit}"
            cells = {"value1": 100.0, "value2": 0.0, "cell_size_x": 0.5, "cell_size_y": 0.5}
            args |= {"ic_type": "checkerboard", "ic_params": cells}
        bc_type = rng.choice(["dirichlet", "neumann", "periodic"])
        if bc_type == "dirichlet":
            left, right, bottom, top = (rng.randint(0, 100) for _ in range(4))
            bc = (
                f"Dirichlet boundary conditions with {left}, {right}, {bottom}, and {top} "
                f"{unit} at left, right, bottom, and top boundaries"
            )
            bc_params = {
                "left_value": float(left),
                "right_value": float(right),
                "bottom_value": float(bottom),
                "top_value": float(top),
            }
        else:
            bc, bc_params = _open_boundary(bc_type), None
        size = f"(D={diffusivity}, Lx={length} {l_unit}, Ly={width} {l_unit})"
    args["bc_type"] = bc_type
    if bc_params is not None:
        args["bc_params"] = bc_params
    solution = rng.choice(SOLUTION_TYPES)
    args["solution_type"] = solution
    head = f"In a {dimension} {process} process with {ic} and {bc}, what is the"
    after = f"after {time} {t_unit}? {size}"
    if solution == "get_value_at_point":
        if dimension == "1D":
            point = rng.randint(0, length)
            args["solution_x"] = float(point)
            asked = f"{head} {variable} ({unit}) at x={point} {l_unit} {after}"
        else:
            x, y = rng.randint(0, length), rng.randint(0, width)
            args |= {"solution_x": float(x), "solution_y": float(y)}
            asked = f"{head} {variable} ({unit}) at (x,y)=({x},{y}) {l_unit} {after}"
    elif solution == "get_max_gradient":
        asked = f"{head} maximum gradient of {variable} ({unit}) per {l_unit} {after}"
    else:
        asked = f"{head} {SOLUTION_WORDS[solution]} {variable} ({unit}) {after}"
    unit_shown = f"{unit} per {l_unit}" if solution == "get_max_gradient" else unit
    ask = Ask(
        rule="value",
        path=("value",),
        options="number_or_interval",
        quantity=f"the {SOLUTION_WORDS[solution]} of the {variable}",
        unit=unit_shown,
        digits=2,  # AWL's answers are round(v, 2)
    )
    family = f"{dimension}/{ic_type}/{bc_type}"
    return Draft(
        domain=DOMAIN,
        template=f"pde/{scenario}/{family}/{solution}",
        question=asked,
        tool=TOOL,
        arguments=args,
        ask=ask,
        scenario=scenario_of(args),
    )


def scenario_of(arguments: dict[str, Any]) -> dict[str, Any]:
    """The setup a question shares with others on the same run (all but what it reads)."""
    return {k: v for k, v in arguments.items() if k not in READ_KEYS}


def _open_boundary(bc_type: str) -> str:
    if bc_type == "neumann":
        return "Neumann boundary conditions (zero flux at boundaries)"
    return "Periodic boundary conditions"
