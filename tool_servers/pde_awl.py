"""AWL's `setup_and_solve` numerics, quirks included (`src/PDE/tools/diffusion.py` of
Rose-STL-Lab/Adapting-While-Learning), for `numerics: "awl"`.

Each quirk kept is named where it happens. Together they are why AWL's test answers
come out of this code and not out of the converged solver in `tool_servers/pde.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NX = NY = 10  # diffusion.py DiffusionSolver.__init__: 10 nodes per axis
NT = 1000  # diffusion.py: Nt = 1000 time levels


@dataclass(frozen=True)
class AwlProblem:
    dimension: str
    D: float
    T: float
    Lx: float  # L in 1D
    Ly: float | None
    ic_type: str
    ic_params: dict[str, float]
    bc_type: str
    bc_params: dict[str, float]


def time_levels(p: AwlProblem) -> int:
    """diffusion.py check_stability: when alpha > 0.5 it sets Nt = int(0.5·D·T/dx²)+1,
    which makes alpha ≈ 2, not ≤ 0.5, so those runs are unstable (a known AWL bug; 7
    of its 120 PDE test answers are such blow-ups)."""
    dx = p.Lx / (NX - 1)
    dt = p.T / NT
    if p.dimension == "1D":
        if p.D * dt / dx**2 > 0.5:
            return int(0.5 * p.D * p.T / dx**2) + 1
        return NT
    assert p.Ly is not None
    dy = p.Ly / (NY - 1)
    if p.D * dt / dx**2 + p.D * dt / dy**2 > 0.5:
        return int(0.5 * p.D * p.T * (1 / dx**2 + 1 / dy**2)) + 1
    return NT


def _initial(p: AwlProblem, x: np.ndarray, y: np.ndarray | None) -> np.ndarray:
    v = p.ic_params
    if p.ic_type == "constant":
        return np.full(x.shape, v["value"], dtype=float)
    if p.ic_type == "step":
        # diffusion.py splits at self.L / 2, which is unset in 2D (AWL raises there);
        # we split 2D at Lx / 2.
        return np.where(x < p.Lx / 2, v["left_value"], v["right_value"]).astype(float)
    assert y is not None
    # diffusion.py: value1 where (x // cx + y // cy) is odd, value2 where even
    odd = (x // v["cell_size_x"] + y // v["cell_size_y"]) % 2
    return np.where(odd, v["value1"], v["value2"]).astype(float)


def _boundary_1d(p: AwlProblem, u: np.ndarray) -> np.ndarray:
    b = p.bc_params
    if p.bc_type == "dirichlet":  # missing values default to 0 (params.get(..., 0))
        return np.concatenate(([b.get("left_value", 0.0)], u[1:-1], [b.get("right_value", 0.0)]))
    if p.bc_type == "neumann":
        return np.concatenate(([u[1]], u[1:-1], [u[-2]]))
    # diffusion.py "periodic": u[0] = u[-2] and u[-1] = u[1]
    return np.concatenate(([u[-2]], u[1:-1], [u[1]]))


def _boundary_2d(p: AwlProblem, u: np.ndarray) -> np.ndarray:
    b = p.bc_params
    inner = u[1:-1, 1:-1]
    if p.bc_type == "dirichlet":
        # rows are y (meshgrid order): bottom is the y=0 row; corners as np.pad sets them
        values = (
            (b.get("bottom_value", 0.0), b.get("top_value", 0.0)),
            (b.get("left_value", 0.0), b.get("right_value", 0.0)),
        )
        return np.pad(inner, ((1, 1), (1, 1)), mode="constant", constant_values=values)
    return np.pad(inner, ((1, 1), (1, 1)), mode="edge" if p.bc_type == "neumann" else "wrap")


def solve(p: AwlProblem) -> np.ndarray:
    """The explicit FTCS field at T, as diffusion.py computes it: Nt-1 steps (its
    `for _ in range(1, self.Nt)`), boundary reapplied after each step, no boundary
    applied to the initial field."""
    nt = time_levels(p)
    dt = p.T / nt
    with np.errstate(over="ignore", invalid="ignore"):
        if p.dimension == "1D":
            alpha = p.D * dt / (p.Lx / (NX - 1)) ** 2
            u = _initial(p, np.linspace(0, p.Lx, NX), None)
            for _ in range(1, nt):
                new = u.copy()
                new[1:-1] = u[1:-1] + alpha * (u[2:] - 2 * u[1:-1] + u[:-2])
                u = _boundary_1d(p, new)
            return u
        assert p.Ly is not None
        ax = p.D * dt / (p.Lx / (NX - 1)) ** 2
        ay = p.D * dt / (p.Ly / (NY - 1)) ** 2
        grid_x, grid_y = np.meshgrid(np.linspace(0, p.Lx, NX), np.linspace(0, p.Ly, NY))
        u = _initial(p, grid_x, grid_y)
        for _ in range(1, nt):
            new = u.copy()
            new[1:-1, 1:-1] = (
                u[1:-1, 1:-1]
                + ax * (u[1:-1, 2:] - 2 * u[1:-1, 1:-1] + u[1:-1, :-2])
                + ay * (u[2:, 1:-1] - 2 * u[1:-1, 1:-1] + u[:-2, 1:-1])
            )
            u = _boundary_2d(p, new)
        return u


def quantity(p: AwlProblem, u: np.ndarray, kind: str, x: float | None, y: float | None) -> float:
    """diffusion.py get_*: node max/min/mean; get_value_at_point truncates the point to
    an int first (`int(x)`), interpolates in 1D and takes node int(x/Lx·Nx) in 2D;
    get_max_gradient uses spacing L/Nx (not L/(Nx-1)), in 2D the x spacing along the
    y axis and vice versa, the largest |component|, rounded to 2 decimals."""
    with np.errstate(over="ignore", invalid="ignore"):
        if kind == "get_max_value":
            return float(np.max(u))
        if kind == "get_min_value":
            return float(np.min(u))
        if kind == "get_mean_value":
            return float(np.mean(u))
        if kind == "get_value_at_point":
            xi = int(x) if x else x
            yi = int(y) if y else y
            if p.dimension == "1D":
                return float(np.interp(xi or 0, np.linspace(0, p.Lx, NX), u))
            assert p.Ly is not None
            col = min(int((xi or 0) / p.Lx * NX), NX - 1)
            row = min(int((yi or 0) / p.Ly * NY), NY - 1)
            return float(u[row, col])
        if p.dimension == "1D":
            gradient = np.gradient(u, p.Lx / NX)
        else:
            assert p.Ly is not None
            gradient = np.gradient(u, p.Lx / NX, p.Ly / NY)
        return float(round(np.max(np.abs(gradient)), 2))


def text(u: np.ndarray, value: float) -> str:
    """diffusion.py's return text: the numpy field, then the requested number."""
    return f"Simulation Result:\n{u}\nThe result for solution: {np.float64(value)}"
