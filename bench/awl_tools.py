"""Agreement of our tool servers with AWL's templated test sets (pde.json, mujoco.json).

Each templated question is parsed into tool arguments, the tool is called over HTTP,
and the option nearest to (PDE: the interval holding) the tool's value is compared
with AWL's correct letter. Questions we cannot map (qualitative "trend" options, or a
template we do not parse) are counted as skipped, never as agreement.

Run: `python -m bench.awl_tools --data ../shared/data/awl` (starts the two servers) or
import `pde_agreement` / `mujoco_agreement` with running servers' URLs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx

NUMBER = r"(-?\d+(?:\.\d+)?)"
LETTERS = "ABCDEFGH"
# AWL does not state the checkerboard's cell size; a quarter of each side is our guess.
CHECKERBOARD_CELLS_PER_SIDE = 4


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
            "cell_size_x": lengths[0] / CHECKERBOARD_CELLS_PER_SIDE,
            "cell_size_y": lengths[1] / CHECKERBOARD_CELLS_PER_SIDE,
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
            m = re.search(NUMBER + r" [^,]*? at x=0 and " + NUMBER, question)
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
            args["x"], args["y"] = float(m2.group(1)), float(m2.group(2))
        else:
            args["x"] = _num(r"at x=" + NUMBER + r" \w+ after", question)
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


def pde_agreement(url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for item in items:
        args = parse_pde(item["question"])
        if args is None:
            rows.append({"status": "skipped"})
            continue
        response = httpx.post(
            f"{url}/invoke", json={"tool": "setup_and_solve", "arguments": args}, timeout=120
        )
        if response.status_code != 200:
            rows.append({"status": "tool_error", "error": response.json().get("error")})
            continue
        value = response.json()["result"]["value"]
        chosen = _option_letter(item["options"], value)
        rows.append(
            {
                "status": "answered",
                "value": value,
                "chosen": chosen,
                "correct": item["correct"],
                "agree": chosen == item["correct"],
                "options": item["options"],
                "question": item["question"],
            }
        )
    return _summarise(rows)


# --- mujoco ------------------------------------------------------------------------


def _triple(text: str, label: str) -> list[float] | None:
    m = re.search(re.escape(label) + r"\s*\(" + r",\s*".join([NUMBER] * 3) + r"\)", text)
    return [float(g) for g in m.groups()] if m else None


def _field(text: str, label: str) -> float | None:
    return _num(re.escape(label) + r"[^:\n]*:\s*" + NUMBER, text)


def parse_mujoco(question: str) -> tuple[str, dict[str, Any], str] | None:
    """(tool, arguments, what to read) for the templates we map; None otherwise."""
    duration = _num(r"observed for " + NUMBER + r" seconds?", question)
    g = _field(question, "Gravitational acceleration")
    if duration is None or g is None:
        return None
    ask = question.split("\n\n")[-1]
    common: dict[str, Any] = {"simend": duration, "gra_acel": g, "sample_interval": 0.01}
    if "two spheres" in question:
        s1 = re.search(
            r"Sphere 1: Position \((.*?)\), Radius: "
            + NUMBER
            + r" m, Mass: "
            + NUMBER
            + r" kg, Initial Velocity: \((.*?)\)",
            question,
        )
        s2 = re.search(
            r"Sphere 2: Position \((.*?)\), Radius: "
            + NUMBER
            + r" m, Mass: "
            + NUMBER
            + r" kg, Initial Velocity: \((.*?)\)",
            question,
        )
        fr = re.search(r"\(sliding, torsional, rolling\): \((.*?)\)", question)
        tc, dr = _field(question, "Time constant"), _num(r"Damping ratio: " + NUMBER, question)
        if not (s1 and s2 and fr) or tc is None or dr is None:
            return None
        sliding, torsional, rolling = (float(v) for v in fr.group(1).split(","))
        args = {
            **common,
            "sliding_fric": sliding,
            "torsional_fric": torsional,
            "rolling_fric": rolling,
            "time_constant": tc,
            "damping_ratio": max(dr, 1e-6),
        }
        for i, m in ((1, s1), (2, s2)):
            args[f"position_{i}"] = [float(v) for v in m.group(1).split(",")]
            args[f"radius_{i}"], args[f"mass_{i}"] = float(m.group(2)), float(m.group(3))
            args[f"velocity_{i}"] = [float(v) for v in m.group(4).split(",")]
        body = "sphere2" if "Sphere 2" in ask else "sphere1"
        return "sphere_collision_simulation", args, f"{body}:{ask}"
    if "box is placed on a plane" in question:
        args = {
            **common,
            "damping": _field(question, "Damping"),
            "initial_position": _triple(question, "Initial position:"),
            "size": _field(question, "Size of the box"),
            "mass": _field(question, "Mass of the box"),
            "initial_velocity": _triple(question, "Initial velocity:"),
        }
        return ("box_plane_simulation", args, f"body:{ask}") if None not in args.values() else None
    if "simple pendulum" in question or "double pendulum" in question:
        double = "double pendulum" in question
        args = {
            **common,
            "sliding_fric": _field(question, "Sliding friction coefficient"),
            "torsional_fric": _field(question, "Torsional friction coefficient"),
            "rolling_fric": _field(question, "Rolling friction coefficient"),
        }
        if double:
            for i, word in ((1, "first"), (2, "second")):
                args[f"mass_capsule_{i}"] = _field(question, f"Mass of {word} pendulum rod")
                args[f"mass_ball_{i}"] = _field(question, f"Mass of {word} pendulum bob")
                args[f"initial_angle_{i}"] = _field(question, f"Initial angle of {word} pendulum")
                args[f"initial_angular_velocity_{i}"] = _field(
                    question, f"Initial angular velocity of {word} pendulum"
                )
            joint = "hinge2" if "second" in ask else "hinge1"
            tool = "double_pendulum_simulation"
        else:
            args["mass_capsule"] = _field(question, "Mass of pendulum rod")
            args["mass_ball"] = _field(question, "Mass of pendulum bob")
            args["initial_angle"] = _field(question, "Initial angle")
            args["initial_angular_velocity"] = _field(question, "Initial angular velocity")
            joint, tool = "hinge1", "single_pendulum_simulation"
        return (tool, args, f"{joint}:{ask}") if None not in args.values() else None
    if "ball-plane" in question or "ball is released" in question:
        args = {
            **common,
            "damping": _field(question, "Damping"),
            "initial_position": _triple(question, "Initial position:"),
            "radius": _field(question, "Radius"),
            "mass": _field(question, "Mass"),
            "initial_velocity": _triple(question, "Initial velocity:"),
            "sliding_fric": _field(question, "Sliding friction coefficient"),
            "torsional_fric": _field(question, "Torsional friction coefficient"),
            "rolling_fric": _field(question, "Rolling friction coefficient"),
        }
        return ("ball_plane_simulation", args, f"body:{ask}") if None not in args.values() else None
    return None


def _axis(ask: str) -> int:
    m = re.search(r"\b([xyzXYZ])[- ]?(?:position|velocity|direction|positions)", ask)
    m = m or re.search(r"in the ([xyzXYZ])-direction", ask)
    return "xyz".index(m.group(1).lower()) if m else 0


def read_answer(result: dict[str, Any], target: str) -> float | None:
    """The number the question asks for, from a simulation result."""
    name, ask = target.split(":", 1)
    trajectory = result["trajectory"].get(name, {})
    if name.startswith("hinge"):
        angles, speeds = trajectory["angle"], trajectory["angular_velocity"]
        if "range" in ask:
            return max(angles) - min(angles)
        if "final position" in ask:
            return float(angles[-1])
        if "final velocity" in ask:
            return float(speeds[-1])
        return None
    axis = _axis(ask)
    positions = [p[axis] for p in trajectory["position"]]
    velocities = [v[axis] for v in trajectory["velocity"]]
    if "range" in ask:
        return max(positions) - min(positions)
    if "maximum absolute" in ask:
        return max(abs(v) for v in velocities)
    if "final" in ask and "velocity" in ask.lower():
        return float(velocities[-1])
    if "final" in ask and "position" in ask.lower():
        return float(positions[-1])
    return None


def mujoco_agreement(url: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    for item in items:
        options = item["Options"]
        parsed = parse_mujoco(item["Question"])
        if parsed is None or not all(isinstance(o, int | float) for o in options):
            rows.append({"status": "skipped"})
            continue
        tool, args, target = parsed
        response = httpx.post(f"{url}/invoke", json={"tool": tool, "arguments": args}, timeout=120)
        if response.status_code != 200:
            rows.append({"status": "tool_error", "error": response.json().get("error")})
            continue
        value = read_answer(response.json()["result"], target)
        if value is None:
            rows.append({"status": "skipped"})
            continue
        nearest = min(range(len(options)), key=lambda i: abs(options[i] - value))
        chosen = LETTERS[nearest]
        rows.append(
            {
                "status": "answered",
                "tool": tool,
                "value": value,
                "chosen": chosen,
                "correct": item["Correct"],
                "agree": chosen == item["Correct"],
                "options": options,
                "question": item["Question"][-160:],
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


def main() -> None:
    import argparse
    import tempfile

    from entrypoints.embedded import ServiceProcesses

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/awl"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/awl_tools.json"))
    options = parser.parse_args()
    processes = ServiceProcesses(Path(tempfile.mkdtemp()), {})
    try:
        pde_url = processes.start_tool_server("pde")[1]
        mujoco_url = processes.start_tool_server("mechanics")[1]
        pde = pde_agreement(pde_url, json.loads((options.data / "pde.json").read_text()))
        mujoco = mujoco_agreement(
            mujoco_url, json.loads((options.data / "mujoco.json").read_text())
        )
    finally:
        processes.stop_all()
    for name, summary in (("pde", pde), ("mujoco", mujoco)):
        print(
            f"{name}: answered {summary['answered']}/{summary['total']}, agreement "
            f"{summary['agreement']:.1%}, tool errors {summary['tool_errors']}"
        )
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps({"pde": pde, "mujoco": mujoco}, indent=1))


if __name__ == "__main__":
    main()
