"""AWL's MuJoCo scenes, as its tools build them (`src/Mujoco/tools/*.py` of
Rose-STL-Lab/Adapting-While-Learning): the MJCF text, the initial velocities, the
quadratic drag on body 1 and the line each tool prints every 200 steps.

The MJCF strings are AWL's (tabs turned into spaces) except the `{ground}` slot of the
sphere-collision scene (empty by default, i.e. AWL's plane), so a scene here and
there is the same model. What is done with the scene (how many steps, what is
logged) lives in `tool_servers/mechanics_run.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import mujoco
import numpy as np

# --- AWL's MJCF (src/Mujoco/tools/<scene>.py, XML) -----------------------------------

BALL_XML = """
<mujoco>
    <default>
        <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <option gravity = "0 0 {gra_acel}" integrator="RK4" timestep="0.001"/>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        <body pos="{x} {y} {z}">
            <joint type="free"/>
            <geom type="sphere" size="{r}" rgba=".9 0 0 1" mass="{mass}"/>
        </body>
    </worldbody>
</mujoco>
"""

BALL_PLANE_XML = """
<mujoco>
  <default>
      <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
  </default>
  <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.001"/>
  <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
    <geom type="plane" size="100 100 0.1" rgba=".9 0 0 1"/>
    <body pos="{x} {y} {z}">
            <joint type="free"/>
            <geom type="sphere" size="{r}" rgba=".9 0 0 1" mass="{mass}"/>
        </body>
  </worldbody>
</mujoco>
"""

BOX_PLANE_XML = """
<mujoco>
    <default>
        <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.0001"/>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        <geom type="plane" size="100 100 0.1"/>
        <body pos="{x} {y} {z}">
            <joint type="free"/>
            <geom type="box" size="{r} {r} {r}" mass="{mass}"/>
        </body>
    </worldbody>
</mujoco>
"""

ROLL_BALL_XML = """
<mujoco>
    <default>
        <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.0001"/>
    <asset>
        <material name="floor" texture="checks1" texrepeat="2 2" texuniform="true"/>
        <texture name="checks1" builtin="checker" type='2d' width='256' height='256' rgb1="1 1 1" rgb2="0 0 0" />
        <material name="object" texture="checks2" texrepeat="2 2" texuniform="true"/>
        <texture name="checks2" builtin="checker" type='2d' width='256' height='256' rgb1="1 0 0" rgb2="0 1 0" />
    </asset>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        <geom type="plane" size="100 100 0.1" material="floor"/>
        <body pos="{x} {y} {z}">
            <joint type="slide" axis="1 0 0"/>
            <joint type="slide" axis="0 0 1"/>
            <joint type="hinge" axis="0 -1 0"/>
            <geom type="sphere" size="{r}" material="object" mass="{mass}"/>
        </body>
    </worldbody>
</mujoco>
"""  # noqa: E501

SPHERE_COLLISION_XML = """
<mujoco>
    <default>
        <geom solref="{timeconst} {dampratio}" friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <option gravity="0 0 {gra_acel}" integrator="RK4" timestep="0.0001"/>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        {ground}
        <body pos="{x1} {y1} {z1}">
            <joint type="free"/>
            <geom type="sphere" size="{r1}" mass="{mass1}"/>
        </body>
        <body pos="{x2} {y2} {z2}">
            <joint type="free"/>
            <geom type="sphere" size="{r2}" mass="{mass2}"/>
        </body>
    </worldbody>
</mujoco>
"""  # noqa: E501
SPHERE_COLLISION_PLANE = '<geom type="plane" size="100 100 0.1"/>'

BALL_GAME_XML = """
<mujoco>
    <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.001"/>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 10" dir="0 0 -1"/>
        <geom type="plane" size="10 10 0.1" rgba=".9 .9 .9 1"/>
        <body pos="0 0 0.1">
            <joint type="free"/>
            <geom type="sphere" size=".1" rgba=".9 0 0 1" mass="{mass_ball}"/>
        </body>
        <body pos = "3 0 {half_hight}">
            <joint type="free"/>
            <geom type="cylinder" size="0.1 {half_hight}" rgba="0 1 0 1" mass="{mass_post}"/>
        </body>
        <body pos = "3 0 {box_hight}">
            <joint type="free"/>
            <geom type="box" size=".1 .1 .1" rgba="0.95 0.95 0 1" mass="{mass_box}"/>
        </body>
    </worldbody>
</mujoco>
"""

SINGLE_PENDULUM_XML = """
<mujoco>
    <default>
      <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.001"/>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        <body pos="0 0 2">
            <joint type="hinge" axis="0 1 0"/>
            <geom type="capsule" size=".05" fromto="0 0 0 0 0 -1" rgba=".5 .5 .5 1" mass="{mass_capsule}"/>
            <geom type="sphere" pos="0 0 -1" size=".1" rgba=".9 0 0 1" mass="{mass_ball}"/>
        </body>
    </worldbody>
</mujoco>
"""  # noqa: E501

DOUBLE_PENDULUM_XML = """
<mujoco>
    <default>
        <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.001"/>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        <body name="pendulum1" pos="0 0 2">
            <joint name="hinge1" type="hinge" axis="0 1 0"/>
            <geom name="rod1" type="capsule" size=".05" fromto="0 0 0 0 0 -1" rgba=".5 .5 .5 1" mass="{mass_capsule_1}"/>
            <geom name="mass1" type="sphere" pos="0 0 -1" size=".1" rgba=".9 0 0 1" mass="{mass_ball_1}"/>
            <body name="pendulum2" pos="0 0 -1">
                <joint name="hinge2" type="hinge" axis="0 1 0"/>
                <geom name="rod2" type="capsule" size=".05" fromto="0 0 0 0 0 -1" rgba=".5 .5 .5 1" mass="{mass_capsule_2}"/>
                <geom name="mass2" type="sphere" pos="0 0 -1" size=".1" rgba="0 .9 0 1" mass="{mass_ball_2}"/>
            </body>
        </body>
    </worldbody>
</mujoco>
"""  # noqa: E501

DIFF_VEHICLE_XML = """
<mujoco>
    <option gravity = " 0 0 {gra_acel}" integrator="RK4" timestep="0.001"/>
    <default>
        <geom friction="{sliding_fric} {torsional_fric} {rolling_fric}"/>
    </default>
    <worldbody>
        <light diffuse=".5 .5 .5" pos="0 0 3" dir="0 0 -1"/>
        <geom type="plane" size="5 5 0.1" rgba=".9 .9 .9 1"/>
        <body name = "chassis" pos="0 0 0.2" euler='0 90 0'>
            <joint type="free" frictionloss="0"/>
            <geom type="box" size=".05 .2 .5" rgba=".9 .9 0 1"/>
            <site name="marker" pos = "0 0 0.1" size="0.1" />
            <body name="left-tire" pos="0 0.3 -0.5" euler='90 0 0'>
                <joint name = "left-wheel" type="hinge" axis="0 0 -1"/>
                <geom type="cylinder" size=".2 0.05" rgba="0 .9 0 1"/>
            </body>
            <body name="right-tire" pos="0 -0.3 -0.5" euler='90 0 0'>
                <joint name = "right-wheel" type="hinge" axis="0 0 -1"/>
                <geom type="cylinder" size=".2 0.05" rgba="0 .9 0 1"/>
            </body>
        </body>
    </worldbody>
    <sensor>
        <framepos objtype="site" objname="marker"/>
    </sensor>
    <actuator>
        <velocity name="left-velocity-servo" joint="left-wheel" kv="100"/>
        <velocity name="right-velocity-servo" joint="right-wheel" kv="100"/>
    </actuator>
</mujoco>
"""


# --- what a scene is to the runner ---------------------------------------------------

Line = Callable[[str, mujoco.MjData], str]
Channels = Callable[[mujoco.MjData], dict[str, float]]


@dataclass(frozen=True)
class Track:
    """Something the rich summary follows: a body, a geom (a pendulum bob, which AWL
    puts in the rod's body) or a hinge joint, by MuJoCo id."""

    name: str
    kind: str  # "body" | "geom" | "joint"
    index: int


@dataclass(frozen=True)
class Scene:
    """One built scene: MJCF, step, initial state, drag, and AWL's log format."""

    xml: str
    timestep: float
    prepare: Callable[[mujoco.MjData], None]
    line: Line  # AWL's text line for a time label
    channels: Channels  # AWL's json_data values at a log point, by dotted path
    tracks: tuple[Track, ...]
    damping: float = 0.0  # AWL's quadratic drag on body 1 (0: none)
    drag_on_qvel: bool = True  # AWL: v = qvel[0:3] (for roll_ball that is vx, vz, ωy)
    ctrl: tuple[float, ...] = ()
    game_over_z: bool = False  # ball_game: stop once the box is down
    extra_json: dict[str, Any] = field(default_factory=dict)


def f2(value: float) -> str:
    """AWL's `:.2f`."""
    return f"{value:.2f}"


def quat2euler_z(quat: np.ndarray) -> float:
    """AWL's diff_vehicle orientation (src/Mujoco/tools/diff_vehicle.py, quat2euler):
    it reorders MuJoCo's (w, x, y, z) as (z, w, x, y) before handing it to scipy as
    (x, y, z, w), so the angle is not the vehicle's heading. Kept as AWL prints it."""
    from scipy.spatial.transform import Rotation

    reordered = np.array([quat[3], quat[0], quat[1], quat[2]])
    return float(Rotation.from_quat(reordered).as_euler("xyz", degrees=True)[2])


def xyz(prefix: str, values: np.ndarray) -> dict[str, float]:
    return {f"{prefix}.{axis}": float(v) for axis, v in zip("xyz", values, strict=True)}
