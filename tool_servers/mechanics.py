"""The `mechanics` tool server: AWL's MuJoCo simulation tools on the `mujoco` package.

Each tool builds one small MJCF scene from its arguments, steps it with a 1 ms RK4
step (as AWL's scenes do), and returns the final state of every body plus sampled
trajectories and the extent of each body's motion, so that questions about final
values, ranges and trends can all be answered from one call.
Argument names follow AWL (`gra_acel`, `sliding_fric`, `simend`, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np
from pydantic import Field

from tool_servers.base import Tool, ToolArgumentError, ToolArguments

TIMESTEP_S = 0.001
MAX_SIMULATED_S = 60.0
MAX_SAMPLES = 5000

Vector3 = tuple[float, float, float]


class Simulation(ToolArguments):
    """Arguments every simulation shares."""

    gra_acel: float = Field(
        default=-9.81, ge=-100, le=100, description="Gravitational acceleration along z, m/s²."
    )
    simend: float = Field(gt=0, le=MAX_SIMULATED_S, description="Simulated duration, s.")
    sample_interval: float = Field(
        default=0.1, gt=0, le=MAX_SIMULATED_S, description="Spacing of the returned samples, s."
    )


class Friction(ToolArguments):
    sliding_fric: float = Field(default=1.0, ge=0, le=10)
    torsional_fric: float = Field(default=0.005, ge=0, le=10)
    rolling_fric: float = Field(default=0.0001, ge=0, le=10)


class FreeBody(Simulation, Friction):
    """A ball or box with a free joint."""

    initial_position: Vector3 = Field(description="(x, y, z) in metres.")
    initial_velocity: Vector3 = Field(default=(0.0, 0.0, 0.0), description="m/s.")
    initial_angular_velocity: Vector3 = Field(default=(0.0, 0.0, 0.0), description="rad/s.")
    radius: float = Field(default=0.1, gt=0, le=100, description="Ball radius, m.")
    mass: float = Field(default=1.0, gt=0, le=1e6, description="kg.")
    damping: float = Field(default=0.0, ge=0, le=100, description="Linear damping of the joint.")


class BallSimulation(FreeBody):
    ground: bool = Field(default=False, description="Add a ground plane at z=0.")


class BoxPlaneSimulation(FreeBody):
    size: float = Field(default=0.2, gt=0, le=100, description="Box edge length, m.")


class SphereCollision(Simulation, Friction):
    """Two spheres with free joints, no ground (AWL's sphere collision scene)."""

    position_1: Vector3
    velocity_1: Vector3 = (0.0, 0.0, 0.0)
    radius_1: float = Field(gt=0, le=100)
    mass_1: float = Field(gt=0, le=1e6)
    position_2: Vector3
    velocity_2: Vector3 = (0.0, 0.0, 0.0)
    radius_2: float = Field(gt=0, le=100)
    mass_2: float = Field(gt=0, le=1e6)
    time_constant: float = Field(default=0.02, gt=0, le=10, description="Contact solref.")
    damping_ratio: float = Field(
        default=1.0, gt=0, le=10, description="Contact solref (time constant, damping ratio)."
    )
    stiffness: float | None = Field(
        default=None,
        gt=0,
        le=1e9,
        description="Direct contact stiffness, N/m; replaces time_constant/damping_ratio. "
        "With contact_damping=0 the collision is elastic.",
    )
    contact_damping: float = Field(default=0.0, ge=0, le=1e6, description="With stiffness.")


class SinglePendulum(Simulation, Friction):
    """A 1 m rod (capsule) with a 0.1 m bob at its end, hinged about y at height 2 m."""

    mass_capsule: float = Field(default=0.1, gt=0, le=1e4)
    mass_ball: float = Field(default=0.1, gt=0, le=1e4)
    initial_angle: float = Field(default=0.0, ge=-10, le=10, description="rad.")
    initial_angular_velocity: float = Field(default=0.0, ge=-1e3, le=1e3, description="rad/s.")


class DoublePendulum(Simulation, Friction):
    mass_capsule_1: float = Field(default=0.1, gt=0, le=1e4)
    mass_ball_1: float = Field(default=0.1, gt=0, le=1e4)
    mass_capsule_2: float = Field(default=0.1, gt=0, le=1e4)
    mass_ball_2: float = Field(default=0.1, gt=0, le=1e4)
    initial_angle_1: float = Field(default=0.0, ge=-10, le=10)
    initial_angular_velocity_1: float = Field(default=0.0, ge=-1e3, le=1e3)
    initial_angle_2: float = Field(default=0.0, ge=-10, le=10)
    initial_angular_velocity_2: float = Field(default=0.0, ge=-1e3, le=1e3)


class DiffVehicle(Simulation, Friction):
    """A two-wheeled differential-drive vehicle with a caster, driven at fixed wheel
    surface speeds."""

    left_wheel_velocity: float = Field(ge=-50, le=50, description="Wheel surface speed, m/s.")
    right_wheel_velocity: float = Field(ge=-50, le=50, description="Wheel surface speed, m/s.")


class BallGame(Simulation):
    """A ball thrown from the origin towards a post (at x=2 m) with a box on top."""

    damping: float = Field(default=0.0, ge=0, le=100)
    mass_ball: float = Field(default=0.5, gt=0, le=1e4)
    mass_post: float = Field(default=10.0, gt=0, le=1e5)
    mass_box: float = Field(default=1.0, gt=0, le=1e4)
    post_height: float = Field(default=2.0, gt=0, le=50)
    initial_velocity: Vector3


# --- scene building --------------------------------------------------------------


def _v(values: Any) -> str:
    return " ".join(f"{float(v):.10g}" for v in values)


def _scene(
    args: Simulation,
    body_xml: str,
    *,
    friction: Friction | None,
    ground: bool,
    extra: str = "",
    integrator: str = "RK4",
    joint_damping: float = 0.0,
) -> str:
    fric = (
        _v([friction.sliding_fric, friction.torsional_fric, friction.rolling_fric])
        if friction
        else "1 0.005 0.0001"
    )
    floor = '<geom name="ground" type="plane" size="0 0 1"/>' if ground else ""
    return f"""<mujoco>
  <option gravity="0 0 {args.gra_acel:.10g}" integrator="{integrator}" timestep="{TIMESTEP_S}"/>
  <default><joint damping="{joint_damping:.10g}"/><geom friction="{fric}" condim="6"/></default>
  <worldbody>{floor}{body_xml}</worldbody>{extra}
</mujoco>"""


@dataclass
class Recorder:
    """Samples named bodies' positions and velocities during the run."""

    bodies: list[str]
    joints: list[str] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    positions: dict[str, list[list[float]]] = field(default_factory=dict)
    velocities: dict[str, list[list[float]]] = field(default_factory=dict)
    angles: dict[str, list[float]] = field(default_factory=dict)
    angular_velocities: dict[str, list[float]] = field(default_factory=dict)

    def sample(self, model: mujoco.MjModel, data: mujoco.MjData) -> None:
        self.time.append(round(float(data.time), 6))
        for name in self.bodies:
            self.positions.setdefault(name, []).append(_body_position(model, data, name))
            self.velocities.setdefault(name, []).append(_body_velocity(model, data, name))
        for name in self.joints:
            joint = model.joint(name)
            self.angles.setdefault(name, []).append(float(data.qpos[joint.qposadr[0]]))
            self.angular_velocities.setdefault(name, []).append(float(data.qvel[joint.dofadr[0]]))


def _body_position(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> list[float]:
    return [float(v) for v in data.body(name).xpos]


def _body_velocity(model: mujoco.MjModel, data: mujoco.MjData, name: str) -> list[float]:
    """World-frame linear velocity of the body's frame origin."""
    velocity = np.zeros(6)
    mujoco.mj_objectVelocity(
        model, data, mujoco.mjtObj.mjOBJ_BODY, model.body(name).id, velocity, 0
    )
    return [float(v) for v in velocity[3:]]


def simulate(
    xml: str,
    args: Simulation,
    recorder: Recorder,
    prepare: Callable[[mujoco.MjModel, mujoco.MjData], None],
    control: Callable[[mujoco.MjModel, mujoco.MjData], None] | None = None,
) -> dict[str, Any]:
    """Run the scene for `simend` seconds and summarise it."""
    samples = args.simend / args.sample_interval
    if samples > MAX_SAMPLES:
        raise ToolArgumentError(
            f"simend/sample_interval asks for {samples:.0f} samples; the limit is {MAX_SAMPLES}, "
            "so raise sample_interval"
        )
    try:
        model = mujoco.MjModel.from_xml_string(xml)
    except ValueError as exc:
        raise ToolArgumentError(f"the scene could not be built: {exc}") from exc
    data = mujoco.MjData(model)
    prepare(model, data)
    mujoco.mj_forward(model, data)
    steps = round(args.simend / TIMESTEP_S)
    every = max(1, round(args.sample_interval / TIMESTEP_S))
    recorder.sample(model, data)
    for step in range(1, steps + 1):
        if control is not None:
            control(model, data)
        mujoco.mj_step(model, data)
        if step % every == 0 or step == steps:
            recorder.sample(model, data)
    return _summary(recorder)


def _summary(r: Recorder) -> dict[str, Any]:
    final: dict[str, Any] = {}
    extent: dict[str, Any] = {}
    for name in r.bodies:
        pos = np.array(r.positions[name])
        final[name] = {"position": r.positions[name][-1], "velocity": r.velocities[name][-1]}
        extent[name] = {
            "min_position": pos.min(axis=0).tolist(),
            "max_position": pos.max(axis=0).tolist(),
        }
    for name in r.joints:
        final[name] = {
            "angle": r.angles[name][-1],
            "angular_velocity": r.angular_velocities[name][-1],
        }
    trajectory: dict[str, Any] = {"time": r.time}
    for name in r.bodies:
        trajectory[name] = {"position": r.positions[name], "velocity": r.velocities[name]}
    for name in r.joints:
        trajectory[name] = {"angle": r.angles[name], "angular_velocity": r.angular_velocities[name]}
    return {"final": final, "extent": extent, "trajectory": trajectory, "time": r.time[-1]}


# --- the tools ---------------------------------------------------------------------


def _free_body(args: FreeBody, geom: str, *, ground: bool) -> dict[str, Any]:
    body = (
        f'<body name="body" pos="{_v(args.initial_position)}"><freejoint name="free"/>{geom}</body>'
    )
    xml = _scene(args, body, friction=args, ground=ground, joint_damping=args.damping)

    def prepare(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.qvel[0:3] = args.initial_velocity
        data.qvel[3:6] = args.initial_angular_velocity

    return simulate(xml, args, Recorder(["body"]), prepare)


def ball_simulation(args: BallSimulation) -> dict[str, Any]:
    geom = f'<geom type="sphere" size="{args.radius:.10g}" mass="{args.mass:.10g}"/>'
    return _free_body(args, geom, ground=args.ground)


def ball_plane_simulation(args: FreeBody) -> dict[str, Any]:
    geom = f'<geom type="sphere" size="{args.radius:.10g}" mass="{args.mass:.10g}"/>'
    return _free_body(args, geom, ground=True)


def roll_ball_simulation(args: FreeBody) -> dict[str, Any]:
    """A ball rolling on the ground; gravity is taken as pulling down whatever its sign,
    as AWL's rolling-ball questions state it as a positive magnitude."""
    args = args.model_copy(update={"gra_acel": -abs(args.gra_acel)})
    geom = f'<geom type="sphere" size="{args.radius:.10g}" mass="{args.mass:.10g}"/>'
    return _free_body(args, geom, ground=True)


def box_plane_simulation(args: BoxPlaneSimulation) -> dict[str, Any]:
    half = args.size / 2
    geom = f'<geom type="box" size="{half:.10g} {half:.10g} {half:.10g}" mass="{args.mass:.10g}"/>'
    return _free_body(args, geom, ground=True)


def sphere_collision_simulation(args: SphereCollision) -> dict[str, Any]:
    # MuJoCo's soft contact loses or gains energy at a small damping ratio; a direct
    # spring (negative solref) is how to ask it for an elastic bounce.
    if args.stiffness is not None:
        solref = f'solref="{-args.stiffness:.10g} {-args.contact_damping:.10g}"'
    else:
        solref = f'solref="{args.time_constant:.10g} {args.damping_ratio:.10g}"'
    spheres = "".join(
        f'<body name="sphere{i}" pos="{_v(pos)}"><freejoint/>'
        f'<geom type="sphere" size="{r:.10g}" mass="{m:.10g}" {solref}/></body>'
        for i, pos, r, m in (
            (1, args.position_1, args.radius_1, args.mass_1),
            (2, args.position_2, args.radius_2, args.mass_2),
        )
    )
    xml = _scene(args, spheres, friction=args, ground=False)

    def prepare(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.qvel[0:3] = args.velocity_1
        data.qvel[6:9] = args.velocity_2

    return simulate(xml, args, Recorder(["sphere1", "sphere2"]), prepare)


def _pendulum_link(index: int, mass_rod: float, mass_bob: float, inner: str = "") -> str:
    return (
        f'<joint name="hinge{index}" type="hinge" axis="0 1 0"/>'
        f'<geom type="capsule" size="0.05" fromto="0 0 0 0 0 -1" mass="{mass_rod:.10g}"/>'
        f'<body name="bob{index}" pos="0 0 -1">'
        f'<geom type="sphere" size="0.1" mass="{mass_bob:.10g}"/></body>{inner}'
    )


def single_pendulum_simulation(args: SinglePendulum) -> dict[str, Any]:
    body = f'<body name="pendulum1" pos="0 0 2">{_pendulum_link(1, args.mass_capsule, args.mass_ball)}</body>'  # noqa: E501
    xml = _scene(args, body, friction=args, ground=False)

    def prepare(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.qpos[0] = args.initial_angle
        data.qvel[0] = args.initial_angular_velocity

    return simulate(xml, args, Recorder(["bob1"], ["hinge1"]), prepare)


def double_pendulum_simulation(args: DoublePendulum) -> dict[str, Any]:
    second = f'<body name="pendulum2" pos="0 0 -1">{_pendulum_link(2, args.mass_capsule_2, args.mass_ball_2)}</body>'  # noqa: E501
    first = _pendulum_link(1, args.mass_capsule_1, args.mass_ball_1, inner=second)
    xml = _scene(
        args, f'<body name="pendulum1" pos="0 0 2">{first}</body>', friction=args, ground=False
    )

    def prepare(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.qpos[0:2] = (args.initial_angle_1, args.initial_angle_2)
        data.qvel[0:2] = (args.initial_angular_velocity_1, args.initial_angular_velocity_2)

    return simulate(xml, args, Recorder(["bob1", "bob2"], ["hinge1", "hinge2"]), prepare)


WHEEL_RADIUS_M = 0.1


def diff_vehicle_simulation(args: DiffVehicle) -> dict[str, Any]:
    r = WHEEL_RADIUS_M
    vehicle = f"""
<body name="vehicle" pos="0 0 {r + 0.01}"><freejoint/>
  <geom type="box" size="0.2 0.12 0.04" mass="2"/>
  <geom type="sphere" size="{r / 2}" pos="-0.15 0 {-r / 2}" mass="0.1" friction="0 0 0"/>
  <body name="left_wheel" pos="0.05 0.16 0">
    <joint name="left" type="hinge" axis="0 1 0" armature="0.01"/>
    <geom type="cylinder" size="{r} 0.02" euler="90 0 0" mass="0.2"/></body>
  <body name="right_wheel" pos="0.05 -0.16 0">
    <joint name="right" type="hinge" axis="0 1 0" armature="0.01"/>
    <geom type="cylinder" size="{r} 0.02" euler="90 0 0" mass="0.2"/></body>
</body>"""
    actuators = """<actuator>
  <velocity name="left" joint="left" kv="5"/><velocity name="right" joint="right" kv="5"/>
</actuator>"""
    # Velocity servos are stiff; the implicit integrator keeps them stable at 1 ms.
    xml = _scene(
        args, vehicle, friction=args, ground=True, extra=actuators, integrator="implicitfast"
    )

    def control(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.ctrl[0] = args.left_wheel_velocity / r
        data.ctrl[1] = args.right_wheel_velocity / r

    return simulate(xml, args, Recorder(["vehicle"]), lambda m, d: None, control)


def ball_game_simulation(args: BallGame) -> dict[str, Any]:
    h = args.post_height
    scene = f"""
<body name="ball" pos="0 0 0.2"><freejoint/>
  <geom type="sphere" size="0.1" mass="{args.mass_ball:.10g}"/></body>
<body name="post" pos="2 0 {h / 2}"><freejoint/>
  <geom type="cylinder" size="0.1 {h / 2:.10g}" mass="{args.mass_post:.10g}"/></body>
<body name="box" pos="2 0 {h + 0.15:.10g}"><freejoint/>
  <geom type="box" size="0.15 0.15 0.15" mass="{args.mass_box:.10g}"/></body>"""
    xml = _scene(args, scene, friction=None, ground=True, joint_damping=args.damping)

    def prepare(model: mujoco.MjModel, data: mujoco.MjData) -> None:
        data.qvel[0:3] = args.initial_velocity

    return simulate(xml, args, Recorder(["ball", "post", "box"]), prepare)


_FREE = (
    "Returns the final position and velocity of every body, their extent, and sampled trajectories."
)
MECHANICS_TOOLS = [
    Tool(
        "ball_simulation",
        f"A ball in free flight (optionally above a ground plane). {_FREE}",
        BallSimulation,
        ball_simulation,
    ),
    Tool(
        "ball_plane_simulation",
        f"A ball released above a ground plane at z=0. {_FREE}",
        FreeBody,
        ball_plane_simulation,
    ),
    Tool(
        "roll_ball_simulation",
        f"A ball rolling on a ground plane with spin. {_FREE}",
        FreeBody,
        roll_ball_simulation,
    ),
    Tool(
        "box_plane_simulation",
        f"A box placed on or above a ground plane. {_FREE}",
        BoxPlaneSimulation,
        box_plane_simulation,
    ),
    Tool(
        "sphere_collision_simulation",
        f"Two spheres that may collide, no ground, soft contact set by time constant and "
        f"damping ratio. {_FREE}",
        SphereCollision,
        sphere_collision_simulation,
    ),
    Tool(
        "single_pendulum_simulation",
        "A 1 m pendulum hinged about y; angles in rad from the downward vertical. Returns the "
        "final angle and angular velocity, and the bob's trajectory.",
        SinglePendulum,
        single_pendulum_simulation,
    ),
    Tool(
        "double_pendulum_simulation",
        "Two 1 m links hinged about y; angles in rad, the second relative to the first. "
        "Returns final angles, angular velocities and the bobs' trajectories.",
        DoublePendulum,
        double_pendulum_simulation,
    ),
    Tool(
        "diff_vehicle_simulation",
        f"A differential-drive vehicle driven at fixed wheel speeds on flat ground. {_FREE}",
        DiffVehicle,
        diff_vehicle_simulation,
    ),
    Tool(
        "ball_game_simulation",
        f"A ball thrown from the origin at a post 2 m away with a box on top. {_FREE}",
        BallGame,
        ball_game_simulation,
    ),
]
