"""The `pde` tool server: AWL's `setup_and_solve` for the diffusion (heat) equation
u_t = D ∇²u in 1D and 2D.

Method, and why: the second-order finite-difference Laplacian on these grids is
diagonalised exactly by a fast transform (DST-I for Dirichlet nodes, DCT-II for
Neumann cells, FFT for periodic nodes). So the semi-discrete system is integrated
*exactly* in time, `û(T) = exp(D λ T) û(0)`, in O(N log N), with no time step and no
stability limit. The only error is spatial, O(h²), and the grid is refined until two
successive grids agree (AWL's own solver stopped at 10 points, see DESIGN §5).
Non-zero Dirichlet values are lifted off with the discrete steady state, which the
same transform also solves.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from scipy import fft

from tool_servers import pde_awl
from tool_servers.base import Tool, ToolArgumentError, ToolArguments
from tool_servers.numerics import NUMERICS_FIELD, Numerics, resolve

MAX_DOMAIN = 1e6
MAX_TIME = 1e7
MAX_GRID_1D = 1 << 15
MAX_GRID_2D = 1024
RELATIVE_TOLERANCE = 2e-5

IC_KEYS = {
    "constant": {"value"},
    "step": {"left_value", "right_value"},
    "checkerboard": {"value1", "value2", "cell_size_x", "cell_size_y"},
}


def _json_object(value: Any) -> Any:
    """AWL's agents may send ic_params/bc_params as a JSON string, even inside a
    ```json fence (diffusion.py set_initial_condition accepts both)."""
    if isinstance(value, str):
        text = value.split("```json")[1].split("```")[0] if "```" in value else value
        try:
            return json.loads(text.replace("'", '"'))
        except ValueError as exc:
            raise ValueError(f"not a JSON object: {exc}") from exc
    return value


class SetupAndSolve(ToolArguments):
    """AWL's `setup_and_solve` arguments (`src/functions/pdes.py`; DESIGN §5 lists
    the keys), with `numerics` and `grid_points` added. `x`/`y` are the earlier names
    of `solution_x`/`solution_y` and still accepted."""

    dimension: Literal["1D", "2D"]
    D: float = Field(gt=0, le=1e6, description="Diffusion coefficient, > 0.")
    T: float = Field(ge=0, le=MAX_TIME, description="Final time of the simulation.")
    L: float | None = Field(default=None, gt=0, le=MAX_DOMAIN, description="1D domain length.")
    Lx: float | None = Field(default=None, gt=0, le=MAX_DOMAIN, description="2D length in x.")
    Ly: float | None = Field(default=None, gt=0, le=MAX_DOMAIN, description="2D length in y.")
    ic_type: Literal["constant", "step", "checkerboard"]
    ic_params: dict[str, float] = Field(
        description="constant: {value}; step: {left_value, right_value} (jump at the middle "
        "of x); checkerboard (2D only): {value1, value2, cell_size_x, cell_size_y}."
    )
    bc_type: Literal["dirichlet", "neumann", "periodic"]
    bc_params: dict[str, float] | None = Field(
        default=None,
        description="dirichlet: {left_value, right_value} plus {bottom_value, top_value} in "
        "2D. Neumann (zero flux) and periodic take none ({}).",
    )
    solution_type: Literal[
        "get_max_value",
        "get_min_value",
        "get_mean_value",
        "get_value_at_point",
        "get_max_gradient",
    ]
    solution_x: float | None = Field(
        default=None, description="The x-coordinate of the point to get the value."
    )
    solution_y: float | None = Field(
        default=None, description="The y-coordinate of the point (only for 2D diffusion)."
    )
    numerics: Numerics | None = NUMERICS_FIELD
    grid_points: int | None = Field(
        default=None,
        ge=8,
        description="Converged numerics: fix the grid (points per axis) instead of refining.",
    )

    @model_validator(mode="before")
    @classmethod
    def _awl_forms(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = dict(raw)
            for old, new in (("x", "solution_x"), ("y", "solution_y")):
                if old in raw:
                    raw.setdefault(new, raw.pop(old))
            for key in ("ic_params", "bc_params"):
                if key in raw:
                    raw[key] = _json_object(raw[key])
            if isinstance(raw.get("ic_type"), str):  # diffusion.py lower-cases both
                raw["ic_type"] = raw["ic_type"].lower()
            if isinstance(raw.get("bc_type"), str):
                raw["bc_type"] = raw["bc_type"].lower()
        return raw

    @model_validator(mode="after")
    def _consistent(self) -> SetupAndSolve:
        """What both numerics refuse; `converged_checks` adds converged's own."""
        two_d = self.dimension == "2D"
        if two_d and (self.Lx is None or self.Ly is None):
            raise ValueError("2D needs Lx and Ly")
        if not two_d and self.L is None:
            raise ValueError("1D needs L")
        if self.ic_type == "checkerboard" and not two_d:
            raise ValueError("checkerboard initial conditions exist only in 2D")
        missing = IC_KEYS[self.ic_type] - set(self.ic_params)
        if missing:
            raise ValueError(f"ic_params for {self.ic_type} needs {sorted(missing)}")
        if "cell_size_x" in self.ic_params and (
            self.ic_params["cell_size_x"] <= 0 or self.ic_params["cell_size_y"] <= 0
        ):
            raise ValueError("checkerboard cell sizes must be > 0")
        limit = MAX_GRID_2D if two_d else MAX_GRID_1D
        if self.grid_points is not None and self.grid_points > limit:
            raise ValueError(f"grid_points must be at most {limit} in {self.dimension}")
        if self.solution_type == "get_value_at_point" and (
            self.solution_x is None or (two_d and self.solution_y is None)
        ):
            raise ValueError("get_value_at_point needs solution_x (and solution_y in 2D)")
        return self

    def converged_checks(self) -> None:
        """Converged numerics hold the caller to a well-posed problem; AWL's code
        defaults missing Dirichlet values to 0 and clamps points instead."""
        two_d = self.dimension == "2D"
        _require_keys("ic_params", self.ic_params, IC_KEYS[self.ic_type])
        if self.bc_type == "dirichlet":
            keys = {"left_value", "right_value"} | (
                {"bottom_value", "top_value"} if two_d else set()
            )
            _require_keys("bc_params", self.bc_params or {}, keys)
        elif self.bc_params:
            raise ToolArgumentError(f"{self.bc_type} boundaries take no bc_params")
        if self.solution_type == "get_value_at_point":
            lx = self.Lx if two_d else self.L
            assert lx is not None and self.solution_x is not None
            if not 0 <= self.solution_x <= lx:
                raise ToolArgumentError(
                    f"solution_x={self.solution_x} lies outside the domain [0, {lx}]"
                )
            if two_d:
                assert self.Ly is not None and self.solution_y is not None
                if not 0 <= self.solution_y <= self.Ly:
                    raise ToolArgumentError(
                        f"solution_y={self.solution_y} lies outside the domain [0, {self.Ly}]"
                    )


def _require_keys(name: str, given: dict[str, float], needed: set[str]) -> None:
    if set(given) != needed:
        raise ToolArgumentError(
            f"{name} must have exactly the keys {sorted(needed)}, got {sorted(given)}"
        )


# --- grids -------------------------------------------------------------------------


@dataclass(frozen=True)
class Axis:
    """One axis of the grid: where the unknowns sit and the Laplacian's eigenvalues."""

    bc: str
    length: float
    n: int  # intervals (Dirichlet, periodic) or cells (Neumann)

    @property
    def h(self) -> float:
        return self.length / self.n

    @property
    def unknowns(self) -> np.ndarray:
        """Coordinates of the unknowns: interior nodes, cell centres, or periodic nodes."""
        j = np.arange(self.n, dtype=float)
        if self.bc == "dirichlet":
            return np.arange(1, self.n, dtype=float) * self.h
        if self.bc == "neumann":
            return (j + 0.5) * self.h
        return j * self.h

    @property
    def eigenvalues(self) -> np.ndarray:
        """Eigenvalues of the 3-point Laplacian in this transform's basis."""
        if self.bc == "dirichlet":
            k = np.arange(1, self.n, dtype=float)
            return -4.0 / self.h**2 * np.sin(k * np.pi / (2 * self.n)) ** 2
        if self.bc == "neumann":
            k = np.arange(self.n, dtype=float)
            return -4.0 / self.h**2 * np.sin(k * np.pi / (2 * self.n)) ** 2
        k = np.fft.fftfreq(self.n, d=1.0 / self.n)
        return -4.0 / self.h**2 * np.sin(np.pi * k / self.n) ** 2


def _forward(u: np.ndarray, bc: str) -> np.ndarray:
    axes = tuple(range(u.ndim))
    if bc == "dirichlet":
        return fft.dstn(u, type=1, axes=axes, norm="ortho")
    if bc == "neumann":
        return fft.dctn(u, type=2, axes=axes, norm="ortho")
    return fft.fftn(u, axes=axes)


def _inverse(c: np.ndarray, bc: str) -> np.ndarray:
    axes = tuple(range(c.ndim))
    if bc == "dirichlet":
        return fft.idstn(c, type=1, axes=axes, norm="ortho")
    if bc == "neumann":
        return fft.idctn(c, type=2, axes=axes, norm="ortho")
    return np.real(fft.ifftn(c, axes=axes))


def _initial(args: SetupAndSolve, coords: list[np.ndarray]) -> np.ndarray:
    """The initial condition on the unknowns. Points exactly on a jump get the mean of
    both sides, as the Fourier series does."""
    mesh = np.meshgrid(*coords, indexing="ij")
    p = args.ic_params
    if args.ic_type == "constant":
        return np.full(mesh[0].shape, p["value"])
    length = args.L if args.dimension == "1D" else args.Lx
    assert length is not None
    eps = 1e-9 * length
    total = np.zeros(mesh[0].shape)
    offsets = [(-eps, -eps), (-eps, eps), (eps, -eps), (eps, eps)]
    for dx, dy in offsets:
        x = mesh[0] + dx
        if args.ic_type == "step":
            total += np.where(x < length / 2, p["left_value"], p["right_value"])
        else:
            y = mesh[1] + dy
            even = (np.floor(x / p["cell_size_x"]) + np.floor(y / p["cell_size_y"])) % 2 == 0
            total += np.where(even, p["value1"], p["value2"])
    return total / len(offsets)


def _dirichlet_lift(args: SetupAndSolve, axes: list[Axis]) -> np.ndarray:
    """The discrete steady state with the Dirichlet boundary values (a line in 1D, a
    fast-Poisson solve in 2D). The rest of the solution then has zero boundaries."""
    b = args.bc_params or {}
    if len(axes) == 1:
        x = axes[0].unknowns
        return b["left_value"] + (b["right_value"] - b["left_value"]) * x / axes[0].length
    ax, ay = axes
    rhs = np.zeros((ax.n - 1, ay.n - 1))
    rhs[0, :] -= b["left_value"] / ax.h**2
    rhs[-1, :] -= b["right_value"] / ax.h**2
    rhs[:, 0] -= b["bottom_value"] / ay.h**2
    rhs[:, -1] -= b["top_value"] / ay.h**2
    lam = ax.eigenvalues[:, None] + ay.eigenvalues[None, :]
    return _inverse(_forward(rhs, "dirichlet") / lam, "dirichlet")


def _with_boundary(
    bc: str, bc_params: dict[str, float] | None, u: np.ndarray, axes: list[Axis]
) -> list[np.ndarray]:
    """Extend the unknowns to a grid that covers the closed domain, so that point values,
    extrema and gradients see the boundary too. Returns [grid coords..., values]."""
    coords = [a.unknowns for a in axes]
    if bc == "dirichlet":
        b = bc_params or {}
        edges = [("left_value", "right_value"), ("bottom_value", "top_value")]
        for axis_index, (lo, hi) in enumerate(edges[: u.ndim]):
            shape = list(u.shape)
            shape[axis_index] = 1
            u = np.concatenate([np.full(shape, b[lo]), u, np.full(shape, b[hi])], axis=axis_index)
            coords[axis_index] = np.concatenate(
                [[0.0], coords[axis_index], [axes[axis_index].length]]
            )
        if u.ndim == 2:  # a corner belongs to two edges: take their mean
            u[0, 0] = (b["left_value"] + b["bottom_value"]) / 2
            u[0, -1] = (b["left_value"] + b["top_value"]) / 2
            u[-1, 0] = (b["right_value"] + b["bottom_value"]) / 2
            u[-1, -1] = (b["right_value"] + b["top_value"]) / 2
        return [*coords, u]
    for axis_index, axis in enumerate(axes):
        if bc == "neumann":  # zero flux: the wall value equals the nearest cell's
            first = np.take(u, [0], axis=axis_index)
            last = np.take(u, [-1], axis=axis_index)
            coords[axis_index] = np.concatenate([[0.0], coords[axis_index], [axis.length]])
        else:  # periodic: the right wall is the left node again
            first = np.take(u, [], axis=axis_index)
            last = np.take(u, [0], axis=axis_index)
            coords[axis_index] = np.concatenate([coords[axis_index], [axis.length]])
        u = np.concatenate([first, u, last], axis=axis_index)
    return [*coords, u]


def solve_field(args: SetupAndSolve, n: int) -> list[np.ndarray]:
    """u(T) on a grid with `n` intervals/cells per axis: [coords..., values]."""
    lengths = [args.L] if args.dimension == "1D" else [args.Lx, args.Ly]
    axes = [Axis(args.bc_type, float(length), n) for length in lengths if length is not None]
    u0 = _initial(args, [a.unknowns for a in axes])
    lift = _dirichlet_lift(args, axes) if args.bc_type == "dirichlet" else np.zeros_like(u0)
    if len(axes) == 1:
        lam = axes[0].eigenvalues
    else:
        lam = axes[0].eigenvalues[:, None] + axes[1].eigenvalues[None, :]
    decay = np.exp(args.D * args.T * lam)
    u = lift + _inverse(decay * _forward(u0 - lift, args.bc_type), args.bc_type)
    return _with_boundary(args.bc_type, args.bc_params, u, axes)


def _mean(coords: list[np.ndarray], u: np.ndarray) -> float:
    """Domain average by the trapezoid rule on the closed grid."""
    integral = u
    for axis in reversed(range(u.ndim)):
        integral = np.trapezoid(integral, coords[axis], axis=axis)
    volume = float(np.prod([c[-1] - c[0] for c in coords]))
    return float(integral) / volume


def _point(coords: list[np.ndarray], u: np.ndarray, at: list[float]) -> float:
    from scipy.interpolate import RegularGridInterpolator

    interpolate = RegularGridInterpolator(coords, u, method="linear")
    return float(interpolate(np.array([at]))[0])


def quantity(args: SetupAndSolve, field: list[np.ndarray]) -> float:
    """The requested scalar of a solved field."""
    *coords, u = field
    kind = args.solution_type
    if kind == "get_max_value":
        return float(u.max())
    if kind == "get_min_value":
        return float(u.min())
    if kind == "get_mean_value":
        return _mean(coords, u)
    if kind == "get_value_at_point":
        assert args.solution_x is not None
        at = [args.solution_x] if u.ndim == 1 else [args.solution_x, args.solution_y or 0.0]
        return _point(coords, u, at)
    gradients = np.gradient(u, *coords)
    if u.ndim == 1:
        return float(np.abs(gradients).max())
    return float(np.sqrt(gradients[0] ** 2 + gradients[1] ** 2).max())


def converged_solve(args: SetupAndSolve) -> dict[str, Any]:
    """Refine the grid until the answer stops changing, then report it."""
    args.converged_checks()
    scale = max([abs(v) for v in args.ic_params.values()] + [1e-12])
    if args.bc_params:
        scale = max(scale, *[abs(v) for v in args.bc_params.values()])
    if args.grid_points is not None:
        field = solve_field(args, args.grid_points)
        value = quantity(args, field)
        return {"value": value, "grid_points": args.grid_points, "converged": None} | (
            _converged_text(field, value)
        )
    two_d = args.dimension == "2D"
    n, limit = (64, MAX_GRID_2D) if two_d else (256, MAX_GRID_1D)
    previous = quantity(args, solve_field(args, n))
    while True:
        n *= 2
        field = solve_field(args, n)
        value = quantity(args, field)
        change = abs(value - previous)
        converged = change <= RELATIVE_TOLERANCE * max(abs(value), scale)
        if converged or n >= limit:
            break
        previous = value
    if not np.isfinite(value):
        raise ToolArgumentError("the solution overflowed; check D, T and the lengths")
    return {
        "value": value,
        "grid_points": n,
        "converged": bool(converged),
        "estimated_error": change,
    } | _converged_text(field, value)


def _converged_text(field: list[np.ndarray], value: float) -> dict[str, Any]:
    """AWL's return text for a converged field: the field shown on AWL's 10-node grid
    (rows are y in 2D, as AWL prints it), then the number."""
    from scipy.interpolate import RegularGridInterpolator

    *coords, u = field
    nodes = [np.linspace(c[0], c[-1], pde_awl.NX) for c in coords]
    interpolate = RegularGridInterpolator(coords, u, method="linear")
    if u.ndim == 1:
        shown = interpolate(nodes[0][:, None])
    else:
        gx, gy = np.meshgrid(nodes[0], nodes[1])
        shown = interpolate(np.stack([gx, gy], axis=-1))
    return {"text": pde_awl.text(shown, value)}


def awl_solve(args: SetupAndSolve) -> dict[str, Any]:
    """AWL's explicit 10-node solver, quirks included (tool_servers/pde_awl.py)."""
    problem = pde_awl.AwlProblem(
        dimension=args.dimension,
        D=args.D,
        T=args.T,
        Lx=float(args.L if args.dimension == "1D" else args.Lx),  # type: ignore[arg-type]
        Ly=args.Ly,
        ic_type=args.ic_type,
        ic_params=args.ic_params,
        bc_type=args.bc_type,
        bc_params=args.bc_params or {},
    )
    u = pde_awl.solve(problem)
    value = pde_awl.quantity(problem, u, args.solution_type, args.solution_x, args.solution_y)
    return {
        "value": value,
        "grid_points": pde_awl.NX,
        "time_levels": pde_awl.time_levels(problem),
        "converged": False,
        "text": pde_awl.text(u, value),
    }


def pde_tools(default: Numerics = "converged") -> list[Tool]:
    """`setup_and_solve` with `default` numerics for calls that name none."""

    def setup_and_solve(args: SetupAndSolve) -> dict[str, Any]:
        mode = resolve(args.numerics, default)
        result = awl_solve(args) if mode == "awl" else converged_solve(args)
        return {**result, "numerics": mode}

    return [
        Tool(
            name="setup_and_solve",
            description=(
                "Set up the PDE problem parameters and solve the diffusion equation "
                "u_t = D * laplacian(u) in 1D or 2D (constant, step or checkerboard initial "
                "condition; Dirichlet, Neumann (zero flux) or periodic boundaries), and return "
                "one number about u at time T: its max, min, mean, value at a point, or max "
                "gradient. The result has `value` and AWL's text (`text`)."
            ),
            arguments=SetupAndSolve,
            run=setup_and_solve,
            timeout_s=20.0,
        )
    ]


PDE_TOOLS = pde_tools()
