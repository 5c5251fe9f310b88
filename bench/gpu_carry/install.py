"""Install an assembled kit with pip, offline, and check that the serving path imports.

`pip install --no-index --no-deps --target DIR` puts the carried wheels beside the
image's packages; `PYTHONPATH=DIR:<repo>` makes them (and sciserve) win over the image.
The first check is an import of the serving path in a fresh interpreter: a wheel left
out that was needed after all shows up here, as a ModuleNotFoundError naming it, before
any server is started. Requirements that the carried wheels declare and the
environment does not meet are listed too (a report, not an error: the left-out list
is deliberate, and the image's versions are only known there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.gpu_carry.parts import CarryError, Manifest, assemble

MARKER = ".carry-installed.json"
# vLLM's OpenAI server and CLI, and sciserve's gateway, worker and vLLM engine.
SERVING_IMPORTS = (
    "vllm.entrypoints.openai.api_server",
    "vllm.entrypoints.cli.main",
    "entrypoints.gateway",
    "entrypoints.worker",
    "workers.engines.vllm_engine",
)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Installed:
    target: Path
    wheels: int
    model_dir: Path | None
    skipped: bool  # the same kit was installed there already


def python_path(target: Path, repo: Path = REPO) -> str:
    """PYTHONPATH that puts the carried set, then the project, before the image."""
    entries = [str(target), str(repo), *os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    return os.pathsep.join(dict.fromkeys(e for e in entries if e))  # once each, in order


def install(
    into: Path, target: Path, python: str = sys.executable, force: bool = False
) -> Installed:
    """Assemble, verify and pip-install the wheels; copy the model files beside them."""
    manifest, paths = assemble(into)
    wheels = [p for f, p in zip(manifest.files, paths, strict=True) if f.kind == "wheel"]
    model_files = [p for f, p in zip(manifest.files, paths, strict=True) if f.kind == "model"]
    model_dir = _place_model(model_files, into / "model") if model_files else None
    marker = target / MARKER
    if (
        not force
        and marker.is_file()
        and json.loads(marker.read_text()).get("kit_id") == manifest.kit_id
    ):
        return Installed(target, len(wheels), model_dir, skipped=True)
    target.mkdir(parents=True, exist_ok=True)
    command = [
        python,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--no-deps",
        "--upgrade",
        "--no-compile",  # the vLLM wheel holds thousands of modules; imports compile what they use
        "--disable-pip-version-check",
        "--target",
        str(target),
        *map(str, wheels),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise CarryError(
            f"pip could not install the kit into {target}: {done.stderr.strip()[-2000:]}"
        )
    marker.write_text(json.dumps({"kit_id": manifest.kit_id, "wheels": len(wheels)}))
    return Installed(target, len(wheels), model_dir, skipped=False)


def _place_model(files: list[Path], folder: Path) -> Path:
    """The demo model's tokenizer and config, in one folder (random weights come later)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def check_imports(
    target: Path,
    modules: tuple[str, ...] = SERVING_IMPORTS,
    python: str = sys.executable,
    repo: Path = REPO,
) -> None:
    """Import the serving path in a fresh interpreter that sees the carried set first."""
    env = {
        **os.environ,
        "PYTHONPATH": python_path(target, repo),
        "VLLM_USE_FLASHINFER_SAMPLER": "0",
    }
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    done = subprocess.run(
        [python, "-c", code, *modules], env=env, cwd=repo, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise CarryError(
            f"The serving path does not import from {target}: {done.stderr.strip()[-3000:]}"
        )


def unmet_requirements(manifest: Manifest, target: Path, python: str = sys.executable) -> list[str]:
    """Requirements of the carried wheels that the environment does not meet, as seen
    by the interpreter that will serve (run there: it knows the image's versions)."""
    pins = [f"{f.name}=={f.version}" for f in manifest.files if f.kind == "wheel"]
    env = {**os.environ, "PYTHONPATH": python_path(target)}
    code = (
        "import sys\nfrom bench.gpu_carry.install import print_unmet\nprint_unmet(sys.argv[1:])\n"
    )
    done = subprocess.run(
        [python, "-c", code, *pins], env=env, cwd=REPO, capture_output=True, text=True
    )
    if done.returncode != 0:
        return [f"(the requirement check failed: {done.stderr.strip()[-500:]})"]
    return [line for line in done.stdout.splitlines() if line]


def print_unmet(pins: list[str]) -> None:
    """Print each requirement of the given distributions that this interpreter's
    environment does not meet, except the ones left out on purpose."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from bench.gpu_carry.resolve import LEFT_OUT

    for pin in pins:
        name = pin.split("==", 1)[0]
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            print(f"{name}: not installed")
            continue
        for line in requires:
            req = Requirement(line)
            if canonicalize_name(req.name) in LEFT_OUT:
                continue
            if req.marker is not None and not req.marker.evaluate({"extra": ""}):
                continue
            try:
                found = metadata.version(req.name)
            except metadata.PackageNotFoundError:
                print(f"{name} needs {req}: not installed")
                continue
            if not req.specifier.contains(found, prereleases=True):
                print(f"{name} needs {req}: {found} is installed")
