"""The `mechanics` tool server: AWL's MuJoCo tools with AWL's exact signatures.

Argument names are AWL's (`src/Mujoco/tools/*.py` and `src/functions/mujoco.py`),
typos included (`post_hight`, `y_anv`), so AWL-trained adapters call them unchanged.
Every tool also takes:
- `thought` (AWL's agents send it; it is dropped, as AWL drops it);
- `stiffness` and, where AWL's schema lists it without using it, `damping`: AWL's
  schemas list them but its functions reject them with a TypeError; we accept and
  ignore them, so a schema-following call is answered;
- `numerics`: `awl` or `converged` (tool_servers/mechanics_run.py says what differs);
- `sample_interval`: the spacing of the rich trajectory beside AWL's text.

The arguments of the earlier sciserve schema (`initial_position`, `initial_velocity`,
`radius`, `size`, `position_1`, …, `left_wheel_velocity`, `post_height`) are still
accepted as aliases and mapped onto AWL's names; the manifest shows AWL's only.

The result holds AWL's return text (`text`), AWL's JSON (`awl`), and the final
state, extent and sampled trajectory of every body or joint.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mujoco
from pydantic import Field, model_validator

from tool_servers.base import Tool, ToolArguments
from tool_servers.mechanics_run import run_scene
from tool_servers.mechanics_scenes import (
    BALL_GAME_XML,
    BALL_PLANE_XML,
    BALL_XML,
    BOX_PLANE_XML,
    DIFF_VEHICLE_XML,
    DOUBLE_PENDULUM_XML,
    ROLL_BALL_XML,
    SINGLE_PENDULUM_XML,
    SPHERE_COLLISION_PLANE,
    SPHERE_COLLISION_XML,
    Scene,
    Track,
    f2,
    quat2euler_z,
    xyz,
)
from tool_servers.numerics import NUMERICS_FIELD, Numerics, resolve

MAX_SIMULATED_S = 60.0
AWL_WHEEL_RADIUS_M = 0.2  # AWL's diff_vehicle tyres: cylinder size ".2 0.05"

Coordinate = Field(default=0.0, ge=-1e4, le=1e4)
Speed = Field(default=0.0, ge=-1e4, le=1e4)
Mass = Field(default=1.0, gt=0, le=1e6, description="kg")


def _alias_vector(raw: dict[str, Any], old: str, new: tuple[str, str, str]) -> None:
    """Move a legacy 3-vector argument onto AWL's three scalars."""
    if old in raw:
        vector = raw.pop(old)
        if not isinstance(vector, list | tuple) or len(vector) != 3:
            raise ValueError(f"{old} must be a list of 3 numbers")
        for key, value in zip(new, vector, strict=True):
            raw.setdefault(key, value)


def _alias(raw: dict[str, Any], old: str, new: str, scale: float = 1.0) -> None:
    if old in raw:
        value = raw.pop(old)
        raw.setdefault(new, value * scale if isinstance(value, int | float) else value)


class Simulation(ToolArguments):
    """What every simulation shares."""

    gra_acel: float = Field(
        default=-9.8, ge=-100, le=100, description="Gravitational acceleration along z, m/s²."
    )
    simend: float = Field(
        gt=0,
        le=MAX_SIMULATED_S,
        description="Simulation end time in seconds (AWL numerics cast it to an integer).",
    )
    stiffness: float | None = Field(
        default=None, description="Listed by AWL's schema; not used by the simulation."
    )
    numerics: Numerics | None = NUMERICS_FIELD
    sample_interval: float = Field(
        default=0.1,
        gt=0,
        le=MAX_SIMULATED_S,
        description="Spacing of the returned trajectory, s (AWL's text logs every 200 steps).",
    )


class Friction(ToolArguments):
    sliding_fric: float = Field(default=0.0, ge=0, le=10)
    torsional_fric: float = Field(default=0.0, ge=0, le=10)
    rolling_fric: float = Field(default=0.0, ge=0, le=10)


class FreeBall(Simulation, Friction):
    """AWL's ball / ball_plane / box_plane arguments."""

    damping: float = Field(default=0.0, ge=0, le=1e3, description="Quadratic drag coefficient.")
    x: float = Coordinate
    y: float = Coordinate
    z: float = Field(default=5.0, ge=-1e4, le=1e4)
    r: float = Field(default=0.1, gt=0, le=100, description="Radius (box: half side), m.")
    mass: float = Mass
    x_v: float = Speed
    y_v: float = Speed
    z_v: float = Speed

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = dict(raw)
            _alias_vector(raw, "initial_position", ("x", "y", "z"))
            _alias_vector(raw, "initial_velocity", ("x_v", "y_v", "z_v"))
            _alias(raw, "radius", "r")
            _alias(raw, "size", "r", 0.5)  # the earlier box schema took the full edge
        return raw


class BallSimulation(FreeBall):
    ground: bool = Field(
        default=False, description="Add AWL's ball_plane ground (AWL's ball scene has none)."
    )


class RollBall(Simulation, Friction):
    damping: float = Field(default=0.0, ge=0, le=1e3)
    x: float = Coordinate
    y: float = Coordinate
    z: float = Field(default=0.1, ge=-1e4, le=1e4)
    r: float = Field(default=0.1, gt=0, le=100)
    mass: float = Mass
    x_v: float = Speed
    y_anv: float = Field(
        default=0.0, ge=-1e4, le=1e4, description="Initial angular velocity about y, rad/s."
    )
    z_v: float = Speed


class SphereCollision(Simulation, Friction):
    timeconst: float = Field(default=0.02, gt=0, le=10, description="Contact solref time.")
    dampratio: float = Field(default=1.0, ge=0, le=10, description="Contact damping ratio.")
    x1: float = Coordinate
    y1: float = Coordinate
    z1: float = Coordinate
    r1: float = Field(default=0.1, gt=0, le=100)
    mass1: float = Mass
    x2: float = Coordinate
    y2: float = Coordinate
    z2: float = Coordinate
    r2: float = Field(default=0.1, gt=0, le=100)
    mass2: float = Mass
    x1_v: float = Speed
    y1_v: float = Speed
    z1_v: float = Speed
    x2_v: float = Speed
    y2_v: float = Speed
    z2_v: float = Speed
    ground: bool = Field(default=True, description="AWL's plane at z=0; false removes it.")
    contact_damping: float = Field(
        default=0.0,
        ge=0,
        le=1e6,
        description="With stiffness (converged only): a direct spring-damper contact "
        "instead of timeconst/dampratio; contact_damping=0 is an elastic bounce.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and any(k in raw for k in ("position_1", "radius_1")):
            raw = dict(raw)
            for i in (1, 2):
                _alias_vector(raw, f"position_{i}", (f"x{i}", f"y{i}", f"z{i}"))
                _alias_vector(raw, f"velocity_{i}", (f"x{i}_v", f"y{i}_v", f"z{i}_v"))
                _alias(raw, f"radius_{i}", f"r{i}")
                _alias(raw, f"mass_{i}", f"mass{i}")
            _alias(raw, "time_constant", "timeconst")
            _alias(raw, "damping_ratio", "dampratio")
            raw.setdefault("ground", False)  # the earlier scene had no ground
        return raw


class Unused(ToolArguments):
    damping: float | None = Field(
        default=None, description="Listed by AWL's schema; not used by the simulation."
    )


class SinglePendulum(Simulation, Friction, Unused):
    mass_capsule: float = Field(default=0.1, gt=0, le=1e4)
    mass_ball: float = Field(default=0.1, gt=0, le=1e4)
    initial_angle: float = Field(default=0.0, ge=-100, le=100, description="rad.")
    initial_angular_velocity: float = Field(default=0.0, ge=-1e3, le=1e3, description="rad/s.")


class DoublePendulum(Simulation, Friction, Unused):
    mass_capsule_1: float = Field(default=0.1, gt=0, le=1e4)
    mass_ball_1: float = Field(default=0.1, gt=0, le=1e4)
    mass_capsule_2: float = Field(default=0.1, gt=0, le=1e4)
    mass_ball_2: float = Field(default=0.1, gt=0, le=1e4)
    initial_angle_1: float = Field(default=0.0, ge=-100, le=100)
    initial_angular_velocity_1: float = Field(default=0.0, ge=-1e3, le=1e3)
    initial_angle_2: float = Field(default=0.0, ge=-100, le=100)
    initial_angular_velocity_2: float = Field(default=0.0, ge=-1e3, le=1e3)


class DiffVehicle(Simulation, Friction, Unused):
    left_vel: float = Field(
        default=0.0, ge=-1e3, le=1e3, description="Left wheel servo target, rad/s."
    )
    right_vel: float = Field(
        default=0.0, ge=-1e3, le=1e3, description="Right wheel servo target, rad/s."
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = dict(raw)  # the earlier schema took wheel surface speeds in m/s
            _alias(raw, "left_wheel_velocity", "left_vel", 1 / AWL_WHEEL_RADIUS_M)
            _alias(raw, "right_wheel_velocity", "right_vel", 1 / AWL_WHEEL_RADIUS_M)
        return raw


class BallGame(Simulation):
    damping: float = Field(default=0.0, ge=0, le=1e3)
    mass_ball: float = Field(default=1.0, gt=0, le=1e4)
    mass_post: float = Field(default=1.0, gt=0, le=1e5)
    mass_box: float = Field(default=1.0, gt=0, le=1e4)
    post_hight: float = Field(default=0.5, gt=0, le=50, description="Post height, m (sic).")
    x_v: float = Speed
    y_v: float = Speed
    z_v: float = Speed

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, raw: Any) -> Any:
        if isinstance(raw, dict):
            raw = dict(raw)
            _alias(raw, "post_height", "post_hight")
            _alias_vector(raw, "initial_velocity", ("x_v", "y_v", "z_v"))
        return raw


# --- scenes ------------------------------------------------------------------------


def _fric(a: Friction) -> dict[str, float]:
    return {
        "sliding_fric": a.sliding_fric,
        "torsional_fric": a.torsional_fric,
        "rolling_fric": a.rolling_fric,
    }


def _set_qvel(values: list[float], at: int = 0) -> Callable[[mujoco.MjData], None]:
    def prepare(data: mujoco.MjData) -> None:
        data.qvel[at : at + len(values)] = values

    return prepare


def _free_line(label: str, d: mujoco.MjData) -> str:
    q, v = d.qpos, d.qvel
    return (
        f"Time: {label} s, Position: x: {f2(q[0])} y: {f2(q[1])} z: {f2(q[2])}, "
        f"Velocity: x: {f2(v[0])} y: {f2(v[1])} z: {f2(v[2])}"
    )


def _free_channels(d: mujoco.MjData) -> dict[str, float]:
    return {**xyz("position", d.qpos[0:3]), **xyz("velocity", d.qvel[0:3])}


def _free_scene(xml: str, a: FreeBall, dt: float) -> Scene:
    text = xml.format(gra_acel=a.gra_acel, x=a.x, y=a.y, z=a.z, r=a.r, mass=a.mass, **_fric(a))
    return Scene(
        xml=text,
        timestep=dt,
        prepare=_set_qvel([a.x_v, a.y_v, a.z_v]),
        line=_free_line,
        channels=_free_channels,
        tracks=(Track("body", "body", 1),),
        damping=a.damping,
    )


def _run(scene: Scene, a: Simulation, default: Numerics) -> dict[str, Any]:
    return run_scene(scene, resolve(a.numerics, default), a.simend, a.sample_interval)


def ball_scene(a: BallSimulation) -> Scene:
    return _free_scene(BALL_PLANE_XML if a.ground else BALL_XML, a, 0.001)


def ball_plane_scene(a: FreeBall) -> Scene:
    return _free_scene(BALL_PLANE_XML, a, 0.001)


def box_plane_scene(a: FreeBall) -> Scene:
    return _free_scene(BOX_PLANE_XML, a, 0.0001)


def roll_ball_scene(a: RollBall, numerics: Numerics) -> Scene:
    # AWL's rolling-ball questions print g as a positive magnitude although their
    # answers were simulated with g < 0; converged numerics take it as pulling down
    # whatever its sign, awl numerics use it as given (AWL's tool does).
    g = a.gra_acel if numerics == "awl" else -abs(a.gra_acel)
    xml = ROLL_BALL_XML.format(gra_acel=g, x=a.x, y=a.y, z=a.z, r=a.r, mass=a.mass, **_fric(a))

    def line(label: str, d: mujoco.MjData) -> str:
        return (
            f"Time: {label} s, Position (X): {f2(d.qpos[0])}, "
            f"Velocity (v_x, angular_velocity_y): {f2(d.qvel[0])} {f2(d.qvel[2])}"
        )

    def channels(d: mujoco.MjData) -> dict[str, float]:
        return {
            "position_x": d.qpos[0],
            "velocity_x": d.qvel[0],
            "angular_velocity_y": d.qvel[2],
        }

    return Scene(
        xml=xml,
        timestep=0.0001,
        # AWL: qvel = (x_v, z_v, y_anv) for the slide-x, slide-z and hinge joints
        prepare=_set_qvel([a.x_v, a.z_v, a.y_anv]),
        line=line,
        channels=channels,
        tracks=(Track("body", "body", 1),),
        damping=a.damping,
        drag_on_qvel=False,
    )


def sphere_collision_scene(a: SphereCollision, numerics: Numerics) -> Scene:
    timeconst, dampratio = a.timeconst, a.dampratio
    if numerics == "converged" and a.stiffness is not None:
        # MuJoCo's direct spring: negative solref is (-stiffness, -damping)
        timeconst, dampratio = -a.stiffness, -a.contact_damping
    xml = SPHERE_COLLISION_XML.format(
        timeconst=timeconst,
        dampratio=dampratio,
        gra_acel=a.gra_acel,
        ground=SPHERE_COLLISION_PLANE if a.ground else "",
        **{k: getattr(a, k) for k in ("x1", "y1", "z1", "r1", "mass1")},
        **{k: getattr(a, k) for k in ("x2", "y2", "z2", "r2", "mass2")},
        **_fric(a),
    )

    def line(label: str, d: mujoco.MjData) -> str:
        q, v = d.qpos, d.qvel
        return (
            f"Time: {label} s, Sphere1 Pos: x: {f2(q[0])} y: {f2(q[1])} z: {f2(q[2])}, "
            f"Vel: x: {f2(v[0])} y: {f2(v[1])} z: {f2(v[2])}\n"
            f"Time: {label} s, Sphere2 Pos: x: {f2(q[7])} y: {f2(q[8])} z: {f2(q[9])}, "
            f"Vel: x: {f2(v[6])} y: {f2(v[7])} z: {f2(v[8])}"
        )

    def channels(d: mujoco.MjData) -> dict[str, float]:
        return {
            **xyz("sphere1.position", d.qpos[0:3]),
            **xyz("sphere1.velocity", d.qvel[0:3]),
            **xyz("sphere2.position", d.qpos[7:10]),
            **xyz("sphere2.velocity", d.qvel[6:9]),
        }

    def prepare(data: mujoco.MjData) -> None:
        data.qvel[0:3] = [a.x1_v, a.y1_v, a.z1_v]
        data.qvel[6:9] = [a.x2_v, a.y2_v, a.z2_v]

    return Scene(
        xml=xml,
        timestep=0.0001,
        prepare=prepare,
        line=line,
        channels=channels,
        tracks=(Track("sphere1", "body", 1), Track("sphere2", "body", 2)),
    )


def ball_game_scene(a: BallGame) -> Scene:
    xml = BALL_GAME_XML.format(
        gra_acel=a.gra_acel,
        mass_ball=a.mass_ball,
        mass_post=a.mass_post,
        mass_box=a.mass_box,
        half_hight=a.post_hight / 2,
        box_hight=a.post_hight + 0.1,
    )

    def line(label: str, d: mujoco.MjData) -> str:
        q, v = d.qpos, d.qvel
        return (
            f"Time: {label} s, Ball Position: x: {f2(q[0])} y: {f2(q[1])} z: {f2(q[2])}, "
            f"Ball Velocity: x: {f2(v[0])} y: {f2(v[1])} z: {f2(v[2])}, "
            f"Post Position: x: {f2(q[7])} y: {f2(q[8])} z: {f2(q[9])}, "
            f"Box Position: x: {f2(q[14])} y: {f2(q[15])} z: {f2(q[16])}"
        )

    def channels(d: mujoco.MjData) -> dict[str, float]:
        return {
            **xyz("ball.position", d.qpos[0:3]),
            **xyz("ball.velocity", d.qvel[0:3]),
            **xyz("post.position", d.qpos[7:10]),
            **xyz("box.position", d.qpos[14:17]),
        }

    return Scene(
        xml=xml,
        timestep=0.001,
        prepare=_set_qvel([a.x_v, a.y_v, a.z_v]),
        line=line,
        channels=channels,
        tracks=(Track("ball", "body", 1), Track("post", "body", 2), Track("box", "body", 3)),
        damping=a.damping,
        game_over_z=True,
        extra_json={"game_over": False, "game_over_time": None},
    )


def single_pendulum_scene(a: SinglePendulum) -> Scene:
    xml = SINGLE_PENDULUM_XML.format(
        gra_acel=a.gra_acel, mass_capsule=a.mass_capsule, mass_ball=a.mass_ball, **_fric(a)
    )

    def prepare(data: mujoco.MjData) -> None:
        data.qpos[0] = a.initial_angle
        data.qvel[0] = a.initial_angular_velocity

    def line(label: str, d: mujoco.MjData) -> str:
        return f"Time: {label} s, Ball Position: {f2(d.qpos[0])}, Ball Velocity: {f2(d.qvel[0])}"

    return Scene(
        xml=xml,
        timestep=0.001,
        prepare=prepare,
        line=line,
        channels=lambda d: {"velocity": d.qvel[0], "position": d.qpos[0]},
        tracks=(Track("hinge1", "joint", 0), Track("bob1", "geom", 1)),
    )


def double_pendulum_scene(a: DoublePendulum) -> Scene:
    xml = DOUBLE_PENDULUM_XML.format(
        gra_acel=a.gra_acel,
        mass_capsule_1=a.mass_capsule_1,
        mass_ball_1=a.mass_ball_1,
        mass_capsule_2=a.mass_capsule_2,
        mass_ball_2=a.mass_ball_2,
        **_fric(a),
    )

    def prepare(data: mujoco.MjData) -> None:
        data.qpos[0:2] = [a.initial_angle_1, a.initial_angle_2]
        data.qvel[0:2] = [a.initial_angular_velocity_1, a.initial_angular_velocity_2]

    def line(label: str, d: mujoco.MjData) -> str:
        q, v = d.qpos, d.qvel
        return (
            f"Time: {label} s, Ball 1 Position: {f2(q[0])}, Ball 1 Velocity: {f2(v[0])}, "
            f"Ball 2 Position: {f2(q[1])}, Ball 2 Velocity: {f2(v[1])}"
        )

    def channels(d: mujoco.MjData) -> dict[str, float]:
        return {
            "position_1": d.qpos[0],
            "velocity_1": d.qvel[0],
            "position_2": d.qpos[1],
            "velocity_2": d.qvel[1],
        }

    return Scene(
        xml=xml,
        timestep=0.001,
        prepare=prepare,
        line=line,
        channels=channels,
        tracks=(
            Track("hinge1", "joint", 0),
            Track("hinge2", "joint", 1),
            Track("bob1", "geom", 1),
            Track("bob2", "geom", 3),
        ),
    )


def diff_vehicle_scene(a: DiffVehicle) -> Scene:
    xml = DIFF_VEHICLE_XML.format(gra_acel=a.gra_acel, **_fric(a))

    def line(label: str, d: mujoco.MjData) -> str:
        q, v = d.qpos, d.qvel
        # AWL prints the orientation unformatted and "Vilocity" (sic)
        return (
            f"Time: {label} s, Position: x: {f2(q[0])} y: {f2(q[1])} z: {f2(q[2])}, "
            f"Velocity: x: {f2(v[0])} y: {f2(v[1])} z: {f2(v[2])}, "
            f"Vilocity of Wheels: l: {f2(d.ctrl[0])} r: {f2(d.ctrl[1])}, "
            f"Orientation: {quat2euler_z(q[3:7])}"
        )

    def channels(d: mujoco.MjData) -> dict[str, float]:
        return {
            **xyz("position", d.qpos[0:3]),
            **xyz("velocity", d.qvel[0:3]),
            "wheel_velocity.left": d.ctrl[0],
            "wheel_velocity.right": d.ctrl[1],
            "orientation": quat2euler_z(d.qpos[3:7]),
        }

    return Scene(
        xml=xml,
        timestep=0.001,
        prepare=lambda data: None,
        line=line,
        channels=channels,
        tracks=(Track("chassis", "body", 1),),
        ctrl=(a.left_vel, a.right_vel),  # AWL's controller sets these constants
    )


# --- tools -------------------------------------------------------------------------

_RETURNS = (
    " Returns AWL's log (`text`: position and velocity every 200 steps, 2 decimals), "
    "AWL's JSON (`awl`), and the final state, extent and trajectory of each body."
)


def mechanics_tools(default: Numerics = "converged") -> list[Tool]:
    """The nine AWL scenes, with `default` numerics for calls that name none."""

    def tool(
        name: str,
        description: str,
        arguments: type[Simulation],
        scene: Callable[[Any, Numerics], Scene],
    ) -> Tool:
        def run(a: Any) -> dict[str, Any]:
            mode = resolve(a.numerics, default)
            return run_scene(scene(a, mode), mode, a.simend, a.sample_interval)

        # converged runs of the 0.1 ms scenes step 10 000 times per simulated second
        return Tool(name, description + _RETURNS, arguments, run, timeout_s=120.0)

    return [
        tool(
            "ball_simulation",
            "Simulates a single ball's motion using MuJoCo physics. There is nothing in "
            "the space other than the ball.",
            BallSimulation,
            lambda a, m: ball_scene(a),
        ),
        tool(
            "ball_plane_simulation",
            "Simulates a single ball's motion using MuJoCo physics. There is a plane in "
            "the space other than the ball.",
            FreeBall,
            lambda a, m: ball_plane_scene(a),
        ),
        tool(
            "box_plane_simulation",
            "Simulates a cube (half side r) moving on a plane using MuJoCo physics.",
            FreeBall,
            lambda a, m: box_plane_scene(a),
        ),
        tool(
            "roll_ball_simulation",
            "Simulates a ball rolling on a plane using MuJoCo physics.",
            RollBall,
            roll_ball_scene,
        ),
        tool(
            "sphere_collision_simulation",
            "Simulates two spheres that may collide above a plane using MuJoCo physics; "
            "contacts are soft with solref (timeconst, dampratio).",
            SphereCollision,
            sphere_collision_scene,
        ),
        tool(
            "ball_game_simulation",
            "Simulates a ball game using MuJoCo physics. The game consists of a ball, a "
            "post, and a box. The ball is released from a place. Your goal is to make the "
            "ball hit the box and avoid hitting the post.",
            BallGame,
            lambda a, m: ball_game_scene(a),
        ),
        tool(
            "single_pendulum_simulation",
            "Simulates a single pendulum using MuJoCo physics (1 m rod hinged about y at "
            "z=2 m; angles in rad).",
            SinglePendulum,
            lambda a, m: single_pendulum_scene(a),
        ),
        tool(
            "double_pendulum_simulation",
            "Simulates a double pendulum using MuJoCo physics (two 1 m links hinged about "
            "y; the second angle is relative to the first).",
            DoublePendulum,
            lambda a, m: double_pendulum_scene(a),
        ),
        tool(
            "diff_vehicle_simulation",
            "Simulates a differential drive car using MuJoCo physics (wheel servo targets "
            "in rad/s).",
            DiffVehicle,
            lambda a, m: diff_vehicle_scene(a),
        ),
    ]


MECHANICS_TOOLS = mechanics_tools()
