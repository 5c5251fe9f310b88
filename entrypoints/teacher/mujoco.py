"""MuJoCo questions from AWL's nine scene templates (src/Mujoco/make_mujoco/*.py):
the same parameter ranges (2-decimal draws, an integer simend of 1-5 s), the same
scenario sentences as its released test set (tests check every draw reads back through
`contract.awl_questions.parse_mujoco`), and the same asks with AWL's option kinds.

Where the released set differs from AWL's generator code, the released set is
followed: its rolling-ball questions print g as a positive magnitude (29 of 32) while
the simulation pulls down (`parse_mujoco` reads -|g|), and it also asks the rolling
ball's maximum absolute X velocity and, for the rolling ball's trends, qualitative
labels as well as quantitative ones.

One question is one scenario and one ask, drawn uniformly: first a scene, then one of
its asks (an ask AWL would not pose for the run, such as a trend of a series that
starts at 0, is replaced by another of the scene's asks).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from entrypoints.teacher.problems import Ask, Draft, uniform2

DOMAIN = "mechanics"
Params = dict[str, Any]


@dataclass(frozen=True)
class Scene:
    name: str
    tool: str
    draw: Callable[[random.Random], Params]
    describe: Callable[[Params], str]
    asks: tuple[tuple[str, str, Ask], ...]  # (key, sentence with {s} for simend, ask)


def _simend(rng: random.Random) -> float:
    return float(rng.randint(1, 5))


def _g(rng: random.Random) -> float:
    return uniform2(rng, -10, -9)


def _fric(rng: random.Random) -> Params:
    return {k: uniform2(rng, 0.1, 0.9) for k in ("sliding_fric", "torsional_fric", "rolling_fric")}


def _fric_lines(p: Params) -> str:
    return (
        f"    - Sliding friction coefficient: {p['sliding_fric']}\n"
        f"    - Torsional friction coefficient: {p['torsional_fric']}\n"
        f"    - Rolling friction coefficient: {p['rolling_fric']}\n"
    )


def _s(p: Params) -> int:
    return int(p["simend"])


def _ask(rule: str, path: tuple[str, ...], options: str, quantity: str, unit: str) -> Ask:
    # the series are in AWL's JSON, `awl` of the result
    return Ask(
        rule=rule, path=("awl", *path), options=options, quantity=quantity, unit=unit, digits=None
    )


# --- the scenes (AWL's parameter ranges) --------------------------------------------------


def _ball_plane(rng: random.Random) -> Params:
    p: Params = {"damping": uniform2(rng, 0.0, 1.0)}
    p |= _fric(rng)
    p["gra_acel"] = _g(rng)
    p |= {k: uniform2(rng, -5.0, 5.0) for k in ("x", "y", "z")}
    p["r"], p["mass"] = uniform2(rng, 0.1, 2.0), uniform2(rng, 0.05, 0.5)
    p |= {k: uniform2(rng, -2.0, 2.0) for k in ("x_v", "y_v", "z_v")}
    p["simend"] = _simend(rng)
    return p


def _ball_plane_text(p: Params) -> str:
    return (
        "In a physics laboratory, a ball-plane experiment is set up with the following "
        "parameters:\n"
        f"    - Damping: {p['damping']}\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"    - Initial position: ({p['x']}, {p['y']}, {p['z']}) meters\n"
        f"    - Radius of the ball: {p['r']} meters\n"
        f"    - Mass of the ball: {p['mass']} kg\n"
        f"{_fric_lines(p)}"
        f"    - Initial velocity: ({p['x_v']}, {p['y_v']}, {p['z_v']}) m/s\n\n"
        f"The ball is released and its motion is observed for {_s(p)} seconds."
    )


def _ball(rng: random.Random) -> Params:
    p: Params = {"damping": uniform2(rng, 0, 1), "gra_acel": _g(rng)}
    p |= {k: uniform2(rng, -5, 5) for k in ("x", "y", "z")}
    p |= {k: uniform2(rng, -5, 5) for k in ("x_v", "y_v", "z_v")}
    p["r"], p["mass"] = uniform2(rng, 0.05, 0.2), uniform2(rng, 0.05, 0.2)
    p |= _fric(rng)
    p["simend"] = _simend(rng)
    return p


def _ball_text(p: Params) -> str:
    return (
        "In a physics experiment, a ball is released with the following parameters:\n"
        f"    - Damping: {p['damping']}\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"    - Initial position: ({p['x']}, {p['y']}, {p['z']})\n"
        f"    - Initial velocity: ({p['x_v']}, {p['y_v']}, {p['z_v']}) m/s\n"
        f"    - Radius: {p['r']} m\n"
        f"    - Mass: {p['mass']} kg\n"
        f"{_fric_lines(p)}\n"
        f"The ball's motion is observed for {_s(p)} seconds."
    )


def _box_plane(rng: random.Random) -> Params:
    p: Params = {"damping": uniform2(rng, 0, 1), "gra_acel": _g(rng)}
    p |= {k: uniform2(rng, -1, 1) for k in ("x", "y", "z")}
    p["r"], p["mass"] = uniform2(rng, 0.05, 0.5), uniform2(rng, 0.1, 5)
    p |= {k: uniform2(rng, -10, 10) for k in ("x_v", "y_v", "z_v")}
    p["simend"] = _simend(rng)
    return p


def _box_plane_text(p: Params) -> str:
    return (
        "In a physics experiment, a box is placed on a plane with the following parameters:\n"
        f"    - Damping: {p['damping']}\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"    - Initial position: ({p['x']}, {p['y']}, {p['z']}) meters\n"
        f"    - Size of the box: {p['r']} meters\n"
        f"    - Mass of the box: {p['mass']} kg\n"
        f"    - Initial velocity: ({p['x_v']}, {p['y_v']}, {p['z_v']}) m/s\n\n"
        f"The motion of the box is observed for {_s(p)} seconds."
    )


def _roll_ball(rng: random.Random) -> Params:
    p: Params = {"gra_acel": _g(rng)}
    p |= {k: uniform2(rng, -1, 1) for k in ("x", "y", "z")}
    p["r"], p["mass"] = uniform2(rng, 0.05, 0.2), uniform2(rng, 0.1, 5.0)
    p |= _fric(rng)
    p["x_v"], p["y_anv"], p["z_v"] = (uniform2(rng, -5, 5) for _ in range(3))
    p["damping"] = uniform2(rng, 0, 1)
    p["simend"] = _simend(rng)
    return p


def _roll_ball_text(p: Params) -> str:
    # The released set prints |g| (see the module docstring) and a blank line of spaces.
    return (
        "In a physics laboratory, a rolling ball experiment is set up with the following "
        "parameters:\n"
        f"    - Gravitational acceleration: {abs(p['gra_acel'])} m/s²\n"
        f"    - Initial position: ({p['x']}, {p['y']}, {p['z']}) meters\n"
        f"    - Radius of the ball: {p['r']} meters\n"
        f"    - Mass of the ball: {p['mass']} kg\n"
        f"{_fric_lines(p)}"
        f"    - Initial velocity: {p['x_v']} m/s (X), {p['z_v']} m/s (Z)\n"
        f"    - Initial angular velocity: {p['y_anv']} rad/s (Y)\n"
        f"    - Damping coefficient: {p['damping']}\n"
        "    \n"
        f"The ball is rolled and its motion is observed for {_s(p)} seconds."
    )


def _spheres(rng: random.Random) -> Params:
    p: Params = {"timeconst": uniform2(rng, 0.01, 0.1), "dampratio": uniform2(rng, 0.5, 2)}
    p["gra_acel"] = _g(rng)
    for i in (1, 2):
        p |= {f"{k}{i}": uniform2(rng, -1, 1) for k in ("x", "y", "z")}
        p[f"r{i}"], p[f"mass{i}"] = uniform2(rng, 0.05, 0.2), uniform2(rng, 0.1, 2)
    for i in (1, 2):
        p |= {f"{k}{i}_v": uniform2(rng, -10, 10) for k in ("x", "y", "z")}
    p["simend"] = _simend(rng)
    p |= {"sliding_fric": 0, "torsional_fric": 0, "rolling_fric": 0}
    return p


def _spheres_text(p: Params) -> str:
    def sphere(i: int) -> str:
        return (
            f"    - Sphere {i}: Position ({p[f'x{i}']}, {p[f'y{i}']}, {p[f'z{i}']}), Radius: "
            f"{p[f'r{i}']} m, Mass: {p[f'mass{i}']} kg, Initial Velocity: ({p[f'x{i}_v']}, "
            f"{p[f'y{i}_v']}, {p[f'z{i}_v']}) m/s\n"
        )

    return (
        "In a physics simulation, two spheres are set up with the following parameters:\n"
        f"{sphere(1)}{sphere(2)}"
        "    - Friction coefficients (sliding, torsional, rolling): (0, 0, 0)\n"
        f"    - Time constant: {p['timeconst']}, Damping ratio: {p['dampratio']}\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n\n"
        f"The spheres are observed for {_s(p)} seconds."
    )


def _ball_game(rng: random.Random) -> Params:
    p: Params = {"damping": uniform2(rng, 0, 1), "gra_acel": _g(rng)}
    p["mass_ball"], p["mass_post"] = uniform2(rng, 0.5, 2.0), uniform2(rng, 1.0, 10.0)
    p["mass_box"], p["post_hight"] = uniform2(rng, 0.5, 2.0), uniform2(rng, 1.0, 5.0)
    p |= {k: uniform2(rng, 0, 20) for k in ("x_v", "y_v", "z_v")}
    p["simend"] = _simend(rng)
    return p


def _ball_game_text(p: Params) -> str:
    return (
        "In a physics experiment, a ball game simulation is set up with the following "
        "parameters:\n"
        f"    - Damping coefficient: {p['damping']}\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"    - Mass of the ball: {p['mass_ball']} kg\n"
        f"    - Mass of the post: {p['mass_post']} kg\n"
        f"    - Mass of the box: {p['mass_box']} kg\n"
        f"    - Height of the post: {p['post_hight']} meters\n"
        f"    - Initial velocity of the ball: ({p['x_v']}, {p['y_v']}, {p['z_v']}) m/s\n\n"
        f"The ball is released and its motion is observed for {_s(p)} seconds."
    )


def _pendulum(rng: random.Random) -> Params:
    p: Params = {"gra_acel": _g(rng)}
    p["mass_capsule"], p["mass_ball"] = uniform2(rng, 0.05, 0.2), uniform2(rng, 0.05, 0.2)
    p |= _fric(rng)
    p["initial_angle"] = uniform2(rng, 0.1, 3.0)
    p["initial_angular_velocity"] = uniform2(rng, -1, 1)
    p["simend"] = _simend(rng)
    return p


def _pendulum_text(p: Params) -> str:
    return (
        "In a physics laboratory, a simple pendulum experiment is set up with the following "
        "parameters:\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"    - Mass of pendulum rod: {p['mass_capsule']} kg\n"
        f"    - Mass of pendulum bob: {p['mass_ball']} kg\n"
        f"{_fric_lines(p)}"
        f"    - Initial angle: {p['initial_angle']} radians\n"
        f"    - Initial angular velocity: {p['initial_angular_velocity']} rad/s\n\n"
        f"The pendulum is released and its motion is observed for {_s(p)} seconds."
    )


def _double(rng: random.Random) -> Params:
    p: Params = {"gra_acel": _g(rng)}
    p["mass_capsule_1"], p["mass_ball_1"] = uniform2(rng, 0.05, 0.2), uniform2(rng, 0.05, 0.2)
    p["mass_capsule_2"], p["mass_ball_2"] = uniform2(rng, 0.05, 0.2), uniform2(rng, 0.05, 0.2)
    p |= _fric(rng)
    p["initial_angle_1"] = uniform2(rng, 0.1, 3.0)
    p["initial_angular_velocity_1"] = uniform2(rng, -1, 1)
    p["initial_angle_2"] = uniform2(rng, 0.1, 3.0)
    p["initial_angular_velocity_2"] = uniform2(rng, -1, 1)
    p["simend"] = _simend(rng)
    return p


def _double_text(p: Params) -> str:
    def link(i: int, word: str) -> str:
        return (
            f"    - Mass of {word} pendulum rod: {p[f'mass_capsule_{i}']} kg\n"
            f"    - Mass of {word} pendulum bob: {p[f'mass_ball_{i}']} kg\n"
        )

    def start(i: int, word: str) -> str:
        return (
            f"    - Initial angle of {word} pendulum: {p[f'initial_angle_{i}']} radians\n"
            f"    - Initial angular velocity of {word} pendulum: "
            f"{p[f'initial_angular_velocity_{i}']} rad/s\n"
        )

    return (
        "In a physics laboratory, a double pendulum experiment is set up with the following "
        "parameters:\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"{link(1, 'first')}{link(2, 'second')}{_fric_lines(p)}"
        f"{start(1, 'first')}{start(2, 'second')}\n"
        f"The pendulum is released and its motion is observed for {_s(p)} seconds."
    )


def _vehicle(rng: random.Random) -> Params:
    p: Params = {"gra_acel": _g(rng)}
    p |= _fric(rng)
    p["left_vel"], p["right_vel"] = uniform2(rng, -3, 3), uniform2(rng, -3, 3)
    p["simend"] = _simend(rng)
    return p


def _vehicle_text(p: Params) -> str:
    return (
        "In a robotics laboratory, a differential drive vehicle experiment is set up with the "
        "following parameters:\n"
        f"    - Gravitational acceleration: {p['gra_acel']} m/s²\n"
        f"{_fric_lines(p)}"
        f"    - Left wheel velocity: {p['left_vel']} m/s\n"
        f"    - Right wheel velocity: {p['right_vel']} m/s\n\n"
        f"The vehicle is operated and its motion is observed for {_s(p)} seconds."
    )


# --- the asks (AWL's sentences and option kinds) --------------------------------------------

OBSERVED = "during the {s}-second observation period?"
MOTION = "during its motion in the {s}-second observation period?"
UNITS = {"position": "m", "velocity": "m/s"}


def _xyz_asks(body: str, *, final: dict[str, str], ranges: str, trends: str) -> list[Any]:
    """A ball's asks over x, y, z: `final` maps "x-position" etc. to its option kind."""
    asks = []
    for what, kind in final.items():
        axis, series = what.split("-")
        asks.append(
            (
                f"final_{axis}_{series}",
                f"What is the final {what} of the {body} after {{s}} seconds?",
                _ask("final", (series, axis), kind, f"the final {what} of the {body}",
                     UNITS[series]),
            )
        )  # fmt: skip
    for axis in ranges:
        asks.append(
            (
                f"range_{axis}_position",
                f"What is the range of {axis}-positions that the {body} occupies {MOTION}",
                _ask("range", ("position", axis), "range", f"the {axis}-position of the {body}",
                     "m"),
            )
        )  # fmt: skip
    for axis in trends:
        asks.append(
            (
                f"trend_{axis}_velocity",
                f"What is the overall trend of the {body}'s {axis}-velocity {OBSERVED}",
                _ask("trend", ("velocity", axis), "trend", f"the {body}'s {axis}-velocity",
                     "m/s"),
            )
        )  # fmt: skip
    return asks


BALL_PLANE_ASKS = _xyz_asks(
    "ball",
    final={
        "x-position": "number", "y-position": "number", "z-position": "interval",
        "x-velocity": "number", "y-velocity": "number", "z-velocity": "number",
    },
    ranges="xyz",
    trends="xz",
)  # fmt: skip
BALL_ASKS = [
    *_xyz_asks("ball", final={"z-position": "number", "z-velocity": "number"}, ranges="",
               trends="z"),
    (
        "range_z_position",
        f"What is the range of z-positions (in meters) that the ball occupies {MOTION}",
        _ask("range", ("position", "z"), "range", "the z-position of the ball", "m"),
    ),
    (
        "trend_z_position",
        "How does the z-position of the ball change over the {s}-second observation period?",
        _ask("trend", ("position", "z"), "trend", "the ball's z-position", "m"),
    ),
]  # fmt: skip
BOX_ASKS = [
    (
        "final_x_position",
        "What is the final position of the box in the x-direction after {s} seconds?",
        _ask("final", ("position", "x"), "number", "the box's final x-position", "m"),
    ),
    (
        "final_y_velocity",
        "What is the final velocity of the box in the y-direction after {s} seconds?",
        _ask("final", ("velocity", "y"), "number", "the box's final y-velocity", "m/s"),
    ),
    (
        "max_abs_z_velocity",
        f"What is the maximum absolute velocity of the box in the z-direction {OBSERVED}",
        _ask("max_abs", ("velocity", "z"), "number", "the box's z-velocity", "m/s"),
    ),
    (
        "range_y_position",
        "What is the range of positions (in meters) that the box occupies in the y-direction "
        + MOTION,
        _ask("range", ("position", "y"), "range", "the box's y-position", "m"),
    ),
    (
        "trend_x_velocity",
        f"What is the overall trend of the box's velocity in the x-direction {OBSERVED}",
        _ask("trend", ("velocity", "x"), "trend", "the box's x-velocity", "m/s"),
    ),
    (
        "trend_z_position",
        "How does the position of the box change in the z-direction over the {s}-second "
        "observation period?",
        _ask("trend", ("position", "z"), "trend", "the box's z-position", "m"),
    ),
]
ROLL_ASKS = [
    (
        "final_x_position",
        "What is the final X position of the ball after {s} seconds?",
        _ask("final", ("position_x",), "number", "the ball's final X position", "m"),
    ),
    (
        "final_x_velocity",
        "What is the final X velocity of the ball after {s} seconds?",
        _ask("final", ("velocity_x",), "number", "the ball's final X velocity", "m/s"),
    ),
    (
        "max_abs_x_velocity",
        f"What is the maximum absolute X velocity of the ball {OBSERVED}",
        _ask("max_abs", ("velocity_x",), "number", "the ball's X velocity", "m/s"),
    ),
    (
        "range_x_position",
        f"What is the range of X positions (in meters) that the ball occupies {MOTION}",
        _ask("range", ("position_x",), "range", "the ball's X position", "m"),
    ),
    (
        "trend_x_velocity",
        f"What is the overall trend of the ball's X velocity {OBSERVED}",
        _ask("trend", ("velocity_x",), "trend_either", "the ball's X velocity", "m/s"),
    ),
    (
        "trend_angular_velocity",
        "How does the angular velocity of the ball change over the {s}-second observation "
        "period?",
        _ask("trend", ("angular_velocity_y",), "trend_either", "the ball's angular velocity",
             "rad/s"),
    ),
]  # fmt: skip
SPHERE_ASKS = [
    (
        "final_x_position",
        "What is the final x-position of Sphere 1 after {s} seconds?",
        _ask("final", ("sphere1", "position", "x"), "number", "Sphere 1's final x-position", "m"),
    ),
    (
        "final_x_velocity",
        "What is the final x-velocity of Sphere 1 after {s} seconds?",
        _ask("final", ("sphere1", "velocity", "x"), "number", "Sphere 1's final x-velocity",
             "m/s"),
    ),
    (
        "trend_x_velocity",
        f"What is the overall trend of Sphere 1's x-velocity {OBSERVED}",
        _ask("trend", ("sphere1", "velocity", "x"), "trend", "Sphere 1's x-velocity", "m/s"),
    ),
]  # fmt: skip
GAME_ASKS = [
    (
        f"final_{axis}_position",
        f"What is the final {axis}-position of the ball after {{s}} seconds?",
        _ask("final", ("ball", "position", axis), kind, f"the ball's final {axis}-position", "m"),
    )
    for axis, kind in (("x", "number"), ("y", "interval"), ("z", "number"))
]
PENDULUM_ASKS = [
    (
        "final_position",
        "What is the final position of the pendulum after {s} seconds?",
        _ask("final", ("position",), "number", "the pendulum's final position", "rad"),
    ),
    (
        "final_velocity",
        "What is the final velocity of the pendulum after {s} seconds?",
        _ask("final", ("velocity",), "number", "the pendulum's final velocity", "rad/s"),
    ),
    (
        "range_position",
        f"What is the range of positions (in radians) that the pendulum occupies {MOTION}",
        _ask("range", ("position",), "range", "the pendulum's position", "rad"),
    ),
    (
        "trend_velocity",
        f"What is the overall trend of the pendulum's velocity {OBSERVED}",
        _ask("trend", ("velocity",), "trend", "the pendulum's velocity", "rad/s"),
    ),
    (
        "trend_position",
        "How does the position of the pendulum change over the {s}-second observation period?",
        _ask("trend", ("position",), "trend", "the pendulum's position", "rad"),
    ),
]
DOUBLE_ASKS = [
    ask
    for i, word in ((1, "first"), (2, "second"))
    for ask in (
        (
            f"final_position_{i}",
            f"What is the final position of the {word} pendulum after {{s}} seconds?",
            _ask("final", (f"position_{i}",), "number",
                 f"the {word} pendulum's final position", "rad"),
        ),
        (
            f"final_velocity_{i}",
            f"What is the final velocity of the {word} pendulum after {{s}} seconds?",
            _ask("final", (f"velocity_{i}",), "number",
                 f"the {word} pendulum's final velocity", "rad/s"),
        ),
        (
            f"range_position_{i}",
            f"What is the range of positions (in radians) that the {word} pendulum occupies "
            + MOTION,
            _ask("range", (f"position_{i}",), "range", f"the {word} pendulum's position", "rad"),
        ),
        (
            f"trend_velocity_{i}",
            f"What is the overall trend of the {word} pendulum's velocity {OBSERVED}",
            _ask("trend", (f"velocity_{i}",), "trend", f"the {word} pendulum's velocity",
                 "rad/s"),
        ),
        (
            f"trend_position_{i}",
            f"How does the position of the {word} pendulum change over the {{s}}-second "
            "observation period?",
            _ask("trend", (f"position_{i}",), "trend", f"the {word} pendulum's position", "rad"),
        ),
    )
]  # fmt: skip
VEHICLE_ASKS = [
    *(
        (
            f"final_{axis.lower()}_position",
            f"What is the final {axis} position of the vehicle after {{s}} seconds?",
            _ask("final", ("position", axis.lower()), "number",
                 f"the vehicle's final {axis} position", "m"),
        )
        for axis in ("X", "Y")
    ),
    (
        "range_x_position",
        f"What is the range of X positions (in meters) that the vehicle occupies {MOTION}",
        _ask("range", ("position", "x"), "range", "the vehicle's X position", "m"),
    ),
    *(
        (
            f"trend_{axis.lower()}_velocity",
            f"What is the overall trend of the vehicle's {axis} velocity {OBSERVED}",
            _ask("trend", ("velocity", axis.lower()), "trend", f"the vehicle's {axis} velocity",
                 "m/s"),
        )
        for axis in ("X", "Y")
    ),
]  # fmt: skip

SCENES: tuple[Scene, ...] = (
    Scene("ball_plane", "ball_plane_simulation", _ball_plane, _ball_plane_text,
          tuple(BALL_PLANE_ASKS)),
    Scene("ball", "ball_simulation", _ball, _ball_text, tuple(BALL_ASKS)),
    Scene("box_plane", "box_plane_simulation", _box_plane, _box_plane_text, tuple(BOX_ASKS)),
    Scene("roll_ball", "roll_ball_simulation", _roll_ball, _roll_ball_text, tuple(ROLL_ASKS)),
    Scene("sphere_collision", "sphere_collision_simulation", _spheres, _spheres_text,
          tuple(SPHERE_ASKS)),
    Scene("ball_game", "ball_game_simulation", _ball_game, _ball_game_text, tuple(GAME_ASKS)),
    Scene("single_pendulum", "single_pendulum_simulation", _pendulum, _pendulum_text,
          tuple(PENDULUM_ASKS)),
    Scene("double_pendulum", "double_pendulum_simulation", _double, _double_text,
          tuple(DOUBLE_ASKS)),
    Scene("diff_vehicle", "diff_vehicle_simulation", _vehicle, _vehicle_text,
          tuple(VEHICLE_ASKS)),
)  # fmt: skip
SCENE_BY_NAME = {scene.name: scene for scene in SCENES}


def draw(rng: random.Random) -> Draft:
    """A scenario of a random scene and one of its asks."""
    scene = rng.choice(SCENES)
    params = scene.draw(rng)
    return draft_for(scene, params, rng.choice(scene.asks))


def draft_for(scene: Scene, params: Params, ask: tuple[str, str, Ask]) -> Draft:
    key, sentence, what = ask
    question = f"{scene.describe(params)}\n\n{sentence.format(s=_s(params))}"
    return Draft(
        domain=DOMAIN,
        template=f"mujoco/{scene.name}/{key}",
        question=question,
        tool=scene.tool,
        arguments=dict(params),
        ask=what,
        scenario={"tool": scene.tool, **params},
    )


def other_asks(draft: Draft) -> list[tuple[str, str, Ask]]:
    """The draft scene's other asks, for when AWL would not pose this one."""
    scene = SCENE_BY_NAME[draft.template.split("/")[1]]
    key = draft.template.split("/")[2]
    return [ask for ask in scene.asks if ask[0] != key]
