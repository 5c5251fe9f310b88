"""The two numerics modes of the AWL tools (`pde`, `mechanics`), chosen per call.

- `awl`: AWL's reference implementation (Rose-STL-Lab/Adapting-While-Learning), its
  quirks included, so that AWL's test answers (computed with that code) come out again.
- `converged`: the same scene or equation solved so that the numbers are physically
  right (grids refined to convergence, the simulated time the caller asked for).

A call that names no mode gets its server's default (`SCISERVE_TOOL_NUMERICS`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

Numerics = Literal["awl", "converged"]

NUMERICS_FIELD = Field(
    default=None,
    description="'awl' reproduces AWL's reference code, quirks included; 'converged' is "
    "physically right. Unset: the server's default.",
)


def resolve(requested: Numerics | None, default: Numerics) -> Numerics:
    """The mode of one call: its own, else the server's."""
    return requested if requested is not None else default
