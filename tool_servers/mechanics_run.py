"""Running one AWL MuJoCo scene in either numerics mode, and summarising it.

- `awl` (src/Mujoco/tools/*.py): `for i in range(simend * 1000 + 1): mj_step(...)`
  whatever the timestep, so the dt=1e-4 scenes (box_plane, roll_ball,
  sphere_collision) simulate a tenth of `simend`; a log line after steps
  i = 0, 200, 400, … labelled "Time: {i/1000} s"; `simend` cast to int
  (src/Mujoco/answer_agent.py, convert_dict_values); values rounded with numpy to
  2 decimals in the JSON.
- `converged`: `simend / timestep` steps, so the scene runs for the time asked; logs
  every 0.2 s of simulated time, the initial state included, labelled with that time.

AWL's drag is a MuJoCo control callback (`mj.set_mjcb_control`), which MuJoCo calls
at every RK4 stage, so it is one here too. That callback is process-global, and the
Python bindings fail any model compiled or stepped while it is set from another
thread (they cannot wrap MuJoCo's internal data), so runs are serialised by one lock,
the callback set for a run with drag and cleared after it, as AWL does.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import mujoco
import numpy as np

from tool_servers.base import ToolArgumentError
from tool_servers.mechanics_scenes import Scene, Track
from tool_servers.numerics import Numerics

MAX_SAMPLES = 5000
LOG_EVERY_S = 0.2

Drag = Callable[[mujoco.MjModel, mujoco.MjData], None]
_MUJOCO_CALLBACK = threading.Lock()


def _drag(scene: Scene, numerics: Numerics) -> Drag | None:
    """xfrc_applied[1] = -damping·|v|·v on body 1 (AWL's create_controller)."""
    if scene.damping == 0:
        return None  # AWL's callback would write zeros: the same model
    damping = scene.damping
    physical = numerics == "converged" and not scene.drag_on_qvel

    def drag(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        # Python floats in AWL's order of operations (-damping * |v| * v, |v| from
        # vx**2 + vy**2 + vz**2): the same doubles as AWL's numpy code, at a fraction of
        # its per-call cost (MuJoCo calls this 4 times per RK4 step).
        q = data.qvel
        # roll_ball, converged: the ball's linear velocity (vx, 0, vz), not (vx, vz, ωy)
        vx, vy, vz = (
            (float(q[0]), 0.0, float(q[1]))
            if physical
            else (
                float(q[0]),
                float(q[1]),
                float(q[2]),
            )
        )
        k = -damping * math.sqrt(vx**2 + vy**2 + vz**2)
        data.xfrc_applied[1, 0:3] = (k * vx, k * vy, k * vz)

    return drag


class _Recorder:
    """The rich summary: tracks sampled every `sample_interval` of simulated time."""

    def __init__(self, tracks: tuple[Track, ...]) -> None:
        self.tracks = tracks
        self.time: list[float] = []
        self.a: dict[str, list[Any]] = {t.name: [] for t in tracks}
        self.b: dict[str, list[Any]] = {t.name: [] for t in tracks}

    def sample(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.time.append(round(float(data.time), 6))
        for track in self.tracks:
            if track.kind == "joint":
                self.a[track.name].append(float(data.qpos[model.jnt_qposadr[track.index]]))
                self.b[track.name].append(float(data.qvel[model.jnt_dofadr[track.index]]))
                continue
            obj = mujoco.mjtObj.mjOBJ_BODY if track.kind == "body" else mujoco.mjtObj.mjOBJ_GEOM
            where = data.xpos if track.kind == "body" else data.geom_xpos
            velocity = np.zeros(6)
            mujoco.mj_objectVelocity(model, data, obj, track.index, velocity, 0)
            self.a[track.name].append([float(v) for v in where[track.index]])
            self.b[track.name].append([float(v) for v in velocity[3:]])

    def summary(self) -> dict[str, Any]:
        final: dict[str, Any] = {}
        extent: dict[str, Any] = {}
        trajectory: dict[str, Any] = {"time": self.time}
        for t in self.tracks:
            first, second = (
                ("angle", "angular_velocity")
                if t.kind == "joint"
                else (
                    "position",
                    "velocity",
                )
            )
            final[t.name] = {first: self.a[t.name][-1], second: self.b[t.name][-1]}
            trajectory[t.name] = {first: self.a[t.name], second: self.b[t.name]}
            if t.kind != "joint":
                positions = np.array(self.a[t.name])
                extent[t.name] = {
                    "min_position": positions.min(axis=0).tolist(),
                    "max_position": positions.max(axis=0).tolist(),
                }
        return {"final": final, "extent": extent, "trajectory": trajectory}


def _nest(flat: dict[str, list[float]]) -> dict[str, Any]:
    """{"sphere1.position.x": [...]} → {"sphere1": {"position": {"x": [...]}}}."""
    out: dict[str, Any] = {}
    for path, values in flat.items():
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = values
    return out


def run_scene(
    scene: Scene, numerics: Numerics, simend: float, sample_interval: float
) -> dict[str, Any]:
    """Step the scene; return AWL's text and JSON beside the rich summary."""
    with _MUJOCO_CALLBACK:
        return _run_scene(scene, numerics, simend, sample_interval)


def _run_scene(
    scene: Scene, numerics: Numerics, simend: float, sample_interval: float
) -> dict[str, Any]:
    try:
        model = mujoco.MjModel.from_xml_string(scene.xml)
    except ValueError as exc:
        raise ToolArgumentError(f"the scene could not be built: {exc}") from exc
    dt = float(model.opt.timestep)
    if numerics == "awl":
        # AWL src/Mujoco/tools/*.py: range(simend * 1000 + 1) with an int simend.
        steps = int(simend) * 1000 + 1
        log_every = 200
    else:
        steps = round(simend / dt)
        log_every = max(1, round(LOG_EVERY_S / dt))
    if steps * dt / sample_interval > MAX_SAMPLES:
        raise ToolArgumentError(
            f"the run asks for {steps * dt / sample_interval:.0f} samples; the limit is "
            f"{MAX_SAMPLES}, so raise sample_interval"
        )
    data = mujoco.MjData(model)
    scene.prepare(data)
    if scene.ctrl:
        data.ctrl[:] = scene.ctrl
    recorder = _Recorder(scene.tracks)
    mujoco.mj_forward(model, data)
    data.qacc_warmstart[:] = 0  # AWL steps from a fresh MjData: no solver warm start
    recorder.sample(model, data)
    every = max(1, round(sample_interval / dt))
    lines: list[str] = []
    json_flat: dict[str, list[float]] = {}
    extra = dict(scene.extra_json)

    def log(label: str) -> bool:
        lines.append(scene.line(label, data))
        for path, value in scene.channels(data).items():
            # AWL: round(np.float64, 2), i.e. numpy's rounding
            json_flat.setdefault(path, []).append(float(np.round(np.float64(value), 2)))
        if scene.game_over_z and data.qpos[16] <= 0.12:
            # AWL src/Mujoco/tools/ball_game.py: checked only at log points
            lines.append("Box was hit by the ball, Game Over!")
            extra["game_over"] = True
            extra["game_over_time"] = round(float(data.time), 3)
            return True
        return False

    drag = _drag(scene, numerics)
    if drag is not None:
        mujoco.set_mjcb_control(drag)
    try:
        if numerics == "converged":
            log("0.0")
        for i in range(steps):
            mujoco.mj_step(model, data)
            done = i + 1
            if done % every == 0 or done == steps:
                recorder.sample(model, data)
            if numerics == "awl":
                stop = i % log_every == 0 and log(str(i / 1000))
                if stop and scene.game_over_z:
                    # AWL's game_over_time is i·0.001 whatever the step
                    extra["game_over_time"] = round(i * 0.001, 3)
            else:
                stop = (done % log_every == 0 or done == steps) and log(str(round(done * dt, 6)))
            if stop:
                break
    finally:
        if drag is not None:
            mujoco.set_mjcb_control(None)
    if recorder.time[-1] != round(float(data.time), 6):
        recorder.sample(model, data)
    awl_json = {**_nest(json_flat), **extra}
    return {
        "numerics": numerics,
        "text": "\n".join(lines) + "\n",
        "awl": awl_json,
        **recorder.summary(),
        "time": round(float(data.time), 6),
        "steps": steps,
        "timestep": dt,
    }
