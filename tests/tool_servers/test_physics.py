"""The tool servers against closed forms and published tables, over real HTTP."""

from __future__ import annotations

import math
from typing import Any

import httpx
import numpy as np
import pytest
from scipy.optimize import brentq

TERMS = 4000


def invoke(url: str, tool: str, **arguments: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/invoke", json={"tool": tool, "arguments": arguments}, timeout=120)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()["result"]
    return result


# --- PDE: Fourier series of u_t = D u_xx ------------------------------------------


def dirichlet_constant(
    x: float, t: float, D: float, L: float, c: float, a: float, b: float
) -> float:
    """u0 = c, u(0)=a, u(L)=b: the line a + (b-a)x/L plus a sine series of c minus it."""
    n = np.arange(1, TERMS + 1)
    # (2/L)∫(c - a - (b-a)x/L) sin(nπx/L) dx, term by term
    coef = 2 * (c - a) * (1 - (-1.0) ** n) / (n * np.pi) + 2 * (b - a) * (-1.0) ** n / (n * np.pi)
    k = n * np.pi / L
    return float(a + (b - a) * x / L + np.sum(coef * np.sin(k * x) * np.exp(-D * k**2 * t)))


def neumann_step(x: float, t: float, D: float, L: float, left: float, right: float) -> float:
    """Step at L/2, zero flux: the mean plus a cosine series."""
    n = np.arange(1, TERMS + 1)
    coef = 2 * (left - right) * np.sin(n * np.pi / 2) / (n * np.pi)
    k = n * np.pi / L
    return float((left + right) / 2 + np.sum(coef * np.cos(k * x) * np.exp(-D * k**2 * t)))


def periodic_step(x: float, t: float, D: float, L: float, left: float, right: float) -> float:
    """Step at L/2 on a ring: u0 is a square wave, odd about L/2's mean level."""
    n = np.arange(1, TERMS + 1)
    coef = 2 * (left - right) * (1 - np.cos(n * np.pi)) / (2 * n * np.pi)
    k = 2 * n * np.pi / L
    return float((left + right) / 2 + np.sum(coef * np.sin(k * x) * np.exp(-D * k**2 * t)))


def rel_error(value: float, expected: float) -> float:
    return abs(value - expected) / max(abs(expected), 1e-12)


@pytest.mark.parametrize("x", [3.0, 20.0, 43.0, 70.0])
def test_pde_1d_dirichlet_matches_fourier_series(tool_servers: dict[str, str], x: float) -> None:
    D, T, L = 0.81, 200.0, 86.0
    result = invoke(
        tool_servers["pde"],
        "setup_and_solve",
        dimension="1D",
        D=D,
        T=T,
        L=L,
        ic_type="constant",
        ic_params={"value": 63},
        bc_type="dirichlet",
        bc_params={"left_value": 67, "right_value": 44},
        solution_type="get_value_at_point",
        x=x,
    )
    assert result["converged"] is True
    assert rel_error(result["value"], dirichlet_constant(x, T, D, L, 63, 67, 44)) <= 1e-3


@pytest.mark.parametrize("x", [0.5, 4.9, 7.5])
def test_pde_1d_neumann_matches_fourier_series(tool_servers: dict[str, str], x: float) -> None:
    D, T, L = 0.3, 5.0, 10.0
    result = invoke(
        tool_servers["pde"],
        "setup_and_solve",
        dimension="1D",
        D=D,
        T=T,
        L=L,
        ic_type="step",
        ic_params={"left_value": 100, "right_value": 20},
        bc_type="neumann",
        solution_type="get_value_at_point",
        x=x,
    )
    assert rel_error(result["value"], neumann_step(x, T, D, L, 100, 20)) <= 1e-3


def test_pde_1d_neumann_conserves_the_mean(tool_servers: dict[str, str]) -> None:
    result = invoke(
        tool_servers["pde"],
        "setup_and_solve",
        dimension="1D",
        D=2.0,
        T=30.0,
        L=10.0,
        ic_type="step",
        ic_params={"left_value": 100, "right_value": 20},
        bc_type="neumann",
        solution_type="get_mean_value",
    )
    assert rel_error(result["value"], 60.0) <= 1e-3


@pytest.mark.parametrize("x", [1.0, 2.5, 6.0, 9.0])
def test_pde_1d_periodic_matches_fourier_series(tool_servers: dict[str, str], x: float) -> None:
    D, T, L = 0.5, 2.0, 10.0
    result = invoke(
        tool_servers["pde"],
        "setup_and_solve",
        dimension="1D",
        D=D,
        T=T,
        L=L,
        ic_type="step",
        ic_params={"left_value": 10, "right_value": -4},
        bc_type="periodic",
        solution_type="get_value_at_point",
        x=x,
    )
    expected = periodic_step(x, T, D, L, 10, -4)
    assert abs(result["value"] - expected) / 14 <= 1e-3  # relative to the jump: u crosses 0


def test_pde_2d_separable_checkerboard_matches_product_series(tool_servers: dict[str, str]) -> None:
    """A checkerboard is mean + amp·s(x)·s(y) with square waves s, so under zero flux the
    solution is the product of two 1D cosine series."""
    D, T, Lx, Ly, cx, cy = 0.2, 1.5, 4.0, 2.0, 1.0, 1.0
    v1, v2 = 9.0, 1.0

    def square_wave(z: float, length: float, cell: float) -> float:
        # s(z) = ±1 alternating every `cell`; cosine coefficients by quadrature
        n = np.arange(0, TERMS + 1)
        grid = np.linspace(0, length, 200001)
        s = np.where(np.floor(grid / cell) % 2 == 0, 1.0, -1.0)
        coef = np.array(
            [np.trapezoid(s * np.cos(m * np.pi * grid / length), grid) for m in n[:400]]
        )
        coef *= 2 / length
        coef[0] /= 2
        k = n[:400] * np.pi / length
        return float(np.sum(coef * np.cos(k * z) * np.exp(-D * k**2 * T)))

    x, y = 1.3, 0.4
    expected = (v1 + v2) / 2 + (v1 - v2) / 2 * square_wave(x, Lx, cx) * square_wave(y, Ly, cy)
    result = invoke(
        tool_servers["pde"],
        "setup_and_solve",
        dimension="2D",
        D=D,
        T=T,
        Lx=Lx,
        Ly=Ly,
        ic_type="checkerboard",
        ic_params={"value1": v1, "value2": v2, "cell_size_x": cx, "cell_size_y": cy},
        bc_type="neumann",
        solution_type="get_value_at_point",
        x=x,
        y=y,
    )
    assert rel_error(result["value"], expected) <= 1e-3


# --- mechanics ---------------------------------------------------------------------


def test_free_fall_and_projectile(tool_servers: dict[str, str]) -> None:
    g, t = -9.81, 1.5
    result = invoke(
        tool_servers["mechanics"],
        "ball_simulation",
        gra_acel=g,
        simend=t,
        initial_position=[0, 0, 20],
        initial_velocity=[3, -2, 4],
    )
    final = result["final"]["body"]
    assert final["position"] == pytest.approx([3 * t, -2 * t, 20 + 4 * t + g * t**2 / 2], abs=1e-6)
    assert final["velocity"] == pytest.approx([3, -2, 4 + g * t], abs=1e-6)


def test_small_angle_pendulum_period(tool_servers: dict[str, str]) -> None:
    """A bob of radius 0.1 m at 1 m, massless rod: T = 2π √(I / (m g l)) with
    I = m (l² + 2/5 r²)."""
    g = 9.81
    result = invoke(
        tool_servers["mechanics"],
        "single_pendulum_simulation",
        gra_acel=-g,
        simend=8,
        sample_interval=0.002,
        mass_capsule=1e-6,
        mass_ball=1.0,
        initial_angle=0.02,
        sliding_fric=0,
        torsional_fric=0,
        rolling_fric=0,
    )
    angle = np.array(result["trajectory"]["hinge1"]["angle"])
    time = np.array(result["trajectory"]["time"])
    down = np.where((angle[:-1] > 0) & (angle[1:] <= 0))[0]
    crossings = time[down] + (time[down + 1] - time[down]) * angle[down] / (
        angle[down] - angle[down + 1]
    )
    expected = 2 * math.pi * math.sqrt((1 + 0.4 * 0.01) / g)
    assert np.diff(crossings).mean() == pytest.approx(expected, rel=1e-3)


def test_elastic_collision_conserves_momentum_and_energy(tool_servers: dict[str, str]) -> None:
    m1, m2, u1, u2 = 1.0, 3.0, 2.0, -0.5
    result = invoke(
        tool_servers["mechanics"],
        "sphere_collision_simulation",
        gra_acel=0,
        simend=2,
        position_1=[0, 0, 0],
        velocity_1=[u1, 0, 0],
        radius_1=0.1,
        mass_1=m1,
        position_2=[1, 0, 0],
        velocity_2=[u2, 0, 0],
        radius_2=0.1,
        mass_2=m2,
        sliding_fric=0,
        torsional_fric=0,
        rolling_fric=0,
        stiffness=1e5,
        contact_damping=0,
    )
    v1 = result["final"]["sphere1"]["velocity"][0]
    v2 = result["final"]["sphere2"]["velocity"][0]
    assert m1 * v1 + m2 * v2 == pytest.approx(m1 * u1 + m2 * u2, rel=1e-5)
    assert m1 * v1**2 + m2 * v2**2 == pytest.approx(m1 * u1**2 + m2 * u2**2, rel=1e-2)
    assert v1 == pytest.approx(((m1 - m2) * u1 + 2 * m2 * u2) / (m1 + m2), abs=0.01)
    assert v2 == pytest.approx(((m2 - m1) * u2 + 2 * m1 * u1) / (m1 + m2), abs=0.01)


# --- climate -----------------------------------------------------------------------

AR6_SPM1 = {  # IPCC AR6 WG1 Table SPM.1 best estimates, °C vs 1850-1900
    "ssp126": (1.5, 1.7, 1.8),
    "ssp245": (1.5, 2.0, 2.7),
    "ssp370": (1.5, 2.1, 3.6),
    "ssp585": (1.6, 2.4, 4.4),
}
PERIODS = ((2021, 2040), (2041, 2060), (2081, 2100))


@pytest.mark.parametrize("scenario", sorted(AR6_SPM1))
def test_climate_matches_ar6_table(tool_servers: dict[str, str], scenario: str) -> None:
    for (start, end), expected in zip(PERIODS, AR6_SPM1[scenario], strict=True):
        result = invoke(
            tool_servers["climate"],
            "global_temperature",
            scenario=scenario,
            start_year=start,
            end_year=end,
        )
        assert abs(result["value"] - expected) <= 0.4, (scenario, start, result["value"])


def test_climate_emission_cut_cools(tool_servers: dict[str, str]) -> None:
    base = invoke(
        tool_servers["climate"],
        "global_temperature",
        scenario="ssp245",
        start_year=2081,
        end_year=2100,
    )["value"]
    cut = invoke(
        tool_servers["climate"],
        "global_temperature",
        scenario="ssp245",
        start_year=2081,
        end_year=2100,
        delta_CO2=-50,
    )["value"]
    assert cut < base - 0.3


# --- epidemiology ------------------------------------------------------------------


@pytest.mark.parametrize("r0", [1.5, 2.5, 4.0])
def test_sir_final_size_equation(tool_servers: dict[str, str], r0: float) -> None:
    n = 1e6
    result = invoke(
        tool_servers["epidemiology"],
        "simulate_epidemic",
        model="SIR",
        population=n,
        r0=r0,
        infectious_period_days=5,
        initial_infected=1,
        days=2000,
        output="final_size",
    )
    z = brentq(lambda v: v - 1 + math.exp(-r0 * v), 1e-9, 1)
    assert result["value"] / n == pytest.approx(z, rel=1e-3)
    assert result["population_drift"] <= 1e-6 * n


def test_seihr_interventions_conserve_population_and_delay_the_peak(
    tool_servers: dict[str, str],
) -> None:
    common = dict(
        model="SEIHR",
        population=5e5,
        r0=3.0,
        infectious_period_days=6,
        incubation_period_days=4,
        initial_infected=20,
        days=400,
        output="peak_day",
    )
    free = invoke(tool_servers["epidemiology"], "simulate_epidemic", **common)
    held = invoke(
        tool_servers["epidemiology"],
        "simulate_epidemic",
        **common,
        interventions=[{"start_day": 20, "end_day": 120, "contact_reduction": 0.6}],
    )
    assert held["population_drift"] <= 1e-6 * 5e5
    assert held["value"] > free["value"]
    assert held["peak_icu"] == pytest.approx(held["peak_hospitalized"] * 0.2)
