"""AWL's templated questions (its PDE and MuJoCo test sets, and questions generated
from the same templates): the tool arguments a question states, the quantity it asks
for, and the option AWL's generator marks for a value.

One reading shared by every part that meets these questions: the served policy (AWL
shows a MuJoCo question only its scene's tool, `scene_tool`), the teacher that writes
training trajectories (entrypoints/teacher), and the agreement bench
(bench/awl_tools.py). Pure functions on strings and numbers.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

NUMBER = r"(-?\d+(?:\.\d+)?)"
LETTERS = "ABCDEFGH"
# The questions do not state the checkerboard's cell size; AWL's generator
# (src/PDE/make_problems.py) always used 0.5 x 0.5.
CHECKERBOARD_CELL = 0.5


def _num(pattern: str, text: str) -> float | None:
    match = re.search(pattern, text)
    return float(match.group(1)) if match else None


def parse_pde(question: str) -> dict[str, Any] | None:
    """AWL's PDE template → `setup_and_solve` arguments, or None."""
    dim = "2D" if question.startswith("In a 2D") else "1D"
    args: dict[str, Any] = {"dimension": dim, "D": _num(r"D=" + NUMBER, question)}
    args["T"] = _num(r"after " + NUMBER, question)
    if dim == "1D":
        args["L"] = _num(r"L=" + NUMBER, question)
        lengths = [args["L"]]
    else:
        args["Lx"], args["Ly"] = _num(r"Lx=" + NUMBER, question), _num(r"Ly=" + NUMBER, question)
        lengths = [args["Lx"], args["Ly"]]
    if "constant initial" in question:
        args["ic_type"] = "constant"
        args["ic_params"] = {"value": _num(r"(?:of|density of) " + NUMBER, question)}
    elif "step function" in question:
        m = re.search(r"with " + NUMBER + r" \S+ for x < L/\d+ and " + NUMBER, question)
        if not m:
            return None
        args["ic_type"] = "step"
        args["ic_params"] = {"left_value": float(m.group(1)), "right_value": float(m.group(2))}
    elif "checkerboard" in question:
        m = re.search(r"alternating " + NUMBER + r" \S+ and " + NUMBER, question)
        if not m or None in lengths:
            return None
        args["ic_type"] = "checkerboard"
        args["ic_params"] = {
            "value1": float(m.group(1)),
            "value2": float(m.group(2)),
            "cell_size_x": CHECKERBOARD_CELL,
            "cell_size_y": CHECKERBOARD_CELL,
        }
    else:
        return None
    if "Dirichlet" in question:
        args["bc_type"] = "dirichlet"
        if dim == "2D":
            m = re.search(r"with " + ", ".join([NUMBER] * 3) + r", and " + NUMBER, question)
            if not m:
                return None
            left, right, bottom, top = (float(g) for g in m.groups())
            args["bc_params"] = {
                "left_value": left,
                "right_value": right,
                "bottom_value": bottom,
                "top_value": top,
            }
        else:
            m = re.search(r"conditions with " + NUMBER + r" \S+ at x=0 and " + NUMBER, question)
            if not m:
                return None
            args["bc_params"] = {"left_value": float(m.group(1)), "right_value": float(m.group(2))}
    else:
        args["bc_type"] = "neumann" if "Neumann" in question else "periodic"
    if "gradient" in question:
        args["solution_type"] = "get_max_gradient"
    elif "maximum" in question:
        args["solution_type"] = "get_max_value"
    elif "minimum" in question:
        args["solution_type"] = "get_min_value"
    elif "average" in question:
        args["solution_type"] = "get_mean_value"
    else:
        args["solution_type"] = "get_value_at_point"
        m2 = re.search(r"\(x,y\)=\(" + NUMBER + "," + NUMBER + r"\)", question)
        if m2:
            args["solution_x"], args["solution_y"] = float(m2.group(1)), float(m2.group(2))
        else:
            args["solution_x"] = _num(r"at x=" + NUMBER + r" \w+ after", question)
    if any(v is None for v in args.values()):
        return None
    return args


def option_letter(options: list[Any], value: float) -> str | None:
    """AWL's PDE options are intervals "[lo, hi)" or plain numbers (then: the nearest)."""
    if all(isinstance(o, int | float) for o in options):
        return LETTERS[min(range(len(options)), key=lambda i: abs(options[i] - value))]
    for letter, option in zip(LETTERS, options, strict=False):
        lo, hi = (float(v) for v in option.strip("[)").split(","))
        if lo <= value < hi:
            return letter
    return None


# --- mujoco ------------------------------------------------------------------------

TRIPLE = r"\((-?[\d.]+),\s*(-?[\d.]+),\s*(-?[\d.]+)\)"


def _labels(question: str) -> dict[str, str]:
    """The "- Label: value" lines of an AWL MuJoCo scenario."""
    out = {}
    for line in question.split("\n"):
        m = re.match(r"\s*- ([^:]+):\s*(.*)$", line)
        if m:
            out[m.group(1).strip()] = m.group(2).strip()
    return out


def _f(text: str) -> float:
    m = re.search(NUMBER, text)
    if not m:
        raise ValueError(text)
    return float(m.group(1))


def _t(text: str) -> list[float]:
    m = re.search(TRIPLE, text)
    if not m:
        raise ValueError(text)
    return [float(g) for g in m.groups()]


def _fric(lab: dict[str, str]) -> dict[str, float]:
    return {
        "sliding_fric": _f(lab["Sliding friction coefficient"]),
        "torsional_fric": _f(lab["Torsional friction coefficient"]),
        "rolling_fric": _f(lab["Rolling friction coefficient"]),
    }


# The first line of each AWL MuJoCo scene's questions, and the scene's one tool (AWL's
# generators, src/Mujoco/make_mujoco/*.py). "ball is released" is the plain ball scene;
# the ball-game scene says it only on a later line.
SCENES: tuple[tuple[str, str], ...] = (
    ("two spheres", "sphere_collision_simulation"),
    ("double pendulum", "double_pendulum_simulation"),
    ("simple pendulum", "single_pendulum_simulation"),
    ("rolling ball", "roll_ball_simulation"),
    ("box is placed", "box_plane_simulation"),
    ("ball game", "ball_game_simulation"),
    ("differential drive", "diff_vehicle_simulation"),
    ("ball-plane", "ball_plane_simulation"),
    ("ball is released", "ball_simulation"),
)


def scene_tool(question: str) -> str | None:
    """The one MuJoCo tool for an AWL scene question (AWL shows no other), or None
    when the question is none of its scenes."""
    head = question.split("\n")[0]
    return next((tool for marker, tool in SCENES if marker in head), None)


def parse_mujoco(question: str) -> tuple[str, dict[str, Any], str] | None:
    """(tool, AWL arguments, json prefix) for an AWL MuJoCo question, or None.

    Arguments are what AWL's generator (src/Mujoco/make_mujoco/*.py) passed. One
    reading is ours: the rolling-ball set prints g as a positive magnitude although
    the generator drew it from (-10, -9), so we pass -|g| (the answers need it).
    """
    tool = scene_tool(question)
    lab = _labels(question.split("\n\n")[0])
    simend = _num(r"observed for " + NUMBER + r" seconds", question)
    if simend is None:
        return None
    try:
        common = {"simend": simend, "gra_acel": _f(lab["Gravitational acceleration"])}
        if tool == "sphere_collision_simulation":
            args: dict[str, Any] = {**common, "sliding_fric": 0, "torsional_fric": 0}
            args["rolling_fric"] = 0
            args["timeconst"] = _num(r"Time constant: " + NUMBER, question)
            args["dampratio"] = _num(r"Damping ratio: " + NUMBER, question)
            for i in (1, 2):
                text = lab[f"Sphere {i}"]
                (x, y, z), (vx, vy, vz) = _t(text), _t(text.split("Velocity:")[1])
                args |= {f"x{i}": x, f"y{i}": y, f"z{i}": z}
                args |= {f"x{i}_v": vx, f"y{i}_v": vy, f"z{i}_v": vz}
                args[f"r{i}"] = _num(r"Radius: " + NUMBER, text)
                args[f"mass{i}"] = _num(r"Mass: " + NUMBER, text)
            return "sphere_collision_simulation", args, "sphere"
        if tool == "double_pendulum_simulation":
            args = {**common, **_fric(lab)}
            for i, word in ((1, "first"), (2, "second")):
                args[f"mass_capsule_{i}"] = _f(lab[f"Mass of {word} pendulum rod"])
                args[f"mass_ball_{i}"] = _f(lab[f"Mass of {word} pendulum bob"])
                args[f"initial_angle_{i}"] = _f(lab[f"Initial angle of {word} pendulum"])
                args[f"initial_angular_velocity_{i}"] = _f(
                    lab[f"Initial angular velocity of {word} pendulum"]
                )
            return "double_pendulum_simulation", args, "double"
        if tool == "single_pendulum_simulation":
            args = {**common, **_fric(lab)}
            args["mass_capsule"] = _f(lab["Mass of pendulum rod"])
            args["mass_ball"] = _f(lab["Mass of pendulum bob"])
            args["initial_angle"] = _f(lab["Initial angle"])
            args["initial_angular_velocity"] = _f(lab["Initial angular velocity"])
            return "single_pendulum_simulation", args, "single"
        if tool == "roll_ball_simulation":
            (x, y, z), velocity = _t(lab["Initial position"]), lab["Initial velocity"]
            m = re.search(NUMBER + r" m/s \(X\), " + NUMBER + r" m/s \(Z\)", velocity)
            if not m:
                return None
            args = {**common, **_fric(lab), "x": x, "y": y, "z": z}
            args["gra_acel"] = -abs(args["gra_acel"])
            args |= {"x_v": float(m.group(1)), "z_v": float(m.group(2))}
            args["y_anv"] = _f(lab["Initial angular velocity"])
            args |= {"r": _f(lab["Radius of the ball"]), "mass": _f(lab["Mass of the ball"])}
            args["damping"] = _f(lab["Damping coefficient"])
            return "roll_ball_simulation", args, "roll"
        if tool == "box_plane_simulation":
            (x, y, z), (vx, vy, vz) = _t(lab["Initial position"]), _t(lab["Initial velocity"])
            args = {**common, "damping": _f(lab["Damping"]), "x": x, "y": y, "z": z}
            args |= {"x_v": vx, "y_v": vy, "z_v": vz}
            args |= {"r": _f(lab["Size of the box"]), "mass": _f(lab["Mass of the box"])}
            return "box_plane_simulation", args, ""
        if tool == "ball_game_simulation":
            vx, vy, vz = _t(lab["Initial velocity of the ball"])
            args = {**common, "damping": _f(lab["Damping coefficient"])}
            args |= {
                "mass_ball": _f(lab["Mass of the ball"]),
                "mass_box": _f(lab["Mass of the box"]),
            }
            args |= {"mass_post": _f(lab["Mass of the post"])}
            args |= {"post_hight": _f(lab["Height of the post"]), "x_v": vx, "y_v": vy, "z_v": vz}
            return "ball_game_simulation", args, "ball."
        if tool == "diff_vehicle_simulation":
            args = {**common, **_fric(lab)}
            args["left_vel"] = _f(lab["Left wheel velocity"])
            args["right_vel"] = _f(lab["Right wheel velocity"])
            return "diff_vehicle_simulation", args, ""
        if tool in ("ball_plane_simulation", "ball_simulation"):
            (x, y, z), (vx, vy, vz) = _t(lab["Initial position"]), _t(lab["Initial velocity"])
            args = {**common, **_fric(lab), "damping": _f(lab["Damping"])}
            args |= {"x": x, "y": y, "z": z, "x_v": vx, "y_v": vy, "z_v": vz}
            radius = lab.get("Radius of the ball", lab.get("Radius"))
            mass = lab.get("Mass of the ball", lab.get("Mass"))
            if radius is None or mass is None:
                return None
            args |= {"r": _f(radius), "mass": _f(mass)}
            return tool, args, ""
    except (KeyError, ValueError):
        return None
    return None


def series(awl: dict[str, Any], kind: str, ask: str) -> list[float] | None:
    """The series of AWL's JSON that the question is about."""
    low = ask.lower()
    if kind == "single":
        return awl["velocity" if "velocity" in low else "position"]
    if kind == "double":
        index = 2 if "second pendulum" in low else 1
        return awl[f"{'velocity' if 'velocity' in low else 'position'}_{index}"]
    if kind == "roll":
        if "angular" in low:
            return awl["angular_velocity_y"]
        return awl["velocity_x" if "velocity" in low else "position_x"]
    node = awl
    if kind == "sphere":
        node = awl["sphere2" if "sphere 2" in low else "sphere1"]
    elif kind == "ball.":
        node = awl["ball"]
    m = re.search(r"\b([xyz])[- ]?(?:position|velocity)", low) or re.search(
        r"in the ([xyz])-direction", low
    )
    m = m or re.search(r"(?:range of|final) ([xyz]) ", low) or re.search(r"'s ([xyz]) ", low)
    m = m or re.search(r"\b([xyz]) (?:positions|velocity)", low)
    if not m:
        return None
    return node["velocity" if "velocity" in low else "position"][m.group(1)]


def awl_trend(numbers: list[float]) -> str:
    """AWL's generate_trend_quant label (src/Mujoco/make_mujoco/utils.py)."""
    start, end = numbers[0], numbers[-1]
    change = (end - start) / start * 100
    fluctuation = (max(numbers) - min(numbers)) / start * 100
    if abs(change) < 3:
        return "Fluctuating, overall stable" if fluctuation > 3 else "Stable"
    trend = f"{'increase' if change > 0 else 'decrease'} by {abs(change):.1f}%"
    steady, previous = True, None
    for a, b in itertools.pairwise(numbers):
        diff = b - a
        if previous is not None and (diff > 0 > previous or diff < 0 < previous):
            steady = False
            break
        previous = diff
    return ("Steady " if steady else "Fluctuating, ") + trend


def awl_trend_quali(numbers: list[float]) -> str:
    """AWL's generate_trend_quali label (utils.py; used by the rolling-ball set):
    3/10/20 % bands, "Steady "/"Fluctuating, " prefixed to the capitalised label."""
    start, end = numbers[0], numbers[-1]
    change = (end - start) / start * 100
    fluctuation = (max(numbers) - min(numbers)) / start * 100
    if abs(change) <= 3:
        return "Fluctuating, overall stable" if fluctuation > 3 else "Stable"
    size = "Slight" if abs(change) <= 10 else "Moderate" if abs(change) <= 20 else "Significant"
    trend = f"{size} {'increase' if change > 0 else 'decrease'}"
    steady = awl_trend(numbers).startswith("Steady")
    return ("Steady " if steady else "Fluctuating, ") + trend


def asked_number(numbers: list[float], ask: str) -> float:
    """The one number a final-value or maximum question reads from its series."""
    return max(abs(v) for v in numbers) if "maximum absolute" in ask.lower() else numbers[-1]


def served_options(options: list[str]) -> list[Any]:
    """Options as served (text) back in AWL's form: plain numbers as numbers, so
    `choose` and `option_letter` read them as AWL's generator wrote them."""
    out: list[Any] = []
    for option in options:
        try:
            out.append(float(option))
        except ValueError:
            out.append(option)
    return out


def choose(options: list[Any], numbers: list[float], ask: str) -> tuple[str | None, Any]:
    """The option AWL's generator would have marked for this series, and what we read."""
    low = ask.lower()
    if "trend" in low or low.startswith("how does"):
        if not numbers or numbers[0] == 0:
            return None, None
        for label in (awl_trend(numbers), awl_trend_quali(numbers)):
            if label in options:
                return LETTERS[options.index(label)], label
        return None, awl_trend(numbers)
    if "range" in low:
        lo, hi = min(numbers), max(numbers)
        pairs = [[float(v) for v in o.strip("[]").split(",")] for o in options]
        best = min(range(len(pairs)), key=lambda i: abs(pairs[i][0] - lo) + abs(pairs[i][1] - hi))
        return LETTERS[best], [lo, hi]
    value = asked_number(numbers, ask)
    if all(isinstance(o, int | float) for o in options):
        best = min(range(len(options)), key=lambda i: abs(options[i] - value))
        return LETTERS[best], value
    return option_letter(options, value), value
