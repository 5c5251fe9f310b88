"""Agreement of our tool servers with AWL's templated test sets (pde.json, mujoco.json).

Each templated question is parsed into tool arguments, the tool is called over HTTP,
and the option nearest to (PDE: the interval holding) the tool's value is compared
with AWL's correct letter. Questions we cannot map (qualitative "trend" options, or a
template we do not parse) are counted as skipped, never as agreement.

Both numerics modes are measured: `awl` should reproduce AWL's answers (its tools made
them), `converged` shows where physically right numbers differ. The MuJoCo questions
are parsed into AWL's own arguments and answered from the tool's `awl` JSON with AWL's
generator rules (last value, min/max range, max |v|, the trend label of
src/Mujoco/make_mujoco/utils.py).

Run: `python -m bench.awl_tools --data ../shared/data/awl` (starts the two servers;
the data stays where it is) or import `pde_agreement` / `mujoco_agreement` with
running servers' URLs.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from pathlib import Path
from typing import Any

import httpx

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


def _option_letter(options: list[Any], value: float) -> str | None:
    """AWL's PDE options are intervals "[lo, hi)" or plain numbers (then: the nearest)."""
    if all(isinstance(o, int | float) for o in options):
        return LETTERS[min(range(len(options)), key=lambda i: abs(options[i] - value))]
    for letter, option in zip(LETTERS, options, strict=False):
        lo, hi = (float(v) for v in option.strip("[)").split(","))
        if lo <= value < hi:
            return letter
    return None


def pde_agreement(
    url: str, items: list[dict[str, Any]], numerics: str | None = None
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for item in items:
        args = parse_pde(item["question"])
        if args is None:
            rows.append({"status": "skipped", "why": "parameters not read"})
            continue
        if numerics:
            args = {**args, "numerics": numerics}
        response = httpx.post(
            f"{url}/invoke", json={"tool": "setup_and_solve", "arguments": args}, timeout=120
        )
        if response.status_code != 200:
            rows.append({"status": "tool_error", "error": response.json().get("error")})
            continue
        result = response.json()["result"]
        value = result["value"]
        # AWL's answers are round(v, 2) of its tool's number (make_problems.py)
        chosen = _option_letter(item["options"], round(value, 2) if value is not None else 0.0)
        rows.append(
            {
                "status": "answered",
                "value": value,
                "chosen": chosen,
                "correct": item["correct"],
                "agree": chosen == item["correct"],
                "options": item["options"],
                "question": item["question"],
                "time_levels": result.get("time_levels"),
            }
        )
    return _summarise(rows)


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


def parse_mujoco(question: str) -> tuple[str, dict[str, Any], str] | None:
    """(tool, AWL arguments, json prefix) for an AWL MuJoCo question, or None.

    Arguments are what AWL's generator (src/Mujoco/make_mujoco/*.py) passed. One
    reading is ours: the rolling-ball set prints g as a positive magnitude although
    the generator drew it from (-10, -9), so we pass -|g| (the answers need it).
    """
    head = question.split("\n")[0]
    lab = _labels(question.split("\n\n")[0])
    simend = _num(r"observed for " + NUMBER + r" seconds", question)
    if simend is None:
        return None
    try:
        common = {"simend": simend, "gra_acel": _f(lab["Gravitational acceleration"])}
        if "two spheres" in head:
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
        if "double pendulum" in head:
            args = {**common, **_fric(lab)}
            for i, word in ((1, "first"), (2, "second")):
                args[f"mass_capsule_{i}"] = _f(lab[f"Mass of {word} pendulum rod"])
                args[f"mass_ball_{i}"] = _f(lab[f"Mass of {word} pendulum bob"])
                args[f"initial_angle_{i}"] = _f(lab[f"Initial angle of {word} pendulum"])
                args[f"initial_angular_velocity_{i}"] = _f(
                    lab[f"Initial angular velocity of {word} pendulum"]
                )
            return "double_pendulum_simulation", args, "double"
        if "simple pendulum" in head:
            args = {**common, **_fric(lab)}
            args["mass_capsule"] = _f(lab["Mass of pendulum rod"])
            args["mass_ball"] = _f(lab["Mass of pendulum bob"])
            args["initial_angle"] = _f(lab["Initial angle"])
            args["initial_angular_velocity"] = _f(lab["Initial angular velocity"])
            return "single_pendulum_simulation", args, "single"
        if "rolling ball" in head:
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
        if "box is placed" in head:
            (x, y, z), (vx, vy, vz) = _t(lab["Initial position"]), _t(lab["Initial velocity"])
            args = {**common, "damping": _f(lab["Damping"]), "x": x, "y": y, "z": z}
            args |= {"x_v": vx, "y_v": vy, "z_v": vz}
            args |= {"r": _f(lab["Size of the box"]), "mass": _f(lab["Mass of the box"])}
            return "box_plane_simulation", args, ""
        if "ball game" in head:
            vx, vy, vz = _t(lab["Initial velocity of the ball"])
            args = {**common, "damping": _f(lab["Damping coefficient"])}
            args |= {
                "mass_ball": _f(lab["Mass of the ball"]),
                "mass_box": _f(lab["Mass of the box"]),
            }
            args |= {"mass_post": _f(lab["Mass of the post"])}
            args |= {"post_hight": _f(lab["Height of the post"]), "x_v": vx, "y_v": vy, "z_v": vz}
            return "ball_game_simulation", args, "ball."
        if "differential drive" in head:
            args = {**common, **_fric(lab)}
            args["left_vel"] = _f(lab["Left wheel velocity"])
            args["right_vel"] = _f(lab["Right wheel velocity"])
            return "diff_vehicle_simulation", args, ""
        if "ball-plane" in head or "ball is released" in head:
            (x, y, z), (vx, vy, vz) = _t(lab["Initial position"]), _t(lab["Initial velocity"])
            args = {**common, **_fric(lab), "damping": _f(lab["Damping"])}
            args |= {"x": x, "y": y, "z": z, "x_v": vx, "y_v": vy, "z_v": vz}
            radius = lab.get("Radius of the ball", lab.get("Radius"))
            mass = lab.get("Mass of the ball", lab.get("Mass"))
            if radius is None or mass is None:
                return None
            args |= {"r": _f(radius), "mass": _f(mass)}
            tool = "ball_plane_simulation" if "ball-plane" in head else "ball_simulation"
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
    value = max(abs(v) for v in numbers) if "maximum absolute" in low else numbers[-1]
    if all(isinstance(o, int | float) for o in options):
        best = min(range(len(options)), key=lambda i: abs(options[i] - value))
        return LETTERS[best], value
    return _option_letter(options, value), value


def mujoco_agreement(
    url: str, items: list[dict[str, Any]], numerics: str | None = None
) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for item in items:
        question, options = item["Question"], item["Options"]
        ask = question.split("\n\n")[-1]
        parsed = parse_mujoco(question)
        if parsed is None:
            rows.append({"status": "skipped", "why": "parameters not read", "question": ask})
            continue
        tool, args, kind = parsed
        if numerics:
            args = {**args, "numerics": numerics}
        response = httpx.post(f"{url}/invoke", json={"tool": tool, "arguments": args}, timeout=300)
        if response.status_code != 200:
            rows.append({"status": "tool_error", "error": response.json().get("error")})
            continue
        result = response.json()["result"]
        numbers = series(result["awl"], kind, ask)
        if numbers is None:
            rows.append({"status": "skipped", "why": "question not mapped", "question": ask})
            continue
        chosen, read = choose(options, numbers, ask)
        if chosen is None and isinstance(read, str):
            # A trend label is exact ("decrease by 43.6%"): converged numbers (sampled at
            # the labelled times, AWL's 1 ms later) can land between AWL's options.
            rows.append(
                {
                    "status": "skipped",
                    "why": "trend label matches no option exactly",
                    "scene": tool,  # not "tool": only answered rows carry it
                    "value": read,
                    "correct": item["Correct"],
                    "options": options,
                    "question": ask,
                }
            )
            continue
        rows.append(
            {
                "status": "answered",
                "tool": tool,
                "value": read,
                "chosen": chosen,
                "correct": item["Correct"],
                "agree": chosen == item["Correct"],
                "options": options,
                "question": ask,
            }
        )
    return _summarise(rows)


def _summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    answered = [r for r in rows if r["status"] == "answered"]
    agree = sum(r["agree"] for r in answered)
    return {
        "total": len(rows),
        "answered": len(answered),
        "skipped": sum(r["status"] == "skipped" for r in rows),
        "tool_errors": sum(r["status"] == "tool_error" for r in rows),
        "agreement": agree / len(answered) if answered else 0.0,
        "rows": rows,
    }


def awl_unstable(question: str) -> bool:
    """Whether AWL's PDE solver took its wrong stability branch (alpha > 0.5 on the
    10-node grid with Nt = 1000, then Nt chosen so that alpha is about 2)."""
    args = parse_pde(question)
    if args is None:
        return False
    lengths = [args["L"]] if args["dimension"] == "1D" else [args["Lx"], args["Ly"]]
    dt = args["T"] / 1000
    return sum(args["D"] * dt / (length / 9) ** 2 for length in lengths) > 0.5


MUJOCO_SHORT_RUN = {"box_plane_simulation", "roll_ball_simulation", "sphere_collision_simulation"}


def cause(row: dict[str, Any], mode: str) -> str:
    """Why an answered question disagrees with AWL (by the rule that explains it)."""
    options = row["options"]
    if len({str(o) for o in options}) < len(options):
        return "AWL's options are not distinct (a zero-width range repeated)"
    tool, question = row.get("tool"), row["question"]
    if tool is None:  # PDE
        if mode == "awl":
            return "unexplained"
        if awl_unstable(question):
            return "AWL's answer is an explicit-scheme blow-up (its stability fix sets alpha~2)"
        if "gradient" in question:
            return (
                "gradient: AWL differentiates 10 nodes with spacing L/Nx and takes the "
                "largest component; converged takes the true max |grad u|"
            )
        if "checkerboard" in question:
            return "checkerboard: 10 nodes alias 0.5-wide cells (and AWL's cell parity)"
        if "at x=" in question or "(x,y)=" in question:
            return "point: AWL reads its 10-node grid (2D: the node int(x/Lx*10))"
        return "AWL's 10-node grid is not converged"
    if mode == "awl":
        return (
            "solver-level difference (MuJoCo 4.0.0 here; AWL's answers came from MuJoCo "
            "3.x): contact or rounding at the 2nd decimal"
        )
    if tool in MUJOCO_SHORT_RUN:
        return "AWL's step rule simulated simend/10 at dt=0.1 ms; converged runs simend"
    if tool == "double_pendulum_simulation":
        return "chaotic double pendulum: AWL samples 1 ms later (after step i), which diverges"
    return "AWL samples after step i (1 ms later) and rounds to 2 decimals"


def disagreements(summary: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    """Every answered question whose option differs from AWL's, with what we read
    and why."""
    keep = ("tool", "question", "value", "chosen", "correct", "options", "time_levels")
    return [
        {**{k: r[k] for k in keep if k in r}, "cause": cause(r, mode)}
        for r in summary["rows"]
        if r["status"] == "answered" and not r["agree"]
    ]


def causes(rows: list[dict[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in rows:
        out[row["cause"]] = out.get(row["cause"], 0) + 1
    return out


def main() -> None:
    import argparse
    import tempfile

    from entrypoints.embedded import ServiceProcesses

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with pde/mujoco.json")
    parser.add_argument("--out", type=Path, default=Path("bench/results/awl_tools.json"))
    parser.add_argument("--modes", nargs="+", default=["awl", "converged"])
    options = parser.parse_args()
    sets = {n: json.loads((options.data / f"{n}.json").read_text()) for n in ("pde", "mujoco")}
    processes = ServiceProcesses(Path(tempfile.mkdtemp()), {})
    report: dict[str, Any] = {}
    try:
        pde_url = processes.start_tool_server("pde")[1]
        mujoco_url = processes.start_tool_server("mechanics")[1]
        for mode in options.modes:
            t0 = time.perf_counter()
            pde = pde_agreement(pde_url, sets["pde"], mode)
            mujoco = mujoco_agreement(mujoco_url, sets["mujoco"], mode)
            report[mode] = {
                "pde": pde,
                "mujoco": mujoco,
                "disagreements": {
                    "pde": disagreements(pde, mode),
                    "mujoco": disagreements(mujoco, mode),
                },
                "seconds": round(time.perf_counter() - t0, 1),
            }
            for name, summary in (("pde", pde), ("mujoco", mujoco)):
                print(
                    f"{mode:9} {name:6}: answered {summary['answered']}/{summary['total']}, "
                    f"agreement {summary['agreement']:.1%}, tool errors {summary['tool_errors']}"
                )
                for why, count in causes(report[mode]["disagreements"][name]).items():
                    print(f"    {count:3} x {why}")
    finally:
        processes.stop_all()
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(report, indent=1))
    print(f"wrote {options.out}")


if __name__ == "__main__":
    main()
